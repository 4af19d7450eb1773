package daemon

import (
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestHTTPConfigValidate(t *testing.T) {
	tests := []struct {
		name    string
		listen  string
		edit    func(*HTTPConfig)
		wantErr string
	}{
		{name: "loopback", listen: "127.0.0.1:7070"},
		{name: "loopback v6", listen: "[::1]:7070"},
		{name: "localhost", listen: "localhost:7070"},
		{name: "every interface without a token", listen: "0.0.0.0:7070", wantErr: "http.bearer_token_file"},
		{name: "empty host without a token", listen: ":7070", wantErr: "not a loopback address"},
		{name: "pod IP with a token", listen: "10.1.2.3:7070", edit: func(c *HTTPConfig) { c.BearerTokenFile = "/etc/goroscope/token" }},
		{name: "risk accepted", listen: "0.0.0.0:7070", edit: func(c *HTTPConfig) { c.AllowUnauthenticated = true }},
		{name: "no idle timeout", listen: "127.0.0.1:7070", edit: func(c *HTTPConfig) { c.IdleTimeout = 0 }, wantErr: "idle_timeout"},
		{name: "no connections", listen: "127.0.0.1:7070", edit: func(c *HTTPConfig) { c.MaxConnections = 0 }, wantErr: "max_connections"},
		{name: "metrics on the UI's address", listen: "127.0.0.1:7070", edit: func(c *HTTPConfig) { c.MetricsListen = "127.0.0.1:7070" }, wantErr: "metrics_listen"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c := defaultHTTP()
			if tt.edit != nil {
				tt.edit(&c)
			}
			errs := strings.Join(c.validate(tt.listen), "; ")
			if (errs != "") != (tt.wantErr != "") || !strings.Contains(errs, tt.wantErr) {
				t.Errorf("validate(%s) = %q, want an error with %q", tt.listen, errs, tt.wantErr)
			}
		})
	}
}

func TestGuard(t *testing.T) {
	token := "0123456789abcdef0123"
	tokenFile := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(tokenFile, []byte(token+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	ok := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") })
	withToken, err := HTTPConfig{BearerTokenFile: tokenFile, AllowedHosts: []string{"goroscope.example"}}.guard(ok)
	if err != nil {
		t.Fatal(err)
	}
	open, err := HTTPConfig{}.guard(ok)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name       string
		h          http.Handler
		host, url  string
		header     http.Header
		cookie     *http.Cookie
		wantStatus int
		wantCookie bool
	}{
		{name: "loopback IP", h: open, host: "127.0.0.1:7070", url: "/", wantStatus: 200},
		{name: "localhost", h: open, host: "localhost:7070", url: "/api/processes", wantStatus: 200},
		{name: "IPv6 literal", h: open, host: "[::1]:7070", url: "/", wantStatus: 200},
		{name: "DNS rebinding", h: open, host: "attacker.example:7070", url: "/api/processes", wantStatus: http.StatusMisdirectedRequest},
		{name: "no Host", h: open, host: "", url: "/", wantStatus: http.StatusMisdirectedRequest},
		{name: "allowed name", h: withToken, host: "GOROSCOPE.example", url: "/", header: http.Header{"Authorization": {"Bearer " + token}}, wantStatus: 200},
		{name: "no token", h: withToken, host: "10.0.0.1:7070", url: "/api/processes", wantStatus: http.StatusUnauthorized},
		{name: "wrong token", h: withToken, host: "10.0.0.1:7070", url: "/", header: http.Header{"Authorization": {"Bearer " + token + "x"}}, wantStatus: http.StatusUnauthorized},
		{name: "bearer token", h: withToken, host: "10.0.0.1:7070", url: "/", header: http.Header{"Authorization": {"Bearer " + token}}, wantStatus: 200},
		{name: "query token sets the cookie", h: withToken, host: "10.0.0.1:7070", url: "/?token=" + token, wantStatus: 200, wantCookie: true},
		{name: "cookie", h: withToken, host: "10.0.0.1:7070", url: "/api/processes", cookie: &http.Cookie{Name: tokenCookie, Value: token}, wantStatus: 200},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r := httptest.NewRequest(http.MethodGet, tt.url, nil)
			r.Host = tt.host
			for k, v := range tt.header {
				r.Header[k] = v
			}
			if tt.cookie != nil {
				r.AddCookie(tt.cookie)
			}
			w := httptest.NewRecorder()
			tt.h.ServeHTTP(w, r)
			if w.Code != tt.wantStatus {
				t.Errorf("status %d, want %d (%s)", w.Code, tt.wantStatus, strings.TrimSpace(w.Body.String()))
			}
			if got := strings.Contains(w.Header().Get("Set-Cookie"), tokenCookie+"="); got != tt.wantCookie {
				t.Errorf("Set-Cookie %q, want a token cookie %v", w.Header().Get("Set-Cookie"), tt.wantCookie)
			}
		})
	}
}

