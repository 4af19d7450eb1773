package inproc

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/google/pprof/profile"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/goroscope/goroscope/pkg/fold"
	"github.com/goroscope/goroscope/push/pyroscope"
	"github.com/goroscope/goroscope/push/queue"
	"github.com/goroscope/goroscope/push/remotewrite"
)

// Profile names (__name__) of goroscope's goroutine profiles, as the agent
// pushes them. Grafana lists them as goroutine:goroutine:count:goroutine:count
// (the name, sample and period types of Go's own goroutine profile, as
// Grafana Alloy's pyroscope.scrape sends it) and
// goroutine_wall:wall:nanoseconds:wall:nanoseconds.
const (
	ProfileGoroutine     = fold.ProfileGoroutine
	ProfileGoroutineWall = fold.ProfileGoroutineWall
)

// labelPID is the label naming the process, as the agent sets it.
const labelPID = "pid"

// sinks are the push queues of every endpoint, by what they carry.
type sinks struct {
	profiles []*queue.Queue // goroscope's profiles (push.v1 or legacy /ingest)
	ingest   []*queue.Queue // pyroscope-go's uploads, forwarded verbatim
	series   []*queue.Queue // goroutine series (remote-write)
	// The queues' endpoint names, by what they carry, and the private
	// registry of their metrics: the delivery counters.
	profileNames, ingestNames, seriesNames []string
	reg                                    *prometheus.Registry
	log                                    *slog.Logger

	wg     sync.WaitGroup
	cancel context.CancelFunc
}

// newSinks builds a client and a memory-only queue per endpoint; they log
// through log.
func newSinks(cfg *Config, log *slog.Logger) (*sinks, error) {
	s := &sinks{log: log, reg: prometheus.NewRegistry()}
	m, err := queue.NewMetrics(s.reg)
	if err != nil {
		return nil, err
	}
	add := func(list *[]*queue.Queue, names *[]string, c queue.Client, qc queue.Config) error {
		qc.MemoryItems = cfg.MemoryItems
		q, err := queue.New(qc, c, m, log)
		if err != nil {
			return fmt.Errorf("queue for %s: %w", c.Name(), err)
		}
		*list = append(*list, q)
		*names = append(*names, c.Name())
		return nil
	}
	for i, e := range cfg.Pyroscope {
		c, err := pyroscope.New(pyroscope.Options{HTTP: e.HTTP, Legacy: e.Legacy})
		if err == nil {
			err = add(&s.profiles, &s.profileNames, c, queue.Config{})
		}
		if err == nil && len(cfg.ProfileTypes) > 0 {
			var ic *ingestClient
			if ic, err = newIngestClient(e); err == nil {
				err = add(&s.ingest, &s.ingestNames, ic, queue.Config{MaxItemsPerBatch: 1})
			}
		}
		if err != nil {
			s.close()
			return nil, fmt.Errorf("endpoint Pyroscope[%d]: %w", i, err)
		}
	}
	for i, e := range cfg.RemoteWrite {
		c, err := remotewrite.New(remotewrite.Options{HTTP: e.HTTP})
		if err == nil {
			err = add(&s.series, &s.seriesNames, c, queue.Config{Ordered: true})
		}
		if err != nil {
			s.close()
			return nil, fmt.Errorf("endpoint RemoteWrite[%d]: %w", i, err)
		}
	}
	return s, nil
}

func (s *sinks) all() []*queue.Queue {
	out := append([]*queue.Queue(nil), s.profiles...)
	out = append(out, s.ingest...)
	return append(out, s.series...)
}

// deliveries sums the queues' counters: goroscope's profiles,
// pyroscope-go's uploads and the series.
func (s *sinks) deliveries() (profiles, uploads, series delivery) {
	return deliveryOf(s.reg, s.profiles, s.profileNames), deliveryOf(s.reg, s.ingest, s.ingestNames), deliveryOf(s.reg, s.series, s.seriesNames)
}

// run starts every queue's sender; stop ends them.
func (s *sinks) run() {
	ctx, cancel := context.WithCancel(context.Background())
	s.cancel = cancel
	for _, q := range s.all() {
		s.wg.Go(func() {
			if err := q.Run(ctx); err != nil {
				s.log.Error("goroscope push queue stopped", "err", err)
			}
		})
	}
}

// flush waits until everything queued so far was delivered or dropped.
func (s *sinks) flush(ctx context.Context) error {
	var errs []error
	for _, q := range s.all() {
		if err := q.Flush(ctx); err != nil {
			errs = append(errs, fmt.Errorf("%w (%d items unsent)", err, q.Len()))
		}
	}
	return errors.Join(errs...)
}

// stop ends the senders and releases the queues; what is still queued is
// dropped.
func (s *sinks) stop() {
	if s.cancel != nil {
		s.cancel()
	}
	s.wg.Wait()
	s.close()
}

// close releases the queues: memory only, nothing to persist (a queue
// fails to close only with a spool).
func (s *sinks) close() {
	for _, q := range s.all() {
		_ = q.Close()
	}
}

// push queues one collection's profiles (named by __name__) and series.
func (s *sinks) push(labels map[string]string, at time.Time, profiles map[string]*profile.Profile, series []fold.Series) error {
	var errs []error
	if len(s.profiles) > 0 {
		for name, p := range profiles {
			gz, err := pyroscope.EncodeProfile(p)
			if err != nil {
				errs = append(errs, fmt.Errorf("encode %s profile: %w", name, err))
				continue
			}
			item, err := pyroscope.ProfileItem(name, gz, labels)
			if err != nil {
				errs = append(errs, fmt.Errorf("encode %s profile: %w", name, err))
				continue
			}
			for _, q := range s.profiles {
				if err := q.Enqueue(item, 0); err != nil {
					errs = append(errs, err)
				}
			}
		}
	}
	if len(s.series) > 0 {
		for _, sr := range series {
			// Ordered queues keep one series' samples in order by key.
			item, key, err := remotewrite.SampleItem(sr.Name, sr.Labels, sr.Value, at)
			if err != nil {
				errs = append(errs, fmt.Errorf("encode series %s: %w", sr.Name, err))
				continue
			}
			for _, q := range s.series {
				if err := q.Enqueue(item, key); err != nil {
					errs = append(errs, err)
				}
			}
		}
	}
	return errors.Join(errs...)
}
