package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/goroscope/goroscope/agent/ui"
	"github.com/goroscope/goroscope/collect/cpu"
	"github.com/goroscope/goroscope/collect/discovery"
	"github.com/goroscope/goroscope/collect/process"
	"github.com/goroscope/goroscope/collect/scrape"
	"github.com/goroscope/goroscope/collect/walk"
	"github.com/goroscope/goroscope/pkg/fold"
	"github.com/goroscope/goroscope/pkg/store"
)

// Agent watches the Go processes of the host: discovery finds them, the
// scheduler snapshots each on the cadence, fold turns snapshots into
// profiles and series, and sinks (the local store; later push endpoints)
// take the results.
type Agent struct {
	cfg Config
	log *slog.Logger
	// walkers serve the walks; Run starts the eBPF walker's load.
	walkers *walkers
	// verdicts remembers the BPF objects this kernel rejected.
	verdicts *verdicts
	// loadWalker and loadCPU load the BPF objects, which Run starts in the
	// background: the kernel may take long to verify them. Tests replace
	// them before Run.
	loadWalker func(context.Context) (ebpfWalker, error)
	loadCPU    func(context.Context, cpu.Options) (*cpu.Sampler, error)
	// cpuLoad is the CPU sampler's load (nil when sampling is off).
	cpuLoad *bpfLoad[*cpu.Sampler]
	scanner *discovery.Scanner
	store   *store.Store
	metrics *selfMetrics
	push    *pushers
	// enc and snapBuf are the snapshot loop's reused encoding buffers.
	enc     encoder
	snapBuf []byte
	// cpu samples the watched processes on CPU once loaded (nil when
	// disabled, loading or without eBPF); set once, by the discovery loop.
	cpu atomic.Pointer[cpuSampler]
	// cpuReason is why CPU sampling is not on ("loading", "off", the
	// load's failure); a.mu.
	cpuReason string
	// scraper collects from pprof endpoints (nil with no targets).
	scraper *scrape.Scraper

	mu    sync.Mutex
	procs map[store.ProcessKey]*watched
	exes  executables
	// retired are processes discovery dropped; the snapshot loop closes
	// them, since it may be walking one at that moment.
	retired []*watched
	// ready is closed after the first discovery scan.
	ready chan struct{}
}

// NewAgent opens the agent's resources: the store, the metrics and the
// push endpoints; the BPF objects load when Run starts. Errors name the
// setting to change.
func NewAgent(cfg Config, log *slog.Logger) (*Agent, error) {
	ws, err := newWalkers(cfg.Walker)
	if err != nil {
		return nil, err
	}
	v := newVerdicts(verdictsPath(cfg.DataDir), log)
	if cfg.Walker == "ebpf" {
		// Known to fail: say so now, not after the first scan.
		if err := walkerObject(v, nil).cached(); err != nil {
			return nil, fmt.Errorf("--walker ebpf: %w", err)
		}
	}
	st, err := store.Open(cfg.DataDir, store.Options{MaxAge: time.Duration(cfg.Store.MaxAge), MaxBytes: int64(cfg.Store.MaxBytes)})
	if err != nil {
		return nil, fmt.Errorf("local store: %w", err)
	}
	rules := cfg.Discovery
	a := &Agent{
		cfg: cfg, log: log, store: st, walkers: ws,
		verdicts:   v,
		loadWalker: loadEBPFWalker,
		loadCPU:    func(_ context.Context, o cpu.Options) (*cpu.Sampler, error) { return cpu.New(o) },
		scanner:    &discovery.Scanner{Proc: "/proc", Rules: &rules},
		procs:      map[store.ProcessKey]*watched{},
		exes:       executables{},
		ready:      make(chan struct{}),
		cpuReason:  "off",
	}
	if cfg.CPUFrequency != 0 {
		a.cpuReason = "loading" // by Run
	}
	a.metrics = newSelfMetrics(a)
	if a.push, err = newPushers(cfg, a.metrics.reg, log); err != nil {
		a.close()
		return nil, err
	}
	if len(cfg.PprofScrape.Targets) > 0 {
		if a.scraper, err = scrape.New(cfg.PprofScrape, scrape.Options{Logger: log, Version: version}); err != nil {
			a.close()
			return nil, fmt.Errorf("pprof_scrape: %w", err)
		}
		if err := a.metrics.reg.Register(a.scraper); err != nil {
			a.close()
			return nil, fmt.Errorf("pprof_scrape: register metrics: %w", err)
		}
	}
	return a, nil
}

