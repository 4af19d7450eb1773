package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"path/filepath"
	"regexp"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/goroscope/goroscope/pkg/fold"
	"github.com/goroscope/goroscope/pkg/store"
	"github.com/goroscope/goroscope/push/httpconf"
	"github.com/goroscope/goroscope/push/pyroscope"
	"github.com/goroscope/goroscope/push/queue"
	"github.com/goroscope/goroscope/push/remotewrite"
)

// EndpointConfig is one push endpoint: where, how to authenticate, and how
// its queue batches and spools.
type EndpointConfig struct {
	// Name identifies the endpoint in metrics, logs and its spool directory.
	Name    string            `yaml:"name"`
	URL     string            `yaml:"url"`
	Tenant  string            `yaml:"tenant"` // X-Scope-OrgID
	Headers map[string]string `yaml:"headers"`
	Timeout Duration          `yaml:"timeout"`
	// BasicAuth and bearer tokens; secrets from files (re-read when they
	// change) or from ${ENV} in this file.
	BasicAuth *struct {
		Username     string `yaml:"username"`
		Password     string `yaml:"password"`
		PasswordFile string `yaml:"password_file"`
	} `yaml:"basic_auth"`
	BearerToken     string `yaml:"bearer_token"`
	BearerTokenFile string `yaml:"bearer_token_file"`
	TLS             struct {
		CAFile             string `yaml:"ca_file"`
		CertFile           string `yaml:"cert_file"`
		KeyFile            string `yaml:"key_file"`
		ServerName         string `yaml:"server_name"`
		InsecureSkipVerify bool   `yaml:"insecure_skip_verify"`
	} `yaml:"tls"`
	// ExternalLabels are added to every remote-write series lacking them.
	ExternalLabels map[string]string `yaml:"external_labels"`
	// Legacy sends profiles to Pyroscope's old /ingest endpoint.
	Legacy bool        `yaml:"legacy"`
	Queue  QueueConfig `yaml:"queue"`
}

// QueueConfig tunes an endpoint's queue; zero values take the defaults.
type QueueConfig struct {
	MaxItemsPerBatch int      `yaml:"max_items_per_batch"`
	MaxDelay         Duration `yaml:"max_delay"`
	Shards           int      `yaml:"shards"`
	MemoryItems      int      `yaml:"memory_items"`
	MemoryBytes      ByteSize `yaml:"memory_bytes"`
	SpoolMaxBytes    ByteSize `yaml:"spool_max_bytes"`
	MinBackoff       Duration `yaml:"min_backoff"`
	MaxBackoff       Duration `yaml:"max_backoff"`
}

func (e *EndpointConfig) httpOptions() httpconf.Options {
	o := httpconf.Options{
		URL: e.URL, Tenant: e.Tenant, Headers: e.Headers, Timeout: time.Duration(e.Timeout),
		BearerToken: e.BearerToken, BearerTokenFile: e.BearerTokenFile, Version: version,
		TLS: httpconf.TLSOptions{CAFile: e.TLS.CAFile, CertFile: e.TLS.CertFile, KeyFile: e.TLS.KeyFile,
			ServerName: e.TLS.ServerName, InsecureSkipVerify: e.TLS.InsecureSkipVerify},
	}
	if b := e.BasicAuth; b != nil {
		o.BasicAuth = &httpconf.BasicAuth{Username: b.Username, Password: b.Password, PasswordFile: b.PasswordFile}
	}
	return o
}

var (
	endpointName = regexp.MustCompile(`^[A-Za-z0-9_.-]{1,64}$`)
	nameUnsafe   = regexp.MustCompile(`[^A-Za-z0-9_.-]`)
)

// endpointNames fills in and checks endpoint names: unique, usable as a
// directory name.
func endpointNames(kind string, eps []EndpointConfig, used map[string]bool) error {
	for i := range eps {
		e := &eps[i]
		if e.Name == "" {
			u, err := url.Parse(e.URL)
			if err != nil || u.Host == "" {
				return fmt.Errorf("%s[%d].url %q: want an http(s) URL", kind, i, e.URL)
			}
			e.Name = nameUnsafe.ReplaceAllString(kind+"-"+u.Host, "_")
		}
		if !endpointName.MatchString(e.Name) {
			return fmt.Errorf("%s[%d].name %q: use letters, digits, '.', '_' or '-' (at most 64)", kind, i, e.Name)
		}
		if used[e.Name] {
			return fmt.Errorf("%s[%d].name %q is used twice: give each endpoint its own name", kind, i, e.Name)
		}
		used[e.Name] = true
		if o := e.httpOptions(); o.Validate() != nil {
			err := o.Validate()
			return fmt.Errorf("%s[%d] (%s): %w", kind, i, e.Name, err)
		}
	}
	return nil
}

// pusher is one endpoint's client and queue.
type pusher struct {
	kind string // "remote_write" or "pyroscope"
	q    *queue.Queue
}

// pushers are all push endpoints; each snapshot's results are enqueued to
// each, and each queue delivers (or spools) on its own.
type pushers struct {
	list []*pusher
	log  *slog.Logger
}

func newPushers(cfg Config, reg prometheus.Registerer, log *slog.Logger) (*pushers, error) {
	ps := &pushers{log: log}
	if len(cfg.RemoteWrite)+len(cfg.Pyroscope) == 0 {
		return ps, nil
	}
	m, err := queue.NewMetrics(reg)
	if err != nil {
		return nil, err
	}
	mk := func(kind string, e EndpointConfig, c queue.Client, ordered bool) error {
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
		return nil
	}
	for _, e := range cfg.RemoteWrite {
		c, err := remotewrite.New(remotewrite.Options{Name: e.Name, HTTP: e.httpOptions(), ExternalLabels: e.ExternalLabels})
		if err != nil {
			ps.close()
			return nil, err
		}
		if err := mk("remote_write", e, c, true); err != nil {
			ps.close()
			return nil, err
		}
	}
	for _, e := range cfg.Pyroscope {
		c, err := pyroscope.New(pyroscope.Options{Name: e.Name, HTTP: e.httpOptions(), Legacy: e.Legacy})
		if err != nil {
			ps.close()
			return nil, err
		}
		if err := mk("pyroscope", e, c, false); err != nil {
			ps.close()
			return nil, err
		}
	}
	return ps, nil
}

// run delivers until ctx is done; then the queues persist what is unsent.
func (ps *pushers) run(ctx context.Context) {
	var wg sync.WaitGroup
	for _, p := range ps.list {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := p.q.Run(ctx); err != nil {
				ps.log.Error("push queue stopped", "err", err)
			}
		}()
	}
	wg.Wait()
}

func (ps *pushers) close() {
	for _, p := range ps.list {
		p.q.Close()
	}
}

// push enqueues one collection's series and profiles; labels go on every
// profile, with each profile's own labels added.
func (ps *pushers) push(series []fold.Series, at time.Time, profiles []encodedProfile, labels map[string]string) error {
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
				for _, s := range series {
					item, key, err := remotewrite.SampleItem(s.Name, s.Labels, s.Value, at)
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
				for _, prof := range profiles {
					item, err := pyroscope.ProfileItem(pushName(prof.name), prof.data, labels, prof.labels)
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
