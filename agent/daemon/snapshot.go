package daemon

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/goroscope/goroscope/collect/process"
	"github.com/goroscope/goroscope/collect/walk"
	"github.com/goroscope/goroscope/pkg/findings"
	"github.com/goroscope/goroscope/pkg/fold"
	"github.com/goroscope/goroscope/pkg/store"
)

// snapshotOne takes one process through the pipeline: walk it, fold the
// snapshot (with its CPU window, when sampled), and hand the output to the
// sink. It returns how long the walk took.
func (a *Agent) snapshotOne(ctx context.Context, w *watched, now time.Time) time.Duration {
	wk := a.walkers.Pick()
	if wk == nil {
		// --walker ebpf, still loading: nothing walks yet.
		a.metrics.skipped.WithLabelValues("walker_loading").Inc()
		return 0
	}
	w.walker.use(wk)
	start := time.Now()
	s, err := w.snap.Snapshot(ctx)
	took := time.Since(start)
	w.lastTook = took
	walker := w.snap.Walker()
	a.metrics.duration.WithLabelValues(walker).Observe(took.Seconds())
	if err != nil {
		if ctx.Err() != nil {
			return took
		}
		// A walk that failed on a process that exec'd read another
		// program with the old one's layout: say why, once a cycle at
		// most, until discovery re-attaches it.
		if !errors.Is(err, process.ErrProcessGone) {
			if ierr := w.target.Intact(); errors.Is(ierr, process.ErrExeced) {
				err = fmt.Errorf("%w (%v)", ierr, err)
			}
		}
		reason := "walk"
		switch {
		case errors.Is(err, process.ErrExeced):
			// Dropped: taken across an exec, it would name the new
			// program's functions with the old one's symbols.
			reason = "exec"
		case errors.Is(err, process.ErrProcessGone):
			reason = "process_gone"
		case errors.Is(err, walk.ErrLayoutMismatch):
			reason = "layout_mismatch"
		}
		a.metrics.errors.WithLabelValues(reason).Inc()
		a.mu.Lock()
		w.lastErr = err.Error()
		w.failures++
		a.mu.Unlock()
		if reason != "process_gone" && reason != "exec" && w.failures <= 3 {
			a.log.Warn("snapshot failed", "pid", w.proc.PID, "service_name", w.proc.ServiceName, "err", err)
		}
		return took
	}
	interval := time.Duration(a.cfg.SnapshotInterval) * time.Duration(w.every)
	if !w.lastAt.IsZero() {
		interval = s.Time.Sub(w.lastAt)
	}
	var onCPU []fold.OnCPU
	var cpuProf Profile
	var haveCPU bool
	lim := a.limiterOf(w)
	if cw, watched := a.takeCPU(w); watched {
		limitCPU(lim, cw)
		onCPU = a.onCPU(cw)
		cpuProf, haveCPU = a.cpuProfile(&a.enc, cw)
	}
	// The runtime health: read when its cost budget allows, its newest
	// read's series and findings go with every snapshot.
	fresh := a.readHealth(w, took, s.Time)
	o, err := foldSnapshot(&a.enc, &a.snapBuf, w.storeProcess(), w.labels(), s, interval, onCPU, lim, fold.ExecutableOf(w.target.Exe, w.target.Bin, w.target.Bias))
	a.metrics.countLabelOverflows(w.proc.ServiceName, lim)
	if haveCPU {
		o.Profiles = append(o.Profiles, cpuProf)
	}
	var rtFindings []findings.Finding
	if w.health != nil {
		o.Series = append(o.Series, w.health.series...)
		if fresh {
			addHealthSummary(o.Summary, w.health.series)
		}
		rtFindings = w.health.findings
	}
	fs, ferr := a.addFindings(&o, &a.enc, w.tracker, s, rtFindings)
	err = errors.Join(err, ferr)
	w.said = a.sayFindings(w.said, fs, "pid", w.proc.PID, "service_name", w.proc.ServiceName)
	if err != nil {
		a.metrics.errors.WithLabelValues("encode").Inc()
		a.log.Warn("encode snapshot", "pid", w.proc.PID, "err", err)
	}
	a.mu.Lock()
	w.lastAt, w.series, w.counts, w.lastErr, w.failures = s.Time, o.Series, s.Counts, "", 0
	w.findings = fs
	a.mu.Unlock()
	a.metrics.snapshots.WithLabelValues(walker).Inc()
	if s.Stride > 1 {
		a.metrics.sampled.WithLabelValues(w.proc.ServiceName).Inc()
		if !w.sampledSaid {
			w.sampledSaid = true
			a.log.Info("snapshots of this process keep one goroutine in k (limits.max_goroutines); profiles count each k times, counts stay exact",
				"pid", w.proc.PID, "service_name", w.proc.ServiceName, "goroutines", s.Counts.Total(), "k", s.Stride, "max_goroutines", a.cfg.Limits.MaxGoroutines)
		}
	}
	a.record(ctx, o)
	return took
}

// limiterOf returns the label limiter of w, made on its first snapshot.
// Making one drops those of the processes no longer watched. Only the
// snapshot loop calls it.
func (a *Agent) limiterOf(w *watched) *fold.LabelLimiter {
	key := w.storeProcess().Key()
	a.mu.Lock()
	defer a.mu.Unlock()
	if l, ok := a.labelLimits[key]; ok {
		return l
	}
	if a.labelLimits == nil {
		a.labelLimits = map[store.ProcessKey]*fold.LabelLimiter{}
	}
	for k := range a.labelLimits {
		if _, ok := a.procs[k]; !ok {
			delete(a.labelLimits, k)
		}
	}
	l := fold.NewLabelLimiter(a.cfg.Limits.labelLimits())
	a.labelLimits[key] = l
	return l
}

// limitCPU bounds the pprof labels of a CPU window's samples with lim, in
// place (the window is the caller's), for both the process_cpu profile and
// the on-CPU part of goroutine_wall; the fold passes them on unchanged and
// uncounted.
func limitCPU(lim *fold.LabelLimiter, cw cpuWindow) {
	if cw.proc == nil {
		return
	}
	for i := range cw.proc.Samples {
		cw.proc.Samples[i].Labels = lim.Labels(cw.proc.Samples[i].Labels)
	}
}
