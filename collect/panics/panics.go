//go:build linux

// Package panics reports how watched Go processes die of an unrecovered
// panic or a fatal runtime error, with the message as the runtime prints
// it and the dying goroutine's stack, seen from outside the process.
//
// A Tracer puts a uprobe (bpf.PanicTracer) on the entry of three runtime
// functions of each watched process's executable: runtime.fatalpanic (an
// unrecovered panic), runtime.fatal (user-facing fatal errors: "concurrent
// map writes", "all goroutines are asleep - deadlock!") and runtime.throw
// (internal fatal errors). The functions are found through the pclntab, so
// stripped binaries are covered, and the probes are filtered to the
// watched process. They run only as the process dies: nothing in steady
// state.
//
// A panic raised while panicking (by a deferred function, recovered or not,
// or after a runtime.Goexit) links to the older ones: the probe reads up to
// four of the chain, and the message holds their lines as printpanics prints
// them, oldest first: "panic: first [recovered]\n\tpanic: second", a
// Goexit left out, and since Go 1.25 a value panicked again after recover
// printed once, "[recovered, repanicked]".
//
// The panic value is rendered as the runtime's printpanicval prints it, for
// every Go version: strings (and, since preprintpanics turns them into
// strings before fatalpanic runs, error and Stringer values, runtime errors
// included), basic values, values of named basic types ("main.code(5)"), and
// other values as "(main.T) 0xc000012345", with the type's name read from
// the executable, never from the dying process (see value.go).
//
// amd64 only: the probe reads the register ABI's RAX/RBX/R14.
package panics

import (
	"strings"
	"time"

	"github.com/goroscope/goroscope/bpf"
	"github.com/goroscope/goroscope/pkg/gobin"
)

// Kind is which runtime path the process took.
type Kind string

// Kinds.
const (
	KindPanic Kind = "panic" // runtime.fatalpanic: an unrecovered panic
	KindFatal Kind = "fatal" // runtime.fatal: a user-facing fatal error
	KindThrow Kind = "throw" // runtime.throw: an internal fatal error
)

// Panic is one panic or fatal error of a watched process.
type Panic struct {
	PID  int
	Time time.Time
	Kind Kind
	// GoID is the goroutine that panicked or called fatal/throw (0: the
	// runtime's system goroutine, e.g. for a deadlock).
	GoID uint64
	// Message is the first line(s) of what the runtime prints on stderr:
	// "panic: VALUE" or "fatal error: MESSAGE"; for a chain of panics, a
	// line for each, the oldest first: "panic: first [recovered]\n\tpanic:
	// second" (printpanics).
	Message string
	// Value is the fatal message, or the value of the panic printed last
	// (the newest, or from Go 1.25 the one it panicked again after
	// recover), as printed, without prefix nor " [recovered]".
	Value string
	// Truncated: the message is not whole: a string was longer than the
	// probe copies (1 KiB, 256 bytes for an older panic of a chain), or
	// the chain of panics longer than it reads (4): the oldest are missing.
	Truncated bool
	// Stack holds link-time program counters (the load bias subtracted),
	// innermost first: the probed runtime function's entry, then return
	// addresses, from the frame-pointer chain.
	Stack []uint64
	// System says the first System entries of Stack are the system
	// stack's (g0's: a stack overflow, an out-of-memory) and the rest the
	// goroutine's the M was running, GoID; 0 when it died on its own stack.
	System int
	// SystemFrames are the system stack's entries symbolised; Frames the
	// goroutine's, as the runtime prints them under "goroutine N".
	SystemFrames []gobin.Frame
	// Frames are Stack symbolised with inlined calls expanded (nil when the
	// executable could no longer be read).
	Frames []gobin.Frame
}

// TopFunction is the first frame that is not the runtime's: where the
// panic or fatal error came from ("" when there is none).
func (p *Panic) TopFunction() string {
	for _, f := range p.Frames {
		if !strings.HasPrefix(f.Function, "runtime.") {
			return f.Function
		}
	}
	return ""
}

