package daemon

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"path/filepath"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/goroscope/goroscope/pkg/fold"
	"github.com/goroscope/goroscope/pkg/store"
	"github.com/goroscope/goroscope/push/pyroscope"
	"github.com/goroscope/goroscope/push/queue"
	"github.com/goroscope/goroscope/push/remotewrite"
)

// pusher is one endpoint's client and queue.
type pusher struct {
	kind string // "remote_write" or "pyroscope"
	q    *queue.Queue
}

// pushers are all push endpoints, the Appender of the push sink: each
// output's series and profiles are enqueued to each endpoint, and each
// queue delivers (or spools) on its own. Run delivers; Close, after Run
// has returned, releases the queues.
type pushers struct {
	list []*pusher
	log  *slog.Logger
	// sent are the series of each process's last output with series, by
	// shard key: one that vanishes (a finding that ended, a group that
	// emptied) or whose process is gone gets a staleness marker, as
	// Prometheus's own scrapes give it, so that it ends at once instead
	// of five minutes later. Append runs on several loops: mu.
	mu   sync.Mutex
	sent map[store.ProcessKey]map[uint64]sentSeries
}

// sentSeries is a series pushed, to mark it stale.
type sentSeries struct {
	name   string
	labels map[string]string
}

// staleNaN is Prometheus's staleness marker (value.StaleNaN): a series
// with it as its newest sample has ended.
var staleNaN = math.Float64frombits(0x7ff0000000000002)

var _ Appender = (*pushers)(nil)

// newPushers opens the queues of cfg's endpoints, their metrics in reg;
// version goes in the User-Agent.
func newPushers(cfg Config, reg prometheus.Registerer, log *slog.Logger, version string) (*pushers, error) {
	ps := &pushers{log: log}
	if len(cfg.RemoteWrite)+len(cfg.Pyroscope) == 0 {
		return ps, nil
	}
	m, err := queue.NewMetrics(reg)
	if err != nil {
		return nil, err
	}
	// add opens a queue for each of es, delivering with the client newClient makes.
	add := func(kind string, es []EndpointConfig, ordered bool, newClient func(EndpointConfig) (queue.Client, error)) error {
		for _, e := range es {
			c, err := newClient(e)
			if err != nil {
				return err
			}
			qc := queue.Config{
				MaxItemsPerBatch: e.Queue.MaxItemsPerBatch, MaxDelay: time.Duration(e.Queue.MaxDelay), Shards: e.Queue.Shards,
				MemoryItems: e.Queue.MemoryItems, MemoryBytes: int64(e.Queue.MemoryBytes), SpoolDir: filepath.Join(cfg.DataDir, "spool", e.Name), SpoolMaxBytes: int64(e.Queue.SpoolMaxBytes),
				MinBackoff: time.Duration(e.Queue.MinBackoff), MaxBackoff: time.Duration(e.Queue.MaxBackoff), Ordered: ordered,
			}
			q, err := queue.New(qc, c, m, log) // the queue names its endpoint
			if err != nil {
				return fmt.Errorf("%s endpoint %s: %w", kind, e.Name, err)
			}
			ps.list = append(ps.list, &pusher{kind: kind, q: q})
		}
		return nil
	}
	err = add("remote_write", cfg.RemoteWrite, true, func(e EndpointConfig) (queue.Client, error) {
		return remotewrite.New(remotewrite.Options{Name: e.Name, HTTP: e.client(version), ExternalLabels: e.ExternalLabels})
	})
	if err == nil {
		err = add("pyroscope", cfg.Pyroscope, false, func(e EndpointConfig) (queue.Client, error) {
			return pyroscope.New(pyroscope.Options{Name: e.Name, HTTP: e.client(version), Legacy: e.Legacy})
		})
	}
	if err != nil {
		return nil, errors.Join(err, ps.close())
	}
	return ps, nil
}

