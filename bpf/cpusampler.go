//go:build linux

package bpf

import (
	"errors"
	"fmt"
	"io"
	"runtime"
	"sync"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/rlimit"
	"golang.org/x/sys/unix"
)

// Sampling frequencies a CPUSampler accepts, in samples per second of CPU time.
const (
	MinCPUFrequency     = 19
	MaxCPUFrequency     = 999
	DefaultCPUFrequency = 99
)

// Limits of a CPU sample (they match cpu.bpf.c).
const (
	MaxUserFrames   = 128 // user PCs per stack
	MaxKernelFrames = 32  // kernel PCs per stack
)

// Defaults of CPUSamplerOptions.
const (
	DefaultMaxStacks = 4096  // distinct stacks per interval (two maps of 1304-byte entries, preallocated: 11 MB)
	DefaultMaxCounts = 16384 // distinct {pid, goroutine, labels, stack} per interval
	maxMapEntries    = 1 << 20
	maxFieldOffset   = 4096 // bound on the runtime field offsets of a CPUProcess
)

// SampleFlags are the bits of CPUSample.Flags: enum sample_flag of
// cpu.bpf.c, as bpf2go generates it.
type SampleFlags = cpuSampleFlag

// Sample flags, set in CPUSample.Flags.
const (
	// SampleR14: the goroutine was found through the g register R14.
	SampleR14 = cpuSampleFlagSAMPLE_R14
	// SampleTLS: through the g the runtime keeps in thread-local storage
	// (R14 held no g: C, assembly, signal handler).
	SampleTLS = cpuSampleFlagSAMPLE_TLS
	// SampleSystem: the CPU ran on the thread's g0 (system) stack.
	SampleSystem = cpuSampleFlagSAMPLE_SYSTEM
	// SampleSwitched: User[NSys:] is the goroutine's own stack, from its
	// saved sched.pc/bp, after the system-stack frames User[:NSys].
	SampleSwitched = cpuSampleFlagSAMPLE_SWITCHED
	// SampleKernel: the CPU was in the kernel (Kernel holds its frames if
	// requested); User is the user stack at kernel entry.
	SampleKernel = cpuSampleFlagSAMPLE_KERNEL
	// SampleTruncated: the stack was deeper than MaxUserFrames.
	SampleTruncated = cpuSampleFlagSAMPLE_TRUNCATED
	// SampleFault: a frame could not be read; User holds the frames before it.
	SampleFault = cpuSampleFlagSAMPLE_FAULT
	// SampleNoStack: the sp was on neither the goroutine's nor g0's stack
	// (signal stack, C thread): the walk was bounded by a guess.
	SampleNoStack = cpuSampleFlagSAMPLE_NO_STACK
)

// Indices of the stats map (STAT_* in cpu.bpf.c).
const (
	statSamples = iota
	statNoG
	statCountsFull
	statStacksFull
	statRegsFault
	statMax
)

// flipGrace is how long Drain waits after switching buffers before reading
// the old one: a program that read the old generation finishes within
// microseconds (it runs in interrupt context).
const flipGrace = 2 * time.Millisecond

// batchSize is the number of elements read per map batch call.
const batchSize = 256

// CPUSamplerOptions configures LoadCPUSampler.
type CPUSamplerOptions struct {
	// Frequency is the sampling rate per CPU in Hz
	// (MinCPUFrequency..MaxCPUFrequency; 0 means DefaultCPUFrequency).
	Frequency int
	// MaxStacks and MaxCounts size the kernel maps of one interval (0:
	// defaults). Samples beyond them are dropped and counted in
	// CPUStats.StacksFull / CountsFull.
	MaxStacks, MaxCounts int
}

// CPUOffsets are byte offsets of runtime fields; -1 marks a field the
// runtime lacks (only Labels may).
type CPUOffsets struct {
	StackLo, StackHi          int32 // g.stack.lo, g.stack.hi
	M                         int32 // g.m
	SchedSP, SchedPC, SchedBP int32 // g.sched.sp, .pc, .bp
	Goid                      int32 // g.goid
	Labels                    int32 // g.labels
	MCurg, MG0                int32 // m.curg, m.g0
}

