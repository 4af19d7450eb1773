package scrape

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/goroscope/goroscope/pkg/fold"
	"github.com/goroscope/goroscope/pkg/snapshot"
	"github.com/goroscope/goroscope/test/eventually"
	"github.com/goroscope/goroscope/test/targettest"
)

// eventGap is pprofload's wait before releasing a blocked goroutine: every
// mutex and block event it makes lasts at least about this long.
const eventGap = 2 * time.Millisecond

// checkWork checks one delta cycle against exact work done by pprofload
// between two collections: allocs objects of size bytes in
// main.allocObject, mutex contentions unlocked in main.mutexWork (whose
// waiters block in main.mutexWaiter), block receives in main.blockRecv.
func checkWork(t *testing.T, r Result, allocs, size, mutex, block int64) {
	t.Helper()
	heap, mu, bl := r.profileOf(KindHeap), r.profileOf(KindMutex), r.profileOf(KindBlock)
	if heap == nil || mu == nil || bl == nil {
		t.Fatalf("delta profiles missing: have %v, errors %v", r.kinds(), r.Errors)
	}
	for _, p := range r.Profiles {
		if !p.Delta {
			continue
		}
		if neg := negatives(p.Profile); len(neg) > 0 {
			t.Errorf("%s delta has negative samples: %v", p.Kind, neg)
		}
		if p.Profile.DurationNanos <= 0 {
			t.Errorf("%s delta has duration %d", p.Kind, p.Profile.DurationNanos)
		}
	}
	checks := []struct {
		what      string
		got, want int64
	}{
		{"heap alloc_objects in main.allocObject", heapSum(t, heap, "alloc_objects", "main.allocObject", size), allocs},
		{"heap alloc_space in main.allocObject", heapSum(t, heap, "alloc_space", "main.allocObject", size), allocs * size},
		{"mutex contentions in main.mutexWork", sumOf(t, mu, "contentions", "main.mutexWork", false), mutex},
		{"block contentions in main.mutexWaiter", sumOf(t, bl, "contentions", "main.mutexWaiter", false), mutex},
		{"block contentions in main.blockRecv", sumOf(t, bl, "contentions", "main.blockRecv", false), block},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s: delta %d, want exactly %d", c.what, c.got, c.want)
		}
	}
	// Delays: each event waited about eventGap; the delta holds this
	// cycle's events only (the previous cycle's would double it).
	delays := []struct {
		what string
		got  int64
		n    int64
	}{
		{"mutex delay in main.mutexWork", sumOf(t, mu, "delay", "main.mutexWork", false), mutex},
		{"block delay in main.blockRecv", sumOf(t, bl, "delay", "main.blockRecv", false), block},
	}
	for _, d := range delays {
		lo, hi := d.n*int64(eventGap)/2, d.n*int64(200*time.Millisecond)
		if d.got < lo || d.got > hi {
			t.Errorf("%s: %s for %d events, want between %s and %s", d.what, time.Duration(d.got), d.n, time.Duration(lo), time.Duration(hi))
		}
	}
}

