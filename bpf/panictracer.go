//go:build linux

package bpf

import (
	"bytes"
	"cmp"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"structs"
	"sync"
	"time"

	"github.com/cilium/ebpf/link"
	"github.com/cilium/ebpf/ringbuf"
	"github.com/cilium/ebpf/rlimit"
)

// PanicKind says which runtime function a panic record comes from: enum
// panic_kind of panics.bpf.c.
type PanicKind = panicsPanicKind

// Panic kinds.
const (
	PanicKindPanic = panicsPanicKindPANIC_KIND_PANIC // runtime.fatalpanic: an unrecovered panic
	PanicKindFatal = panicsPanicKindPANIC_KIND_FATAL // runtime.fatal: a user-facing fatal error
	PanicKindThrow = panicsPanicKindPANIC_KIND_THROW // runtime.throw: an internal fatal error
)

// A panic's flags (enum panic_flag in panics.bpf.c).
const (
	panicFlagRecovered  = 1
	panicFlagGoexit     = 2
	panicFlagRepanicked = 4
)

// Indices of the panic probe's stats map (PSTAT_* in panics.bpf.c).
const (
	panicStatEvents = iota
	panicStatLost
	panicStatMax
)

// ErrPanicTracerClosed is what PanicTracer.Read returns once the tracer is closed.
var ErrPanicTracerClosed = errors.New("panic tracer closed")

// PanicProbe is one function of one executable to probe.
type PanicProbe struct {
	Kind PanicKind
	// FileOffset is the function's entry as an offset in the executable's
	// file (gobin.Binary.FileOffset of its pclntab entry).
	FileOffset uint64
	// Panic is the layout of runtime._panic (PanicKindPanic only):
	// PanicLayoutFor the executable's Go version.
	Panic PanicLayout
	// GoidOffset is the offset of goid in runtime.g (0: goids are not read).
	GoidOffset uint16
	// GOffM and GOffSched are the offsets of m and sched in runtime.g,
	// MOffCurg that of curg in runtime.m and GobufBP that of bp in a gobuf
	// (its pc follows its sp, as in Go 1.21–1.26): on g0 the probe reads
	// the goroutine the M was running from them (any 0: it does not).
	GOffM, GOffSched, MOffCurg, GobufBP uint8
}

// PanicLayout is where the probe finds a panic's value, its link to the
// older panic and its flags in a runtime._panic.
type PanicLayout struct {
	// Arg is the offset of arg (an eface): 0, 8, 16 or 24. link, the
	// *_panic of the older panic, follows it (at Arg+16), as in every Go
	// version since 1.21.
	Arg uint8
	// Recovered is the offset of the bool recovered (below 128; 0: the
	// flags are not read), Goexit that of goexit (Recovered+1 or +2) and
	// Repanicked that of repanicked (Recovered+1; 0: none, before Go 1.25).
	Recovered, Goexit, Repanicked uint8
}

// PanicLayoutFor is the runtime._panic layout of Go 1.minor (runtime2.go),
// for minor 21 and later (a later release than 1.26 is taken to keep 1.26's).
func PanicLayoutFor(minor int) PanicLayout {
	switch {
	case minor <= 21: // argp, arg, link, pc, sp, recovered, aborted, goexit
		return PanicLayout{Arg: 8, Recovered: 48, Goexit: 50}
	case minor <= 24: // argp, arg, link, startPC ... slotsPtr, recovered, goexit
		return PanicLayout{Arg: 8, Recovered: 96, Goexit: 97}
	case minor == 25: // ... recovered, repanicked, goexit
		return PanicLayout{Arg: 8, Recovered: 96, Repanicked: 97, Goexit: 98}
	default: // argp is gone
		return PanicLayout{Arg: 0, Recovered: 88, Repanicked: 89, Goexit: 90}
	}
}

// cookie encodes the layout in bits 4-15 of the attach cookie (see
// panics.bpf.c).
func (l PanicLayout) cookie() (uint64, error) {
	if l == (PanicLayout{}) {
		return 0, nil
	}
	c := uint64(l.Arg/8) << 4
	if l.Arg%8 != 0 || l.Arg > 24 {
		return 0, fmt.Errorf("panic layout %+v: arg at %d, not a word of the first four", l, l.Arg)
	}
	if l.Recovered == 0 {
		return c, nil
	}
	d := int(l.Goexit) - int(l.Recovered)
	if l.Recovered >= 128 || d < 1 || d > 2 {
		return 0, fmt.Errorf("panic layout %+v: recovered beyond 127 or goexit not 1 or 2 bytes after it", l)
	}
	c |= uint64(d)<<6 | uint64(l.Recovered)<<8
	switch l.Repanicked {
	case 0:
	case l.Recovered + 1:
		c |= 1 << 15
	default:
		return 0, fmt.Errorf("panic layout %+v: repanicked does not follow recovered", l)
	}
	return c, nil
}

