package walk_test

import (
	"context"
	"fmt"
	"os"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/goroscope/goroscope/collect/process"
	"github.com/goroscope/goroscope/collect/walk"
	"github.com/goroscope/goroscope/pkg/goroutinedump"
	"github.com/goroscope/goroscope/pkg/snapshot"
	"github.com/goroscope/goroscope/test/targettest"
)

// walkersUnderTest returns the walkers to compare. In CI (CI=true) the eBPF
// walker must load: a failure fails the test instead of skipping it.
func walkersUnderTest(t *testing.T) []walk.Walker {
	t.Helper()
	ws := []walk.Walker{walk.ProcMemWalker{}}
	e, err := walk.NewEBPFWalker()
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("eBPF walker must load in CI: %v", err)
		}
		t.Logf("eBPF walker not tested: %v", err)
		return ws
	}
	t.Cleanup(func() { e.Close() })
	return append(ws, e)
}

// matchStats accumulate, per build, how many stable goroutines matched.
type matchStats struct {
	mu   sync.Mutex
	rows []string
}

func (m *matchStats) add(format string, args ...any) {
	m.mu.Lock()
	m.rows = append(m.rows, fmt.Sprintf(format, args...))
	m.mu.Unlock()
}

// TestSnapshotMatchesRuntime compares goroscope's snapshot of the
// population target with the target's own /debug/pprof/goroutine?debug=2
// taken between two snapshots, for every Go version, stripped and not, and
// every walker: same goroutine ids, states and wait reasons, and for parked
// goroutines the same function sequence with inlined frames and lines.
func TestSnapshotMatchesRuntime(t *testing.T) {
	if testing.Short() {
		t.Skip("builds targets with every supported Go toolchain")
	}
	walkers := walkersUnderTest(t)
	stats := &matchStats{}
	t.Cleanup(func() {
		t.Logf("match rate per build (stable goroutines identical to the runtime's own dump):\n%s", strings.Join(stats.rows, "\n"))
	})
	for _, ver := range targettest.Toolchains() {
		builds := []targettest.BuildOpts{
			{GoVersion: ver},
			{GoVersion: ver, Stripped: true},
		}
		if ver == "" || ver == runtime.Version() || strings.HasPrefix(ver, "go1.21") {
			// cgo programs have extra Ms and, since Go 1.26, dead
			// goroutines parked on them; and a PIE layout.
			builds = append(builds, targettest.BuildOpts{GoVersion: ver, Cgo: true, PIE: true})
		}
		for _, opts := range builds {
			name := fmt.Sprintf("%s/stripped=%v", displayVersion(ver), opts.Stripped)
			if opts.Cgo {
				name = fmt.Sprintf("%s/cgo+pie", displayVersion(ver))
			}
			t.Run(name, func(t *testing.T) {
				bin := targettest.Build(t, "population", opts)
				tgt := targettest.Start(t, bin)
				for _, w := range walkers {
					t.Run(w.Name(), func(t *testing.T) {
						matched, total, s := compareOnce(t, tgt, w)
						stats.add("%-28s %-8s %4d/%-4d", name, w.Name(), matched, total)
						checkPopulation(t, tgt, s)
					})
				}
			})
		}
	}
}

func displayVersion(v string) string {
	if v == "" {
		return "local"
	}
	return v
}

func snap(t *testing.T, tgt *targettest.Target, w walk.Walker) *snapshot.Snapshot {
	t.Helper()
	at, err := process.Attach(tgt.PID)
	if err != nil {
		t.Fatalf("attach: %v", err)
	}
	t.Cleanup(func() { at.Close() })
	s, err := walk.NewSnapshotter(at, w).Snapshot(context.Background())
	if err != nil {
		t.Fatalf("snapshot with %s: %v", w.Name(), err)
	}
	return s
}

// stableKey is what must not change between two snapshots for a goroutine
// to count as stable across the dump taken between them.
func stableKey(g *snapshot.Goroutine) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s|%s|", g.State, g.WaitReason)
	for _, f := range g.Frames {
		fmt.Fprintf(&b, "%s:%d;", f.Function, f.Line)
	}
	return b.String()
}