func TestDeltasAgainstExactWork(t *testing.T) {
	tgt := startLoad(t, targettest.BuildOpts{}, "-spin", "1")
	s := newScraper(t, Config{
		Interval:    3 * time.Second,
		CPUDuration: time.Second,
		Targets:     []TargetConfig{{URL: "http://" + tgt.PprofAddr, Labels: map[string]string{"env": "test"}}},
	})

	// First cycle: a baseline for the cumulative profiles, the rest as is.
	r1 := scrapeOne(t, s)
	if len(r1.Errors) > 0 {
		t.Fatalf("first cycle errors: %v", r1.Errors)
	}
	if got := r1.kinds(); !slices.Equal(got, []Kind{KindCPU}) {
		t.Errorf("first cycle profiles %v, want only cpu (heap, mutex, block set their baseline)", got)
	}
	cpu := r1.profileOf(KindCPU)
	if cpu == nil {
		t.Fatal("no cpu profile")
	}
	// One goroutine spins: it has the CPU profile almost to itself, for at
	// most the profile's second (less when the host is busy).
	spin := time.Duration(sumOf(t, cpu, "cpu", "main.spin", false))
	var total time.Duration
	for _, smp := range cpu.Sample {
		total += time.Duration(smp.Value[1])
	}
	if spin < 50*time.Millisecond || spin > 1500*time.Millisecond || float64(spin) < 0.8*float64(total) {
		t.Errorf("cpu profile: main.spin ran %s of %s in a 1s profile of one spinning goroutine; want 50ms-1.5s and at least 80%%", spin, total)
	}
	// The target measures the duration itself, from starting its profiler to
	// stopping it after its 1s sleep: it can fall a little short of 1s.
	if d := time.Duration(cpu.DurationNanos); d < 900*time.Millisecond || d > 2*time.Second {
		t.Errorf("cpu profile duration %s, want about 1s", d)
	}
	wantLabels := map[string]string{"env": "test", "instance": tgt.PprofAddr, "service_name": filepath.Base(tgt.Cmd.Path)}
	if fmt.Sprint(r1.Labels) != fmt.Sprint(wantLabels) {
		t.Errorf("labels %v, want %v", r1.Labels, wantLabels)
	}
	snap := r1.Snapshot
	if snap == nil {
		t.Fatal("no goroutine snapshot")
	}
	if snap.Walker != WalkerPprof || snap.Exe != tgt.Cmd.Path || snap.Counts.Total() != len(snap.Goroutines) || len(snap.Goroutines) < 3 {
		t.Errorf("snapshot walker %q exe %q counts %+v for %d goroutines", snap.Walker, snap.Exe, snap.Counts, len(snap.Goroutines))
	}
	// The spinner shows its stack unless it was on a CPU when the dump was
	// taken: the runtime prints "goroutine running on other thread; stack
	// unavailable" for those, with its creator.
	spinners, hidden := 0, 0
	for _, g := range snap.Goroutines {
		if g.CreatedBy == nil || g.CreatedBy.Function != "main.run" {
			continue
		}
		switch {
		// A spinner not yet started (on a loaded machine) is at its go
		// statement's wrapper (main.run.gowrap1, Go 1.22+), which
		// returns to runtime.goexit.
		case len(g.Frames) > 0 && (g.Frames[len(g.Frames)-1].Function == "main.spin" || g.Frames[0].Function == "main.run.gowrap1"):
			spinners++
			if g.State != snapshot.StateRunnable && g.State != snapshot.StateRunning {
				t.Errorf("spinning goroutine %d is %s", g.ID, g.State)
			}
		case len(g.Frames) == 0 && g.State == snapshot.StateRunning:
			hidden++
		}
	}
	if spinners > 1 || spinners+hidden == 0 {
		var seen []string
		for _, g := range snap.Goroutines {
			desc := fmt.Sprintf("%d %s %q", g.ID, g.State, g.WaitReason)
			if len(g.Frames) > 0 {
				desc += " " + g.Frames[0].Function + ".." + g.Frames[len(g.Frames)-1].Function
			}
			if g.CreatedBy != nil {
				desc += " by " + g.CreatedBy.Function
			}
			seen = append(seen, desc)
		}
		t.Errorf("%d spinning goroutines in the snapshot (%d running with no stack), want 1; goroutines: %s", spinners, hidden, strings.Join(seen, "; "))
	}

	// Exact work between cycles, twice: each delta holds only its own.
	steps := []struct{ allocs, size, mutex, block int64 }{
		{300, 4096, 7, 9},
		{50, 1024, 3, 4},
	}
	for i, st := range steps {
		work(t, tgt, fmt.Sprintf("allocs=%d&size=%d&mutex=%d&block=%d&retain=1", st.allocs, st.size, st.mutex, st.block))
		r := scrapeOne(t, s)
		if len(r.Errors) > 0 || r.Restarted != "" {
			t.Fatalf("cycle %d: errors %v, restarted %q", i+2, r.Errors, r.Restarted)
		}
		if got := r.kinds(); !slices.Equal(got, []Kind{KindCPU, KindHeap, KindMutex, KindBlock}) {
			t.Errorf("cycle %d: profiles %v", i+2, got)
		}
		checkWork(t, r, st.allocs, st.size, st.mutex, st.block)
		// In-use values are not deltas: the retained objects of this
		// cycle's work, as of the GC /work ran.
		heap := r.profileOf(KindHeap)
		if got := heapSum(t, heap, "inuse_objects", "main.allocObject", st.size); got != st.allocs {
			t.Errorf("cycle %d: inuse_objects of main.allocObject %d, want %d", i+2, got, st.allocs)
		}
		if got := heapSum(t, heap, "inuse_space", "main.allocObject", st.size); got != st.allocs*st.size {
			t.Errorf("cycle %d: inuse_space of main.allocObject %d, want %d", i+2, got, st.allocs*st.size)
		}
	}

	// The pushed names and the metrics.
	for _, p := range scrapeOne(t, s).Profiles {
		want := map[Kind]string{KindCPU: "process_cpu", KindHeap: "memory", KindMutex: "mutex", KindBlock: "block"}[p.Kind]
		if p.Name != want || p.Delta != p.Kind.cumulative() {
			t.Errorf("%s profile named %q delta %v", p.Kind, p.Name, p.Delta)
		}
	}
	name := tgt.PprofAddr
	for _, k := range []Kind{KindCPU, KindHeap, KindMutex, KindBlock, KindGoroutine} {
		if got := testutil.ToFloat64(s.m.requests.WithLabelValues(name, string(k))); got != 4 {
			t.Errorf("requests_total{profile=%s} = %v, want 4", k, got)
		}
	}
	if got := testutil.CollectAndCount(s, "goroscope_scrape_errors_total"); got != 0 {
		t.Errorf("%d error series, want none", got)
	}
	if got := testutil.ToFloat64(s.m.unsupported.WithLabelValues(name, string(KindGoroutineLeak))); got != 1 {
		t.Errorf("goroutineleak unsupported gauge %v, want 1 (plain build)", got)
	}
	if got := testutil.ToFloat64(s.m.requests.WithLabelValues(name, string(KindGoroutineLeak))); got != 1 {
		t.Errorf("goroutineleak asked %v times, want once (404 remembered)", got)
	}
}

