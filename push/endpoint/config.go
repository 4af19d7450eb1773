package endpoint

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"golang.org/x/net/http/httpguts"

	"github.com/goroscope/goroscope/pkg/httpconf"
)

// TenantHeader carries Config.Tenant (Mimir, Cortex, Loki, Pyroscope).
const TenantHeader = "X-Scope-OrgID"

// Config is one push endpoint. Field names in validation errors are the
// YAML keys.
type Config struct {
	// URL is the endpoint (key "url"): absolute, http or https, with a host.
	URL string `yaml:"url"`
	// Tenant, when set, is sent as X-Scope-OrgID (key "tenant").
	Tenant string `yaml:"tenant"`
	// HTTPClientConfig is auth, headers, tls, proxy_url and timeout (zero:
	// httpconf.DefaultTimeout, 30s), inlined: its keys sit beside url.
	httpconf.HTTPClientConfig `yaml:",inline"`
	// Version is goroscope's version, sent as User-Agent
	// "goroscope/<Version>"; empty means "dev". Not configuration: the
	// program sets it.
	Version string `yaml:"-"`
}

// Validate checks every field and returns all problems at once, each naming
// its key and how to fix it.
func (c *Config) Validate() error {
	var errs []error
	bad := func(key, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: %s", key, fmt.Sprintf(format, args...)))
	}
	var u *url.URL
	if c.URL == "" {
		bad("url", "missing; set it to the endpoint, e.g. http://127.0.0.1:4040")
	} else if pu, err := httpconf.ParseURL(c.URL); err != nil {
		errs = append(errs, err)
	} else {
		u = pu
	}
	if strings.ContainsAny(c.Tenant, "\r\n") || !httpguts.ValidHeaderFieldValue(c.Tenant) {
		bad("tenant", "%q is not a valid header value; remove control characters", c.Tenant)
	}
	for name := range c.Headers {
		switch canon := http.CanonicalHeaderKey(name); {
		case canon == http.CanonicalHeaderKey(TenantHeader) && c.Tenant != "":
			bad("headers."+name, "%s is set by tenant; remove one of them", TenantHeader)
		case canon == "X-Prometheus-Remote-Write-Version" || canon == "Connect-Protocol-Version": // set by the wire clients
			bad("headers."+name, "%s is set by the client itself; remove it", canon)
		}
	}
	if err := c.HTTPClientConfig.Validate(u); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// NewClient validates c and builds the endpoint's *http.Client: every
// request carries the User-Agent, and every request to the origin of URL
// (scheme, host and port) the tenant, the auth and the headers. The wire
// clients only POST, and a POST is never redirected: a 3xx fails the send
// with an *httpconf.RedirectError, which senderr classifies as permanent.
func (c *Config) NewClient() (*http.Client, error) {
	if err := c.Validate(); err != nil {
		return nil, fmt.Errorf("endpoint %s: %w", c.URL, err)
	}
	u, _ := httpconf.ParseURL(c.URL) // validated above
	o := httpconf.ClientOptions{Version: c.Version, Origin: u}
	if c.Tenant != "" {
		o.Header = map[string]string{TenantHeader: c.Tenant}
	}
	hc, err := httpconf.NewClient(c.HTTPClientConfig, o)
	if err != nil {
		return nil, fmt.Errorf("endpoint %s: %w", c.URL, err)
	}
	return hc, nil
}
