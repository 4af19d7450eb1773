package rtstate_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/goroscope/goroscope/collect/process"
	"github.com/goroscope/goroscope/collect/rtstate"
	"github.com/goroscope/goroscope/collect/walk"
	"github.com/goroscope/goroscope/pkg/golayout"
	"github.com/goroscope/goroscope/test/targettest"
)

// Metric names the rtmetrics target answers.
const (
	mProcs     = "/sched/gomaxprocs:threads"
	mGOGC      = "/gc/gogc:percent"
	mLimit     = "/gc/gomemlimit:bytes"
	mCycles    = "/gc/cycles/total:gc-cycles"
	mForced    = "/gc/cycles/forced:gc-cycles"
	mLive      = "/gc/heap/live:bytes"
	mGoal      = "/gc/heap/goal:bytes"
	mObjects   = "/memory/classes/heap/objects:bytes"
	mUnused    = "/memory/classes/heap/unused:bytes"
	mThreads   = "/sched/threads/total:threads"
	targetName = "rtmetrics"
)

// slack is how far the heap goal under a memory limit may move while the target answers the
// requests around a read.
const slack = 256 << 10

// startEnv is the environment the target starts with: settings to find, and no asynchronous
// preemption, for the run-queue check.
var startEnv = []string{"GOGC=150", "GOMEMLIMIT=1GiB", "GOMAXPROCS=3", "GODEBUG=asyncpreemptoff=1", "GOTRACEBACK=all"}

// TestMatchesRuntimeMetrics compares what a Reader reads of the rtmetrics target with the
// target's own runtime/metrics, read at the same quiescent moment (background allocations
// stopped, after runtime.GC), for every Go version, stripped and not: settings from the
// environment, then changed at run time (debug.SetGCPercent, debug.SetMemoryLimit,
// runtime.GOMAXPROCS, GOGC off under a memory limit). GOMAXPROCS, GOGC, GOMEMLIMIT and the
// GC cycle counts must be equal, and the heap figures those of the same GC cycle: live and
// goal equal, in use within what the runtime reported just before and just after. Then, with
// one P kept busy, the run queues must hold exactly the goroutines made runnable.
func TestMatchesRuntimeMetrics(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the target with every supported Go toolchain")
	}
	for _, ver := range targettest.Toolchains() {
		builds := []targettest.BuildOpts{{GoVersion: ver}, {GoVersion: ver, Stripped: true}}
		if ver == runtime.Version() {
			// cgo's extra M, and a PIE's load bias.
			builds = append(builds, targettest.BuildOpts{GoVersion: ver, Stripped: true, Cgo: true, PIE: true})
		}
		for _, opts := range builds {
			name := fmt.Sprintf("%s/stripped=%v", ver, opts.Stripped)
			if opts.Cgo {
				name += "/cgo+pie"
			}
			t.Run(name, func(t *testing.T) {
				t.Parallel()
				stripped := opts.Stripped
				bin := targettest.Build(t, targetName, opts)
				tgt := targettest.StartWith(t, targettest.StartOpts{Env: startEnv}, bin)
				at, err := process.Attach(tgt.PID)
				if err != nil {
					t.Fatalf("attach: %v", err)
				}
				t.Cleanup(func() { at.Close() })
				checkSources(t, at, stripped)
				r, err := rtstate.NewReader(at)
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { r.Close() })

				st := compare(t, r, tgt, opts.Cgo, "environment")
				checkEnv(t, st)
				if st.GOMAXPROCS != 3 || st.GOGCPercent != 150 || st.MemoryLimitBytes != 1<<30 {
					t.Errorf("from the environment: GOMAXPROCS %d, GOGC %d, GOMEMLIMIT %d; want 3, 150, 1GiB", st.GOMAXPROCS, st.GOGCPercent, st.MemoryLimitBytes)
				}
				set(t, tgt, "gogc=60&memlimit=314572800&procs=2")
				if st := compare(t, r, tgt, opts.Cgo, "set at run time"); st.GOMAXPROCS != 2 || st.GOGCPercent != 60 || st.MemoryLimitBytes != 300<<20 {
					t.Errorf("set at run time: GOMAXPROCS %d, GOGC %d, GOMEMLIMIT %d; want 2, 60, 300MiB", st.GOMAXPROCS, st.GOGCPercent, st.MemoryLimitBytes)
				}
				set(t, tgt, "gogc=-1&memlimit=67108864&procs=4")
				if st := compare(t, r, tgt, opts.Cgo, "GOGC off, memory limit"); st.GOMAXPROCS != 4 || st.GOGCPercent != -1 || st.MemoryLimitBytes != 64<<20 {
					t.Errorf("GOGC off: GOMAXPROCS %d, GOGC %d, GOMEMLIMIT %d; want 4, -1, 64MiB", st.GOMAXPROCS, st.GOGCPercent, st.MemoryLimitBytes)
				}
				checkRunQueues(t, at, r, tgt, 300)
			})
		}
	}
}