// run delivers until ctx is done; then the queues persist what is unsent.
// It returns when every queue's Run has.
func (ps *pushers) run(ctx context.Context) {
	var wg sync.WaitGroup
	for _, p := range ps.list {
		wg.Go(func() {
			if err := p.q.Run(ctx); err != nil {
				ps.log.Error("push queue stopped", "err", err)
			}
		})
	}
	wg.Wait()
}

// close releases the queues (persisting their spools' cursors); run must
// have returned.
func (ps *pushers) close() error {
	var errs []error
	for _, p := range ps.list {
		errs = append(errs, p.q.Close())
	}
	return errors.Join(errs...)
}

// Append enqueues one output's series (remote-write endpoints) and
// profiles (Pyroscope endpoints); o.Labels go on every profile, with each
// profile's own labels added.
func (ps *pushers) Append(_ context.Context, o Output) error {
	if len(ps.list) == 0 {
		return nil
	}
	var errs []error
	var rwItems []struct {
		item []byte
		key  uint64
	}
	var pyItems [][]byte
	for _, p := range ps.list {
		switch p.kind {
		case "remote_write":
			if rwItems == nil {
				now := make(map[uint64]sentSeries, len(o.Series))
				add := func(name string, labels map[string]string, v float64) {
					item, key, err := remotewrite.SampleItem(name, labels, v, o.Time)
					if err != nil {
						errs = append(errs, err)
						return
					}
					if math.Float64bits(v) != math.Float64bits(staleNaN) {
						now[key] = sentSeries{name, labels}
					}
					rwItems = append(rwItems, struct {
						item []byte
						key  uint64
					}{item, key})
				}
				for _, s := range o.Series {
					add(s.Name, s.Labels, s.Value)
				}
				if len(o.Series) > 0 {
					for _, s := range ps.vanished(o.Process.Key(), now) {
						add(s.name, s.labels, staleNaN)
					}
				}
			}
			for _, it := range rwItems {
				if err := p.q.Enqueue(it.item, it.key); err != nil {
					errs = append(errs, err)
				}
			}
		case "pyroscope":
			if pyItems == nil {
				for _, prof := range o.Profiles {
					item, err := pyroscope.ProfileItem(pushName(prof.Name), prof.Data, o.Labels, prof.Labels)
					if err != nil {
						errs = append(errs, err)
						continue
					}
					pyItems = append(pyItems, item)
				}
			}
			for _, it := range pyItems {
				if err := p.q.Enqueue(it, 0); err != nil {
					errs = append(errs, err)
				}
			}
		}
	}
	return errors.Join(errs...)
}

// vanished records now as the series a process has, and returns those it
// had at its last output and no longer has.
func (ps *pushers) vanished(k store.ProcessKey, now map[uint64]sentSeries) []sentSeries {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	if ps.sent == nil {
		ps.sent = map[store.ProcessKey]map[uint64]sentSeries{}
	}
	var out []sentSeries
	for key, s := range ps.sent[k] {
		if _, ok := now[key]; !ok {
			out = append(out, s)
		}
	}
	ps.sent[k] = now
	return out
}

// Gone marks every series of a process that is no longer watched stale at
// time at, on every remote-write endpoint.
func (ps *pushers) Gone(k store.ProcessKey, at time.Time) {
	if ps == nil {
		return
	}
	ps.mu.Lock()
	last := ps.sent[k]
	delete(ps.sent, k)
	ps.mu.Unlock()
	if len(last) == 0 {
		return
	}
	for _, p := range ps.list {
		if p.kind != "remote_write" {
			continue
		}
		for _, s := range last {
			item, key, err := remotewrite.SampleItem(s.name, s.labels, staleNaN, at)
			if err == nil {
				err = p.q.Enqueue(item, key)
			}
			if err != nil {
				ps.log.Warn("mark the series of a gone process stale", "pid", k.PID, "err", err)
				return
			}
		}
	}
}

// pushName is the Pyroscope __name__ of a profile of store kind k: the
// goroutine count profile is stored as "goroutines" and pushed as Go's own
// goroutine profile is named, "goroutine".
func pushName(k string) string {
	if k == store.KindGoroutines {
		return fold.ProfileGoroutine
	}
	return k
}