// CPUProcess is the per-process configuration of the sampler.
type CPUProcess struct {
	// TextLo and TextHi bound the Go text at run time (load bias applied).
	TextLo, TextHi uint64
	// TLSG is the offset from the thread's fsbase of the runtime's g slot
	// (-8 for most Go binaries); 0 disables the TLS fallback.
	TLSG int64
	Off  CPUOffsets
	// TrustR14 says the runtime keeps g in R14 (register ABI, Go >= 1.17).
	TrustR14 bool
	// KernelFrames records the kernel stack of samples taken in the kernel.
	KernelFrames bool
}

// CPUSample is one counted {process, goroutine, labels, stack} of an
// interval. Its slices alias the sampler's buffers: copy what you keep.
type CPUSample struct {
	PID    uint32
	Flags  SampleFlags // Sample* bits
	Goid   uint64      // 0: none (the scheduler, or no g found)
	Labels uint64      // the goroutine's g.labels pointer
	Count  uint64
	// User is leaf first: the interrupted pc, then return addresses.
	User []uint64
	// Kernel is leaf first; empty unless SampleKernel and KernelFrames.
	Kernel []uint64
	// Caller is the word at the sp when it was a Go text address: the
	// return address if the leaf function had not (yet) set up its frame.
	Caller uint64
	// NSys is how many of User ran on the system stack (with SampleSwitched).
	NSys int
}

// CPUStats are the sampler's cumulative counters.
type CPUStats struct {
	Samples    uint64 // samples of watched processes
	NoG        uint64 // samples where neither R14 nor TLS gave an m
	CountsFull uint64 // samples dropped: the counts map was full
	StacksFull uint64 // samples dropped: the stacks map was full
	RegsFault  uint64 // samples dropped: user registers unreadable
}

// DrainStats describes one Drain.
type DrainStats struct {
	Samples  uint64 // sum of the counts drained
	Counts   int    // distinct keys
	Stacks   int    // distinct stacks
	NoStacks uint64 // samples whose stack was missing from the stack map
}

// CPUSampler samples the user stacks of chosen processes on every online
// CPU with a CPU-clock perf event and counts them in kernel maps, in two
// buffers swapped by Drain. Its methods are safe for concurrent use.
type CPUSampler struct {
	mu     sync.Mutex
	objs   cpuObjects
	events []*cpuEvent
	freq   int
	gen    uint32
	closed bool
	// drain buffers, reused
	skeys  []uint64
	svals  []cpuCpuStack
	ckeys  []cpuCpuKey
	cvals  []uint64
	stacks map[uint64]int // stack key -> index in all
	all    []cpuCpuStack
}

