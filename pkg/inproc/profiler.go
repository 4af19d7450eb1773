package inproc

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"os"
	"strconv"
	"sync"
	"time"

	"github.com/google/pprof/profile"
	pyroscopego "github.com/grafana/pyroscope-go"

	"github.com/goroscope/goroscope/pkg/fold"
	"github.com/goroscope/goroscope/push/pyroscope"
)

// Profiler profiles the process it runs in; see the package documentation.
type Profiler struct {
	cfg    Config
	labels map[string]string // service_name, pid and the tags
	sinks  *sinks
	log    *lossLog              // what the queues and pyroscope-go log through
	py     *pyroscopego.Profiler // nil without pyroscope-go profile types
	coll   *collector            // nil with the goroutine collector off

	collMu  sync.Mutex // serialises collections (loop and final one)
	last    time.Time  // time of the previous collection, or Start
	statsMu sync.Mutex
	stats   Stats

	stopLoop context.CancelFunc
	loopDone chan struct{}
	stopped  chan struct{} // closed when shutdown has run
	watchWG  sync.WaitGroup
	once     sync.Once
	err      error
}

// Stats describe the goroutine collector's work and the delivery so far.
type Stats struct {
	// Collections counts snapshots taken and pushed; Errors those that
	// failed (dump, parse or queueing).
	Collections, Errors int
	// Goroutines is the number of goroutines in the latest snapshot;
	// Dropped those left out of it because the dump hit MaxDumpBytes.
	Goroutines, Dropped int
	// LastPause, MaxPause and TotalPause are the stop-the-world time of the
	// goroutine dumps (runtime.Stack holds the world stopped throughout).
	LastPause, MaxPause, TotalPause time.Duration
	// LastDuration is the latest collection's time: dump, parse, fold,
	// encode and queue.
	LastDuration time.Duration
	// DumpBytes is the size of the latest dump; DumpRetries counts dumps
	// repeated because the buffer was too small (each one more pause).
	DumpBytes, DumpRetries int

	// Profiles is the delivery of goroscope's goroutine and
	// goroutine_wall profiles (one item per profile and endpoint),
	// Uploads of pyroscope-go's uploads (CPU, heap, mutex, block: one item
	// per upload and endpoint), Series of the remote-write samples.
	Profiles, Uploads, Series Delivery
}

// Start starts profiling the process: pyroscope-go's CPU, heap, mutex and
// block profiles and goroscope's goroutine profiles (and series, with a
// remote-write endpoint), pushed in the background. Profiling ends when ctx
// is done (what is still queued is dropped) or at Stop (which flushes).
// Invalid configuration is an error naming every bad field.
func Start(ctx context.Context, cfg Config) (*Profiler, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	log := newLossLog(cfg.Logger)
	s, err := newSinks(&cfg, slog.New(log))
	if err != nil {
		return nil, fmt.Errorf("inproc: %w", err)
	}
	labels := maps.Clone(cfg.Tags)
	if labels == nil {
		labels = map[string]string{}
	}
	labels[labelPID] = strconv.Itoa(os.Getpid())
	p := &Profiler{cfg: cfg, sinks: s, log: log, stopped: make(chan struct{}), last: time.Now()}
	pyTags := maps.Clone(labels)
	labels[pyroscope.LabelServiceName] = cfg.ApplicationName
	p.labels = labels

	s.run()
	if len(cfg.ProfileTypes) > 0 {
		cfg.applyRuntimeRates()
		p.py, err = pyroscopego.Start(pyroscopego.Config{
			ApplicationName: cfg.ApplicationName,
			Tags:            pyTags,
			ServerAddress:   cfg.Pyroscope[0].HTTP.URL,
			HTTPClient:      &ingestCapture{queues: s.ingest},
			UploadRate:      cfg.UploadRate,
			ProfileTypes:    cfg.ProfileTypes,
			Logger:          slogAdapter{slog.New(log)},
		})
		if err != nil {
			s.stop()
			return nil, fmt.Errorf("inproc: start pyroscope-go: %w", err)
		}
	}
	if cfg.GoroutineInterval > 0 {
		p.coll = newCollector(cfg.MaxDumpBytes)
		loopCtx, cancel := context.WithCancel(ctx)
		p.stopLoop, p.loopDone = cancel, make(chan struct{})
		go p.loop(loopCtx)
	}
	p.watchWG.Go(func() {
		select {
		case <-ctx.Done():
			p.shutdown(context.Background(), false)
		case <-p.stopped:
		}
	})
	return p, nil
}

// loop collects goroutines every interval until ctx is done.
func (p *Profiler) loop(ctx context.Context) {
	defer close(p.loopDone)
	t := time.NewTicker(p.cfg.GoroutineInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			p.collectOnce()
		}
	}
}

