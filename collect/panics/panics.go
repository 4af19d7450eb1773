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
	// "panic: VALUE" or "fatal error: MESSAGE" (without " [recovered]" and
	// the panics before the last one of a chain).
	Message string
	// Value is the panic value or fatal message as printed, without prefix.
	Value string
	// Truncated: the string was longer than the probe copies (1 KiB).
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
	switch r.Kind {
	case bpf.PanicKindPanic:
		out.Kind = KindPanic
		if p != nil {
			out.Value = p.panicValue(r)
		} else {
			out.Value = panicValue(r, minor)
		}
		out.Message = "panic: " + out.Value
	case bpf.PanicKindFatal, bpf.PanicKindThrow:
		out.Kind = KindFatal
		if r.Kind == bpf.PanicKindThrow {
			out.Kind = KindThrow
		}
		out.Value = string(r.Msg)
		out.Message = "fatal error: " + out.Value
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
