package daemon

import (
	"context"
	"errors"
	"time"

	"github.com/goroscope/goroscope/collect/process"
	"github.com/goroscope/goroscope/collect/walk"
	"github.com/goroscope/goroscope/pkg/store"
)

// discoverLoop rescans /proc on the discovery interval until ctx ends. It
// also hands the CPU sampler, once loaded, the processes watched so far:
// discovery adds the later ones.
func (a *Agent) discoverLoop(ctx context.Context) {
	t := time.NewTicker(time.Duration(a.cfg.DiscoveryInterval))
	defer t.Stop()
	var cpuLoaded <-chan struct{}
	if a.cpuLoad != nil {
		cpuLoaded = a.cpuLoad.Done()
	}
	for {
		a.discover()
		select {
		case <-a.ready:
		default:
			close(a.ready)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-cpuLoaded:
			cpuLoaded = nil
			a.useCPUSampler(ctx)
		}
	}
}

// discover adds new Go processes, drops exited ones (and ones whose pid
// was reused: a new start time is a new process).
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
		_, known := a.procs[k]
		a.mu.Unlock()
		if known {
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
			// say so once per process, keep going.
			if !errors.Is(err, process.ErrProcessGone) {
				a.log.Warn("cannot watch Go process", "pid", p.PID, "exe", p.Exe, "err", err)
				a.metrics.errors.WithLabelValues("attach").Inc()
			}
			seen[k] = false
			continue
		}
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
		a.mu.Unlock()
		a.log.Info("watching Go process", "pid", p.PID, "service_name", p.ServiceName, "service_source", p.ServiceSource, "go", p.GoVersion, "exe", p.Exe, "walker", w.snap.Walker())
	}
	a.mu.Lock()
	for k, w := range a.procs {
		if !seen[k] {
			a.log.Info("Go process gone", "pid", k.PID, "service_name", w.proc.ServiceName)
			if w.cpuWatched {
				if err := a.cpu.Load().s.Remove(k.PID); err != nil {
					a.log.Warn("could not stop CPU sampling of a gone process", "pid", k.PID, "err", err)
				}
			}
			a.retired = append(a.retired, w)
			delete(a.procs, k)
		}
	}
	a.mu.Unlock()
}
