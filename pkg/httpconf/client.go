package httpconf

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"time"
)

// ClientOptions are what the program, not the configuration, adds to every
// request.
type ClientOptions struct {
	// Version is goroscope's version, sent as User-Agent
	// "goroscope/<Version>"; empty means "dev".
	Version string
	// Header is set on every request after the configured headers, e.g. a
	// push endpoint's X-Scope-OrgID. The caller's validation keeps the
	// configured headers from naming these.
	Header map[string]string
	// Origin is the configured server's URL. Only requests to its origin
	// (scheme, host and port) carry the auth, the configured headers and
	// Header, and only redirects to it are followed. nil means the origin
	// of the request that starts each exchange.
	Origin *url.URL
}

// UserAgent is the User-Agent header value for version; empty means "dev".
func UserAgent(version string) string {
	if version == "" {
		version = "dev"
	}
	return "goroscope/" + version
}

// NewClient validates c and builds an *http.Client for it. Every request the
// client sends carries the User-Agent, the auth header (secrets read from
// files are re-read when the file changes), the configured headers and
// o.Header, so wire clients built on it (plain HTTP or connect) need not set
// them; requests to another origin than o.Origin get none of them.
// Redirects are followed only for a GET or HEAD, to o.Origin, at most
// MaxRedirects times; any other redirect fails the request with a
// *RedirectError. Requests go through c.ProxyURL, else the environment's
// proxy.
func NewClient(c HTTPClientConfig, o ClientOptions) (*http.Client, error) {
	if err := c.Validate(nil); err != nil {
		return nil, err
	}
	tlsConf, err := c.TLS.config()
	if err != nil {
		return nil, err
	}
	proxy := http.ProxyFromEnvironment
	if u, _ := c.proxy(); u != nil { // validated above
		proxy = http.ProxyURL(u)
	}
	timeout := c.Timeout
	if timeout == 0 {
		timeout = DefaultTimeout
	}
	base := &http.Transport{
		Proxy:                 proxy,
		DialContext:           (&net.Dialer{Timeout: min(timeout, 10*time.Second), KeepAlive: 30 * time.Second}).DialContext,
		TLSClientConfig:       tlsConf,
		TLSHandshakeTimeout:   min(timeout, 10*time.Second),
		ForceAttemptHTTP2:     true,
		MaxIdleConns:          8,
		MaxIdleConnsPerHost:   4,
		IdleConnTimeout:       90 * time.Second,
		ExpectContinueTimeout: time.Second,
	}
	rt := &headerTransport{base: base, ua: UserAgent(o.Version), origin: o.Origin, headers: c.Headers, fixed: o.Header}
	switch {
	case c.BasicAuth != nil:
		rt.basicUser = c.BasicAuth.Username
		rt.basicPass = newSecret(c.BasicAuth.Password, c.BasicAuth.PasswordFile)
		rt.hasBasic = true
	case c.BearerToken != "" || c.BearerTokenFile != "":
		rt.bearer = newSecret(c.BearerToken, c.BearerTokenFile)
	}
	return &http.Client{Transport: rt, CheckRedirect: checkRedirect(o.Origin), Timeout: timeout}, nil
}

// config builds the TLS client configuration, loading the CA bundle and the
// client key pair.
func (t TLSConfig) config() (*tls.Config, error) {
	c := &tls.Config{
		MinVersion:         tls.VersionTLS12,
		ServerName:         t.ServerName,
		InsecureSkipVerify: t.InsecureSkipVerify, //nolint:gosec // opt-in, documented as tests only
	}
	if t.CAFile != "" {
		pem, err := os.ReadFile(t.CAFile)
		if err != nil {
			return nil, fmt.Errorf("tls.ca_file: %w; point it at a readable PEM bundle", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("tls.ca_file: %s holds no PEM certificate; give a PEM CA bundle", t.CAFile)
		}
		c.RootCAs = pool
	}
	if t.CertFile != "" {
		pair, err := tls.LoadX509KeyPair(t.CertFile, t.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("tls.cert_file/key_file: %w; give a matching PEM certificate and key", err)
		}
		c.Certificates = []tls.Certificate{pair}
	}
	return c, nil
}

// headerTransport adds the User-Agent to every request, and the auth, the
// configured and the fixed headers to those for origin (nil: the origin of
// the request that started the exchange).
type headerTransport struct {
	base      http.RoundTripper
	ua        string
	origin    *url.URL
	headers   map[string]string
	fixed     map[string]string
	hasBasic  bool
	basicUser string
	basicPass *secret
	bearer    *secret
}

// RoundTrip clones the request, sets the headers and sends it.
func (t *headerTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	r := req.Clone(req.Context())
	r.Header.Set("User-Agent", t.ua)
	home := t.origin
	if home == nil {
		home = firstRequest(req).URL
	}
	if !sameOrigin(home, req.URL) {
		return t.base.RoundTrip(r)
	}
	for k, v := range t.headers {
		r.Header.Set(k, v)
	}
	for k, v := range t.fixed {
		r.Header.Set(k, v)
	}
	switch {
	case t.hasBasic:
		pass, err := t.basicPass.get()
		if err != nil {
			closeBody(req)
			return nil, fmt.Errorf("basic_auth.password_file: %w", err)
		}
		r.SetBasicAuth(t.basicUser, pass)
	case t.bearer != nil:
		tok, err := t.bearer.get()
		if err != nil {
			closeBody(req)
			return nil, fmt.Errorf("bearer_token_file: %w", err)
		}
		r.Header.Set("Authorization", "Bearer "+tok)
	}
	return t.base.RoundTrip(r)
}

// CloseIdleConnections lets http.Client.CloseIdleConnections reach the base.
func (t *headerTransport) CloseIdleConnections() {
	if c, ok := t.base.(interface{ CloseIdleConnections() }); ok {
		c.CloseIdleConnections()
	}
}

func closeBody(r *http.Request) {
	if r.Body != nil {
		r.Body.Close()
	}
}
