package scrape

import (
	"slices"
	"strings"
	"time"

	"github.com/goroscope/goroscope/pkg/goroutinedump"
	"github.com/goroscope/goroscope/pkg/snapshot"
)

// WalkerPprof is the Snapshot.Walker of snapshots parsed from a target's
// /debug/pprof/goroutine?debug=2 dump.
const WalkerPprof = "pprof"

// Snapshot converts a parsed goroutine dump into the snapshot model the
// eBPF and procmem walkers produce, so the same folds (pkg/fold) apply.
// What a dump cannot tell is left zero: PCs, blocked-on channels, the
// "observed" wait time; wait times come from the runtime's ", N minutes"
// field (a lower bound, WaitingSource "runtime"). Idle and dead goroutines
// (which dumps do not normally show) are left out, as walkers leave them
// out.
func Snapshot(gs []goroutinedump.Goroutine, at time.Time, took time.Duration) *snapshot.Snapshot {
	s := &snapshot.Snapshot{
		Time:       at,
		Walker:     WalkerPprof,
		Duration:   took,
		Goroutines: make([]snapshot.Goroutine, 0, len(gs)),
	}
	for i := range gs {
		g, ok := convertGoroutine(&gs[i])
		if !ok {
			continue
		}
		s.Counts.Add(g.State)
		s.Goroutines = append(s.Goroutines, g)
	}
	return s
}

// stateOf maps a dump header's status to a reported state and wait
// reason, as the runtime's goroutineheader prints them: a waiting (or
// leaked) goroutine shows its wait reason instead of "waiting".
func stateOf(d *goroutinedump.Goroutine) (snapshot.State, string, bool) {
	leaked := slices.Contains(d.Extra, "leaked")
	switch d.Status {
	case "running", "copystack":
		return snapshot.StateRunning, "", true
	case "runnable", "preempted":
		return snapshot.StateRunnable, "", true
	case "syscall":
		return snapshot.StateSyscall, "", true
	case "idle", "dead", "waiting for cgo callback", "???":
		return "", "", false
	case "waiting":
		if leaked {
			return snapshot.StateLeaked, "", true
		}
		return snapshot.StateWaiting, "", true
	case "leaked":
		return snapshot.StateLeaked, "", true
	}
	if leaked {
		return snapshot.StateLeaked, d.Status, true
	}
	return snapshot.StateWaiting, d.Status, true
}

func convertGoroutine(d *goroutinedump.Goroutine) (snapshot.Goroutine, bool) {
	st, reason, ok := stateOf(d)
	if !ok {
		return snapshot.Goroutine{}, false
	}
	g := snapshot.Goroutine{
		ID:             d.ID,
		State:          st,
		WaitReason:     reason,
		LockedToThread: d.LockedToThread,
		ParentID:       d.ParentID,
		Frames:         make([]snapshot.Frame, 0, len(d.Frames)),
		Truncated:      d.ElidedFrames != 0,
		Addr:           d.GAddr,
	}
	if d.WaitMinutes > 0 && (st == snapshot.StateWaiting || st == snapshot.StateSyscall || st == snapshot.StateLeaked) {
		g.WaitingSeconds, g.WaitingSource = float64(d.WaitMinutes)*60, snapshot.WaitRuntime
	}
	if len(d.Labels) > 0 {
		g.Labels = make(map[string]string, len(d.Labels))
		for k, v := range d.Labels {
			g.Labels[k] = v
		}
	}
	for i := range d.Frames {
		g.Frames = append(g.Frames, frame(&d.Frames[i]))
	}
	if d.CreatedBy != nil {
		f := frame(d.CreatedBy)
		g.CreatedBy = &f
	}
	// A dump shows system goroutines only at GOTRACEBACK=system; mark them
	// as the walkers do, by the function the goroutine started in.
	if d.ElidedFrames >= 0 {
		n := len(d.Frames)
		for n > 0 && d.Frames[n-1].Function == "runtime.goexit" {
			n--
		}
		if n > 0 {
			g.System = isSystemStart(d.Frames[n-1].Function)
		}
	}
	return g, true
}

func frame(f *goroutinedump.Frame) snapshot.Frame {
	return snapshot.Frame{
		Function: f.Function,
		File:     f.File,
		Line:     f.Line,
		Inlined:  f.Inlined,
		PC:       f.PC,
		Offset:   f.PCOffset,
	}
}

// isSystemStart reports whether a goroutine that started in fn is
// runtime-internal (the runtime's isSystemGoroutine, by start function).
func isSystemStart(fn string) bool {
	switch fn {
	case "runtime.main", "runtime.corostart", "runtime.handleAsyncEvent":
		return false
	}
	return strings.HasPrefix(fn, "runtime.")
}
