//go:build linux

package bpf

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
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
	// ArgOffset is the offset of arg in runtime._panic (PanicKindPanic
	// only): 8 before Go 1.26, 0 since.
	ArgOffset uint8
	// GoidOffset is the offset of goid in runtime.g (0: goids are not read).
	GoidOffset uint16
	// GOffM and GOffSched are the offsets of m and sched in runtime.g,
	// MOffCurg that of curg in runtime.m and GobufBP that of bp in a gobuf
	// (its pc follows its sp, as in Go 1.21–1.26): on g0 the probe reads
	// the goroutine the M was running from them (any 0: it does not).
	GOffM, GOffSched, MOffCurg, GobufBP uint8
}

// PanicRecord is what the probe saw as a Go process started to die.
type PanicRecord struct {
	PID, TID uint32
	Time     time.Time
	Kind     PanicKind
	GoID     uint64
	// ArgType and ArgData are the panic value's eface words; Words the 32
	// bytes at ArgData; TypeKind the value type's abi.Kind (PanicKindPanic).
	ArgType, ArgData uint64
	Words            [4]uint64
	TypeKind         uint8
	// Msg is the start of the string (the panic value of kind string, or
	// the fatal error's message) and MsgLen its full length.
	Msg    []byte
	MsgLen uint64
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
// unregistration (about 100 ms of wall time, little CPU, on Linux 6.18),
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
		cookie := uint64(pr.Kind)&0xff | uint64(pr.ArgOffset)<<8 | uint64(pr.GoidOffset)<<16 |
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

func decodePanicEvent(b []byte) (PanicRecord, error) {
	var ev panicsPanicEvent
	var r PanicRecord
	if err := binary.Read(bytes.NewReader(b), binary.LittleEndian, &ev); err != nil {
		return r, fmt.Errorf("read panic record (%d bytes): %w", len(b), err)
	}
	r = PanicRecord{
		PID: ev.Pid, TID: ev.Tid, Time: monotonicTime(ev.Ktime), Kind: ev.Kind, GoID: ev.Goid,
		ArgType: ev.ArgType, ArgData: ev.ArgData, Words: ev.Words, TypeKind: uint8(ev.TypeKind),
		MsgLen: ev.MsgLen,
	}
	if n := int(ev.MsgCopied); n > 0 && n <= len(ev.Msg) {
		r.Msg = append([]byte(nil), ev.Msg[:n]...)
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