// PanicValue is a panic's value and flags, as the probe read them from a
// runtime._panic as the process died.
type PanicValue struct {
	// ArgType and ArgData are the panic value's eface words; Words the 32
	// bytes at ArgData; TypeKind the value type's abi.Kind.
	ArgType, ArgData uint64
	Words            [4]uint64
	TypeKind         uint8
	// Msg is the start of the string of a value of kind string, MsgLen its
	// full length.
	Msg    []byte
	MsgLen uint64
	// Recovered, Goexit and Repanicked are the _panic's flags: recovered;
	// a runtime.Goexit, not a panic; its value was panicked again by the
	// next newer panic (set by preprintpanics, Go 1.25+).
	Recovered, Goexit, Repanicked bool
}

// PanicRecord is what the probe saw as a Go process started to die.
type PanicRecord struct {
	PID, TID uint32
	Time     time.Time
	Kind     PanicKind
	GoID     uint64
	// PanicValue is the newest panic's (fatalpanic's argument;
	// PanicKindPanic). For a fatal error, only Msg and MsgLen are set:
	// the message; and Chain holds the panics of the goroutine that
	// called runtime.fatal while panicking, newest first.
	PanicValue
	// Chain holds the older panics the newest one links to, newest first
	// (PanicKindPanic): each newer one was raised by a deferred call the
	// older one ran (a runtime.Goexit running deferred calls is in the
	// chain too, Goexit set); the runtime prints them before it. Up to 3
	// (their strings up to 256 bytes); ChainMore says there were more, or
	// one could not be read.
	Chain     []PanicValue
	ChainMore bool
	// Stack holds run-time program counters: the probed function's entry,
	// then return addresses (frame-pointer chain), innermost first.
	Stack []uint64
	// System says the first System entries of Stack are the system
	// stack's (g0's) and the rest the goroutine's the M was running, whose
	// id GoID then is; 0 when the probe fired on a goroutine's stack.
	System int
	// Above[i] is the stack word just above the frame record Stack[i]
	// was read from (0: none): the return address of a frameless
	// function that faulted, whose frame record sigpanic's is.
	Above []uint64
}

// PanicStats are the panic probe's cumulative counters.
type PanicStats struct {
	Events uint64 // records written
	Lost   uint64 // records lost to a full ring buffer
}

// PanicTracer holds the panic probe: one program and ring buffer, attached
// per executable and process with Attach. Attach, Stats and Close are safe
// for concurrent use; Read is for one goroutine at a time.
type PanicTracer struct {
	mu     sync.Mutex
	objs   panicsObjects
	rd     *ringbuf.Reader
	rec    ringbuf.Record
	closed bool
}

// PanicsObject is the panic probe's object (LoadPanicTracer).
func PanicsObject() Object { return objectOf("panics", _PanicsBytes) }

// LoadPanicTracer loads the panic probe. It needs root (or CAP_BPF and
// CAP_PERFMON) and x86-64. A failure to load is a *LoadError.
func LoadPanicTracer() (*PanicTracer, error) {
	if err := checkPrivileges("panic tracer"); err != nil {
		return nil, err
	}
	if err := rlimit.RemoveMemlock(); err != nil {
		return nil, fmt.Errorf("load panic tracer: raise RLIMIT_MEMLOCK: %w", err)
	}
	spec, err := loadPanics()
	if err != nil {
		return nil, fmt.Errorf("load panic tracer: parse embedded BPF object: %w", err)
	}
	t := &PanicTracer{}
	if err := spec.LoadAndAssign(&t.objs, loadOptions()); err != nil {
		return nil, explainLoadError("panic tracer", "uprobes with attach cookies and ring buffers", err)
	}
	if t.rd, err = ringbuf.NewReader(t.objs.PanicEvents); err != nil {
		_ = t.closeLocked()
		return nil, fmt.Errorf("load panic tracer: open ring buffer: %w", err)
	}
	return t, nil
}

// PanicProbes are the uprobes of one process; Close detaches them.
type PanicProbes struct {
	links []link.Link
}

// Close detaches the probes. Each detach waits for the kernel's uprobe
// unregistration (about 100-300 ms of wall time, little CPU, on Linux 6.18),
// so they are closed in parallel.
func (p *PanicProbes) Close() error {
	errs := make([]error, len(p.links))
	var wg sync.WaitGroup
	for i, l := range p.links {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = l.Close()
		}()
	}
	wg.Wait()
	p.links = nil
	return errors.Join(errs...)
}