// collectOnce takes a snapshot, folds it into the goroutine and
// goroutine_wall profiles and the series, and queues them.
func (p *Profiler) collectOnce() {
	p.collMu.Lock()
	defer p.collMu.Unlock()
	start := time.Now()
	s, ds, err := p.coll.collect()
	if err == nil {
		interval := s.Time.Sub(p.last)
		p.last = s.Time
		g, w := fold.Profiles(s, interval)
		profiles := map[string]*profile.Profile{ProfileGoroutine: g, ProfileGoroutineWall: w}
		err = p.sinks.push(p.labels, s.Time, profiles, fold.ProcessSeries(s, p.labels))
	}
	p.statsMu.Lock()
	defer p.statsMu.Unlock()
	st := &p.stats
	st.DumpBytes, st.DumpRetries = ds.Bytes, st.DumpRetries+ds.Attempts-1
	st.LastPause, st.TotalPause = ds.Pause, st.TotalPause+ds.Pause
	st.MaxPause = max(st.MaxPause, ds.Pause)
	if err != nil {
		st.Errors++
		if st.Errors <= 3 || st.Errors%100 == 0 {
			p.cfg.logger().Warn("goroscope in-process goroutine collection failed", "err", err, "failures", st.Errors)
		}
		return
	}
	st.Collections++
	st.Goroutines, st.Dropped = len(s.Goroutines), s.Dropped
	st.LastDuration = time.Since(start)
}

// Stats returns the goroutine collector's counters and the delivery
// counters.
func (p *Profiler) Stats() Stats {
	p.statsMu.Lock()
	st := p.stats
	p.statsMu.Unlock()
	prof, up, ser := p.sinks.deliveries()
	st.Profiles, st.Uploads, st.Series = prof.Delivery, up.Delivery, ser.Delivery
	return st
}

// Stop ends profiling and flushes: a last goroutine collection (covering the
// time since the previous one), pyroscope-go's partial profiles, and every
// queue, until delivered or ctx ends (DefaultFlushTimeout when ctx has no
// deadline). Its error says what was lost over the whole run: profiles,
// uploads or series an endpoint rejected or that were dropped (counted in
// Stats), with the first failure's message, and what the flush could not
// deliver. Calling it again, or after Start's context ended, returns the
// first result; after Start's context ended, what was still queued is
// dropped by design and not reported.
func (p *Profiler) Stop(ctx context.Context) error {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, DefaultFlushTimeout)
		defer cancel()
	}
	p.shutdown(ctx, true)
	p.watchWG.Wait()
	return p.err
}

// shutdown stops everything once; with flush it first delivers what is
// pending, until ctx ends, and without it drops it.
func (p *Profiler) shutdown(ctx context.Context, flush bool) {
	p.once.Do(func() {
		defer close(p.stopped)
		var errs []error
		if p.coll != nil {
			p.stopLoop()
			<-p.loopDone
			if flush {
				p.collectOnce()
			}
		}
		if p.py != nil {
			if flush && p.cfg.enabled(ProfileCPU) {
				// Cuts the partial profiles into the queues. The CPU profile
				// of the moment between this and Stop may be lost: Stop does
				// not wait for pyroscope-go's last upload. pyroscope-go
				// v1.4.3's Flush blocks forever when the CPU profile is off
				// (it waits for the CPU collector, which never started): then
				// the heap, mutex and block profiles since the last upload
				// are not cut, and are lost.
				p.py.Flush(true)
			}
			if err := p.py.Stop(); err != nil {
				errs = append(errs, fmt.Errorf("stop pyroscope-go: %w", err))
			}
		}
		if flush {
			if err := p.sinks.flush(ctx); err != nil {
				errs = append(errs, fmt.Errorf("flush: %w", err))
			}
		}
		p.sinks.stop()
		prof, up, ser := p.sinks.deliveries()
		if err := lossError(flush, p.log.firstFailure(),
			kind{"goroutine profiles", prof}, kind{"pyroscope-go uploads", up}, kind{"series samples", ser}); err != nil {
			errs = append(errs, err)
		}
		if err := errors.Join(errs...); err != nil {
			p.err = fmt.Errorf("inproc: stop: %w", err)
		}
	})
}

// slogAdapter gives pyroscope-go's logger interface to a slog.Logger.
type slogAdapter struct{ l *slog.Logger }

func (a slogAdapter) Infof(format string, args ...any) {
	a.l.Info("pyroscope-go: " + fmt.Sprintf(format, args...))
}

func (a slogAdapter) Debugf(format string, args ...any) {
	a.l.Debug("pyroscope-go: " + fmt.Sprintf(format, args...))
}

func (a slogAdapter) Errorf(format string, args ...any) {
	a.l.Error("pyroscope-go: " + fmt.Sprintf(format, args...))
}
