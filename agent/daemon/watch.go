package daemon

import (
	"hash/fnv"
	"strconv"
	"time"

	"github.com/goroscope/goroscope/collect/discovery"
	"github.com/goroscope/goroscope/collect/process"
	"github.com/goroscope/goroscope/collect/walk"
	"github.com/goroscope/goroscope/pkg/findings"
	"github.com/goroscope/goroscope/pkg/fold"
	"github.com/goroscope/goroscope/pkg/snapshot"
	"github.com/goroscope/goroscope/pkg/store"
)

// watched is one process the agent snapshots.
type watched struct {
	proc   discovery.Process
	target *process.Target
	exe    ExeKey // the shared executable, released when the process goes
	snap   *walk.Snapshotter
	// walker is snap's walker, pointed at the one that serves before
	// each snapshot.
	walker *procWalker
	// offset spreads processes over the interval (stable jitter).
	offset time.Duration
	// due is when the next snapshot should be taken; every is how many
	// intervals apart snapshots are (more than 1 when the process is too
	// large for the cycle budget).
	due   time.Time
	every int
	// lastTook is the duration of the last walk; lastAt its time.
	lastTook time.Duration
	lastAt   time.Time
	// last holds the newest snapshot's folded series and counts.
	series   []fold.Series
	counts   snapshot.Counts
	lastErr  string
	failures int
	// sampledSaid is set once the agent logged that snapshots of the
	// process are sampled (limits.max_goroutines).
	sampledSaid bool
	// tracker judges the process's snapshots into findings; findings are
	// those holding at the last snapshot (a.mu). Only the snapshot loop
	// uses the tracker.
	tracker  *findings.Tracker
	findings []findings.Finding
	// said are the ids of the findings logged as holding.
	said map[string]bool
	// cpuWatched says the CPU sampler watches the process; cpuWin holds
	// its samples since its last snapshot; cpuDrained is set once a drain
	// followed its retirement (the sampler symbolises with its target
	// until then).
	cpuWatched bool
	cpuWin     cpuWindow
	cpuDrained bool
	// health is the process's runtime health, read by the snapshot loop
	// (nil before the first snapshot, or with runtime_health off).
	health *health
}

func (w *watched) storeProcess() store.Process {
	return store.Process{PID: w.proc.PID, StartTime: w.proc.StartTime, ServiceName: w.proc.ServiceName, Exe: w.proc.Exe, GoVersion: w.proc.GoVersion}
}

func (w *watched) labels() map[string]string {
	return map[string]string{"service_name": w.proc.ServiceName, "pid": strconv.Itoa(w.proc.PID)}
}

// jitter places a process at a stable point inside the interval, so that
// processes are not all walked at once.
func jitter(p discovery.Process, interval time.Duration) time.Duration {
	h := fnv.New64a()
	h.Write([]byte(strconv.Itoa(p.PID) + "/" + strconv.FormatUint(p.StartTime, 10)))
	return time.Duration(h.Sum64() % uint64(interval))
}