func TestTargetRestart(t *testing.T) {
	tests := []struct {
		name string
		opts targettest.BuildOpts
		// evidence is a substring of Result.Restarted.
		evidence string
	}{
		// Same binary, same addresses: the counts give the restart away.
		{"same executable", targettest.BuildOpts{}, ""},
		// PIE: the executable is mapped elsewhere in the new process.
		{"pie", targettest.BuildOpts{PIE: true}, "the executable moved"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := startLoad(t, tt.opts, "-spin", "0")
			s := newScraper(t, Config{
				Interval: 2 * time.Second,
				Profiles: []string{"heap", "mutex", "block"},
				Targets:  []TargetConfig{{URL: "http://" + a.PprofAddr}},
			})
			if r := scrapeOne(t, s); len(r.Profiles) != 0 || len(r.Errors) != 0 {
				t.Fatalf("baseline cycle: profiles %v errors %v", r.kinds(), r.Errors)
			}
			work(t, a, "allocs=100&size=4096&mutex=3&block=3")
			checkWork(t, scrapeOne(t, s), 100, 4096, 3, 3)

			// Restart on the same address; the new process does more of
			// the same work than the old one did, so the work's own stacks
			// grew: the restart must be seen all the same.
			a.Stop()
			b := startLoad(t, tt.opts, "-spin", "0", "-addr", a.PprofAddr)
			work(t, b, "allocs=400&size=4096&mutex=5&block=5")
			r := scrapeOne(t, s)
			if r.Restarted == "" || !strings.Contains(r.Restarted, tt.evidence) {
				t.Fatalf("restart not reported (Restarted %q, want it to mention %q); profiles %v errors %v", r.Restarted, tt.evidence, r.kinds(), r.Errors)
			}
			t.Logf("restart evidence: %s", r.Restarted)
			if len(r.Profiles) != 0 || len(r.Errors) != 0 {
				t.Errorf("restart cycle: profiles %v (want none: new baseline) errors %v", r.kinds(), r.Errors)
			}
			if got := testutil.ToFloat64(s.m.restarts.WithLabelValues(a.PprofAddr)); got != 1 {
				t.Errorf("restarts_total %v, want 1", got)
			}
			// The next cycle is a delta against the new process's counts.
			work(t, b, "allocs=20&size=4096&mutex=2&block=2")
			r = scrapeOne(t, s)
			if r.Restarted != "" {
				t.Errorf("second restart reported: %s", r.Restarted)
			}
			checkWork(t, r, 20, 4096, 2, 2)
		})
	}
}

