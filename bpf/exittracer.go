//go:build linux

package bpf

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"sync"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/btf"
	"github.com/cilium/ebpf/link"
	"github.com/cilium/ebpf/ringbuf"
	"github.com/cilium/ebpf/rlimit"
	"golang.org/x/sys/unix"
)

// DefaultExitWatchMax is how many processes an ExitTracer watches at most
// unless ExitTracerOptions says otherwise (WATCH_MAX in exits.bpf.c). An
// entry takes 12 bytes and the hash map is preallocated: 16384 entries
// cost under 1 MB of kernel memory.
const DefaultExitWatchMax = 16384

// ExitFlags are the bits of an exit record: enum exit_flag of exits.bpf.c.
type ExitFlags = exitsExitFlag

// Exit flags.
const (
	// ExitGroup: the kernel had marked the thread group as exiting
	// (SIGNAL_GROUP_EXIT) and the status is signal->group_exit_code.
	ExitGroup = exitsExitFlagEXIT_GROUP
	// ExitOOMVictim: the OOM killer chose the process (oom:mark_victim).
	ExitOOMVictim = exitsExitFlagEXIT_OOM_VICTIM
)

// Indices of the exit tracer's stats map (STAT_* in exits.bpf.c).
const (
	exitStatExits = iota
	exitStatLost
	exitStatOOMMarks
	exitStatMax
)

// userHZ is the kernel's USER_HZ, the unit of /proc/PID/stat's start time
// (clock ticks): 100 on every Linux architecture goroscope runs on.
const userHZ = 100

// ErrExitTracerClosed is what ExitTracer.Read returns once the tracer is closed.
var ErrExitTracerClosed = errors.New("exit tracer closed")

// ExitTracerOptions configures LoadExitTracer.
type ExitTracerOptions struct {
	// MaxProcesses bounds the processes watched at once (0:
	// DefaultExitWatchMax; at most 1<<20).
	MaxProcesses int
}

// ExitRecord is the exit of one watched process, as the kernel saw it when
// its last thread exited.
type ExitRecord struct {
	// PID is the thread group id in the initial pid namespace; TID the
	// thread that exited last.
	PID, TID uint32
	// StartBoottime is when the process started, in nanoseconds since boot
	// (task_struct.start_boottime of the group leader). StartTicks converts
	// it to /proc/PID/stat's unit.
	StartBoottime uint64
	// Time is when the last thread exited.
	Time time.Time
	// Status is what wait(2) returns to the parent: an exit code, or the
	// terminating signal and whether a core was dumped.
	Status unix.WaitStatus
	// Flags are Exit* bits: ExitGroup, ExitOOMVictim.
	Flags ExitFlags
}

// StartTicks is the process's start time in clock ticks since boot, as
// field 22 of /proc/PID/stat gives it (collect/process.StartTime).
func (r *ExitRecord) StartTicks() uint64 { return r.StartBoottime / (1e9 / userHZ) }

// ExitStats are the exit tracer's cumulative counters.
type ExitStats struct {
	Exits    uint64 // exit records written
	Lost     uint64 // exit records lost to a full ring buffer
	OOMMarks uint64 // watched processes the OOM killer chose
}

// ExitTracer reports how watched processes end: it traces
// sched_process_exit (every exiting thread on the host, filtered in the
// kernel to the watched processes, reported once per process when its
// last thread exits) and oom:mark_victim. Watch, Unwatch, Stats and Close
// are safe for concurrent use; Read is for one goroutine at a time.
type ExitTracer struct {
	mu        sync.Mutex
	objs      exitsObjects
	links     []link.Link
	rd        *ringbuf.Reader
	rec       ringbuf.Record
	oomHooked bool
	oomErr    error
	closed    bool
}

// ExitsObject is the exit tracer's object (LoadExitTracer).
func ExitsObject() Object { return objectOf("exits", _ExitsBytes) }

