package daemon

import (
	"context"
	"errors"
	"time"

	"github.com/goroscope/goroscope/collect/discovery"
	"github.com/goroscope/goroscope/collect/process"
	"github.com/goroscope/goroscope/collect/walk"
	"github.com/goroscope/goroscope/pkg/findings"
	"github.com/goroscope/goroscope/pkg/store"
)

// discoverLoop rescans /proc on the discovery interval until ctx ends. It
// also hands the CPU sampler, once loaded, the processes watched so far:
// discovery adds the later ones.
func (a *Agent) discoverLoop(ctx context.Context) {
	a.logbook = newLogbook(a.log, a.boot)
	t := time.NewTicker(time.Duration(a.cfg.DiscoveryInterval))
	defer t.Stop()
	var cpuLoaded <-chan struct{}
	if a.cpuLoad != nil {
		cpuLoaded = a.cpuLoad.Done()
	}
	for {
		a.discover()
		a.probePanics(time.Now())
		select {
		case <-a.ready:
		default:
			close(a.ready)
		}
		select {
		case <-ctx.Done():
			a.logbook.flush(time.Now())
			return
		case <-t.C:
		case <-cpuLoaded:
			cpuLoaded = nil
			a.useCPUSampler(ctx)
		}
	}
}

// discover adds new Go processes, drops exited ones (and ones whose pid
// was reused: a new start time is a new process), and re-attaches those
// that exec'd another executable: exec keeps the pid and start time, but
// the program, its symbols and layout are new. A process it cannot attach
// to is tried again later (refusals), and counted once under
// errors_total{reason="attach"}. The logbook says what of it all is worth
// a line.
func (a *Agent) discover() {
	procs, err := a.scanner.Scan()
	if err != nil {
		a.log.Warn("discovery failed", "err", err)
		a.metrics.errors.WithLabelValues("discovery").Inc()
		return
	}
	seen := map[store.ProcessKey]bool{}
	interval := time.Duration(a.cfg.SnapshotInterval)
	now := time.Now()
	for _, p := range procs {
		k := store.ProcessKey{PID: p.PID, StartTime: p.StartTime}
		seen[k] = true
		a.mu.Lock()
		old, known := a.procs[k]
		if known && execed(old, p) {
			a.logbook.execed(old.proc, p)
			a.retire(old)
			delete(a.procs, k)
			known = false
		}
		// The CPU sampler tracks a pid once: the new program waits until
		// the old one's samples were drained (the next cycle or so).
		busy := !known && a.pidRetiring(p.PID)
		a.mu.Unlock()
		if known || busy || a.refusals.waiting(k, p.ExeID, now) {
			continue
		}
		a.mu.Lock()
		x, xk, err := a.exes.Acquire(p.PID)
		a.mu.Unlock()
		var t *process.Target
		if err == nil {
			if t, err = process.AttachExecutable(p.PID, x); err != nil {
				a.mu.Lock()
				a.exes.Release(xk)
				a.mu.Unlock()
			}
		}
		if err != nil {
			// Exited between scan and attach, unsupported, or not permitted:
			// count it and tell the logbook once per process, try again
			// later.
			if !errors.Is(err, process.ErrProcessGone) && a.refusals.add(k, p.ExeID, now, time.Duration(a.cfg.DiscoveryInterval)) {
				a.metrics.errors.WithLabelValues("attach").Inc()
				a.logbook.refused(p, err)
			}
			continue
		}
		delete(a.refusals, k)
		if min := a.cfg.Discovery.MinGoroutines; min > 0 {
			if n, err := walk.GoroutineCount(t); err != nil || n < min {
				t.Close()
				a.mu.Lock()
				a.exes.Release(xk)
				a.mu.Unlock()
				continue
			}
		}
		pw := &procWalker{w: a.walkers.Pick()}
		w := &watched{proc: p, target: t, exe: xk, snap: walk.NewSnapshotter(t, pw), walker: pw, every: 1}
		w.snap.KeepAtMost(a.cfg.Limits.MaxGoroutines)
		w.tracker = findings.NewTracker(a.cfg.Findings.forService(p.ServiceName))
		w.offset = jitter(p, interval)
		w.due = now.Truncate(interval).Add(w.offset)
		if w.due.Before(now) {
			w.due = w.due.Add(interval)
		}
		if c := a.cpu.Load(); c != nil {
			a.watchCPU(c, w)
		}
		a.mu.Lock()
		a.procs[k] = w
		a.watchExit(p, now)
		a.mu.Unlock()
		if len(p.Sanitized) > 0 {
			// The target chose names discovery had to cut or rewrite.
			a.metrics.errors.WithLabelValues("discovery_sanitized").Inc()
		}
		a.logbook.watching(p, w.snap.Walker)
	}
	a.mu.Lock()
	for k, w := range a.procs {
		if !seen[k] {
			a.retire(w)
			delete(a.procs, k)
		}
	}
	a.mu.Unlock()
	a.refusals.prune(seen)
	a.logbook.sweep(seen, now)
}

// execed reports whether the process discovery found runs another
// executable than w was attached to.
func execed(w *watched, p discovery.Process) bool {
	return !p.ExeID.IsZero() && !w.target.ExeID.IsZero() && p.ExeID != w.target.ExeID
}

// retire stops CPU sampling of w and hands it to the snapshot loop to
// close once its last samples are drained; a.mu held. The caller removes
// it from a.procs.
func (a *Agent) retire(w *watched) {
	a.push.Gone(w.storeProcess().Key(), time.Now())
	if w.cpuWatched {
		if err := a.cpu.Load().s.Remove(w.proc.PID); err != nil {
			a.log.Warn("could not stop CPU sampling of a gone process", "pid", w.proc.PID, "err", err)
		}
	}
	a.retired = append(a.retired, w)
}

// pidRetiring reports whether a retired process with this pid still waits
// for its CPU samples to be drained; a.mu held.
func (a *Agent) pidRetiring(pid int) bool {
	for _, w := range a.retired {
		if w.proc.PID == pid && w.cpuWatched && !w.cpuDrained {
			return true
		}
	}
	return false
}