// Run serves HTTP and runs discovery and snapshots until ctx is done, then
// flushes and closes everything. The BPF objects load in the background:
// until the eBPF walker is ready procmem walks (--walker auto), and CPU
// sampling starts when its sampler is ready.
func (a *Agent) Run(ctx context.Context) error {
	ln, err := net.Listen("tcp", a.cfg.Listen)
	if err != nil {
		a.close()
		return fmt.Errorf("listen on %s: %w (set another address with --listen)", a.cfg.Listen, err)
	}
	if err := a.walkers.start(ctx, walkerObject(a.verdicts, a.loadWalker)); err != nil {
		ln.Close()
		a.close()
		return fmt.Errorf("--walker %s: %w", a.cfg.Walker, err)
	}
	if a.cfg.CPUFrequency != 0 {
		o := cpu.Options{Frequency: a.cfg.CPUFrequency, KernelFrames: a.cfg.CPUKernelFrames}
		a.cpuLoad = cpuSamplerObject(a.verdicts, o, a.loadCPU).start(ctx)
	}
	srv := &http.Server{Handler: a.handler(), ReadHeaderTimeout: 10 * time.Second}
	walker, reason := a.walkers.status()
	a.log.Info("goroscope agent started", "ui", "http://"+ln.Addr().String()+"/", "data_dir", a.cfg.DataDir,
		"snapshot_interval", a.cfg.SnapshotInterval.String(), "walker", walker, "walker_reason", reason)
	var wg sync.WaitGroup
	errc := make(chan error, 2)
	wg.Add(5)
	go func() { defer wg.Done(); a.push.run(ctx) }()
	go func() {
		defer wg.Done()
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			errc <- fmt.Errorf("serve %s: %w", a.cfg.Listen, err)
		}
	}()
	go func() { defer wg.Done(); a.discoverLoop(ctx) }()
	go func() { defer wg.Done(); a.snapshotLoop(ctx) }()
	go func() {
		defer wg.Done()
		if err := a.awaitWalker(ctx); err != nil {
			errc <- err
		}
	}()
	if a.cfg.CPUFrequency != 0 {
		wg.Add(1)
		go func() { defer wg.Done(); a.cpuLoop(ctx) }()
	}
	if a.scraper != nil {
		wg.Add(1)
		go func() { defer wg.Done(); a.runScraper(ctx, a.scraper) }()
	}
	var runErr error
	select {
	case <-ctx.Done():
	case runErr = <-errc:
	}
	a.log.Info("goroscope agent stopping")
	shutCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	srv.Shutdown(shutCtx)
	cancel()
	if runErr != nil {
		// The loops stop with ctx; a serve failure must stop them too.
		return errors.Join(runErr, a.close())
	}
	wg.Wait()
	a.waitLoads(loadGrace)
	return a.close()
}

// awaitWalker waits for the eBPF walker's load and says once how it went;
// its error stops the agent (--walker ebpf only).
func (a *Agent) awaitWalker(ctx context.Context) error {
	if a.cfg.Walker == "procmem" {
		return nil
	}
	start := time.Now()
	err := a.walkers.await(ctx)
	switch {
	case err == nil:
		a.log.Info("eBPF goroutine walker ready; processes move to it at their next snapshot", "load", time.Since(start).Round(time.Millisecond).String())
		return nil
	case errors.Is(err, errStillLoading):
		return nil // stopping
	case a.cfg.Walker == "ebpf":
		return fmt.Errorf("--walker ebpf: %w", err)
	}
	logLoadFailure(a.log, slog.LevelInfo, "eBPF goroutine walker unavailable; procmem (process_vm_readv) serves", err)
	return nil
}

