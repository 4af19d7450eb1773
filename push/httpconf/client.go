package httpconf

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"net/http"
	"os"
	"time"
)

// NewClient validates o and builds an *http.Client for it. Every request the
// client sends carries the User-Agent, the tenant, the auth header (secrets
// read from files are re-read when the file changes) and the extra headers,
// so wire clients built on it (plain HTTP or connect) need not set them.
func NewClient(o Options) (*http.Client, error) {
	if err := o.Validate(); err != nil {
		return nil, fmt.Errorf("endpoint %s: %w", o.URL, err)
	}
	tlsConf, err := o.TLS.config()
	if err != nil {
		return nil, fmt.Errorf("endpoint %s: %w", o.URL, err)
	}
	timeout := o.Timeout
	if timeout == 0 {
		timeout = DefaultTimeout
	}
	base := &http.Transport{
		Proxy:                 http.ProxyFromEnvironment,
		DialContext:           (&net.Dialer{Timeout: min(timeout, 10*time.Second), KeepAlive: 30 * time.Second}).DialContext,
		TLSClientConfig:       tlsConf,
		TLSHandshakeTimeout:   min(timeout, 10*time.Second),
		ForceAttemptHTTP2:     true,
		MaxIdleConns:          8,
		MaxIdleConnsPerHost:   4,
		IdleConnTimeout:       90 * time.Second,
		ExpectContinueTimeout: time.Second,
	}
	rt := &headerTransport{
		base:    base,
		ua:      o.UserAgent(),
		tenant:  o.Tenant,
		headers: o.Headers,
	}
	switch {
	case o.BasicAuth != nil:
		rt.basicUser = o.BasicAuth.Username
		rt.basicPass = newSecret(o.BasicAuth.Password, o.BasicAuth.PasswordFile)
		rt.hasBasic = true
	case o.BearerToken != "" || o.BearerTokenFile != "":
		rt.bearer = newSecret(o.BearerToken, o.BearerTokenFile)
	}
	return &http.Client{Transport: rt, Timeout: timeout}, nil
}

// config builds the TLS client configuration, loading the CA bundle and the
// client key pair.
func (t TLSOptions) config() (*tls.Config, error) {
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

// headerTransport adds the endpoint's headers to every request.
type headerTransport struct {
	base      http.RoundTripper
	ua        string
	tenant    string
	headers   map[string]string
	hasBasic  bool
	basicUser string
	basicPass *secret
	bearer    *secret
}

// RoundTrip clones the request, sets the endpoint's headers and sends it.
func (t *headerTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	r := req.Clone(req.Context())
	for k, v := range t.headers {
		r.Header.Set(k, v)
	}
	r.Header.Set("User-Agent", t.ua)
	if t.tenant != "" {
		r.Header.Set("X-Scope-OrgID", t.tenant)
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
