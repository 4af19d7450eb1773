package httpconf

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"golang.org/x/net/http/httpguts"
)

// DefaultTimeout bounds one request when Options.Timeout is zero.
const DefaultTimeout = 30 * time.Second

// Options describe one push endpoint. Field names in validation errors are
// the configuration keys given in each field's comment.
type Options struct {
	// URL is the endpoint (key "url"): absolute, http or https, with a host.
	URL string
	// Tenant, when set, is sent as X-Scope-OrgID (key "tenant").
	Tenant string
	// BasicAuth, when set, adds an Authorization: Basic header.
	BasicAuth *BasicAuth
	// BearerToken (key "bearer_token") or BearerTokenFile (key
	// "bearer_token_file") add an Authorization: Bearer header. The file is
	// re-read when its size or modification time changes.
	BearerToken     string
	BearerTokenFile string
	// Headers are extra request headers (key "headers"); they may not
	// replace headers the client sets itself.
	Headers map[string]string
	// TLS configures https endpoints (key "tls").
	TLS TLSOptions
	// Timeout bounds one request, connection to response body (key
	// "timeout"); zero means DefaultTimeout.
	Timeout time.Duration
	// Version is goroscope's version, sent as User-Agent "goroscope/<Version>";
	// empty means "dev".
	Version string
}

// BasicAuth is a username with a password given inline (key
// "basic_auth.password") or read from a file (key "basic_auth.password_file",
// re-read when it changes).
type BasicAuth struct {
	Username     string
	Password     string
	PasswordFile string
}

// TLSOptions configure the TLS client: a CA bundle to trust instead of the
// system roots, a client certificate and key, the server name to verify,
// and (for tests only) skipping verification.
type TLSOptions struct {
	CAFile             string
	CertFile           string
	KeyFile            string
	ServerName         string
	InsecureSkipVerify bool
}

// reservedHeaders are set by the clients themselves; Options.Headers may not
// replace them.
var reservedHeaders = []string{
	"Content-Type", "Content-Encoding", "Content-Length", "User-Agent",
	"X-Prometheus-Remote-Write-Version", "Host", "Connect-Protocol-Version",
}

// UserAgent is the User-Agent header value for these options.
func (o *Options) UserAgent() string {
	v := o.Version
	if v == "" {
		v = "dev"
	}
	return "goroscope/" + v
}

// Validate checks every field and returns all problems at once, each naming
// the field and how to fix it.
func (o *Options) Validate() error {
	var errs []error
	bad := func(field, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: %s", field, fmt.Sprintf(format, args...)))
	}
	if o.URL == "" {
		bad("url", "missing; set it to the endpoint, e.g. http://127.0.0.1:4040")
	} else if u, err := url.Parse(o.URL); err != nil {
		bad("url", "%q does not parse (%v); give an absolute http(s) URL", o.URL, err)
	} else {
		if u.Scheme != "http" && u.Scheme != "https" {
			bad("url", "scheme %q is not supported; use http:// or https://", u.Scheme)
		}
		if u.Host == "" {
			bad("url", "%q has no host; give an absolute URL such as https://host:port/path", o.URL)
		}
		if u.User != nil {
			bad("url", "credentials in the URL are not allowed; use basic_auth instead")
		}
		if u.Scheme == "http" && (o.TLS != TLSOptions{}) {
			bad("tls", "set for a plain http URL; use https:// or remove the tls block")
		}
	}
	if strings.ContainsAny(o.Tenant, "\r\n") || !httpguts.ValidHeaderFieldValue(o.Tenant) {
		bad("tenant", "%q is not a valid header value; remove control characters", o.Tenant)
	}
	if b := o.BasicAuth; b != nil {
		if b.Username == "" {
			bad("basic_auth.username", "missing; basic auth needs a username")
		}
		if b.Password != "" && b.PasswordFile != "" {
			bad("basic_auth", "password and password_file are both set; keep one")
		}
		checkReadable(&errs, "basic_auth.password_file", b.PasswordFile)
		if o.BearerToken != "" || o.BearerTokenFile != "" {
			bad("basic_auth", "set together with bearer_token(_file); an endpoint takes one kind of auth, keep one")
		}
	}
	if o.BearerToken != "" && o.BearerTokenFile != "" {
		bad("bearer_token", "bearer_token and bearer_token_file are both set; keep one")
	}
	checkReadable(&errs, "bearer_token_file", o.BearerTokenFile)
	for name, v := range o.Headers {
		field := "headers." + name
		if !httpguts.ValidHeaderFieldName(name) {
			bad(field, "%q is not a valid header name; use letters, digits and '-'", name)
			continue
		}
		if !httpguts.ValidHeaderFieldValue(v) {
			bad(field, "value is not a valid header value; remove control characters")
		}
		canon := http.CanonicalHeaderKey(name)
		for _, r := range reservedHeaders {
			if canon == r {
				bad(field, "%s is set by the client itself; remove it", r)
			}
		}
		if canon == "Authorization" && (o.BasicAuth != nil || o.BearerToken != "" || o.BearerTokenFile != "") {
			bad(field, "Authorization is set by basic_auth/bearer_token; remove one of them")
		}
		if canon == "X-Scope-Orgid" && o.Tenant != "" {
			bad(field, "X-Scope-OrgID is set by tenant; remove one of them")
		}
	}
	t := o.TLS
	if (t.CertFile == "") != (t.KeyFile == "") {
		bad("tls", "cert_file and key_file go together; set both or neither")
	}
	checkReadable(&errs, "tls.ca_file", t.CAFile)
	checkReadable(&errs, "tls.cert_file", t.CertFile)
	checkReadable(&errs, "tls.key_file", t.KeyFile)
	if o.Timeout < 0 {
		bad("timeout", "%s is negative; use a positive duration such as 30s, or 0 for the default", o.Timeout)
	}
	return errors.Join(errs...)
}

func checkReadable(errs *[]error, field, path string) {
	if path == "" {
		return
	}
	f, err := os.Open(path)
	if err != nil {
		*errs = append(*errs, fmt.Errorf("%s: %w; point it at a readable file", field, err))
		return
	}
	f.Close()
}
