package cpu

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/goroscope/goroscope/bpf"
	"github.com/goroscope/goroscope/collect/process"
	"github.com/goroscope/goroscope/pkg/snapshot"
)

// Sampling frequencies, in samples per second of CPU time.
const (
	MinFrequency     = bpf.MinCPUFrequency
	MaxFrequency     = bpf.MaxCPUFrequency
	DefaultFrequency = bpf.DefaultCPUFrequency
)

// Options configures a Sampler.
type Options struct {
	// Frequency is the sampling rate in Hz, MinFrequency..MaxFrequency;
	// 0 means DefaultFrequency.
	Frequency int
	// KernelFrames adds the kernel stack (symbolised with /proc/kallsyms)
	// to samples taken while the CPU ran the kernel for the process.
	KernelFrames bool
	// MaxStacks and MaxCounts size the kernel maps of one interval (0:
	// the bpf package's defaults); samples beyond them are dropped and
	// counted in Interval.Dropped.
	MaxStacks, MaxCounts int
}

// Sampler samples, on every CPU, the goroutines on CPU of the processes
// added to it, and hands out per-process samples once per interval (Drain).
// Its methods are safe for concurrent use.
type Sampler struct {
	mu     sync.Mutex
	bs     *bpf.CPUSampler
	opts   Options
	procs  map[int]*proc
	ksyms  *kallsyms
	ksErr  error
	start  time.Time    // of the current interval
	stats  bpf.CPUStats // at the last Drain
	closed bool
}

// proc is one added process.
type proc struct {
	t       *process.Target
	sym     *symbolizer
	labels  *process.LabelReader
	cfg     bpf.CPUProcess
	removed bool // samples still to drain, then forgotten
}

// New loads the BPF sampler and starts sampling every CPU (no process yet).
// It needs root (or CAP_BPF and CAP_PERFMON) and Linux >= 5.18 with BTF.
func New(o Options) (*Sampler, error) {
	if o.Frequency == 0 {
		o.Frequency = DefaultFrequency
	}
	if o.Frequency < MinFrequency || o.Frequency > MaxFrequency {
		return nil, fmt.Errorf("CPU sampling frequency %d Hz: want %d..%d", o.Frequency, MinFrequency, MaxFrequency)
	}
	bs, err := bpf.LoadCPUSampler(bpf.CPUSamplerOptions{Frequency: o.Frequency, MaxStacks: o.MaxStacks, MaxCounts: o.MaxCounts})
	if err != nil {
		return nil, err
	}
	s := &Sampler{bs: bs, opts: o, procs: map[int]*proc{}, start: time.Now()}
	if o.KernelFrames {
		// Without symbols kernel frames are still counted, as "[kernel]".
		s.ksyms, s.ksErr = loadKallsyms()
	}
	return s, nil
}

// Frequency is the sampling rate in Hz.
func (s *Sampler) Frequency() int { return s.opts.Frequency }

// Period is the CPU time one sample stands for.
func (s *Sampler) Period() time.Duration { return time.Second / time.Duration(s.opts.Frequency) }

// KernelSymbolsError is why kernel frames are unnamed, or nil.
func (s *Sampler) KernelSymbolsError() error { return s.ksErr }

// Add starts sampling the process of t. The sampler reads t's executable
// until the Drain that follows Remove(t.PID): keep t open until then.
func (s *Sampler) Add(t *process.Target) error {
	cfg, err := processConfig(t, s.opts.KernelFrames)
	if err != nil {
		return fmt.Errorf("sample CPU of pid %d: %w", t.PID, err)
	}
	mem, err := process.NewMem(t.PID)
	if err != nil {
		return fmt.Errorf("sample CPU of pid %d: %w", t.PID, err)
	}
	p := &proc{
		t:      t,
		sym:    newSymbolizer(t.Bin, t.Bias, &mappings{pid: t.PID}),
		labels: process.NewLabelReader(mem, t.Layout),
		cfg:    cfg,
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return fmt.Errorf("sample CPU of pid %d: sampler is closed", t.PID)
	}
	if err := s.bs.Watch(uint32(t.PID), cfg); err != nil {
		return err
	}
	s.procs[t.PID] = p
	return nil
}