// waitLoads waits up to d for the BPF loads still in the kernel verifier,
// which cannot be interrupted; the process exit ends them.
func (a *Agent) waitLoads(d time.Duration) {
	var loads []<-chan struct{}
	if l := a.walkers.loading(); l != nil {
		loads = append(loads, l.done)
	}
	if a.cpuLoad != nil {
		loads = append(loads, a.cpuLoad.done)
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

// Addr-independent handler: UI, metrics, health and the agent's own pprof.
func (a *Agent) handler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(a.metrics.reg, promhttp.HandlerOpts{ErrorLog: slog.NewLogLogger(a.log.Handler(), slog.LevelWarn)}))
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-a.ready:
			fmt.Fprintln(w, "ok")
		default:
			http.Error(w, "starting: first discovery scan not done", http.StatusServiceUnavailable)
		}
	})
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	mux.Handle("/", ui.New(agentSource{a}, a.log))
	return mux
}

func (a *Agent) close() error {
	a.mu.Lock()
	for k, w := range a.procs {
		a.release(w)
		delete(a.procs, k)
	}
	for _, w := range a.retired {
		a.release(w)
	}
	a.retired = nil
	a.mu.Unlock()
	if c := a.cpu.Load(); c != nil {
		c.s.Close()
	}
	if a.cpuLoad != nil {
		a.cpuLoad.drop()
	}
	a.walkers.Close()
	if a.scraper != nil {
		a.scraper.Close()
	}
	if a.push != nil {
		a.push.close()
	}
	return a.store.Close()
}

// discoverLoop rescans /proc on the discovery interval. It also hands the
// CPU sampler, once loaded, the processes watched so far: discovery adds
// the later ones.
func (a *Agent) discoverLoop(ctx context.Context) {
	t := time.NewTicker(time.Duration(a.cfg.DiscoveryInterval))
	defer t.Stop()
	var cpuLoaded <-chan struct{}
	if a.cpuLoad != nil {
		cpuLoaded = a.cpuLoad.done
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
			a.useCPUSampler()
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
		x, xk, err := a.exes.acquire(p.PID)
		a.mu.Unlock()
		var t *process.Target
		if err == nil {
			if t, err = process.AttachExecutable(p.PID, x); err != nil {
				a.mu.Lock()
				a.exes.release(xk)
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
				a.exes.release(xk)
				a.mu.Unlock()
				continue
			}
		}
		pw := &procWalker{w: a.walkers.pick()}
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
				a.cpu.Load().s.Remove(k.PID)
			}
			a.retired = append(a.retired, w)
			delete(a.procs, k)
		}
	}
	a.mu.Unlock()
}

// snapshotLoop walks each watched process when it is due. Walks run one at
// a time; the time spent walking in each interval is bounded by the cycle
// budget: a process that does not fit waits for a later cycle (counted),
// and one that alone exceeds the budget is walked every few intervals.
func (a *Agent) snapshotLoop(ctx context.Context) {
	interval := time.Duration(a.cfg.SnapshotInterval)
	budget := time.Duration(a.cfg.CycleBudget)
	if budget <= 0 {
		budget = interval / 4
	}
	var cycleStart time.Time
	var spent time.Duration
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		next := a.nextDue()
		wait := time.Until(next)
		if next.IsZero() || wait > interval {
			wait = min(interval, time.Second)
		}
		timer.Reset(max(wait, 0))
		select {
		case <-ctx.Done():
			return
		case <-timer.C:
		}
		a.closeRetired()
		now := time.Now()
		if now.Sub(cycleStart) >= interval {
			cycleStart, spent = now.Truncate(interval), 0
		}
		for _, w := range a.dueNow(now) {
			if ctx.Err() != nil {
				return
			}
			if spent > 0 && spent+w.lastTook > budget {
				// No room left in this cycle: next one.
				a.metrics.skipped.WithLabelValues("budget").Inc()
				a.mu.Lock()
				w.due = w.due.Add(interval)
				a.mu.Unlock()
				continue
			}
			took := a.snapshotOne(ctx, w, now)
			spent += took
			// A process whose walk alone exceeds the budget is sampled
			// every n-th interval.
			every := max(1, int((took+budget-1)/budget))
			if every > 1 {
				a.metrics.skipped.WithLabelValues("too_large").Add(float64(every - 1))
			}
			a.mu.Lock() // /metrics and the scheduler read every and due
			w.every = every
			w.due = w.due.Add(time.Duration(every) * interval)
			if w.due.Before(now) {
				w.due = now.Truncate(interval).Add(w.offset).Add(interval)
			}
			a.mu.Unlock()
		}
	}
}