// Attach puts the probes on executable exe, for process pid only (pid 0:
// every process running exe). On error, nothing stays attached.
func (t *PanicTracer) Attach(exe string, pid int, probes []PanicProbe) (*PanicProbes, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return nil, fmt.Errorf("attach panic probes to %s: %w", exe, ErrPanicTracerClosed)
	}
	ex, err := link.OpenExecutable(exe)
	if err != nil {
		return nil, fmt.Errorf("attach panic probes: %w", err)
	}
	p := &PanicProbes{}
	for _, pr := range probes {
		lay, err := pr.Panic.cookie()
		if err != nil || pr.Kind > 0xf {
			_ = p.Close()
			return nil, fmt.Errorf("attach panic probe (kind %d) to %s: %w", pr.Kind, exe, cmp.Or(err, errors.New("kind beyond 4 bits")))
		}
		cookie := uint64(pr.Kind)&0xf | lay | uint64(pr.GoidOffset)<<16 |
			uint64(pr.GOffM)<<32 | uint64(pr.GOffSched)<<40 | uint64(pr.MOffCurg)<<48 | uint64(pr.GobufBP)<<56
		l, err := ex.Uprobe("", t.objs.ProbePanic, &link.UprobeOptions{Address: pr.FileOffset, PID: pid, Cookie: cookie})
		if err != nil {
			_ = p.Close()
			return nil, fmt.Errorf("attach panic probe (kind %d) to %s at file offset %#x for pid %d: %w", pr.Kind, exe, pr.FileOffset, pid, err)
		}
		p.links = append(p.links, l)
	}
	return p, nil
}

// Read waits for the next record. It returns ErrPanicTracerClosed once the
// tracer is closed (which ends a waiting Read).
func (t *PanicTracer) Read() (PanicRecord, error) {
	var r PanicRecord
	if err := t.rd.ReadInto(&t.rec); err != nil {
		if errors.Is(err, ringbuf.ErrClosed) || errors.Is(err, os.ErrClosed) {
			return r, ErrPanicTracerClosed
		}
		return r, fmt.Errorf("read panic record: %w", err)
	}
	return decodePanicEvent(t.rec.RawSample)
}

// panicValueEvent is struct panic_value, as bpf2go generates it within
// panicsPanicEvent.
type panicValueEvent = struct {
	_         structs.HostLayout
	ArgType   uint64
	ArgData   uint64
	Words     [4]uint64
	TypeKind  uint32
	Flags     uint32
	MsgLen    uint64
	MsgCopied uint32
	Pad       uint32
}

func decodePanicValue(v *panicValueEvent, msg []byte) PanicValue {
	out := PanicValue{ArgType: v.ArgType, ArgData: v.ArgData, Words: v.Words, TypeKind: uint8(v.TypeKind), MsgLen: v.MsgLen,
		Recovered: v.Flags&panicFlagRecovered != 0, Goexit: v.Flags&panicFlagGoexit != 0, Repanicked: v.Flags&panicFlagRepanicked != 0}
	if n := int(v.MsgCopied); n > 0 && n <= len(msg) {
		out.Msg = append([]byte(nil), msg[:n]...)
	}
	return out
}

func decodePanicEvent(b []byte) (PanicRecord, error) {
	var ev panicsPanicEvent
	var r PanicRecord
	if err := binary.Read(bytes.NewReader(b), binary.LittleEndian, &ev); err != nil {
		return r, fmt.Errorf("read panic record (%d bytes): %w", len(b), err)
	}
	r = PanicRecord{
		PID: ev.Pid, TID: ev.Tid, Time: monotonicTime(ev.Ktime), Kind: ev.Kind, GoID: ev.Goid,
		PanicValue: decodePanicValue(&ev.Val, ev.Msg[:]),
	}
	if ev.Kind == PanicKindPanic || ev.Kind == PanicKindFatal {
		n := min(int(ev.Nlinks), len(ev.Links))
		for i := range n {
			r.Chain = append(r.Chain, decodePanicValue(&ev.Links[i].Val, ev.Links[i].Msg[:]))
		}
		r.ChainMore = ev.More != 0 || int(ev.Nlinks) > n
	}
	if n := int(ev.Nstack); n > 0 && n <= len(ev.Stack) {
		r.Stack = append([]uint64(nil), ev.Stack[:n]...)
		r.Above = append([]uint64(nil), ev.Above[:n]...)
		if s := int(ev.Nsystem); s > 0 && s < n {
			r.System = s
		}
	}
	return r, nil
}

// Stats sums the per-CPU counters since load.
func (t *PanicTracer) Stats() (PanicStats, error) {
	var st PanicStats
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return st, fmt.Errorf("read panic tracer stats: %w", ErrPanicTracerClosed)
	}
	vals, err := sumPerCPU(t.objs.PanicStats, panicStatMax)
	if err != nil {
		return st, fmt.Errorf("read panic tracer stats: %w", err)
	}
	return PanicStats{Events: vals[panicStatEvents], Lost: vals[panicStatLost]}, nil
}

// Close frees the program and maps (links of Attach stay until closed;
// the kernel keeps the program while they do); a waiting Read returns
// ErrPanicTracerClosed.
func (t *PanicTracer) Close() error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return nil
	}
	return t.closeLocked()
}

func (t *PanicTracer) closeLocked() error {
	t.closed = true
	var errs []error
	if t.rd != nil {
		errs = append(errs, t.rd.Close())
	}
	errs = append(errs, t.objs.Close())
	return errors.Join(errs...)
}