// LoadExitTracer loads the exit tracer and attaches it. It needs root (or
// CAP_BPF and CAP_PERFMON) and a kernel with BTF (tp_btf programs, Linux
// >= 5.5; ring buffers, 5.8). A failure to load is a *LoadError. A kernel
// without the oom:mark_victim tracepoint still gets a tracer, without
// OOM victims (OOMHooked says why).
func LoadExitTracer(o ExitTracerOptions) (*ExitTracer, error) {
	n := o.MaxProcesses
	if n == 0 {
		n = DefaultExitWatchMax
	}
	if n < 1 || n > maxMapEntries {
		return nil, fmt.Errorf("load exit tracer: MaxProcesses %d is not in 1..%d", n, maxMapEntries)
	}
	if err := checkPrivileges("exit tracer"); err != nil {
		return nil, err
	}
	if err := rlimit.RemoveMemlock(); err != nil {
		return nil, fmt.Errorf("load exit tracer: raise RLIMIT_MEMLOCK: %w", err)
	}
	spec, err := loadExits()
	if err != nil {
		return nil, fmt.Errorf("load exit tracer: parse embedded BPF object: %w", err)
	}
	spec.Maps[exitsMapWatch].MaxEntries = uint32(n)
	victimIsTask, oomErr := markVictimTakesTask()
	if err := spec.Variables[exitsVarVictimIsTask].Set(boolU32(victimIsTask)); err != nil {
		return nil, fmt.Errorf("load exit tracer: set victim_is_task: %w", err)
	}
	t := &ExitTracer{}
	if err := spec.LoadAndAssign(&t.objs, loadOptions()); err != nil {
		return nil, explainLoadError("exit tracer", "BTF-typed tracepoints (tp_btf) and ring buffers", err)
	}
	l, err := link.AttachTracing(link.TracingOptions{Program: t.objs.TraceExit, AttachType: ebpf.AttachTraceRawTp})
	if err != nil {
		_ = t.closeLocked() // the attach error is the one to report
		return nil, fmt.Errorf("load exit tracer: attach to sched_process_exit: %w", err)
	}
	t.links = append(t.links, l)
	if oomErr == nil {
		l, err := link.AttachRawTracepoint(link.RawTracepointOptions{Name: "mark_victim", Program: t.objs.TraceOomVictim})
		if err != nil {
			oomErr = fmt.Errorf("attach to oom:mark_victim: %w", err)
		} else {
			t.links = append(t.links, l)
		}
	}
	t.oomHooked, t.oomErr = oomErr == nil, oomErr
	if t.rd, err = ringbuf.NewReader(t.objs.ExitEvents); err != nil {
		_ = t.closeLocked()
		return nil, fmt.Errorf("load exit tracer: open ring buffer: %w", err)
	}
	return t, nil
}

// markVictimTakesTask reads the kernel's BTF for the prototype of the
// oom:mark_victim tracepoint: (int pid) before Linux 6.8, (struct
// task_struct *, uid_t) since. An error means the tracepoint is not there.
func markVictimTakesTask() (bool, error) {
	spec, err := btf.LoadKernelSpec()
	if err != nil {
		return false, fmt.Errorf("read kernel BTF for oom:mark_victim: %w", err)
	}
	var td *btf.Typedef
	if err := spec.TypeByName("btf_trace_mark_victim", &td); err != nil {
		return false, fmt.Errorf("oom:mark_victim tracepoint not in kernel BTF: %w", err)
	}
	ptr, ok := td.Type.(*btf.Pointer)
	proto, ok2 := (*btf.FuncProto)(nil), false
	if ok {
		proto, ok2 = ptr.Target.(*btf.FuncProto)
	}
	// The first parameter is the tracepoint's data pointer (void *).
	if !ok2 || len(proto.Params) < 2 {
		return false, fmt.Errorf("oom:mark_victim: unexpected prototype %v", td.Type)
	}
	switch a := btf.UnderlyingType(proto.Params[1].Type).(type) {
	case *btf.Pointer:
		return true, nil
	case *btf.Int:
		return false, nil
	default:
		return false, fmt.Errorf("oom:mark_victim: unexpected argument type %v", a)
	}
}

func boolU32(b bool) uint32 {
	if b {
		return 1
	}
	return 0
}

// OOMHooked reports whether oom:mark_victim is traced, and if not, why:
// without it, exit records never carry ExitOOMVictim.
func (t *ExitTracer) OOMHooked() (bool, error) { return t.oomHooked, t.oomErr }

// Watch starts watching process pid (a thread group id in the initial pid
// namespace). Watching a watched pid again is no error (and forgets an OOM
// mark). The kernel reports the process's exit once, then forgets the pid.
func (t *ExitTracer) Watch(pid uint32) error {
	if pid == 0 {
		return errors.New("watch pid 0 for its exit: not a process")
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return fmt.Errorf("watch pid %d for its exit: %w", pid, ErrExitTracerClosed)
	}
	if err := t.objs.Watch.Update(pid, exitsExitWatch{}, ebpf.UpdateAny); err != nil {
		return fmt.Errorf("watch pid %d for its exit: %w (more than %d processes?)", pid, err, t.objs.Watch.MaxEntries())
	}
	return nil
}

