package daemon

import (
	"crypto/subtle"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"strings"
	"time"

	"golang.org/x/net/netutil"
)

// HTTPConfig bounds and guards the agent's HTTP servers: the UI and API
// (Config.Listen) and, when MetricsListen is set, a second server with only
// /metrics and /healthz.
type HTTPConfig struct {
	// MetricsListen, when set, serves /metrics and /healthz on an address
	// of their own, so that the UI and API can stay on loopback while
	// Prometheus scrapes the agent from elsewhere.
	MetricsListen string `yaml:"metrics_listen"`
	// BearerTokenFile, when set, holds the token every UI and API request
	// must carry (Authorization: Bearer TOKEN, or the goroscope_token
	// cookie the UI sets from ?token=). It is required to serve the UI on
	// an address other than loopback.
	BearerTokenFile string `yaml:"bearer_token_file"`
	// AllowUnauthenticated serves a UI on a non-loopback address without a
	// token: any host that can reach it reads every watched process's
	// stacks, labels and executable paths. It is logged as a warning.
	AllowUnauthenticated bool `yaml:"allow_unauthenticated"`
	// AllowedHosts are the host names (without port) requests to the UI may
	// name in their Host header, besides IP literals and localhost; it
	// stops DNS rebinding.
	AllowedHosts []string `yaml:"allowed_hosts"`
	// Pprof serves the agent's own /debug/pprof on the UI's address.
	Pprof bool `yaml:"pprof"`
	// Timeouts of one request and of an idle keep-alive connection, and the
	// most connections served at once per listener.
	ReadTimeout    Duration `yaml:"read_timeout"`
	WriteTimeout   Duration `yaml:"write_timeout"`
	IdleTimeout    Duration `yaml:"idle_timeout"`
	MaxConnections int      `yaml:"max_connections"`
	// MaxHeavyRequests bounds the UI requests that read stored payloads
	// (goroutine tables, flame graphs, diffs, downloads) served at once;
	// more are refused with 503. MaxProfileBytes bounds the decompressed
	// size of a stored profile the UI parses (413 past it): a parsed
	// profile takes 5 to 18 times its size in memory. 0 takes the UI's
	// defaults (4, 2MiB), which keep the agent inside 256 MiB.
	MaxHeavyRequests int      `yaml:"max_heavy_requests"`
	MaxProfileBytes  ByteSize `yaml:"max_profile_bytes"`
}

// defaultHTTP is HTTPConfig's default. WriteTimeout leaves room for a
// one-minute /debug/pprof/profile.
func defaultHTTP() HTTPConfig {
	return HTTPConfig{
		ReadTimeout:    Duration(30 * time.Second),
		WriteTimeout:   Duration(2 * time.Minute),
		IdleTimeout:    Duration(2 * time.Minute),
		MaxConnections: 64,
	}
}

// validate checks c for serving the UI on listen.
func (c HTTPConfig) validate(listen string) []string {
	var errs []string
	if c.ReadTimeout <= 0 || c.WriteTimeout <= 0 || c.IdleTimeout <= 0 {
		errs = append(errs, "http.read_timeout, write_timeout and idle_timeout must be positive (e.g. 30s)")
	}
	if c.MaxHeavyRequests < 0 || c.MaxProfileBytes < 0 {
		errs = append(errs, "http.max_heavy_requests and max_profile_bytes must not be negative (0 takes the defaults)")
	}
	if c.MaxConnections < 1 || c.MaxConnections > 4096 {
		errs = append(errs, fmt.Sprintf("http.max_connections %d: want 1 to 4096", c.MaxConnections))
	}
	if listen != "" && !isLoopback(listen) && c.BearerTokenFile == "" && !c.AllowUnauthenticated {
		errs = append(errs, fmt.Sprintf("--listen (listen) %s is not a loopback address: the UI and API show every watched process's stacks and labels, so set http.bearer_token_file (or serve only /metrics there with http.metrics_listen and keep listen on 127.0.0.1; or accept the risk with http.allow_unauthenticated: true)", listen))
	}
	if c.MetricsListen != "" && c.MetricsListen == listen {
		errs = append(errs, "http.metrics_listen equals listen: leave it empty to serve /metrics with the UI")
	}
	return errs
}

