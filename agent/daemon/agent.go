package daemon

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/goroscope/goroscope/agent/bpfload"
	"github.com/goroscope/goroscope/collect/cgroup"
	"github.com/goroscope/goroscope/collect/cpu"
	"github.com/goroscope/goroscope/collect/discovery"
	"github.com/goroscope/goroscope/collect/exits"
	"github.com/goroscope/goroscope/collect/panics"
	"github.com/goroscope/goroscope/collect/process"
	"github.com/goroscope/goroscope/collect/scrape"
	"github.com/goroscope/goroscope/pkg/fold"
	"github.com/goroscope/goroscope/pkg/store"
)

// Agent watches the Go processes of the host: discovery finds them, the
// scheduler snapshots each on the cadence, fold turns snapshots into
// profiles and series, and the sink (the local store, the push endpoints)
// takes the results. New opens it, Run runs it once.
type Agent struct {
	cfg     Config
	log     *slog.Logger
	version string // the binary's, for User-Agent headers
	// walkers serve the walks; Run starts the eBPF walker's load.
	walkers *bpfload.Walkers
	// verdicts remembers the BPF objects this kernel rejected.
	verdicts *bpfload.Verdicts
	// loadWalker and loadCPU load the BPF objects, which Run starts in the
	// background: the kernel may take long to verify them. Tests replace
	// them before Run.
	loadWalker func(context.Context) (bpfload.EBPFWalker, error)
	loadCPU    func(context.Context, cpu.Options) (*cpu.Sampler, error)
	// cpuLoad is the CPU sampler's load (nil when sampling is off).
	cpuLoad *bpfload.Load[*cpu.Sampler]
	// scanner is the discover stage.
	scanner discoverer
	store   *store.Store
	metrics *selfMetrics
	// push are the push endpoints; sink takes every output: the store,
	// then push.
	push *pushers
	sink Appender
	// enc and snapBuf are the snapshot loop's reused encoding buffers.
	enc     encoder
	snapBuf []byte
	// cpu samples the watched processes on CPU once loaded (nil when
	// disabled, loading or without eBPF); set once, by the discovery loop.
	cpu atomic.Pointer[cpuSampler]
	// cpuReason is why CPU sampling is not on ("loading", "off", the
	// load's failure); a.mu.
	cpuReason string
	// scraper collects from pprof endpoints (nil with no targets). The
	// agent owns it until Run hands it to the scrape loop (and sets this
	// to nil): scrape.Scraper.Run closes it when it returns.
	scraper *scrape.Scraper

	// exits follows the watched processes' ends (nil when it cannot run);
	// set by Run before discovery starts. exitSubjects are the processes
	// it follows; a.mu.
	exits        *exits.Watcher
	exitSubjects map[store.ProcessKey]exitSubject
	// panics probes the watched processes' fatal paths (nil when it cannot
	// load); panicRecords are the hits of processes not yet exited; a.mu.
	panics       *panics.Tracer
	panicRecords map[store.ProcessKey]panics.Panic
	// panicProbeAfter is how long a process is watched before the probe
	// is attached to it (shortLived; tests shorten it).
	panicProbeAfter time.Duration
	// crashedExes are the executables a process of which crashed before
	// the probe was on it: their next processes are probed at once, so
	// a crash loop's second death has its message; a.mu.
	crashedExes map[process.ExeID]time.Time

	mu    sync.Mutex
	procs map[store.ProcessKey]*watched
	exes  Executables
	// retired are processes discovery dropped; the snapshot loop closes
	// them, since it may be walking one at that moment.
	retired []*watched
	// ready is closed after the first discovery scan.
	ready chan struct{}
	// logbook says what the log tells of the processes found (made by the
	// discovery loop, with a.log and boot, when the host booted: the
	// processes' ages count from it), and refusals are those the agent
	// could not attach to; only the discovery loop uses them, without a.mu.
	logbook  *logbook
	boot     time.Time
	refusals refusals
	// labelLimits bound each watched process's pprof label values across
	// its snapshots (see limiterOf); a.mu.
	labelLimits map[store.ProcessKey]*fold.LabelLimiter
	// cgMounts are the agent's cgroup mounts, read at cgMountsAt; only the
	// snapshot loop uses them.
	cgMounts   cgroup.Mounts
	cgMountsAt time.Time
}

