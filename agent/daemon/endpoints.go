package daemon

import (
	"fmt"
	"net/url"
	"regexp"
	"time"

	"github.com/goroscope/goroscope/push/httpconf"
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

// httpOptions are the endpoint's HTTP client options; version goes in the
// User-Agent.
func (e *EndpointConfig) httpOptions(version string) httpconf.Options {
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
		if o := e.httpOptions(""); o.Validate() != nil {
			err := o.Validate()
			return fmt.Errorf("%s[%d] (%s): %w", kind, i, e.Name, err)
		}
	}
	return nil
}