// TestGoroutineSnapshot checks the snapshot parsed from debug=2 against the
// population target's own description of its goroutines: every goroutine
// of every group, with its state and wait reason, lock, frame and pprof
// labels (printed by go1.26 with GODEBUG=tracebacklabels=1).
func TestGoroutineSnapshot(t *testing.T) {
	bin := targettest.Build(t, "population", targettest.BuildOpts{})
	tgt := targettest.StartWith(t, targettest.StartOpts{Env: []string{"GODEBUG=tracebacklabels=1"}}, bin)
	s := newScraper(t, Config{Profiles: []string{"goroutine"}, Targets: []TargetConfig{{URL: "http://" + tgt.PprofAddr}}})
	r := scrapeOne(t, s)
	if len(r.Errors) > 0 || r.Snapshot == nil {
		t.Fatalf("errors %v, snapshot %v", r.Errors, r.Snapshot != nil)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	pop, err := tgt.Population(ctx)
	if err != nil {
		t.Fatal(err)
	}
	byID := map[uint64]*snapshot.Goroutine{}
	for i := range r.Snapshot.Goroutines {
		byID[r.Snapshot.Goroutines[i].ID] = &r.Snapshot.Goroutines[i]
	}
	labelsPrinted := tgt.GoVersion >= "go1.26"
	checked := 0
	for _, grp := range pop.Groups {
		statuses := grp.Statuses
		if len(statuses) == 0 {
			statuses = []string{grp.Status}
		}
		for _, id := range grp.IDs {
			g, ok := byID[id]
			if !ok {
				t.Errorf("%s: goroutine %d missing from the snapshot", grp.Name, id)
				continue
			}
			got := string(g.State)
			if g.WaitReason != "" {
				got = g.WaitReason
			}
			if !slices.Contains(statuses, got) && !(got == "runnable" && slices.Contains(statuses, "preempted")) &&
				!(got == "runnable" && slices.Contains(statuses, "running")) {
				t.Errorf("%s: goroutine %d is %q, want one of %q", grp.Name, id, got, statuses)
			}
			if g.LockedToThread != grp.LockedToThread {
				t.Errorf("%s: goroutine %d locked to thread %v, want %v", grp.Name, id, g.LockedToThread, grp.LockedToThread)
			}
			if grp.Frame != "" && !slices.ContainsFunc(g.Frames, func(f snapshot.Frame) bool { return f.Function == grp.Frame }) && g.State != snapshot.StateRunning {
				t.Errorf("%s: goroutine %d lacks frame %s", grp.Name, id, grp.Frame)
			}
			if labelsPrinted && len(grp.Labels) > 0 && fmt.Sprint(g.Labels) != fmt.Sprint(grp.Labels) {
				t.Errorf("%s: goroutine %d labels %v, want %v", grp.Name, id, g.Labels, grp.Labels)
			}
			if grp.Elided && !g.Truncated {
				t.Errorf("%s: goroutine %d has elided frames but is not marked truncated", grp.Name, id)
			}
			checked++
		}
	}
	if checked != pop.Total() || checked == 0 {
		t.Errorf("checked %d goroutines of %d", checked, pop.Total())
	}
	// The snapshot folds like a walker's: one goroutine per count.
	var total int64
	for _, smp := range fold.Goroutines(r.Snapshot).Sample {
		total += smp.Value[0]
	}
	if total != int64(len(r.Snapshot.Goroutines)) || r.Snapshot.Counts.Total() != len(r.Snapshot.Goroutines) {
		t.Errorf("folded %d goroutines, counts %d, snapshot has %d", total, r.Snapshot.Counts.Total(), len(r.Snapshot.Goroutines))
	}
	t.Logf("%d goroutines, %d in population groups, counts %+v", len(r.Snapshot.Goroutines), checked, r.Snapshot.Counts)
}

// TestGoroutineLeak scrapes a Go 1.26 target built with the goroutine leak
// profile: the leaked goroutines come as a goroutineleak profile and as
// leaked goroutines in the snapshot.
func TestGoroutineLeak(t *testing.T) {
	var minor int
	if _, err := fmt.Sscanf(runtime.Version(), "go1.%d", &minor); err != nil || minor < 26 {
		t.Skipf("goroutineleak needs go1.26 or later; the toolchain is %s", runtime.Version())
	}
	const leaks = 4
	tgt := targettest.Start(t, buildLeakLoad(t), "-spin", "0", "-leak", fmt.Sprint(leaks))
	s := newScraper(t, Config{Profiles: []string{"goroutine", "goroutineleak"}, Targets: []TargetConfig{{URL: "http://" + tgt.PprofAddr}}})
	// The target starts its leaking goroutines before it says it is ready,
	// but they may not all have parked yet: the runtime finds only parked
	// ones. Once parked they never leave, so every later cycle sees all.
	eventually.True(t, 30*time.Second, "every leaked goroutine in the goroutineleak profile", func() bool {
		leak := scrapeOne(t, s).profileOf(KindGoroutineLeak)
		return leak != nil && sumOf(t, leak, "goroutineleak", "main.leakForever", false) == leaks
	})
	for cycle := 1; cycle <= 2; cycle++ {
		r := scrapeOne(t, s)
		if len(r.Errors) > 0 {
			t.Fatalf("cycle %d errors: %v", cycle, r.Errors)
		}
		leak := r.profileOf(KindGoroutineLeak)
		if leak == nil {
			t.Fatalf("cycle %d: no goroutineleak profile; profiles %v", cycle, r.kinds())
		}
		if got := sumOf(t, leak, "goroutineleak", "main.leakForever", false); got != leaks {
			t.Errorf("cycle %d: goroutineleak profile counts %d in main.leakForever, want %d", cycle, got, leaks)
		}
		leaked := 0
		for _, g := range r.Snapshot.Goroutines {
			if g.State == snapshot.StateLeaked {
				leaked++
				if g.WaitReason != "chan receive" || g.Frames[len(g.Frames)-1].Function != "main.leakForever" {
					t.Errorf("leaked goroutine %d: %q in %s", g.ID, g.WaitReason, g.Frames[len(g.Frames)-1].Function)
				}
			}
		}
		if leaked != leaks || r.Snapshot.Counts.Leaked != leaks {
			t.Errorf("cycle %d: %d leaked goroutines in the snapshot (counts %d), want %d", cycle, leaked, r.Snapshot.Counts.Leaked, leaks)
		}
	}
	if got := testutil.ToFloat64(s.m.unsupported.WithLabelValues(tgt.PprofAddr, string(KindGoroutineLeak))); got != 0 {
		t.Errorf("unsupported gauge %v for a target that offers goroutineleak", got)
	}
}

// TestRun runs the scraper's loop for a few intervals.
func TestRun(t *testing.T) {
	t.Parallel() // it waits, as TestBadInput's hangs do
	tgt := startLoad(t, targettest.BuildOpts{}, "-spin", "0", "-alloc-rate", "1000", "-mutex-rate", "20", "-block-rate", "20")
	s := newScraper(t, Config{
		Interval: time.Second,
		Profiles: []string{"heap", "mutex", "block", "goroutine"},
		Targets:  []TargetConfig{{URL: "http://" + tgt.PprofAddr}},
	})
	var got results
	ctx, cancel := context.WithTimeout(context.Background(), 3500*time.Millisecond)
	defer cancel()
	start := time.Now()
	err := s.Run(ctx, got.add)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Run returned %v, want the context's error", err)
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("Run took %s to stop after a 3.5s context", took)
	}
	rs := got.get()
	if len(rs) < 3 || len(rs) > 4 {
		t.Fatalf("%d cycles in 3.5s at 1s intervals, want 3 or 4", len(rs))
	}
	for i, r := range rs {
		if len(r.Errors) > 0 || r.Snapshot == nil {
			t.Errorf("cycle %d: errors %v, snapshot %v", i, r.Errors, r.Snapshot != nil)
		}
		if i == 0 {
			continue
		}
		if got := r.kinds(); !slices.Equal(got, []Kind{KindHeap, KindMutex, KindBlock}) {
			t.Errorf("cycle %d: profiles %v", i, got)
			continue
		}
		for _, p := range r.Profiles {
			if neg := negatives(p.Profile); len(neg) > 0 {
				t.Errorf("cycle %d: %s delta has negative samples %v", i, p.Kind, neg)
			}
		}
		// Background contentions, 20 a second, are recorded as they happen
		// (heap counts wait for a GC cycle, so they come in lumps).
		mu := r.profileOf(KindMutex)
		secs := time.Duration(mu.DurationNanos).Seconds()
		got := sumOf(t, mu, "contentions", "main.(*worker).background", false)
		if lo, hi := int64(20*secs*0.3), int64(20*secs*1.5+2); got < lo || got > hi {
			t.Errorf("cycle %d: %d background contentions in %.2fs at 20/s, want %d-%d", i, got, secs, lo, hi)
		}
	}
}

