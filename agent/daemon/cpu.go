package daemon

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/goroscope/goroscope/agent/bpfload"
	"github.com/goroscope/goroscope/collect/cpu"
	"github.com/goroscope/goroscope/collect/process"
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

// useCPUSampler takes the loaded sampler and watches the processes watched
// so far; when it did not load, the agent runs without CPU profiles (said
// once). Only the discovery loop calls it, once its load has ended.
func (a *Agent) useCPUSampler(ctx context.Context) {
	s, err := a.cpuLoad.Wait(ctx)
	if err != nil {
		a.mu.Lock()
		a.cpuReason = bpfload.Cause(err)
		a.mu.Unlock()
		bpfload.LogFailure(ctx, a.log, slog.LevelInfo, "eBPF CPU sampling unavailable: no process_cpu profiles", err)
		return
	}
	c := &cpuSampler{
		s:       s,
		samples: prometheus.NewCounter(prometheus.CounterOpts{Name: "goroscope_cpu_samples_total", Help: "On-CPU samples of the watched processes."}),
		dropped: prometheus.NewCounter(prometheus.CounterOpts{Name: "goroscope_cpu_samples_dropped_total", Help: "On-CPU samples lost in the kernel (maps full, registers unreadable)."}),
	}
	a.metrics.reg.MustRegister(c.samples, c.dropped)
	a.cpu.Store(c)
	a.mu.Lock()
	a.cpuReason = ""
	procs := make([]*watched, 0, len(a.procs))
	for _, w := range a.procs {
		procs = append(procs, w)
	}
	a.mu.Unlock()
	for _, w := range procs {
		a.watchCPU(c, w)
	}
	a.log.Info("eBPF CPU sampler ready", "hz", s.Frequency(), "processes", len(procs))
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
// process's window, until ctx ends; processes discovery dropped get their
// last profile here, and their targets may then be closed.
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
		if c := a.cpu.Load(); c != nil {
			a.drainCPU(ctx, c, &enc)
		}
	}
}

func (a *Agent) drainCPU(ctx context.Context, c *cpuSampler, enc *encoder) {
	a.mu.Lock()
	pending := make(map[*watched]bool, len(a.retired))
	for _, w := range a.retired {
		pending[w] = true
	}
	a.mu.Unlock()
	iv, err := c.s.Drain(ctx)
	if err != nil {
		if ctx.Err() == nil {
			a.metrics.errors.WithLabelValues("cpu_drain").Inc()
			a.log.Warn("drain CPU samples", "err", err)
		}
		return
	}
	c.dropped.Add(float64(iv.Dropped))
	var gone []*watched
	a.mu.Lock()
	// Samples go to the processes known now: one retired while the drain
	// ran has its samples in this interval too, and its window goes out
	// at the next drain.
	byPID := make(map[int]*watched, len(a.procs)+len(a.retired))
	for _, w := range a.procs {
		byPID[w.proc.PID] = w
	}
	for _, w := range a.retired {
		if w.cpuWatched && !w.cpuDrained {
			byPID[w.proc.PID] = w
		}
	}
	for pid, p := range iv.Processes {
		c.samples.Add(float64(p.Total))
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
			a.record(ctx, o)
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

// cpuOutput is the process_cpu profile of w's CPU window, if it has
// samples: the last samples of a process no longer snapshotted. Their
// pprof labels are bounded like every other profile's, by a limiter of
// their own (the process's own may still be in use by a last snapshot
// in the snapshot loop, and it is not safe for concurrent use).
func (a *Agent) cpuOutput(enc *encoder, w *watched) (Output, bool) {
	cw, _ := a.takeCPU(w)
	lim := fold.NewLabelLimiter(a.cfg.Limits.labelLimits())
	limitCPU(lim, cw)
	a.metrics.countLabelOverflows(w.proc.ServiceName, lim)
	prof, ok := a.cpuProfile(enc, cw)
	if !ok {
		return Output{}, false
	}
	return Output{Process: w.storeProcess(), Labels: w.labels(), Time: cw.end, Profiles: []Profile{prof}}, true
}

// cpuProfile encodes a window's process_cpu profile.
func (a *Agent) cpuProfile(enc *encoder, cw cpuWindow) (Profile, bool) {
	if cw.proc == nil || len(cw.proc.Samples) == 0 {
		return Profile{}, false
	}
	d := cw.end.Sub(cw.start)
	p := cpu.BuildProfile(cw.proc, cw.start, d, a.cpu.Load().s.Frequency())
	gz, err := enc.gzip("process_cpu profile", p.WriteUncompressed)
	if err != nil {
		a.metrics.errors.WithLabelValues("encode").Inc()
		a.log.Warn("encode CPU profile", "pid", cw.proc.PID, "err", err)
		return Profile{}, false
	}
	return Profile{Name: store.KindCPU, Data: gz, Duration: d}, true
}

// onCPU turns a window's samples into the running part of goroutine_wall.
func (a *Agent) onCPU(cw cpuWindow) []fold.OnCPU {
	if cw.proc == nil {
		return []fold.OnCPU{}
	}
	period := int64(a.cpu.Load().s.Period())
	out := make([]fold.OnCPU, 0, len(cw.proc.Samples))
	for _, s := range cw.proc.Samples {
		out = append(out, fold.OnCPU{Goid: s.Goid, Frames: s.Frames, Labels: s.Labels, Nanos: int64(s.Count) * period})
	}
	return out
}

// watchCPU adds a watched process to the sampler. Only the discovery loop
// calls it.
func (a *Agent) watchCPU(c *cpuSampler, w *watched) {
	if err := c.s.Add(w.target); err != nil {
		if errors.Is(err, process.ErrProcessGone) {
			return // discovery drops it at its next scan
		}
		a.metrics.errors.WithLabelValues("cpu_attach").Inc()
		a.log.Warn("cannot sample CPU of Go process", "pid", w.proc.PID, "err", err)
		return
	}
	a.mu.Lock() // the snapshot loop reads it
	w.cpuWatched = true
	a.mu.Unlock()
}
