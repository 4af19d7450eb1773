package daemon

import (
	"fmt"
	"net/url"
	"regexp"

	"github.com/goroscope/goroscope/push/endpoint"
)

// EndpointConfig is one push endpoint: where, how to authenticate, and how
// its queue batches and spools.
type EndpointConfig struct {
	// Name identifies the endpoint in metrics, logs and its spool directory.
	Name string `yaml:"name"`
	// Config is url, tenant (X-Scope-OrgID) and the HTTP client config
	// shared with pprof scrape targets (pkg/httpconf): basic_auth,
	// bearer_token(_file), headers, tls, proxy_url, timeout; inlined. Secrets
	// come from files (re-read when they change) or from ${ENV} in this file.
	endpoint.Config `yaml:",inline"`
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

// client is the endpoint's config for the wire client; version goes in the
// User-Agent.
func (e *EndpointConfig) client(version string) endpoint.Config {
	c := e.Config
	c.Version = version
	return c
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
		if err := e.Validate(); err != nil {
			return fmt.Errorf("%s[%d] (%s): %w", kind, i, e.Name, err)
		}
	}
	return nil
}
