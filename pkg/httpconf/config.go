package httpconf

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"slices"
	"time"

	"golang.org/x/net/http/httpguts"
)

// DefaultTimeout bounds one request when HTTPClientConfig.Timeout is zero
// and the user of the config has no default of its own.
const DefaultTimeout = 30 * time.Second

// HTTPClientConfig is how to talk to one HTTP server: authentication, extra
// headers, TLS, the proxy and the request timeout. Configurations inline it
// (`yaml:",inline"`) next to the server's url, so its keys sit beside the
// user's own. Field names in validation errors are those keys.
type HTTPClientConfig struct {
	// BasicAuth, when set, adds an Authorization: Basic header (key
	// "basic_auth").
	BasicAuth *BasicAuth `yaml:"basic_auth"`
	// BearerToken (key "bearer_token") or BearerTokenFile (key
	// "bearer_token_file") add an Authorization: Bearer header. The file is
	// re-read when its size, modification time or inode changes.
	BearerToken     string `yaml:"bearer_token"`
	BearerTokenFile string `yaml:"bearer_token_file"`
	// Headers are extra request headers (key "headers"); they may not
	// replace headers the client sets itself.
	Headers map[string]string `yaml:"headers"`
	// TLS configures https servers (key "tls").
	TLS TLSConfig `yaml:"tls"`
	// ProxyURL is the proxy every request goes through (key "proxy_url"):
	// http://, https:// or socks5://host:port, credentials allowed in the
	// URL. Empty means the environment's HTTPS_PROXY, HTTP_PROXY and
	// NO_PROXY.
	ProxyURL string `yaml:"proxy_url"`
	// Timeout bounds one request, connection to response body (key
	// "timeout"); zero means the user's default, else DefaultTimeout.
	Timeout time.Duration `yaml:"timeout"`
}

// BasicAuth is a username (key "basic_auth.username") with a password given
// inline (key "basic_auth.password") or read from a file (key
// "basic_auth.password_file", re-read when it changes).
type BasicAuth struct {
	Username     string `yaml:"username"`
	Password     string `yaml:"password"`
	PasswordFile string `yaml:"password_file"`
}

// TLSConfig configures the TLS client (key "tls"): a CA bundle to trust
// instead of the system roots, a client certificate and key, the server
// name to verify, and (for tests only) skipping verification.
type TLSConfig struct {
	CAFile             string `yaml:"ca_file"`
	CertFile           string `yaml:"cert_file"`
	KeyFile            string `yaml:"key_file"`
	ServerName         string `yaml:"server_name"`
	InsecureSkipVerify bool   `yaml:"insecure_skip_verify"`
}

// reservedHeaders are set by the client or by net/http; Headers may not
// replace them.
var reservedHeaders = []string{"Content-Type", "Content-Encoding", "Content-Length", "User-Agent", "Host"}

// proxySchemes are the proxy kinds net/http speaks.
var proxySchemes = []string{"http", "https", "socks5"}

// ParseURL parses the address of the server (key "url"): an absolute http
// or https URL with a host and without credentials (basic_auth carries
// those). It returns every problem at once, each naming the key and the
// fix. An empty URL is the caller's to report, with its own example.
func ParseURL(raw string) (*url.URL, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("url: %q does not parse (%v); give an absolute http(s) URL", raw, errors.Unwrap(err))
	}
	var errs []error
	if u.Scheme != "http" && u.Scheme != "https" {
		errs = append(errs, fmt.Errorf("url: scheme %q is not supported; use http:// or https://", u.Scheme))
	}
	if u.Host == "" {
		errs = append(errs, fmt.Errorf("url: %q has no host; give an absolute URL such as https://host:port/path", raw))
	}
	if u.User != nil {
		errs = append(errs, errors.New("url: credentials in the URL are not allowed; use basic_auth instead"))
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return u, nil
}

// Validate checks every field and returns all problems at once, each naming
// its key and how to fix it. server is the URL the client is for, as
// ParseURL returned it; nil when unknown, which skips the check that tls
// goes with https.
func (c *HTTPClientConfig) Validate(server *url.URL) error {
	var errs []error
	bad := func(key, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: %s", key, fmt.Sprintf(format, args...)))
	}
	if server != nil && server.Scheme == "http" && c.TLS != (TLSConfig{}) {
		bad("tls", "set for a plain http URL; use https:// or remove the tls block")
	}
	if b := c.BasicAuth; b != nil {
		if b.Username == "" {
			bad("basic_auth.username", "missing; basic auth needs a username")
		}
		if b.Password != "" && b.PasswordFile != "" {
			bad("basic_auth", "password and password_file are both set; keep one")
		}
		checkReadable(&errs, "basic_auth.password_file", b.PasswordFile)
		if c.BearerToken != "" || c.BearerTokenFile != "" {
			bad("basic_auth", "set together with bearer_token(_file); a server takes one kind of auth, keep one")
		}
	}
	if c.BearerToken != "" && c.BearerTokenFile != "" {
		bad("bearer_token", "bearer_token and bearer_token_file are both set; keep one")
	}
	checkReadable(&errs, "bearer_token_file", c.BearerTokenFile)
	for name, v := range c.Headers {
		key := "headers." + name
		if !httpguts.ValidHeaderFieldName(name) {
			bad(key, "%q is not a valid header name; use letters, digits and '-'", name)
			continue
		}
		if !httpguts.ValidHeaderFieldValue(v) {
			bad(key, "value is not a valid header value; remove control characters")
		}
		canon := http.CanonicalHeaderKey(name)
		if slices.Contains(reservedHeaders, canon) {
			bad(key, "%s is set by the client itself; remove it", canon)
		}
		if canon == "Authorization" && (c.BasicAuth != nil || c.BearerToken != "" || c.BearerTokenFile != "") {
			bad(key, "Authorization is set by basic_auth/bearer_token; remove one of them")
		}
	}
	t := c.TLS
	if (t.CertFile == "") != (t.KeyFile == "") {
		bad("tls", "cert_file and key_file go together; set both or neither")
	}
	checkReadable(&errs, "tls.ca_file", t.CAFile)
	checkReadable(&errs, "tls.cert_file", t.CertFile)
	checkReadable(&errs, "tls.key_file", t.KeyFile)
	if _, err := c.proxy(); err != nil {
		errs = append(errs, err)
	}
	if c.Timeout < 0 {
		bad("timeout", "%s is negative; use a positive duration such as 10s, or 0 for the default", c.Timeout)
	}
	return errors.Join(errs...)
}

// proxy parses ProxyURL; nil when it is empty. Errors show the URL with its
// password redacted.
func (c *HTTPClientConfig) proxy() (*url.URL, error) {
	if c.ProxyURL == "" {
		return nil, nil
	}
	u, err := url.Parse(c.ProxyURL)
	switch {
	case err != nil:
		return nil, fmt.Errorf("proxy_url: does not parse (%v); give e.g. http://proxy.example:3128", errors.Unwrap(err))
	case !slices.Contains(proxySchemes, u.Scheme):
		return nil, fmt.Errorf("proxy_url: scheme %q is not supported; use http://, https:// or socks5://", u.Scheme)
	case u.Host == "":
		return nil, fmt.Errorf("proxy_url: %q has no host; give e.g. http://proxy.example:3128", u.Redacted())
	}
	return u, nil
}

func checkReadable(errs *[]error, key, path string) {
	if path == "" {
		return
	}
	f, err := os.Open(path)
	if err != nil {
		*errs = append(*errs, fmt.Errorf("%s: %w; point it at a readable file", key, err))
		return
	}
	f.Close()
}