// TestDeltasAcrossToolchains checks exact deltas and the goroutine dump
// against pprofload built with every supported Go toolchain.
func TestDeltasAcrossToolchains(t *testing.T) {
	for _, v := range targettest.Toolchains() {
		t.Run(v, func(t *testing.T) {
			tgt := startLoad(t, targettest.BuildOpts{GoVersion: v}, "-spin", "0")
			if tgt.GoVersion != v {
				t.Fatalf("target runs %s, want %s", tgt.GoVersion, v)
			}
			s := newScraper(t, Config{
				Interval: 2 * time.Second,
				Profiles: []string{"heap", "mutex", "block", "goroutine"},
				Targets:  []TargetConfig{{URL: "http://" + tgt.PprofAddr}},
			})
			if r := scrapeOne(t, s); len(r.Errors) > 0 || r.Snapshot == nil {
				t.Fatalf("baseline cycle: errors %v", r.Errors)
			}
			work(t, tgt, "allocs=200&size=2048&mutex=4&block=6")
			r := scrapeOne(t, s)
			if len(r.Errors) > 0 || r.Restarted != "" {
				t.Fatalf("errors %v, restarted %q", r.Errors, r.Restarted)
			}
			checkWork(t, r, 200, 2048, 4, 6)
			if r.Snapshot == nil || r.Snapshot.Counts.Total() < 2 {
				t.Errorf("snapshot %+v", r.Snapshot)
			}
		})
	}
}