func compareOnce(t *testing.T, tgt *targettest.Target, w walk.Walker) (matched, total int, s2 *snapshot.Snapshot) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	s1 := snap(t, tgt, w)
	dump, raw, err := tgt.Dump(ctx)
	if err != nil {
		t.Fatalf("runtime dump: %v", err)
	}
	s2 = snap(t, tgt, w)
	byID := map[uint64]*snapshot.Goroutine{}
	for i := range s1.Goroutines {
		byID[s1.Goroutines[i].ID] = &s1.Goroutines[i]
	}
	stable := map[uint64]*snapshot.Goroutine{}
	for i := range s2.Goroutines {
		g := &s2.Goroutines[i]
		if p, ok := byID[g.ID]; ok && stableKey(p) == stableKey(g) {
			stable[g.ID] = g
		}
	}
	var failures []string
	for i := range dump {
		d := &dump[i]
		g, ok := stable[d.ID]
		if !ok {
			// Not stable across the dump: it ran, or was created or exited
			// in between. The population check below covers existence.
			continue
		}
		total++
		if why := diff(d, g); why != "" {
			failures = append(failures, fmt.Sprintf("goroutine %d: %s", d.ID, why))
			continue
		}
		matched++
	}
	// Every stable goroutine of ours must be in the dump (no phantoms).
	dumped := map[uint64]bool{}
	for _, d := range dump {
		dumped[d.ID] = true
	}
	for id, g := range stable {
		if !dumped[id] && !g.System {
			failures = append(failures, fmt.Sprintf("goroutine %d [%s %s] is in both snapshots but not in the runtime's dump", id, g.State, g.WaitReason))
		}
	}
	if total < tgt.Goroutines/2 {
		failures = append(failures, fmt.Sprintf("only %d of the target's %d goroutines were stable across the dump", total, tgt.Goroutines))
	}
	if len(failures) > 0 {
		if len(failures) > 15 {
			failures = append(failures[:15], fmt.Sprintf("... and %d more", len(failures)-15))
		}
		t.Errorf("%s walker: %d/%d stable goroutines match the runtime's dump; mismatches:\n%s", w.Name(), matched, total, strings.Join(failures, "\n"))
		if os.Getenv("GOROSCOPE_TEST_VERBOSE") != "" {
			var b strings.Builder
			if err := snapshot.WriteText(&b, s2, snapshot.TextOptions{All: true}); err != nil {
				t.Error(err)
			}
			t.Logf("runtime dump:\n%s\n\nsnapshot:\n%s", raw, b.String())
		}
	}
	return matched, total, s2
}

// diff compares one goroutine of the runtime's dump with ours; "" if equal.
func diff(d *goroutinedump.Goroutine, g *snapshot.Goroutine) string {
	want := d.Status
	got := string(g.State)
	if g.WaitReason != "" {
		got = g.WaitReason
	}
	switch {
	case want == "running":
		// The goroutine serving the dump: it ran while we did not look.
		return ""
	case want == got:
	case (want == "runnable" || want == "running") && (got == "runnable" || got == "running"):
		// The dump stops the world: goroutines running in the target are
		// descheduled and show as runnable there.
		return ""
	default:
		return fmt.Sprintf("status %q, runtime says %q", got, want)
	}
	if g.LockedToThread != d.LockedToThread {
		return fmt.Sprintf("locked to thread %v, runtime says %v", g.LockedToThread, d.LockedToThread)
	}
	if d.CreatedBy != nil {
		if g.CreatedBy == nil {
			return fmt.Sprintf("no creator, runtime says %s", d.CreatedBy.Function)
		}
		if g.CreatedBy.Function != d.CreatedBy.Function || g.CreatedBy.Line != d.CreatedBy.Line || g.ParentID != d.ParentID {
			return fmt.Sprintf("created by %s:%d in %d, runtime says %s:%d in %d", g.CreatedBy.Function, g.CreatedBy.Line, g.ParentID, d.CreatedBy.Function, d.CreatedBy.Line, d.ParentID)
		}
	}
	if got == "running" || got == "runnable" {
		return ""
	}
	// The dump hides what the runtime's tracebacks hide; ours is complete.
	// Past 100 frames the runtime prints the innermost 50 and the outermost
	// 50 and elides the middle.
	frames := snapshot.VisibleFrames(g.Frames)
	n := len(d.Frames)
	if d.ElidedFrames > 0 {
		n += d.ElidedFrames
	}
	if len(frames) != n {
		return fmt.Sprintf("%d frames, runtime has %d%s\n  ours:    %s\n  runtime: %s", len(frames), n, elided(d), frameList(frames), dumpFrameList(d.Frames))
	}
	for i := range d.Frames {
		j := i
		if d.ElidedFrames > 0 && i >= len(d.Frames)/2 {
			j = i + d.ElidedFrames
		}
		if frames[j].Function != d.Frames[i].Function || frames[j].Line != d.Frames[i].Line {
			return fmt.Sprintf("frame %d is %s:%d, runtime says %s:%d\n  ours:    %s\n  runtime: %s", j, frames[j].Function, frames[j].Line, d.Frames[i].Function, d.Frames[i].Line, frameList(frames), dumpFrameList(d.Frames))
		}
	}
	return ""
}

func elided(d *goroutinedump.Goroutine) string {
	if d.ElidedFrames != 0 {
		return " (then elided)"
	}
	return ""
}

func frameList(fs []snapshot.Frame) string {
	var s []string
	for _, f := range fs {
		s = append(s, fmt.Sprintf("%s:%d", f.Function, f.Line))
	}
	return strings.Join(s, " < ")
}

func dumpFrameList(fs []goroutinedump.Frame) string {
	var s []string
	for _, f := range fs {
		s = append(s, fmt.Sprintf("%s:%d", f.Function, f.Line))
	}
	return strings.Join(s, " < ")
}