// checkSources checks that a stripped target is read with the built-in tables and the
// addresses found in its code, a plain one with its DWARF and symbols.
func checkSources(t *testing.T, at *process.Target, stripped bool) {
	l := at.Layout
	v, err := at.Bin.StateVars(l)
	if err != nil {
		t.Fatal(err)
	}
	wantLayout, wantVars := golayout.SourceDWARF, "symtab"
	if stripped {
		wantLayout, wantVars = golayout.SourceTable, "disasm"
	}
	if l.Source != wantLayout || v.Source != wantVars {
		t.Errorf("layout from %s, variables from %s; want %s and %s", l.Source, v.Source, wantLayout, wantVars)
	}
}

// compare reads the state between two answers of the target's metrics, the first after a GC
// with the background allocations stopped, and checks it. A read that caught the runtime
// moving (a GC cycle, the scavenger returning memory, a thread started) is tried again, up to
// 5 times, and logged; a wrong figure fails every try. It resumes the allocations at the end,
// so that cycles go by until the next.
func compare(t *testing.T, r *rtstate.Reader, tgt *targettest.Target, cgo bool, what string) rtstate.State {
	t.Helper()
	defer get(t, tgt, "/resume", nil)
	const tries = 5
	var fails []string
	for try := 0; try < tries; try++ {
		if len(fails) > 0 {
			t.Logf("%s: try %d: %s", what, try, strings.Join(fails, "; "))
		}
		var before, after map[string]uint64
		get(t, tgt, "/quiesce", &before)
		st, err := r.Read()
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		get(t, tgt, "/metrics", &after)
		fails = checkState(st, before, after, cgo)
		if len(fails) == 0 {
			t.Logf("%s: %+v", what, summary(st))
			return st
		}
	}
	t.Fatalf("%s: %d tries: %s", what, tries, strings.Join(fails, "; "))
	return rtstate.State{}
}