// Remove stops sampling pid. Its samples so far come with the next Drain.
func (s *Sampler) Remove(pid int) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	p, ok := s.procs[pid]
	if !ok || s.closed {
		return nil
	}
	p.removed = true
	return s.bs.Unwatch(uint32(pid))
}

// Drain ends the current interval and returns its samples, symbolised and
// with their labels, by process. Processes that exited during the interval
// keep the samples taken before they exited.
func (s *Sampler) Drain(ctx context.Context) (*Interval, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, errors.New("drain CPU samples: sampler is closed")
	}
	now := time.Now()
	iv := &Interval{
		Start: s.start, End: now,
		Frequency: s.opts.Frequency, Period: s.Period(),
		Processes: map[int]*Process{},
	}
	s.start = now
	for _, p := range s.procs {
		p.labels.Reset() // a label set's address may be reused after it is freed
	}
	var frames []snapshot.Frame
	n := 0
	_, err := s.bs.Drain(func(c *bpf.CPUSample) error {
		if n++; n%1024 == 0 {
			if err := ctx.Err(); err != nil {
				return err
			}
		}
		p := s.procs[int(c.PID)]
		if p == nil {
			return nil // sampled just before it was forgotten
		}
		out := iv.Processes[int(c.PID)]
		if out == nil {
			out = s.newProcess(p)
			iv.Processes[int(c.PID)] = out
		}
		frames = frames[:0]
		frames = s.kernelFrames(frames, c.Kernel)
		var truncated bool
		frames, truncated = p.sym.stack(frames, c)
		smp := Sample{
			Goid: c.Goid, Count: c.Count, Flags: c.Flags,
			Frames:    append([]snapshot.Frame(nil), frames...),
			Truncated: truncated || c.Flags&(bpf.SampleTruncated|bpf.SampleFault) != 0,
		}
		if c.Labels != 0 && !out.Exited {
			l, err := p.labels.Read(c.Labels)
			if err != nil {
				out.addError(fmt.Errorf("goroutine %d: %w", c.Goid, err))
			}
			smp.Labels = l
		}
		out.Samples = append(out.Samples, smp)
		out.Total += c.Count
		return nil
	})
	for pid, p := range s.procs {
		if p.removed {
			delete(s.procs, pid)
		}
	}
	if st, serr := s.bs.Stats(); serr == nil {
		iv.Dropped = (st.CountsFull + st.StacksFull + st.RegsFault) - (s.stats.CountsFull + s.stats.StacksFull + s.stats.RegsFault)
		s.stats = st
	}
	if err != nil {
		return iv, fmt.Errorf("drain CPU samples: %w", err)
	}
	return iv, nil
}

// newProcess starts the interval's record of p, noting whether it exited.
func (s *Sampler) newProcess(p *proc) *Process {
	out := &Process{PID: p.t.PID, Exe: p.t.Exe, GoVersion: p.t.Bin.GoVersion(), textLo: p.cfg.TextLo, textHi: p.cfg.TextHi, buildID: p.t.Bin.BuildID()}
	out.textOff, _ = p.t.Bin.FileOffset(p.cfg.TextLo - p.t.Bias)
	if err := p.t.Alive(); err != nil {
		out.Exited = true
		out.addError(fmt.Errorf("process exited before the drain, its labels were not read: %w", err))
	}
	return out
}

// kernelFrames appends the frames of kernel PCs (leaf first).
func (s *Sampler) kernelFrames(dst []snapshot.Frame, pcs []uint64) []snapshot.Frame {
	for i, pc := range pcs {
		sym := pc
		if i > 0 {
			sym-- // a return address
		}
		dst = append(dst, snapshot.Frame{Function: s.ksyms.name(sym), File: kernelFile, PC: pc})
	}
	return dst
}

// Stats returns the kernel side's cumulative counters.
func (s *Sampler) Stats() (bpf.CPUStats, error) { return s.bs.Stats() }

// ProgramStats returns the total run time and run count of the BPF program
// while kernel BPF statistics are on (bpf.EnableRunStats).
func (s *Sampler) ProgramStats() (time.Duration, uint64, error) { return s.bs.ProgramStats() }

// Close stops sampling; samples not drained are lost.
func (s *Sampler) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	return s.bs.Close()
}