// LoadCPUSampler loads the sampling program and attaches it to a CPU-clock
// event on every online CPU. It needs root (or CAP_BPF and CAP_PERFMON), an
// amd64 kernel with BTF and Linux >= 5.18. A failure to load the program is
// a *LoadError naming the cause in one line.
func LoadCPUSampler(o CPUSamplerOptions) (*CPUSampler, error) {
	if runtime.GOARCH != "amd64" {
		return nil, fmt.Errorf("load CPU sampler: only amd64 is supported, not %s", runtime.GOARCH)
	}
	freq := o.Frequency
	if freq == 0 {
		freq = DefaultCPUFrequency
	}
	if freq < MinCPUFrequency || freq > MaxCPUFrequency {
		return nil, fmt.Errorf("load CPU sampler: frequency %d Hz is outside %d..%d", freq, MinCPUFrequency, MaxCPUFrequency)
	}
	maxStacks, maxCounts := o.MaxStacks, o.MaxCounts
	if maxStacks == 0 {
		maxStacks = DefaultMaxStacks
	}
	if maxCounts == 0 {
		maxCounts = DefaultMaxCounts
	}
	if maxStacks < 1 || maxStacks > maxMapEntries || maxCounts < 1 || maxCounts > maxMapEntries {
		return nil, fmt.Errorf("load CPU sampler: MaxStacks %d and MaxCounts %d must be in 1..%d", maxStacks, maxCounts, maxMapEntries)
	}
	if err := checkPrivileges("CPU sampler"); err != nil {
		return nil, err
	}
	if err := rlimit.RemoveMemlock(); err != nil {
		return nil, fmt.Errorf("load CPU sampler: raise RLIMIT_MEMLOCK: %w", err)
	}
	cpus, err := onlineCPUs()
	if err != nil {
		return nil, fmt.Errorf("load CPU sampler: %w", err)
	}
	spec, err := loadCpu()
	if err != nil {
		return nil, fmt.Errorf("load CPU sampler: parse embedded BPF object: %w", err)
	}
	spec.Maps[cpuMapStacks0].MaxEntries = uint32(maxStacks)
	spec.Maps[cpuMapStacks1].MaxEntries = uint32(maxStacks)
	spec.Maps[cpuMapCounts0].MaxEntries = uint32(maxCounts)
	spec.Maps[cpuMapCounts1].MaxEntries = uint32(maxCounts)
	s := &CPUSampler{freq: freq, stacks: map[uint64]int{}}
	if err := spec.LoadAndAssign(&s.objs, loadOptions()); err != nil {
		return nil, explainLoadError("CPU sampler", "bpf_loop, bpf_task_pt_regs and BTF task access", err)
	}
	for _, cpu := range cpus {
		fd, err := openCPUClock(cpu, freq)
		if errors.Is(err, unix.ENODEV) {
			continue // went offline since the list was read
		}
		if err != nil {
			_ = s.closeLocked() // the load's error is the one to report
			return nil, fmt.Errorf("load CPU sampler: %w", err)
		}
		ev, err := attachPerfEvent(cpu, fd, s.objs.SampleCpu)
		if err != nil {
			unix.Close(fd)
			_ = s.closeLocked()
			return nil, fmt.Errorf("load CPU sampler: %w", err)
		}
		s.events = append(s.events, ev)
	}
	if len(s.events) == 0 {
		_ = s.closeLocked()
		return nil, fmt.Errorf("load CPU sampler: no online CPU among %v accepted a perf event", cpus)
	}
	return s, nil
}

// Frequency is the sampling rate in Hz.
func (s *CPUSampler) Frequency() int { return s.freq }

// CPUs is the number of CPUs sampled.
func (s *CPUSampler) CPUs() int { return len(s.events) }

// Watch starts sampling process pid (a thread group id in the initial pid
// namespace) with configuration p, or replaces its configuration.
func (s *CPUSampler) Watch(pid uint32, p CPUProcess) error {
	cfg, err := p.config()
	if err != nil {
		return fmt.Errorf("watch pid %d for CPU samples: %w", pid, err)
	}
	if pid == 0 {
		return errors.New("watch pid 0 for CPU samples: not a process")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return fmt.Errorf("watch pid %d for CPU samples: sampler is closed", pid)
	}
	if err := s.objs.Procs.Update(pid, &cfg, ebpf.UpdateAny); err != nil {
		return fmt.Errorf("watch pid %d for CPU samples: %w (more than %d processes?)", pid, err, s.objs.Procs.MaxEntries())
	}
	return nil
}

// Unwatch stops sampling pid. Samples already counted are still drained.
// Unwatching a pid not watched is not an error.
func (s *CPUSampler) Unwatch(pid uint32) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	if err := s.objs.Procs.Delete(pid); err != nil && !errors.Is(err, ebpf.ErrKeyNotExist) {
		return fmt.Errorf("unwatch pid %d: %w", pid, err)
	}
	return nil
}