// checkState compares st with the runtime's metrics read before and after it.
func checkState(st rtstate.State, before, after map[string]uint64, cgo bool) (fails []string) {
	if before[mCycles] != after[mCycles] {
		return []string{fmt.Sprintf("GC cycle %d -> %d during the read", before[mCycles], after[mCycles])}
	}
	eq := func(name string, got uint64, metric string) {
		if got != before[metric] || got != after[metric] {
			fails = append(fails, fmt.Sprintf("%s = %d, the runtime says %d before and %d after", name, got, before[metric], after[metric]))
		}
	}
	eq("GOMAXPROCS", uint64(st.GOMAXPROCS), mProcs)
	eq("GOGCPercent", uint64(int64(st.GOGCPercent)), mGOGC)
	eq("MemoryLimitBytes", uint64(st.MemoryLimitBytes), mLimit)
	eq("GCCycles", uint64(st.GCCycles), mCycles)
	eq("ForcedGCCycles", uint64(st.ForcedGCCycles), mForced)
	eq("HeapLiveBytes", st.HeapLiveBytes, mLive)
	within := func(name string, got, a, b, slack uint64) {
		if got+slack < min(a, b) || got > max(a, b)+slack {
			fails = append(fails, fmt.Sprintf("%s = %d, the runtime says %d before and %d after (± %d)", name, got, a, b, slack))
		}
	}
	if st.GOGCPercent >= 0 {
		// The GOGC goal is set at the end of a cycle.
		within("HeapGoalBytes", st.HeapGoalBytes, before[mGoal], after[mGoal], 0)
	} else {
		// The GOMEMLIMIT goal follows the memory mapped and the heap, which answering the
		// HTTP requests changes.
		within("HeapGoalBytes", st.HeapGoalBytes, before[mGoal], after[mGoal], slack)
	}
	within("HeapInUseBytes", st.HeapInUseBytes, before[mObjects]+before[mUnused], after[mObjects]+after[mUnused], 0)
	if st.GCCycles < 2 || st.HeapLiveBytes < 8<<20 || st.HeapPacedBytes < st.HeapLiveBytes || st.HeapInUseBytes < st.HeapLiveBytes {
		fails = append(fails, fmt.Sprintf("implausible heap: %+v", summary(st)))
	}
	if _, ok := before[mThreads]; ok { // Go 1.26+: mcount() less cgo's extra Ms
		within("Ms - ExtraMs", uint64(st.Ms-st.ExtraMs), before[mThreads], after[mThreads], 0)
	}
	if st.Ms < 2 || st.Threads < st.Ms-st.ExtraMs || (st.ExtraMs > 0) != cgo || st.IdleMs > st.Ms || st.MaxThreads != 10000 || st.IdlePs > st.GOMAXPROCS || len(st.LocalRunQueues) != st.GOMAXPROCS {
		fails = append(fails, fmt.Sprintf("implausible scheduler: %+v", summary(st)))
	}
	return fails
}

// summary is st without its environment, for the logs.
func summary(st rtstate.State) rtstate.State {
	st.Env = nil
	return st
}

// checkEnv checks that the environment read is the one the target started with.
func checkEnv(t *testing.T, st rtstate.State) {
	t.Helper()
	if st.EnvError != "" {
		t.Fatalf("environment: %s", st.EnvError)
	}
	got := map[string]string{}
	for _, v := range st.Env {
		got[v.Name] = v.Value
	}
	for _, kv := range startEnv {
		k, v, _ := strings.Cut(kv, "=")
		if got[k] != v {
			t.Errorf("environment: %s=%q, want %q (all: %v)", k, got[k], v, st.Env)
		}
	}
}

// spinMu has the targets keep a CPU busy for checkRunQueues one at a time: a spinner whose
// thread the system deschedules for 10ms is preempted, and the check tried again.
var spinMu sync.Mutex

// checkRunQueues sets GOMAXPROCS to 1 and has the target make n goroutines runnable while it
// keeps its one P busy, so that nothing runs: the run queues (the local ring, its runnext slot,
// and the global queue the ring overflows to) must hold the n goroutines, no P be idle, and
// two reads around a goroutine walk agree with it on the number of runnable goroutines (the
// runtime may have made a few of its own runnable meanwhile: the scavenger, a timer's).
func checkRunQueues(t *testing.T, at *process.Target, r *rtstate.Reader, tgt *targettest.Target, n int) {
	t.Helper()
	spinMu.Lock()
	defer spinMu.Unlock()
	set(t, tgt, "procs=1")
	get(t, tgt, "/quiesce", nil)
	defer get(t, tgt, "/resume", nil)
	var flag struct{ Addr string }
	get(t, tgt, "/spinflag", &flag)
	addr, err := strconv.ParseUint(flag.Addr, 0, 64)
	if err != nil {
		t.Fatalf("spin flag address %q: %v", flag.Addr, err)
	}
	for try := 0; ; try++ {
		st, again, runnable, ranEarly := spinOnce(t, at, r, tgt, addr, n)
		if ranEarly > 0 && try < 3 {
			t.Logf("the target was preempted as it made the goroutines runnable (%d ran): again", ranEarly)
			continue
		}
		queued := func(s rtstate.State) int { return s.GlobalRunQueue + s.LocalRunQueued }
		for _, s := range []rtstate.State{st, again} {
			// More than the ring holds: it overflowed into the global queue.
			if s.GOMAXPROCS != 1 || s.IdlePs != 0 || len(s.LocalRunQueues) != 1 || queued(s) != runnable ||
				queued(s) < n || queued(s) > n+5 || s.GlobalRunQueue == 0 || s.LocalRunQueued == 0 {
				t.Errorf("run queues with %d goroutines made runnable on one busy P, %d runnable in a walk: GOMAXPROCS %d, idle Ps %d, global %d, local %v",
					n, runnable, s.GOMAXPROCS, s.IdlePs, s.GlobalRunQueue, s.LocalRunQueues)
			}
		}
		t.Logf("run queues: global %d, local %v; %d runnable in a walk", again.GlobalRunQueue, again.LocalRunQueues, runnable)
		return
	}
}

