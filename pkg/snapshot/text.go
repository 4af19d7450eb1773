package snapshot

import (
	"bufio"
	"fmt"
	"io"
	"strings"
)

// TextOptions tune WriteText.
type TextOptions struct {
	// All prints system goroutines and every frame, as GOTRACEBACK=system does.
	All bool
}

// WriteText writes s in the form of runtime.Stack(all) and
// /debug/pprof/goroutine?debug=2: one block per goroutine, a header with
// state, wait reason and minutes waited, the frames leaf first with
// file:line (and +0xoffset for physical frames), and the creator. Like the
// runtime, it hides system goroutines and runtime-internal frames unless
// o.All is set. Argument values cannot be read from outside: they print as "...".
//
// The header follows the runtime's goroutineheader: a leaked goroutine
// (Go 1.26's leak detector) shows its wait reason (or "leaked") and
// " (leaked)", and ", N minutes" is printed for waiting goroutines and
// those in a system call only, N the whole minutes of WaitingSeconds
// (which, in a snapshot of one walk, comes from the runtime's own
// g.waitsince).
func WriteText(w io.Writer, s *Snapshot, o TextOptions) error {
	bw := bufio.NewWriter(w)
	n := 0
	for i := range s.Goroutines {
		g := &s.Goroutines[i]
		if g.System && !o.All {
			continue
		}
		if n > 0 {
			bw.WriteByte('\n')
		}
		n++
		writeGoroutine(bw, g, o)
	}
	return bw.Flush()
}

func writeGoroutine(w *bufio.Writer, g *Goroutine, o TextOptions) {
	status := string(g.State)
	if g.WaitReason != "" {
		status = g.WaitReason
	}
	fmt.Fprintf(w, "goroutine %d [%s", g.ID, status)
	if g.State == StateLeaked {
		w.WriteString(" (leaked)") // after "leaked" too, as the runtime does
	}
	if min := int(g.WaitingSeconds / 60); min >= 1 && (g.State == StateWaiting || g.State == StateSyscall) {
		fmt.Fprintf(w, ", %d minutes", min)
	}
	if g.LockedToThread {
		w.WriteString(", locked to thread")
	}
	w.WriteString("]:\n")
	if len(g.Labels) > 0 {
		fmt.Fprintf(w, "# labels: %s\n", FormatLabels(g.Labels))
	}
	frames := g.Frames
	if !o.All {
		frames = VisibleFrames(frames)
	}
	for _, f := range frames {
		fmt.Fprintf(w, "%s(...)\n\t%s:%d", f.Function, f.File, f.Line)
		if !f.Inlined && f.Offset > 0 {
			fmt.Fprintf(w, " +%#x", f.Offset)
		}
		w.WriteByte('\n')
	}
	if g.Truncated {
		w.WriteString("...additional frames elided...\n")
	}
	if c := g.CreatedBy; c != nil {
		fmt.Fprintf(w, "created by %s", c.Function)
		if g.ParentID != 0 {
			fmt.Fprintf(w, " in goroutine %d", g.ParentID)
		}
		fmt.Fprintf(w, "\n\t%s:%d", c.File, c.Line)
		if c.Offset > 0 {
			fmt.Fprintf(w, " +%#x", c.Offset)
		}
		w.WriteByte('\n')
	}
}

// FormatLabels renders labels as {"k":"v", ...} in key order, as pprof's
// debug=1 output does.
func FormatLabels(m map[string]string) string {
	keys := sortedKeys(m)
	var b strings.Builder
	b.WriteByte('{')
	for i, k := range keys {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "%q:%q", k, m[k])
	}
	b.WriteByte('}')
	return b.String()
}