// Drain ends the current interval: it switches the program to the other
// buffer, then passes every sample counted in the finished one to fn and
// empties it. No sample is lost between intervals. An error from fn stops
// the calls (the buffer is still emptied) and is returned.
func (s *CPUSampler) Drain(fn func(*CPUSample) error) (DrainStats, error) {
	var st DrainStats
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return st, errors.New("drain CPU samples: sampler is closed")
	}
	old := s.gen
	next := old ^ 1
	if err := s.objs.Gen.Update(uint32(0), next, ebpf.UpdateAny); err != nil {
		return st, fmt.Errorf("drain CPU samples: switch buffers: %w", err)
	}
	s.gen = next
	time.Sleep(flipGrace)

	countsMap, stacksMap := s.objs.Counts0, s.objs.Stacks0
	if old == 1 {
		countsMap, stacksMap = s.objs.Counts1, s.objs.Stacks1
	}
	clear(s.stacks)
	s.all = s.all[:0]
	if s.skeys == nil {
		s.skeys, s.svals = make([]uint64, batchSize), make([]cpuCpuStack, batchSize)
		s.ckeys, s.cvals = make([]cpuCpuKey, batchSize), make([]uint64, batchSize)
	}
	err := drainMap(stacksMap, s.skeys, s.svals, func(k uint64, v *cpuCpuStack) error {
		s.stacks[k] = len(s.all)
		s.all = append(s.all, *v)
		return nil
	})
	if err != nil {
		return st, fmt.Errorf("drain CPU samples: read stacks: %w", err)
	}
	st.Stacks = len(s.all)
	var fnErr error
	var smp CPUSample
	err = drainMap(countsMap, s.ckeys, s.cvals, func(k cpuCpuKey, v *uint64) error {
		st.Counts++
		st.Samples += *v
		i, ok := s.stacks[k.Stack]
		if !ok {
			st.NoStacks += *v
			return nil
		}
		if fnErr != nil {
			return nil
		}
		stk := &s.all[i]
		nu, nk := min(int(stk.Nuser), MaxUserFrames), min(int(stk.Nkern), MaxKernelFrames)
		smp = CPUSample{
			PID: k.Pid, Flags: k.Flags, Goid: k.Goid, Labels: k.Labels, Count: *v,
			User: stk.User[:nu], Kernel: stk.Kern[:nk], Caller: stk.Caller,
			NSys: min(int(stk.Nsys), nu),
		}
		fnErr = fn(&smp)
		return nil
	})
	if err != nil {
		return st, fmt.Errorf("drain CPU samples: read counts: %w", err)
	}
	return st, fnErr
}

// drainMap reads and deletes every element of m in batches, falling back
// to iteration on kernels without batch operations.
func drainMap[K comparable, V any](m *ebpf.Map, keys []K, vals []V, fn func(K, *V) error) error {
	var cursor ebpf.MapBatchCursor
	// Bounded: each round removes what it returns; the map holds at most
	// MaxEntries elements and the program no longer writes it.
	for round := 0; round <= int(m.MaxEntries())/len(keys)+2; round++ {
		n, err := m.BatchLookupAndDelete(&cursor, keys, vals, nil)
		for i := 0; i < n; i++ {
			if ferr := fn(keys[i], &vals[i]); ferr != nil {
				return ferr
			}
		}
		if errors.Is(err, ebpf.ErrKeyNotExist) {
			return nil
		}
		if errors.Is(err, ebpf.ErrNotSupported) || (errors.Is(err, unix.EINVAL) && round == 0 && n == 0) {
			return drainMapIter(m, fn)
		}
		if err != nil {
			return err
		}
	}
	return fmt.Errorf("map %s still not empty after %d batches", m, m.MaxEntries())
}

// drainMapIter is drainMap without batch operations.
func drainMapIter[K comparable, V any](m *ebpf.Map, fn func(K, *V) error) error {
	var k K
	var v V
	var keys []K
	it := m.Iterate()
	for it.Next(&k, &v) {
		keys = append(keys, k)
		if err := fn(k, &v); err != nil {
			return err
		}
	}
	if err := it.Err(); err != nil {
		return err
	}
	for _, k := range keys {
		if err := m.Delete(k); err != nil && !errors.Is(err, ebpf.ErrKeyNotExist) {
			return err
		}
	}
	return nil
}

