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
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/goroscope/goroscope/bpf"
	"github.com/goroscope/goroscope/pkg/gobin"
	"github.com/goroscope/goroscope/pkg/golayout"
)

// Kind is which runtime path the process took.
type Kind string

// Kinds.
const (
	KindPanic Kind = "panic" // runtime.fatalpanic: an unrecovered panic
	KindFatal Kind = "fatal" // runtime.fatal: a user-facing fatal error
	KindThrow Kind = "throw" // runtime.throw: an internal fatal error
)

// closeDelay is how long a detached process's executable stays open, for
// records still in the ring buffer to be symbolised.
const closeDelay = 10 * time.Second

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

type proc struct {
	bin    *gobin.Binary
	bias   uint64
	minor  int
	probes *bpf.PanicProbes
}

// Tracer watches processes for their panics. Attach, Detach and Close are
// safe for concurrent use.
type Tracer struct {
	bt    *bpf.PanicTracer
	out   chan Panic
	done  chan struct{} // closed when run has returned
	quit  chan struct{} // closed by Close
	once  sync.Once
	mu    sync.Mutex
	procs map[int]*proc
	gone  map[int]*proc  // detached, executable open for closeDelay
	unreg sync.WaitGroup // detaches in progress
}

// New loads the probe and starts delivering records on Records. It needs
// root (or CAP_BPF and CAP_PERFMON).
func New() (*Tracer, error) {
	bt, err := bpf.LoadPanicTracer()
	if err != nil {
		return nil, err
	}
	t := &Tracer{bt: bt, out: make(chan Panic, 64), done: make(chan struct{}), quit: make(chan struct{}), procs: map[int]*proc{}, gone: map[int]*proc{}}
	go t.run()
	return t, nil
}

// Records delivers a Panic per probe hit; it is closed after Close. A
// slow reader loses nothing until the ring buffer (256 KiB, about 200
// records) is full.
func (t *Tracer) Records() <-chan Panic { return t.out }

// probeFuncs are the probed functions.
var probeFuncs = []struct {
	name string
	kind bpf.PanicKind
}{
	{"runtime.fatalpanic", bpf.PanicKindPanic},
	{"runtime.fatal", bpf.PanicKindFatal},
	{"runtime.throw", bpf.PanicKindThrow},
}

// Attach watches process pid (a Go program): its executable's runtime
// fatal paths get a probe for that process. Attaching an attached pid
// again is no error.
func (t *Tracer) Attach(pid int) error {
	t.mu.Lock()
	_, ok := t.procs[pid]
	t.mu.Unlock()
	if ok {
		return nil
	}
	bin, err := gobin.OpenProcess(pid)
	if err != nil {
		return fmt.Errorf("watch pid %d for panics: %w", pid, err)
	}
	p, err := t.attach(pid, bin)
	if err != nil {
		_ = bin.Close()
		return fmt.Errorf("watch pid %d for panics: %w", pid, err)
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	_, ok = t.procs[pid]
	closed := false
	select {
	case <-t.quit:
		closed = true
	default:
	}
	if ok || closed { // a concurrent Attach won, or Close came
		_ = p.probes.Close()
		_ = bin.Close()
		if closed {
			return fmt.Errorf("watch pid %d for panics: %w", pid, bpf.ErrPanicTracerClosed)
		}
		return nil
	}
	t.procs[pid] = p
	return nil
}

func (t *Tracer) attach(pid int, bin *gobin.Binary) (*proc, error) {
	v, err := golayout.ParseVersion(bin.GoVersion())
	if err != nil {
		return nil, err
	}
	if v.Major != 1 || v.Minor < 21 {
		return nil, fmt.Errorf("%s: Go %s is older than go1.21", bin.Name(), bin.GoVersion())
	}
	lay, err := golayout.ForVersion(bin.GoVersion())
	if err != nil {
		exe := fmt.Sprintf("/proc/%d/exe", pid)
		if lay, err = golayout.ForBinary(exe); err != nil {
			return nil, err
		}
	}
	bias, err := bin.LoadBias(pid)
	if err != nil {
		return nil, err
	}
	var argOff uint8 = 8 // _panic.argp comes first before Go 1.26
	if v.Minor >= 26 {
		argOff = 0
	}
	var probes []bpf.PanicProbe
	for _, f := range probeFuncs {
		fn, ok := bin.FuncByName(f.name)
		if !ok {
			return nil, fmt.Errorf("%s: no function %s in the pclntab", bin.Name(), f.name)
		}
		off, ok := bin.FileOffset(fn.Entry)
		if !ok {
			return nil, fmt.Errorf("%s: %s at %#x is not in a loaded segment", bin.Name(), f.name, fn.Entry)
		}
		probes = append(probes, bpf.PanicProbe{Kind: f.kind, FileOffset: off, ArgOffset: argOff, GoidOffset: uint16(lay.G.Goid)})
	}
	pp, err := t.bt.Attach(fmt.Sprintf("/proc/%d/exe", pid), pid, probes)
	if err != nil {
		return nil, err
	}
	return &proc{bin: bin, bias: bias, minor: v.Minor, probes: pp}, nil
}

// Detach stops watching pid. It does not wait for the kernel to remove the
// probes (that takes ~100 ms of wall time); the executable stays open a
// little longer, for records still on their way.
func (t *Tracer) Detach(pid int) {
	t.mu.Lock()
	p, ok := t.procs[pid]
	delete(t.procs, pid)
	if ok {
		if old := t.gone[pid]; old != nil {
			_ = old.bin.Close()
		}
		t.gone[pid] = p
	}
	t.mu.Unlock()
	if !ok {
		return
	}
	t.unreg.Add(1)
	go func() {
		defer t.unreg.Done()
		_ = p.probes.Close()
	}()
	time.AfterFunc(closeDelay, func() {
		t.mu.Lock()
		if t.gone[pid] == p {
			delete(t.gone, pid)
		}
		t.mu.Unlock()
		_ = p.bin.Close()
	})
}

// Stats are the probe's counters.
func (t *Tracer) Stats() (bpf.PanicStats, error) { return t.bt.Stats() }

// Close detaches every process and unloads the probe; Records is closed.
// Records not yet received are dropped.
func (t *Tracer) Close() error {
	first := false
	t.once.Do(func() { first = true; close(t.quit) })
	if !first {
		<-t.done
		return nil
	}
	t.mu.Lock()
	procs := t.procs
	t.procs = map[int]*proc{}
	t.mu.Unlock()
	// Detached processes' executables close on their timers (a closed
	// Binary is safe to use: it yields no frames).
	var errs []error
	for _, p := range procs {
		errs = append(errs, p.probes.Close())
	}
	t.unreg.Wait()
	errs = append(errs, t.bt.Close())
	<-t.done
	for _, p := range procs {
		errs = append(errs, p.bin.Close())
	}
	return errors.Join(errs...)
}

func (t *Tracer) run() {
	defer close(t.done)
	defer close(t.out)
	for {
		r, err := t.bt.Read()
		if errors.Is(err, bpf.ErrPanicTracerClosed) {
			return
		}
		if err != nil {
			continue
		}
		t.mu.Lock()
		p := t.procs[int(r.PID)]
		if p == nil {
			p = t.gone[int(r.PID)]
		}
		t.mu.Unlock()
		select {
		case t.out <- render(r, p):
		case <-t.quit:
			return
		}
	}
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
		for i, pc := range out.Stack {
			if i > 0 {
				pc-- // a return address: the call is the instruction before
			}
			out.Frames = p.bin.Frames(pc, out.Frames)
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