// isLoopback reports whether the listen address host:port binds loopback
// only ("" or 0.0.0.0 bind every interface).
func isLoopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// newServer returns a server of h with c's timeouts.
func (c HTTPConfig) newServer(h http.Handler) *http.Server {
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       time.Duration(c.ReadTimeout),
		WriteTimeout:      time.Duration(c.WriteTimeout),
		IdleTimeout:       time.Duration(c.IdleTimeout),
		MaxHeaderBytes:    64 << 10,
	}
}

// listen opens addr with at most c.MaxConnections connections at once.
func (c HTTPConfig) listen(addr string) (net.Listener, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	return netutil.LimitListener(ln, c.MaxConnections), nil
}

// tokenCookie carries the UI token in the browser after ?token=.
const tokenCookie = "goroscope_token"

// guard wraps the UI and API handler: a Host header the agent answers to
// (DNS rebinding), and the bearer token when one is configured. The token
// file is read once, at start.
func (c HTTPConfig) guard(h http.Handler) (http.Handler, error) {
	var token []byte
	if c.BearerTokenFile != "" {
		b, err := os.ReadFile(c.BearerTokenFile)
		if err != nil {
			return nil, fmt.Errorf("http.bearer_token_file: %w", err)
		}
		token = []byte(strings.TrimSpace(string(b)))
		if len(token) < 16 {
			return nil, fmt.Errorf("http.bearer_token_file %s: the token has %d characters; use at least 16 (e.g. openssl rand -hex 32)", c.BearerTokenFile, len(token))
		}
	}
	allowed := map[string]bool{"localhost": true}
	for _, h := range c.AllowedHosts {
		allowed[strings.ToLower(h)] = true
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !hostAllowed(r.Host, allowed) {
			http.Error(w, "misdirected request: unknown Host "+r.Host+" (add it to http.allowed_hosts)", http.StatusMisdirectedRequest)
			return
		}
		if token != nil {
			got, fromQuery := requestToken(r)
			if subtle.ConstantTimeCompare(got, token) != 1 {
				w.Header().Set("WWW-Authenticate", `Bearer realm="goroscope"`)
				http.Error(w, "unauthorized: send Authorization: Bearer TOKEN, or open the UI once with ?token=TOKEN", http.StatusUnauthorized)
				return
			}
			if fromQuery {
				http.SetCookie(w, &http.Cookie{Name: tokenCookie, Value: string(token), Path: "/", HttpOnly: true, SameSite: http.SameSiteStrictMode, Secure: r.TLS != nil})
			}
		}
		h.ServeHTTP(w, r)
	}), nil
}

// requestToken is the token of r: its bearer token, its token cookie, or
// its ?token= (fromQuery).
func requestToken(r *http.Request) (tok []byte, fromQuery bool) {
	if v, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer "); ok {
		return []byte(v), false
	}
	if c, err := r.Cookie(tokenCookie); err == nil {
		return []byte(c.Value), false
	}
	if v := r.URL.Query().Get("token"); v != "" {
		return []byte(v), true
	}
	return nil, false
}

// hostAllowed accepts IP literals, localhost and the allowed names: a
// browser tricked by DNS rebinding sends the attacker's name.
func hostAllowed(hostport string, allowed map[string]bool) bool {
	host := hostport
	if h, _, err := net.SplitHostPort(hostport); err == nil {
		host = h
	}
	host = strings.TrimSuffix(strings.TrimPrefix(host, "["), "]")
	if host == "" {
		return false
	}
	if net.ParseIP(host) != nil {
		return true
	}
	return allowed[strings.ToLower(host)]
}

// errServe wraps a server's failure with its address.
func errServe(addr string, err error) error {
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return fmt.Errorf("serve %s: %w", addr, err)
}