// discoverer is the discover stage: it lists the Go processes to watch
// (discovery.Scanner over /proc).
type discoverer interface {
	Scan() ([]discovery.Process, error)
}

// New opens the agent's resources: the store, the metrics and the push
// endpoints; the BPF objects load when Run starts. cfg must be valid
// (Config.Validate); version is the binary's, sent in User-Agent headers.
// Errors name the setting to change.
func New(cfg Config, log *slog.Logger, version string) (*Agent, error) {
	ws, err := bpfload.NewWalkers(cfg.Walker)
	if err != nil {
		return nil, err
	}
	v := bpfload.NewVerdicts(bpfload.VerdictsPath(cfg.DataDir), log)
	if cfg.Walker == "ebpf" {
		// Known to fail: say so now, not after the first scan.
		if err := bpfload.WalkerObject(v, nil).Cached(); err != nil {
			return nil, fmt.Errorf("--walker ebpf: %w", err)
		}
	}
	st, err := store.Open(cfg.DataDir, store.Options{MaxAge: time.Duration(cfg.Store.MaxAge), MaxBytes: int64(cfg.Store.MaxBytes), Logger: log})
	if err != nil {
		return nil, fmt.Errorf("local store: %w", err)
	}
	rules := cfg.Discovery
	a := &Agent{
		cfg: cfg, log: log, version: version, store: st, walkers: ws,
		verdicts:        v,
		loadWalker:      bpfload.LoadEBPFWalker,
		loadCPU:         func(_ context.Context, o cpu.Options) (*cpu.Sampler, error) { return cpu.New(o) },
		scanner:         &discovery.Scanner{Proc: "/proc", Rules: &rules},
		procs:           map[store.ProcessKey]*watched{},
		exitSubjects:    map[store.ProcessKey]exitSubject{},
		panicRecords:    map[store.ProcessKey]panics.Panic{},
		crashedExes:     map[process.ExeID]time.Time{},
		panicProbeAfter: shortLived,
		exes:            Executables{},
		ready:           make(chan struct{}),
		boot:            hostBoot(time.Now()),
		refusals:        refusals{},
		cpuReason:       "off",
	}
	if cfg.CPUFrequency != 0 {
		a.cpuReason = "loading" // by Run
	}
	a.metrics = newSelfMetrics(a)
	if sc, ok := a.scanner.(*discovery.Scanner); ok {
		sc.OnDenied = func(pid int, exe string, err error) {
			a.metrics.errors.WithLabelValues("exe_unreadable").Inc()
			a.log.Warn("cannot read a process's executable to tell whether it is Go: it is not watched; give the agent CAP_DAC_READ_SEARCH (execute-only files need it)",
				"pid", pid, "exe", exe, "err", err)
		}
	}
	if a.push, err = newPushers(cfg, a.metrics.reg, log, version); err != nil {
		return nil, errors.Join(err, a.close())
	}
	a.sink = fanout{{name: "store", Appender: storeSink{st}}, {name: "push", Appender: a.push}}
	if len(cfg.PprofScrape.Targets) > 0 {
		if a.scraper, err = scrape.New(cfg.PprofScrape, scrape.Options{Logger: log, Version: version}); err != nil {
			return nil, errors.Join(fmt.Errorf("pprof_scrape: %w", err), a.close())
		}
		if err := a.metrics.reg.Register(a.scraper); err != nil {
			return nil, errors.Join(fmt.Errorf("pprof_scrape: register metrics: %w", err), a.close())
		}
	}
	return a, nil
}

// close releases everything the agent holds; Run's goroutines must have
// stopped (the BPF loads excepted: their values are dropped).
func (a *Agent) close() error {
	a.mu.Lock()
	for k, w := range a.procs {
		a.release(w)
		delete(a.procs, k)
	}
	for _, w := range a.retired {
		a.release(w)
	}
	a.retired = nil
	a.mu.Unlock()
	if c := a.cpu.Load(); c != nil {
		c.s.Close()
	}
	if a.cpuLoad != nil {
		a.cpuLoad.Drop()
	}
	a.walkers.Close()
	if a.scraper != nil { // never handed to the scrape loop
		a.scraper.Close()
	}
	var err error
	if a.push != nil {
		err = a.push.close()
	}
	return errors.Join(err, a.store.Close())
}
