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
// The panic value is rendered as the runtime's printpanicval does for
// strings (and, since preprintpanics turns them into strings before
// fatalpanic runs, for error and Stringer values, runtime errors included)
// and for the basic types (bool, integers). Other values (floats, structs,
// named non-error types) are described by their kind only.
//
// amd64 only: the probe reads the register ABI's RAX/RBX/R14.
package panics

import (
	"fmt"
	"strconv"
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
		out.Value = panicValue(r, minor)
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
			if i > 0 && i != r.System {
				pc-- // a return address: the call is the instruction before
			}
			if i < r.System {
				out.SystemFrames = p.bin.Frames(pc, out.SystemFrames)
			} else {
				out.Frames = p.bin.Frames(pc, out.Frames)
			}
		}
	} else {
		out.Stack = r.Stack
	}
	return out
}

// abi.Kind values of the basic types printpanicval prints.
const (
	kindBool    = 1
	kindInt     = 2
	kindInt64   = 6
	kindUint    = 7
	kindUintptr = 12
	kindString  = 24
)

// panicValue renders the panic value as printpanicval does.
func panicValue(r bpf.PanicRecord, minor int) string {
	if r.ArgType == 0 {
		return "nil"
	}
	w := r.Words[0]
	switch k := r.TypeKind; {
	case k == kindString:
		s := string(r.Msg)
		if minor >= 23 { // printindented
			s = strings.ReplaceAll(s, "\n", "\n\t")
		}
		return s
	case k == kindBool:
		return strconv.FormatBool(w&0xff != 0)
	case k >= kindInt && k <= kindInt64:
		bits := [...]uint{64, 8, 16, 32, 64}[k-kindInt]
		v := int64(w<<(64-bits)) >> (64 - bits)
		return strconv.FormatInt(v, 10)
	case k >= kindUint && k <= kindUintptr:
		bits := [...]uint{64, 8, 16, 32, 64, 64}[k-kindUint]
		return strconv.FormatUint(w<<(64-bits)>>(64-bits), 10)
	}
	return fmt.Sprintf("(value of kind %d, type at %#x)", r.TypeKind, r.ArgType)
}
