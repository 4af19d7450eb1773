package main

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/goroscope/goroscope/collect/cpu"
	"github.com/goroscope/goroscope/pkg/fold"
	"github.com/goroscope/goroscope/pkg/store"
)

// cpuSampler is the agent's eBPF CPU sampler: it watches the processes
// discovery chose, is drained once per snapshot interval, and hands each
// process's samples to its next snapshot (process_cpu profile, running
// part of goroutine_wall).
type cpuSampler struct {
	s       *cpu.Sampler
	samples prometheus.Counter
	dropped prometheus.Counter
}

// openCPUSampler loads the sampler at freq Hz; nil (logged) when eBPF is
// not available: the agent runs without CPU profiles.
func (a *Agent) openCPUSampler() {
	if a.cfg.CPUFrequency == 0 {
		return
	}
	s, err := cpu.New(cpu.Options{Frequency: a.cfg.CPUFrequency, KernelFrames: a.cfg.CPUKernelFrames})
	if err != nil {
		a.log.Info("eBPF CPU sampling unavailable: no process_cpu profiles", "reason", err)
		return
	}
	c := &cpuSampler{
		s:       s,
		samples: prometheus.NewCounter(prometheus.CounterOpts{Name: "goroscope_cpu_samples_total", Help: "On-CPU samples of the watched processes."}),
		dropped: prometheus.NewCounter(prometheus.CounterOpts{Name: "goroscope_cpu_samples_dropped_total", Help: "On-CPU samples lost in the kernel (maps full, registers unreadable)."}),
	}
	a.metrics.reg.MustRegister(c.samples, c.dropped)
	a.cpu = c
}

// cpuWindow accumulates a process's CPU samples between its snapshots.
type cpuWindow struct {
	proc       *cpu.Process
	start, end time.Time
}

func (cw *cpuWindow) add(p *cpu.Process, start, end time.Time) {
	if cw.proc == nil {
		cp := *p
		cw.proc, cw.start = &cp, start
	} else {
		cw.proc.Samples = append(cw.proc.Samples, p.Samples...)
		cw.proc.Total += p.Total
	}
	cw.end = end
}

// cpuLoop drains the sampler every snapshot interval into each watched
// process's window; processes discovery dropped get their last profile
// here, and their targets may then be closed.
func (a *Agent) cpuLoop(ctx context.Context) {
	t := time.NewTicker(time.Duration(a.cfg.SnapshotInterval))
	defer t.Stop()
	var enc encoder
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		a.drainCPU(ctx, &enc)
	}
}

func (a *Agent) drainCPU(ctx context.Context, enc *encoder) {
	a.mu.Lock()
	pending := make(map[*watched]bool, len(a.retired))
	for _, w := range a.retired {
		pending[w] = true
	}
	a.mu.Unlock()
	iv, err := a.cpu.s.Drain(ctx)
	if err != nil {
		if ctx.Err() == nil {
			a.metrics.errors.WithLabelValues("cpu_drain").Inc()
			a.log.Warn("drain CPU samples", "err", err)
		}
		return
	}
	a.cpu.dropped.Add(float64(iv.Dropped))
	var gone []*watched
	a.mu.Lock()
	byPID := make(map[int]*watched, len(a.procs))
	for _, w := range a.procs {
		byPID[w.proc.PID] = w
	}
	for w := range pending {
		byPID[w.proc.PID] = w
	}
	for pid, p := range iv.Processes {
		a.cpu.samples.Add(float64(p.Total))
		if w := byPID[pid]; w != nil {
			w.cpuWin.add(p, iv.Start, iv.End)
		}
	}
	for w := range pending {
		w.cpuDrained = true
		gone = append(gone, w)
	}
	a.mu.Unlock()
	// A dropped process is snapshotted no more: its last samples go out now.
	for _, w := range gone {
		if o, ok := a.cpuOutput(enc, w); ok {
			a.record(o)
		}
	}
}

// takeCPU returns and resets w's CPU window, and whether the sampler
// watches w at all.
func (a *Agent) takeCPU(w *watched) (cpuWindow, bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	cw := w.cpuWin
	w.cpuWin = cpuWindow{}
	return cw, w.cpuWatched
}

// cpuOutput is the process_cpu profile of w's CPU window, if it has samples.
func (a *Agent) cpuOutput(enc *encoder, w *watched) (output, bool) {
	cw, _ := a.takeCPU(w)
	prof, ok := a.cpuProfile(enc, cw)
	if !ok {
		return output{}, false
	}
	return output{proc: w.storeProcess(), labels: w.labels(), at: cw.end, profiles: []encodedProfile{prof}}, true
}

// cpuProfile encodes a window's process_cpu profile.
func (a *Agent) cpuProfile(enc *encoder, cw cpuWindow) (encodedProfile, bool) {
	if cw.proc == nil || len(cw.proc.Samples) == 0 {
		return encodedProfile{}, false
	}
	d := cw.end.Sub(cw.start)
	p := cpu.BuildProfile(cw.proc, cw.start, d, a.cpu.s.Frequency())
	gz, err := enc.gzip("process_cpu profile", p.WriteUncompressed)
	if err != nil {
		a.metrics.errors.WithLabelValues("encode").Inc()
		a.log.Warn("encode CPU profile", "pid", cw.proc.PID, "err", err)
		return encodedProfile{}, false
	}
	return encodedProfile{name: store.KindCPU, data: gz, dur: d}, true
}

// onCPU turns a window's samples into the running part of goroutine_wall.
func (a *Agent) onCPU(cw cpuWindow) []fold.OnCPU {
	if cw.proc == nil {
		return []fold.OnCPU{}
	}
	period := int64(a.cpu.s.Period())
	out := make([]fold.OnCPU, 0, len(cw.proc.Samples))
	for _, s := range cw.proc.Samples {
		out = append(out, fold.OnCPU{Goid: s.Goid, Frames: s.Frames, Labels: s.Labels, Nanos: int64(s.Count) * period})
	}
	return out
}

// watchCPU adds a newly watched process to the sampler.
func (a *Agent) watchCPU(w *watched) {
	if a.cpu == nil {
		return
	}
	if err := a.cpu.s.Add(w.target); err != nil {
		a.metrics.errors.WithLabelValues("cpu_attach").Inc()
		a.log.Warn("cannot sample CPU of Go process", "pid", w.proc.PID, "err", err)
		return
	}
	w.cpuWatched = true
}
