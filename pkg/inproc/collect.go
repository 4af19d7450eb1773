package inproc

import (
	"bytes"
	"fmt"
	"os"
	"runtime"
	"time"

	"github.com/goroscope/goroscope/pkg/goroutinedump"
	"github.com/goroscope/goroscope/pkg/snapshot"
)

// WalkerName is the Snapshot.Walker of in-process snapshots.
const WalkerName = "inproc"

// Sizing of the dump buffer.
const (
	minDumpBuf       = 64 << 10
	initialPerGBytes = 2 << 10 // a guess before the first dump
)

// collector takes snapshots of its own process from the runtime's goroutine
// dump (the text of /debug/pprof/goroutine?debug=2). It is not safe for
// concurrent use.
type collector struct {
	maxDump int
	pid     int
	exe     string
	// buf is reused across dumps and sized from the previous one, so a dump
	// normally stops the world once; /debug/pprof's own writer starts at
	// 1 MiB and stops the world again for every doubling.
	buf  []byte
	perG int // bytes per goroutine: the largest of recent dumps, decaying
	snap snapshot.Snapshot
}

func newCollector(maxDump int) *collector {
	exe, _ := os.Executable()
	return &collector{maxDump: maxDump, pid: os.Getpid(), exe: exe, perG: initialPerGBytes}
}

// dumpStats says what one dump cost.
type dumpStats struct {
	// Pause is the time spent inside runtime.Stack, which holds the world
	// stopped from start to end; Attempts is how many times it ran (more
	// than one when the buffer was too small).
	Pause    time.Duration
	Attempts int
	Bytes    int
	// Truncated is set when the dump hit maxDump.
	Truncated bool
}

// dump writes every goroutine's traceback into c.buf and returns it.
func (c *collector) dump() ([]byte, dumpStats) {
	var st dumpStats
	want := runtime.NumGoroutine()*c.perG*3/2 + minDumpBuf
	want = min(want, c.maxDump)
	if len(c.buf) < want || len(c.buf) > 4*want {
		// Grow, or give memory back after the population shrank.
		c.buf = make([]byte, want)
	}
	for {
		start := time.Now()
		n := runtime.Stack(c.buf, true)
		st.Pause += time.Since(start)
		st.Attempts++
		if n < len(c.buf) {
			st.Bytes = n
			break
		}
		if len(c.buf) >= c.maxDump {
			st.Bytes, st.Truncated = n, true
			break
		}
		c.buf = make([]byte, min(2*len(c.buf), c.maxDump))
	}
	raw := c.buf[:st.Bytes]
	if st.Truncated {
		// Keep whole goroutines only: cut before the last header.
		if i := bytes.LastIndex(raw, []byte("\n\ngoroutine ")); i >= 0 {
			raw = raw[:i+1]
		}
	}
	return raw, st
}

// collect takes one snapshot. The returned snapshot is reused by the next
// call.
func (c *collector) collect() (*snapshot.Snapshot, dumpStats, error) {
	start := time.Now()
	raw, st := c.dump()
	gs, err := goroutinedump.Parse(bytes.NewReader(raw))
	if err != nil {
		return nil, st, fmt.Errorf("parse this process's goroutine dump (%d bytes; please report it as a goroscope bug): %w", len(raw), err)
	}
	if len(gs) > 0 {
		// The largest recent size per goroutine: a population that just
		// started (short stacks) must not undersize the next dump.
		c.perG = max(len(raw)/len(gs), c.perG*7/8, 256)
	}
	s := &c.snap
	*s = snapshot.Snapshot{
		PID: c.pid, Exe: c.exe, GoVersion: runtime.Version(), Time: start, Walker: WalkerName,
		Goroutines: s.Goroutines,
	}
	goroutinedump.ToSnapshot(s, gs)
	if st.Truncated {
		s.Dropped = max(runtime.NumGoroutine()-len(s.Goroutines), 0)
	}
	s.Duration = time.Since(start)
	return s, st, nil
}
