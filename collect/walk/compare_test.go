package walk_test

import (
	"context"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

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
		for _, opts := range []targettest.BuildOpts{
			{GoVersion: ver},
			{GoVersion: ver, Stripped: true},
		} {
			name := fmt.Sprintf("%s/stripped=%v", displayVersion(ver), opts.Stripped)
			t.Run(name, func(t *testing.T) {
				bin := targettest.Build(t, "population", opts)
				tgt := targettest.Start(t, bin)
				for _, w := range walkers {
					t.Run(w.Name(), func(t *testing.T) {
						matched, total := compareOnce(t, tgt, w)
						stats.add("%-28s %-8s %4d/%-4d", name, w.Name(), matched, total)
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
	at, err := walk.Attach(tgt.PID)
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

func compareOnce(t *testing.T, tgt *targettest.Target, w walk.Walker) (matched, total int) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	s1 := snap(t, tgt, w)
	dump, raw, err := tgt.Dump(ctx)
	if err != nil {
		t.Fatalf("runtime dump: %v", err)
	}
	s2 := snap(t, tgt, w)
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
			snapshot.WriteText(&b, s2, snapshot.TextOptions{All: true})
			t.Logf("runtime dump:\n%s\n\nsnapshot:\n%s", raw, b.String())
		}
	}
	return matched, total
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