// render turns a probe record into a Panic.
func render(r bpf.PanicRecord, p *proc) Panic {
	out := Panic{PID: int(r.PID), Time: r.Time, GoID: r.GoID, Truncated: uint64(len(r.Msg)) < r.MsgLen}
	minor := 26
	if p != nil {
		minor = p.minor
	}
	value := func(v bpf.PanicValue) string {
		if p != nil {
			return p.panicValue(v)
		}
		return panicValue(v, minor)
	}
	switch r.Kind {
	case bpf.PanicKindPanic:
		out.Kind = KindPanic
		out.Message, out.Value = printPanics(r, minor, value)
		for _, l := range r.Chain {
			out.Truncated = out.Truncated || uint64(len(l.Msg)) < l.MsgLen
		}
		out.Truncated = out.Truncated || r.ChainMore
	case bpf.PanicKindFatal, bpf.PanicKindThrow:
		out.Kind = KindFatal
		if r.Kind == bpf.PanicKindThrow {
			out.Kind = KindThrow
		}
		out.Value = string(r.Msg)
		out.Message = "fatal error: " + out.Value
		if r.Kind == bpf.PanicKindFatal && minor >= 26 && len(r.Chain) > 0 {
			// printPreFatalDeferPanic: the goroutine's panics, not
			// converted by preprintpanics, then the fatal error.
			out.Message = preFatalPanics(r, minor, value) + "\n\t" + out.Message
			out.Truncated = out.Truncated || r.ChainMore
		}
	default:
		out.Kind = Kind("unknown")
	}
	if p != nil {
		out.Stack = make([]uint64, len(r.Stack))
		for i, pc := range r.Stack {
			out.Stack[i] = pc - p.bias
		}
		out.System = r.System
		for i, pc := range out.Stack {
			// A return address: the call is the instruction before; but
			// not the first of the goroutine's (its saved pc) nor one
			// sigpanic "returns" to (the faulting instruction itself).
			afterSigpanic := len(out.Frames) > 0 && out.Frames[len(out.Frames)-1].Function == "runtime.sigpanic"
			if i > 0 && i != r.System && !afterSigpanic {
				pc--
			}
			if i < r.System {
				out.SystemFrames = p.bin.Frames(pc, out.SystemFrames)
				continue
			}
			out.Frames = p.bin.Frames(pc, out.Frames)
			// A function without a frame (a small leaf) that faulted:
			// its return address is the word sigpanic's frame record
			// sits under, not in the frame-pointer chain.
			if afterSigpanic && i < len(r.Above) && r.Above[i] > p.bias {
				if d, err := p.bin.SPDelta(pc); err == nil && d == 0 {
					out.Frames = p.bin.Frames(r.Above[i]-p.bias-1, out.Frames)
				}
			}
		}
	} else {
		out.Stack = r.Stack
	}
	return out
}

// preFatalPanics is runtime.printPreFatalDeferPanic of Go 1.26+ for the
// panics r.Chain holds (newest first) of a goroutine that called
// runtime.fatal while panicking: a panic whose value is that of the next
// newer one is marked repanicked, then printpanics prints them.
func preFatalPanics(r bpf.PanicRecord, minor int, value func(bpf.PanicValue) string) string {
	ps := append([]bpf.PanicValue(nil), r.Chain...)
	for i := 0; i+1 < len(ps); i++ {
		if ps[i+1].ArgType == ps[i].ArgType && ps[i+1].ArgData == ps[i].ArgData {
			ps[i+1].Repanicked = true
		}
	}
	msg, _ := printPanics(bpf.PanicRecord{PanicValue: ps[0], Chain: ps[1:]}, minor, value)
	return msg
}

// printPanics is runtime.printpanics of Go 1.minor for the newest panic of r
// and the older ones it links to (those the probe read): the message, a
// line for each printed panic, the oldest first, and the value of the
// last one printed. value renders a panic's value.
//
// Of the chain, from the oldest: a Goexit prints nothing; a panic is
// "panic: VALUE", then " [recovered]" if it was recovered; each line after
// the first starts with a tab, but for one after a Goexit. Since Go 1.25
// preprintpanics marks repanicked a panic whose value is that of the next
// newer one, which is then not printed (nor are the newer ones), and the
// repanicked one ends with " [recovered, repanicked]" (Go 1.26: when it was
// recovered too).
func printPanics(r bpf.PanicRecord, minor int, value func(bpf.PanicValue) string) (message, last string) {
	// ps: newest first, each one's link the next.
	ps := append([]bpf.PanicValue{r.PanicValue}, r.Chain...)
	var b strings.Builder
	var printpanics func(i int) // of ps[i]
	printpanics = func(i int) {
		p := ps[i]
		if i+1 < len(ps) {
			l := ps[i+1]
			printpanics(i + 1)
			if minor >= 25 && l.Repanicked {
				return
			}
			if !l.Goexit {
				b.WriteString("\t")
			}
		}
		if p.Goexit {
			return
		}
		last = value(p)
		b.WriteString("panic: " + last)
		switch {
		case minor == 25 && p.Repanicked, minor >= 26 && p.Recovered && p.Repanicked:
			b.WriteString(" [recovered, repanicked]")
		case p.Recovered:
			b.WriteString(" [recovered]")
		}
		b.WriteString("\n")
	}
	printpanics(0)
	return strings.TrimSuffix(b.String(), "\n"), last
}
