package daemon

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
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
}

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
				for _, s := range o.Series {
					item, key, err := remotewrite.SampleItem(s.Name, s.Labels, s.Value, o.Time)
					if err != nil {
						errs = append(errs, err)
						continue
					}
					rwItems = append(rwItems, struct {
						item []byte
						key  uint64
					}{item, key})
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

// pushName is the Pyroscope __name__ of a profile of store kind k: the
// goroutine count profile is stored as "goroutines" and pushed as Go's own
// goroutine profile is named, "goroutine".
func pushName(k string) string {
	if k == store.KindGoroutines {
		return fold.ProfileGoroutine
	}
	return k
}