// Stats sums the per-CPU counters since load.
func (s *CPUSampler) Stats() (CPUStats, error) {
	var st CPUStats
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return st, errors.New("read CPU sampler stats: sampler is closed")
	}
	vals, err := sumPerCPU(s.objs.Stats, statMax)
	if err != nil {
		return st, fmt.Errorf("read CPU sampler stats: %w", err)
	}
	st = CPUStats{
		Samples: vals[statSamples], NoG: vals[statNoG], CountsFull: vals[statCountsFull],
		StacksFull: vals[statStacksFull], RegsFault: vals[statRegsFault],
	}
	return st, nil
}

// Close detaches the program from every CPU and frees the maps. Samples not
// drained are lost.
func (s *CPUSampler) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	return s.closeLocked()
}

func (s *CPUSampler) closeLocked() error {
	s.closed = true
	var errs []error
	for _, ev := range s.events {
		errs = append(errs, ev.close())
	}
	s.events = nil
	errs = append(errs, s.objs.Close())
	return errors.Join(errs...)
}

// config validates p and converts it to the BPF cpu_proc.
func (p CPUProcess) config() (cpuCpuProc, error) {
	var c cpuCpuProc
	if p.TextLo == 0 || p.TextHi <= p.TextLo {
		return c, fmt.Errorf("text range [%#x, %#x) is empty", p.TextLo, p.TextHi)
	}
	o := p.Off
	for _, f := range []struct {
		name string
		off  int32
	}{
		{"StackLo", o.StackLo}, {"StackHi", o.StackHi}, {"M", o.M}, {"SchedSP", o.SchedSP},
		{"SchedPC", o.SchedPC}, {"SchedBP", o.SchedBP}, {"Goid", o.Goid}, {"MCurg", o.MCurg}, {"MG0", o.MG0},
	} {
		if f.off < 0 || f.off > maxFieldOffset {
			return c, fmt.Errorf("offset %s=%d is not in 0..%d", f.name, f.off, maxFieldOffset)
		}
	}
	if o.StackHi != o.StackLo+8 {
		return c, fmt.Errorf("g.stack.hi (%d) does not follow g.stack.lo (%d)", o.StackHi, o.StackLo)
	}
	if o.Labels < -1 || o.Labels > maxFieldOffset {
		return c, fmt.Errorf("offset Labels=%d is not in -1..%d", o.Labels, maxFieldOffset)
	}
	c = cpuCpuProc{
		TextLo: p.TextLo, TextHi: p.TextHi, TlsG: p.TLSG,
		OffStackLo: o.StackLo, OffStackHi: o.StackHi, OffM: o.M,
		OffSchedSp: o.SchedSP, OffSchedPc: o.SchedPC, OffSchedBp: o.SchedBP,
		OffGoid: o.Goid, OffLabels: o.Labels, OffM_curg: o.MCurg, OffM_g0: o.MG0,
	}
	if p.TrustR14 {
		c.Flags |= cpuProcFlagPROC_R14
	}
	if p.KernelFrames {
		c.Flags |= cpuProcFlagPROC_KERNEL
	}
	return c, nil
}

// ProgramStats returns how long the sampling program has run in the kernel
// in total and how often, while kernel BPF statistics are on (see
// EnableRunStats; the kernel counts nothing otherwise). The program runs
// on the sampled CPUs, in the context of whatever task was interrupted.
func (s *CPUSampler) ProgramStats() (time.Duration, uint64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return 0, 0, errors.New("read CPU sampler program stats: sampler is closed")
	}
	st, err := s.objs.SampleCpu.Stats()
	if err != nil {
		return 0, 0, fmt.Errorf("read CPU sampler program stats: %w", err)
	}
	return st.Runtime, st.RunCount, nil
}

// EnableRunStats turns on the kernel's run-time accounting of BPF programs
// (for ProgramStats) until the returned closer is closed. It costs a clock
// read per program run, so measurements only.
func EnableRunStats() (io.Closer, error) {
	c, err := ebpf.EnableStats(uint32(unix.BPF_STATS_RUN_TIME))
	if err != nil {
		return nil, fmt.Errorf("enable BPF run-time statistics: %w", err)
	}
	return c, nil
}
