package goroutinedump

import (
	"slices"
	"strings"

	"github.com/goroscope/goroscope/pkg/snapshot"
)

// ToSnapshot converts parsed goroutines into the snapshot model the
// walkers produce, so the same folds (pkg/fold) and encoders apply. It
// fills dst.Goroutines (reusing its slice) and dst.Counts and leaves the
// other fields alone. What a dump cannot tell is left zero or differs from
// a walk:
//   - frames carry no PC (dumps print offsets), and a dump hides the
//     runtime's internal frames and, below GOTRACEBACK=system, its
//     goroutines; those it shows are marked System as walkers mark them;
//   - running goroutines get no stack, as in a walk (the one a dump shows
//     is the dumping goroutine's own);
//   - wait times come from the ", N minutes" field: a lower bound in whole
//     minutes (WaitingSource "runtime");
//   - pprof labels appear only with GODEBUG=tracebacklabels=1 (Go 1.26+);
//   - no blocked-on channels.
//
// Idle and dead goroutines, which walkers leave out, are left out. Label
// maps are shared with gs.
func ToSnapshot(dst *snapshot.Snapshot, gs []Goroutine) {
	dst.Goroutines = slices.Grow(dst.Goroutines[:0], len(gs))
	dst.Counts = snapshot.Counts{}
	for i := range gs {
		d := &gs[i]
		st, reason, ok := stateOf(d)
		if !ok {
			continue
		}
		g := snapshot.Goroutine{
			ID: d.ID, State: st, WaitReason: reason,
			LockedToThread: d.LockedToThread, ParentID: d.ParentID,
			Labels: d.Labels, Frames: []snapshot.Frame{}, Addr: d.GAddr,
		}
		if len(g.Labels) == 0 {
			g.Labels = nil
		}
		if d.WaitMinutes > 0 && (st == snapshot.StateWaiting || st == snapshot.StateSyscall || st == snapshot.StateLeaked) {
			g.WaitingSeconds, g.WaitingSource = float64(d.WaitMinutes)*60, snapshot.WaitRuntime
		}
		if st != snapshot.StateRunning {
			g.Frames = make([]snapshot.Frame, len(d.Frames))
			for j := range d.Frames {
				g.Frames[j] = toFrame(&d.Frames[j])
			}
			g.Truncated = d.ElidedFrames != 0
		}
		if d.CreatedBy != nil {
			f := toFrame(d.CreatedBy)
			g.CreatedBy = &f
		}
		// Mark system goroutines as the walkers do, by the function the
		// goroutine started in (the runtime's isSystemGoroutine).
		if d.ElidedFrames >= 0 {
			n := len(d.Frames)
			for n > 0 && d.Frames[n-1].Function == "runtime.goexit" {
				n--
			}
			if n > 0 {
				g.System = isSystemStart(d.Frames[n-1].Function)
			}
		}
		dst.Counts.Add(st)
		dst.Goroutines = append(dst.Goroutines, g)
	}
}

// stateOf maps a dump header's status to a reported state and wait reason,
// as the runtime's goroutineheader prints them: a waiting (or leaked)
// goroutine shows its wait reason instead of "waiting".
func stateOf(d *Goroutine) (snapshot.State, string, bool) {
	if slices.Contains(d.Extra, "leaked") {
		reason := d.Status
		if reason == "leaked" || reason == "waiting" {
			reason = ""
		}
		return snapshot.StateLeaked, reason, true
	}
	switch d.Status {
	case "running", "copystack":
		return snapshot.StateRunning, "", true
	case "runnable", "preempted":
		return snapshot.StateRunnable, "", true
	case "syscall":
		return snapshot.StateSyscall, "", true
	case "waiting":
		return snapshot.StateWaiting, "", true // _Gwaiting with no wait reason
	case "leaked":
		return snapshot.StateLeaked, "", true
	case "idle", "dead", "waiting for cgo callback", "???":
		return "", "", false
	}
	// Any other status is a wait reason the runtime printed in its place.
	return snapshot.StateWaiting, d.Status, true
}

func toFrame(f *Frame) snapshot.Frame {
	return snapshot.Frame{Function: f.Function, File: f.File, Line: f.Line, Inlined: f.Inlined, PC: f.PC, Offset: f.PCOffset}
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