func TestGuardRefusesShortTokens(t *testing.T) {
	f := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(f, []byte("short"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := (HTTPConfig{BearerTokenFile: f}).guard(http.NotFoundHandler()); err == nil || !strings.Contains(err.Error(), "at least 16") {
		t.Errorf("guard with a 5-character token: %v, want an error asking for 16", err)
	}
	if _, err := (HTTPConfig{BearerTokenFile: filepath.Join(t.TempDir(), "missing")}).guard(http.NotFoundHandler()); err == nil || !strings.Contains(err.Error(), "http.bearer_token_file") {
		t.Errorf("guard with a missing token file: %v, want an error naming the key", err)
	}
}

// TestAgentHandlerPprof: /debug/pprof is served only when asked for, and
// /metrics and /healthz also on the separate metrics handler.
func TestAgentHandlerPprof(t *testing.T) {
	for _, pprofOn := range []bool{false, true} {
		cfg := DefaultConfig()
		cfg.DataDir = t.TempDir()
		cfg.HTTP.Pprof = pprofOn
		a, err := New(cfg, slog.New(slog.NewTextHandler(io.Discard, nil)), "dev")
		if err != nil {
			t.Fatal(err)
		}
		h, err := a.handler()
		if err != nil {
			t.Fatal(err)
		}
		get := func(h http.Handler, path string) (int, string) {
			r := httptest.NewRequest(http.MethodGet, path, nil)
			r.Host = "127.0.0.1:7070"
			w := httptest.NewRecorder()
			h.ServeHTTP(w, r)
			return w.Code, w.Body.String()
		}
		code, body := get(h, "/debug/pprof/")
		if served := code == 200 && strings.Contains(body, "goroutine"); served != pprofOn {
			t.Errorf("pprof %v: /debug/pprof/ answered %d (%d bytes)", pprofOn, code, len(body))
		}
		for _, path := range []string{"/metrics", "/healthz"} {
			for name, hh := range map[string]http.Handler{"main": h, "metrics": a.metricsHandler()} {
				if code, _ := get(hh, path); code != 200 && code != http.StatusServiceUnavailable {
					t.Errorf("%s handler %s: %d", name, path, code)
				}
			}
		}
		if code, _ := get(a.metricsHandler(), "/api/processes"); code != http.StatusNotFound {
			t.Errorf("metrics handler serves the API: %d", code)
		}
		if err := a.close(); err != nil {
			t.Error(err)
		}
	}
}

// TestConnectionCap: a listener of MaxConnections 2 serves a third
// connection only once one of the first two has gone.
func TestConnectionCap(t *testing.T) {
	c := defaultHTTP()
	c.MaxConnections = 2
	ln, err := c.listen("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := c.newServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") }))
	go func() { _ = srv.Serve(ln) }() // ends with ErrServerClosed at cleanup
	t.Cleanup(func() { srv.Close() })
	addr := ln.Addr().String()
	var idle []net.Conn
	for range 2 {
		conn, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		idle = append(idle, conn)
	}
	third, err := net.Dial("tcp", addr) // the kernel accepts it; the server does not serve it yet
	if err != nil {
		t.Fatal(err)
	}
	defer third.Close()
	if _, err := io.WriteString(third, "GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 64)
	if err := third.SetReadDeadline(time.Now().Add(300 * time.Millisecond)); err != nil { // nothing may come while two are held
		t.Fatal(err)
	}
	if n, err := third.Read(buf); err == nil {
		t.Fatalf("a third connection was served past the cap of 2: %q", buf[:n])
	}
	idle[0].Close()
	if err := third.SetReadDeadline(time.Now().Add(10 * time.Second)); err != nil {
		t.Fatal(err)
	}
	n, err := third.Read(buf)
	if err != nil || !strings.HasPrefix(string(buf[:n]), "HTTP/1.1 200") {
		t.Fatalf("third connection after one closed: %q, %v", buf[:n], err)
	}
	idle[1].Close()
}