// closeRetired releases the processes discovery dropped. Only the snapshot
// loop calls it, between walks.
func (a *Agent) closeRetired() {
	a.mu.Lock()
	keep := a.retired[:0]
	for _, w := range a.retired {
		if w.cpuWatched && !w.cpuDrained {
			keep = append(keep, w) // the next CPU drain still needs its target
			continue
		}
		a.release(w)
	}
	clear(a.retired[len(keep):])
	a.retired = keep
	a.mu.Unlock()
}

// release closes a process's target and releases its executable; a.mu held.
func (a *Agent) release(w *watched) {
	w.target.Close()
	a.exes.release(w.exe)
}

func (a *Agent) nextDue() time.Time {
	a.mu.Lock()
	defer a.mu.Unlock()
	var next time.Time
	for _, w := range a.procs {
		if next.IsZero() || w.due.Before(next) {
			next = w.due
		}
	}
	return next
}

func (a *Agent) dueNow(now time.Time) []*watched {
	a.mu.Lock()
	defer a.mu.Unlock()
	var out []*watched
	for _, w := range a.procs {
		if !w.due.After(now) {
			out = append(out, w)
		}
	}
	slices.SortFunc(out, func(x, y *watched) int { return x.due.Compare(y.due) })
	return out
}

// snapshotOne walks one process, folds the snapshot and hands it to the sinks.
func (a *Agent) snapshotOne(ctx context.Context, w *watched, now time.Time) time.Duration {
	wk := a.walkers.pick()
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
		reason := "walk"
		switch {
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
		if reason != "process_gone" && w.failures <= 3 {
			a.log.Warn("snapshot failed", "pid", w.proc.PID, "service_name", w.proc.ServiceName, "err", err)
		}
		return took
	}
	interval := time.Duration(a.cfg.SnapshotInterval) * time.Duration(w.every)
	if !w.lastAt.IsZero() {
		interval = s.Time.Sub(w.lastAt)
	}
	var onCPU []fold.OnCPU
	var cpuProf encodedProfile
	var haveCPU bool
	if cw, watched := a.takeCPU(w); watched {
		onCPU = a.onCPU(cw)
		cpuProf, haveCPU = a.cpuProfile(&a.enc, cw)
	}
	o, err := snapshotOutput(&a.enc, &a.snapBuf, w.storeProcess(), w.labels(), s, interval, onCPU, fold.ExecutableOf(w.target.Exe, w.target.Bin, w.target.Bias))
	if haveCPU {
		o.profiles = append(o.profiles, cpuProf)
	}
	if err != nil {
		a.metrics.errors.WithLabelValues("encode").Inc()
		a.log.Warn("encode snapshot", "pid", w.proc.PID, "err", err)
	}
	a.mu.Lock()
	w.lastAt, w.series, w.counts, w.lastErr, w.failures = s.Time, o.series, s.Counts, "", 0
	a.mu.Unlock()
	a.metrics.snapshots.WithLabelValues(walker).Inc()
	a.record(o)
	return took
}

// agentSource serves the UI from the agent's live view and its store.
type agentSource struct{ a *Agent }

func (s agentSource) Processes() []ui.Process {
	serving, reason := s.a.walkers.status()
	s.a.mu.Lock()
	defer s.a.mu.Unlock()
	out := make([]ui.Process, 0, len(s.a.procs))
	for _, w := range s.a.procs {
		p := ui.Process{Process: w.storeProcess(), Live: true, Counts: w.counts, LastSnapshot: w.lastAt, Walker: w.snap.Walker(), Error: w.lastErr}
		switch {
		case p.Walker != serving:
			p.WalkerReason = "moving to " + serving + " at the next snapshot"
		case reason != "":
			p.WalkerReason = reason
		}
		out = append(out, p)
	}
	return out
}

func (s agentSource) List(q store.Query) ([]store.Meta, error) { return s.a.store.List(q) }
func (s agentSource) Read(id uint64) ([]byte, error)           { return s.a.store.Read(id) }