// spinOnce has the target spin with n goroutines made runnable, and reads the state, walks
// the goroutines and reads again once they are in the run queues; then it sets the flag at
// addr that ends the spin. It returns the two reads, the runnable goroutines of the walk, and
// how many goroutines ran before the spin began.
func spinOnce(t *testing.T, at *process.Target, r *rtstate.Reader, tgt *targettest.Target, addr uint64, n int) (st, again rtstate.State, runnable int, ranEarly int64) {
	t.Helper()
	get(t, tgt, fmt.Sprintf("/runq?n=%d", n), nil)
	released := false
	release := func() {
		if released {
			return
		}
		released = true
		one := uint32(1)
		local := []unix.Iovec{{Base: (*byte)(unsafe.Pointer(&one))}}
		local[0].SetLen(4)
		remote := []unix.RemoteIovec{{Base: uintptr(addr), Len: 4}}
		if _, err := unix.ProcessVMWritev(tgt.PID, local, remote, 0); err != nil {
			t.Errorf("set the spin flag at %#x: %v", addr, err)
		}
	}
	defer release()
	queued := func(s rtstate.State) int { return s.GlobalRunQueue + s.LocalRunQueued }
	var err error
	deadline := time.Now().Add(2 * time.Second)
	for {
		if st, err = r.Read(); err != nil {
			t.Fatalf("run queues: %v", err)
		}
		if queued(st) >= n || time.Now().After(deadline) {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	// Walk, read again, until the two reads agree: the walk saw the same run queues.
	runnable = -1
	for try := 0; try < 5; try++ {
		snap, err := walk.NewSnapshotter(at, walk.ProcMemWalker{}).Snapshot(context.Background())
		if err != nil {
			t.Fatalf("walk: %v", err)
		}
		if again, err = r.Read(); err != nil {
			t.Fatalf("run queues: %v", err)
		}
		if queued(again) == queued(st) && again.GlobalRunQueue == st.GlobalRunQueue {
			runnable = snap.Counts.Runnable
			break
		}
		st = again
	}
	release()
	var res struct {
		Released bool
		Spins    uint64
		RanEarly int64 `json:"ran_early"`
	}
	get(t, tgt, "/runqdone", &res)
	if !res.Released {
		t.Errorf("the target's spin ended by itself after %d spins, not by the flag", res.Spins)
	}
	return st, again, runnable, res.RanEarly
}

// set changes the target's settings (a query of /set).
func set(t *testing.T, tgt *targettest.Target, query string) {
	t.Helper()
	get(t, tgt, "/set?"+query, nil)
}

// get fetches path from the target and decodes its JSON answer into v (when not nil).
func get(t *testing.T, tgt *targettest.Target, path string, v any) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, tgt.URL(path), nil)
	if err != nil {
		t.Error(err)
		return
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Errorf("GET %s: %v", path, err)
		return
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Errorf("GET %s: %s %v: %s", path, resp.Status, err, b)
		return
	}
	if v != nil {
		if err := json.Unmarshal(b, v); err != nil {
			t.Errorf("GET %s: %v: %s", path, err, b)
		}
	}
}
