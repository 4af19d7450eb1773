package httpconf

import (
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestProxyURLValidate(t *testing.T) {
	tests := []struct {
		proxy string
		want  string // substring of the error; empty means valid
	}{
		{"", ""},
		{"http://proxy.example:3128", ""},
		{"https://proxy.example", ""},
		{"socks5://127.0.0.1:1080", ""},
		{"http://user:secret@proxy.example:3128", ""},
		{"ftp://proxy.example", `proxy_url: scheme "ftp" is not supported; use http://, https:// or socks5://`},
		{"socks4://proxy.example:1080", `proxy_url: scheme "socks4" is not supported`},
		{"proxy.example:3128", `proxy_url: scheme "proxy.example" is not supported`},
		{"http://", `proxy_url: "http:" has no host; give e.g. http://proxy.example:3128`},
		{"http://user:secret@/x", `has no host`},
		{"http://[::1", "proxy_url: does not parse"},
		{"http://user:secret@[::1", "proxy_url: does not parse"},
	}
	for _, tt := range tests {
		c := HTTPClientConfig{ProxyURL: tt.proxy}
		err := c.Validate(nil)
		if tt.want == "" {
			if err != nil {
				t.Errorf("proxy_url %q: %v, want valid", tt.proxy, err)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("proxy_url %q: %v, want an error containing %q", tt.proxy, err, tt.want)
			continue
		}
		if strings.Contains(err.Error(), "secret") {
			t.Errorf("proxy_url %q: the error %q shows the password", tt.proxy, err)
		}
		if _, err := NewClient(c, ClientOptions{}); err == nil {
			t.Errorf("proxy_url %q: NewClient accepted it", tt.proxy)
		}
	}
}

// proxyLog is what the test proxy saw: the request targets and the
// Proxy-Authorization headers.
type proxyLog struct {
	mu      sync.Mutex
	targets []string
	auth    []string
}

func (l *proxyLog) add(target, auth string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.targets = append(l.targets, target)
	l.auth = append(l.auth, auth)
}

func (l *proxyLog) get() ([]string, []string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.targets...), append([]string(nil), l.auth...)
}

// startProxy runs a forward HTTP proxy on loopback: absolute-form requests
// are forwarded, CONNECT is tunnelled.
func startProxy(t *testing.T) (*httptest.Server, *proxyLog) {
	t.Helper()
	log := &proxyLog{}
	fwd := &http.Transport{} // no proxy of its own
	t.Cleanup(fwd.CloseIdleConnections)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		log.add(r.Method+" "+r.RequestURI, r.Header.Get("Proxy-Authorization"))
		if r.Method == http.MethodConnect {
			upstream, err := net.DialTimeout("tcp", r.Host, 5*time.Second)
			if err != nil {
				http.Error(w, err.Error(), http.StatusBadGateway)
				return
			}
			w.WriteHeader(http.StatusOK)
			conn, brw, err := http.NewResponseController(w).Hijack()
			if err != nil {
				upstream.Close()
				return
			}
			go func() {
				_, _ = io.Copy(upstream, brw)
				upstream.Close()
			}()
			_, _ = io.Copy(conn, upstream)
			conn.Close()
			return
		}
		if !r.URL.IsAbs() {
			http.Error(w, "not a proxy request", http.StatusBadRequest)
			return
		}
		out := r.Clone(r.Context())
		out.RequestURI = ""
		out.Header.Del("Proxy-Authorization")
		out.Header.Del("Proxy-Connection")
		resp, err := fwd.RoundTrip(out)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		defer resp.Body.Close()
		for k, vs := range resp.Header {
			w.Header()[k] = vs
		}
		w.Header().Set("X-Via-Test-Proxy", "1")
		w.WriteHeader(resp.StatusCode)
		_, _ = io.Copy(w, resp.Body)
	}))
	t.Cleanup(srv.Close)
	return srv, log
}

// TestProxyURLRequests: with proxy_url set, requests to a plain http server
// are forwarded by the proxy and requests to an https server are tunnelled
// through it, the proxy's credentials going to the proxy only; a proxy that
// is down fails the request although the server is up.
func TestProxyURLRequests(t *testing.T) {
	proxy, plog := startProxy(t)
	origin, seen := headerRecorder(t)
	tlsOrigin := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(tlsOrigin.Close)
	dead := httptest.NewServer(http.NotFoundHandler())
	deadURL := dead.URL
	dead.Close()

	withCreds := strings.Replace(proxy.URL, "http://", "http://agent:pw@", 1)
	tests := []struct {
		name, proxy, target string
		tls                 TLSConfig
		wantSeen, wantAuth  string // what the proxy saw: method and request URI; Proxy-Authorization
		wantErr             string
	}{
		{name: "http forwarded", proxy: proxy.URL, target: origin.URL + "/push",
			wantSeen: "POST " + origin.URL + "/push"},
		{name: "http forwarded with proxy credentials", proxy: withCreds, target: origin.URL + "/push",
			wantSeen: "POST " + origin.URL + "/push", wantAuth: "Basic YWdlbnQ6cHc="}, // agent:pw
		{name: "https tunnelled", proxy: proxy.URL, target: tlsOrigin.URL, tls: TLSConfig{InsecureSkipVerify: true},
			wantSeen: "CONNECT " + strings.TrimPrefix(tlsOrigin.URL, "https://")},
		{name: "proxy down", proxy: deadURL, target: origin.URL, wantErr: "proxyconnect"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before, _ := plog.get()
			c, err := NewClient(HTTPClientConfig{ProxyURL: tt.proxy, TLS: tt.tls, Timeout: 5 * time.Second}, ClientOptions{})
			if err != nil {
				t.Fatal(err)
			}
			defer c.CloseIdleConnections()
			err = do(t, c, tt.target)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("request: %v, want an error containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("request: %v", err)
			}
			targets, auths := plog.get()
			if len(targets) != len(before)+1 {
				t.Fatalf("the proxy saw %q, want one more request", targets)
			}
			if got := targets[len(targets)-1]; got != tt.wantSeen {
				t.Errorf("the proxy saw %q, want %q", got, tt.wantSeen)
			}
			if got := auths[len(auths)-1]; got != tt.wantAuth {
				t.Errorf("Proxy-Authorization at the proxy = %q, want %q", got, tt.wantAuth)
			}
			if tt.tls == (TLSConfig{}) {
				if h := <-seen; h.Get("Proxy-Authorization") != "" {
					t.Errorf("the server got the proxy's credentials")
				}
			}
		})
	}
}