// checkPopulation checks a snapshot against what the population target
// says it created: every goroutine of every group, with the group's state,
// pprof labels, thread lock and a frame of the group's function, and for
// channel waits the channel it is blocked on.
func checkPopulation(t *testing.T, tgt *targettest.Target, s *snapshot.Snapshot) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	pop, err := tgt.Population(ctx)
	if err != nil {
		t.Fatalf("population: %v", err)
	}
	byID := map[uint64]*snapshot.Goroutine{}
	for i := range s.Goroutines {
		byID[s.Goroutines[i].ID] = &s.Goroutines[i]
	}
	var bad []string
	for _, grp := range pop.Groups {
		chans := map[string]bool{}
		for _, id := range grp.IDs {
			g, ok := byID[id]
			if !ok {
				bad = append(bad, fmt.Sprintf("%s: goroutine %d missing", grp.Name, id))
				continue
			}
			got := string(g.State)
			if g.WaitReason != "" {
				got = g.WaitReason
			}
			statuses := grp.Statuses
			if len(statuses) == 0 {
				statuses = []string{grp.Status}
			}
			if !slicesContains(statuses, got) && !(got == "runnable" && slicesContains(statuses, "preempted")) {
				bad = append(bad, fmt.Sprintf("%s: goroutine %d is %q, want one of %q", grp.Name, id, got, statuses))
			}
			if !mapsEqual(g.Labels, grp.Labels) {
				bad = append(bad, fmt.Sprintf("%s: goroutine %d has labels %v, want %v", grp.Name, id, g.Labels, grp.Labels))
			}
			if g.LockedToThread != grp.LockedToThread {
				bad = append(bad, fmt.Sprintf("%s: goroutine %d locked to thread %v", grp.Name, id, g.LockedToThread))
			}
			if g.State != snapshot.StateRunning && !hasFunc(g.Frames, grp.Frame) {
				bad = append(bad, fmt.Sprintf("%s: goroutine %d has no frame %s: %s", grp.Name, id, grp.Frame, frameList(g.Frames)))
			}
			switch got {
			case "chan receive", "chan send", "select":
				b := g.BlockedOn
				if b == nil || b.Kind != snapshot.BlockedOnChan {
					bad = append(bad, fmt.Sprintf("%s: goroutine %d blocked on %+v, want a channel", grp.Name, id, b))
					continue
				}
				chans[b.Address] = true
				if got == "chan receive" && b.Receivers < 1 || got == "chan send" && b.Senders < 1 {
					bad = append(bad, fmt.Sprintf("%s: goroutine %d waits on channel %s with %d receivers and %d senders", grp.Name, id, b.Address, b.Receivers, b.Senders))
				}
				if grp.Name == "chan-send-full" && (b.Capacity == 0 || b.Length != b.Capacity) {
					bad = append(bad, fmt.Sprintf("%s: goroutine %d waits on channel with length %d of %d, want full", grp.Name, id, b.Length, b.Capacity))
				}
			case "sync.Mutex.Lock", "sync.RWMutex.RLock", "sync.RWMutex.Lock", "sync.WaitGroup.Wait", "semacquire":
				b := g.BlockedOn
				if b == nil || b.Kind != snapshot.BlockedOnSync || b.Address == "" {
					bad = append(bad, fmt.Sprintf("%s: goroutine %d blocked on %+v, want a semaphore address", grp.Name, id, b))
					continue
				}
				chans[b.Address] = true
			case "chan receive (nil chan)", "select (no cases)":
				if g.BlockedOn != nil {
					bad = append(bad, fmt.Sprintf("%s: goroutine %d blocked on %+v, want nothing", grp.Name, id, g.BlockedOn))
				}
			}
		}
		// A mutex group waits on one lock: one semaphore address.
		if grp.Name == "mutex-lock" && len(chans) != 1 {
			bad = append(bad, fmt.Sprintf("%s: goroutines wait on %d semaphores, want 1: %v", grp.Name, len(chans), chans))
		}
		// The groups that share one channel queue all their goroutines on it.
		if grp.Name == "chan-receive" && len(chans) == 1 {
			for _, id := range grp.IDs {
				if g := byID[id]; g != nil && g.BlockedOn != nil && g.BlockedOn.Receivers != len(grp.IDs) {
					bad = append(bad, fmt.Sprintf("%s: channel %s has %d receivers, want %d", grp.Name, g.BlockedOn.Address, g.BlockedOn.Receivers, len(grp.IDs)))
					break
				}
			}
		}
	}
	if len(bad) > 0 {
		t.Errorf("snapshot disagrees with the target's population:\n%s", strings.Join(bad, "\n"))
	}
}

func slicesContains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

func mapsEqual(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if bv, ok := b[k]; !ok || bv != v {
			return false
		}
	}
	return true
}

func hasFunc(frames []snapshot.Frame, fn string) bool {
	for _, f := range frames {
		if f.Function == fn {
			return true
		}
	}
	return false
}