// Unwatch stops watching pid. It reports whether pid was still watched:
// false when the kernel has already taken it out to report its exit (a
// record is on its way) or it was never watched. Since the kernel and
// Unwatch both remove the pid, and only one removal succeeds, a caller
// that sees true knows that no record of pid's exit will come.
func (t *ExitTracer) Unwatch(pid uint32) (bool, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return false, nil
	}
	err := t.objs.Watch.Delete(pid)
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, ebpf.ErrKeyNotExist):
		return false, nil
	}
	return false, fmt.Errorf("unwatch pid %d: %w", pid, err)
}

// Read waits for the next exit record. It returns ErrExitTracerClosed once
// the tracer is closed (which ends a waiting Read).
func (t *ExitTracer) Read() (ExitRecord, error) {
	var r ExitRecord
	if err := t.rd.ReadInto(&t.rec); err != nil {
		if errors.Is(err, ringbuf.ErrClosed) || errors.Is(err, os.ErrClosed) {
			return r, ErrExitTracerClosed
		}
		return r, fmt.Errorf("read exit record: %w", err)
	}
	ev, err := decodeExitEvent(t.rec.RawSample)
	if err != nil {
		return r, err
	}
	r = ExitRecord{
		PID: ev.Pid, TID: ev.Tid, StartBoottime: ev.StartBoottime,
		Time: monotonicTime(ev.Ktime), Status: unix.WaitStatus(ev.Status), Flags: ev.Flags,
	}
	return r, nil
}

// exitEventSize is the size of struct exit_event.
const exitEventSize = 32

// decodeExitEvent reads a struct exit_event from a ring buffer sample.
func decodeExitEvent(b []byte) (exitsExitEvent, error) {
	var ev exitsExitEvent
	if len(b) < exitEventSize {
		return ev, fmt.Errorf("read exit record: %d bytes, want %d", len(b), exitEventSize)
	}
	le := binary.LittleEndian
	ev.Ktime, ev.StartBoottime = le.Uint64(b[0:]), le.Uint64(b[8:])
	ev.Pid, ev.Tid, ev.Status = le.Uint32(b[16:]), le.Uint32(b[20:]), le.Uint32(b[24:])
	ev.Flags = exitsExitFlag(le.Uint32(b[28:]))
	return ev, nil
}

// monotonicTime converts a CLOCK_MONOTONIC reading (bpf_ktime_get_ns) to
// wall-clock time.
func monotonicTime(ns uint64) time.Time {
	var ts unix.Timespec
	now := time.Now()
	if err := unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts); err != nil {
		return now
	}
	return now.Add(-time.Duration(uint64(ts.Nano()) - ns))
}

// Stats sums the per-CPU counters since load.
func (t *ExitTracer) Stats() (ExitStats, error) {
	var st ExitStats
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return st, fmt.Errorf("read exit tracer stats: %w", ErrExitTracerClosed)
	}
	vals, err := sumPerCPU(t.objs.ExitStats, exitStatMax)
	if err != nil {
		return st, fmt.Errorf("read exit tracer stats: %w", err)
	}
	return ExitStats{Exits: vals[exitStatExits], Lost: vals[exitStatLost], OOMMarks: vals[exitStatOOMMarks]}, nil
}

// ProgramStats returns how long the sched_process_exit program has run in
// total and how often, while kernel BPF statistics are on (EnableRunStats).
// It runs for every thread that exits on the host.
func (t *ExitTracer) ProgramStats() (time.Duration, uint64, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return 0, 0, fmt.Errorf("read exit tracer program stats: %w", ErrExitTracerClosed)
	}
	st, err := t.objs.TraceExit.Stats()
	if err != nil {
		return 0, 0, fmt.Errorf("read exit tracer program stats: %w", err)
	}
	return st.Runtime, st.RunCount, nil
}

// Close detaches the programs and frees the maps; a waiting Read returns
// ErrExitTracerClosed.
func (t *ExitTracer) Close() error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return nil
	}
	return t.closeLocked()
}

func (t *ExitTracer) closeLocked() error {
	t.closed = true
	var errs []error
	for _, l := range t.links {
		errs = append(errs, l.Close())
	}
	t.links = nil
	if t.rd != nil {
		errs = append(errs, t.rd.Close())
	}
	errs = append(errs, t.objs.Close())
	return errors.Join(errs...)
}
