package daemon

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/goroscope/goroscope/agent/bpfload"
	"github.com/goroscope/goroscope/collect/cpu"
)

// loadGrace is how long a stopping agent waits for a BPF load still in the
// kernel verifier, which nothing can interrupt; the process exit ends it.
const loadGrace = 2 * time.Second

// shutdownGrace is how long a stopping agent lets HTTP requests finish.
const shutdownGrace = 5 * time.Second

// Run serves HTTP and runs discovery and snapshots until ctx is done or one
// of them fails (serving, or the eBPF walker with --walker ebpf), then
// flushes and closes everything. It returns only once every goroutine it
// started has stopped, except the BPF loads: the kernel verifier cannot be
// interrupted, so Run waits at most loadGrace for them, and a value that
// arrives later is closed on arrival. The BPF objects load in the
// background: until the eBPF walker is ready procmem walks (--walker
// auto), and CPU sampling starts when its sampler is ready. Run may be
// called once.
func (a *Agent) Run(ctx context.Context) error {
	h, err := a.handler()
	if err != nil {
		return errors.Join(err, a.close())
	}
	servers := []*server{{addr: a.cfg.Listen, what: "--listen", h: h}}
	if a.cfg.HTTP.MetricsListen != "" {
		servers = append(servers, &server{addr: a.cfg.HTTP.MetricsListen, what: "http.metrics_listen", h: a.metricsHandler()})
	}
	for _, s := range servers {
		if s.ln, err = a.cfg.HTTP.listen(s.addr); err != nil {
			for _, o := range servers {
				if o.ln != nil {
					o.ln.Close()
				}
			}
			return errors.Join(fmt.Errorf("listen on %s: %w (set another address with %s)", s.addr, err, s.what), a.close())
		}
	}
	ln := servers[0].ln
	closeListeners := func() {
		for _, s := range servers {
			s.ln.Close()
		}
	}
	// Every goroutine below belongs to g: the first failure cancels ctx
	// for all, and g.Wait returns when all have returned.
	g, ctx := errgroup.WithContext(ctx)
	if err := a.walkers.Start(ctx, bpfload.WalkerObject(a.verdicts, a.loadWalker)); err != nil {
		closeListeners()
		return errors.Join(fmt.Errorf("--walker %s: %w", a.cfg.Walker, err), a.close())
	}
	if a.cfg.CPUFrequency != 0 {
		o := cpu.Options{Frequency: a.cfg.CPUFrequency, KernelFrames: a.cfg.CPUKernelFrames}
		a.cpuLoad = bpfload.CPUSamplerObject(a.verdicts, o, a.loadCPU).Start(ctx)
	}
	walker, reason := a.walkers.Status()
	a.log.Info("goroscope agent started", "ui", "http://"+ln.Addr().String()+"/", "data_dir", a.cfg.DataDir,
		"snapshot_interval", a.cfg.SnapshotInterval.String(), "walker", walker, "walker_reason", reason)

	if !isLoopback(a.cfg.Listen) && a.cfg.HTTP.BearerTokenFile == "" {
		a.log.Warn("the UI and API are served without authentication on a non-loopback address: any host that reaches it reads every watched process's stacks and labels; set http.bearer_token_file", "listen", a.cfg.Listen)
	}
	for _, s := range servers {
		s.srv = a.cfg.HTTP.newServer(s.h)
		g.Go(func() error { return errServe(s.addr, s.srv.Serve(s.ln)) })
	}
	g.Go(func() error {
		<-ctx.Done()
		a.log.Info("goroscope agent stopping")
		shutCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), shutdownGrace)
		defer cancel()
		for _, s := range servers {
			if err := s.srv.Shutdown(shutCtx); err != nil {
				a.log.Warn("HTTP connections still open at shutdown; closed", "addr", s.addr, "err", err)
			}
		}
		return nil
	})
	g.Go(func() error { a.push.run(ctx); return nil })
	if follow := a.startExits(ctx); follow != nil {
		g.Go(func() error { follow(); return nil })
	}
	g.Go(func() error { a.discoverLoop(ctx); return nil })
	g.Go(func() error { a.snapshotLoop(ctx); return nil })
	g.Go(func() error { return a.awaitWalker(ctx) })
	if a.cfg.CPUFrequency != 0 {
		g.Go(func() error { a.cpuLoop(ctx); return nil })
	}
	if s := a.scraper; s != nil {
		a.scraper = nil // the scrape loop owns it now: Scraper.Run closes it
		g.Go(func() error { a.runScraper(ctx, s); return nil })
	}
	err = g.Wait()
	a.waitLoads(loadGrace)
	return errors.Join(err, a.close())
}

// awaitWalker waits for the eBPF walker's load and says once how it went;
// its error stops the agent (--walker ebpf only).
func (a *Agent) awaitWalker(ctx context.Context) error {
	if a.cfg.Walker == "procmem" {
		return nil
	}
	start := time.Now()
	err := a.walkers.Await(ctx)
	switch {
	case err == nil:
		a.log.Info("eBPF goroutine walker ready; processes move to it at their next snapshot", "load", time.Since(start).Round(time.Millisecond).String())
		return nil
	case errors.Is(err, bpfload.ErrStillLoading):
		return nil // stopping
	case a.cfg.Walker == "ebpf":
		return fmt.Errorf("--walker ebpf: %w", err)
	}
	bpfload.LogFailure(ctx, a.log, slog.LevelInfo, "eBPF goroutine walker unavailable; procmem (process_vm_readv) serves", err)
	return nil
}

// waitLoads waits up to d for the BPF loads still in the kernel verifier,
// which cannot be interrupted; the process exit ends them.
func (a *Agent) waitLoads(d time.Duration) {
	var loads []<-chan struct{}
	if l := a.walkers.Loading(); l != nil {
		loads = append(loads, l.Done())
	}
	if a.cpuLoad != nil {
		loads = append(loads, a.cpuLoad.Done())
	}
	timer := time.NewTimer(d)
	defer timer.Stop()
	for _, done := range loads {
		select {
		case <-done:
		case <-timer.C:
			a.log.Info("stopping while the kernel still verifies a BPF program; the load ends with the process")
			return
		}
	}
}

// server is one of the agent's HTTP servers.
type server struct {
	addr, what string // the address and the setting that names it
	h          http.Handler
	ln         net.Listener
	srv        *http.Server
}
