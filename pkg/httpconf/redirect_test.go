package httpconf

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"
)

// redirector is a server that answers /go with status to target and
// records the headers of every other request it serves.
func redirector(t *testing.T, status int, target func() string) (*httptest.Server, <-chan http.Header) {
	t.Helper()
	ch := make(chan http.Header, 16)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.URL.Path, "/go") {
			http.Redirect(w, r, target(), status)
			return
		}
		ch <- r.Header.Clone()
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(srv.Close)
	return srv, ch
}

// send sends one request with a body for POST, like the wire clients do.
func send(t *testing.T, c *http.Client, method, u string) error {
	t.Helper()
	var body io.Reader
	if method == http.MethodPost {
		body = strings.NewReader("payload")
	}
	req, err := http.NewRequestWithContext(context.Background(), method, u, body)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := c.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	if resp.StatusCode/100 != 2 {
		return errors.New(resp.Status)
	}
	return nil
}

func mustParse(t *testing.T, raw string) *url.URL {
	t.Helper()
	u, err := ParseURL(raw)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

// secretHeaders are what must never reach another origin.
var secretHeaders = []string{"Authorization", "X-Scope-OrgID", "X-Extra"}

func TestRedirects(t *testing.T) {
	auths := []struct {
		name string
		cfg  HTTPClientConfig
		want string // the Authorization the origin gets
	}{
		{"basic", HTTPClientConfig{BasicAuth: &BasicAuth{Username: "agent", Password: "s3cret"}}, "Basic YWdlbnQ6czNjcmV0"},
		{"bearer", HTTPClientConfig{BearerToken: "tok"}, "Bearer tok"},
	}
	other, otherGot := headerRecorder(t) // the second origin
	tests := []struct {
		name    string
		status  int
		method  string
		to      func(home string) string // the Location, given the redirecting server's URL
		wantErr []string                 // none: the request succeeds at the origin
	}{
		{"302 GET elsewhere", http.StatusFound, http.MethodGet, func(string) string { return other.URL + "/x" },
			[]string{"302 Found redirecting to " + other.URL + "/x", "is not the configured origin", "configure the final URL"}},
		{"307 GET elsewhere", http.StatusTemporaryRedirect, http.MethodGet, func(string) string { return other.URL + "/x" },
			[]string{"307 Temporary Redirect", "configure the final URL"}},
		{"308 GET elsewhere", http.StatusPermanentRedirect, http.MethodGet, func(string) string { return other.URL + "/x" },
			[]string{"308 Permanent Redirect", "configure the final URL"}},
		{"307 POST elsewhere", http.StatusTemporaryRedirect, http.MethodPost, func(string) string { return other.URL + "/x" },
			[]string{"a POST is never redirected", "configure the final URL"}},
		{"302 GET same origin", http.StatusFound, http.MethodGet, func(home string) string { return home + "/final" }, nil},
		{"308 GET same origin", http.StatusPermanentRedirect, http.MethodGet, func(string) string { return "/final" }, nil},
		{"307 POST same origin", http.StatusTemporaryRedirect, http.MethodPost, func(home string) string { return home + "/final" },
			[]string{"a POST is never redirected", "redirecting to http://127.0.0.1"}},
		{"another name, same port", http.StatusFound, http.MethodGet, func(home string) string {
			return strings.Replace(home, "127.0.0.1", "localhost", 1) + "/x"
		}, []string{"redirecting to http://localhost:", "is not the configured origin"}},
		{"too many", http.StatusFound, http.MethodGet, func(home string) string { return home + "/go" }, []string{"more than 3 redirects"}},
	}
	for _, a := range auths {
		for _, tt := range tests {
			t.Run(a.name+"/"+tt.name, func(t *testing.T) {
				var home string
				srv, got := redirector(t, tt.status, func() string { return tt.to(home) })
				home = srv.URL
				cfg := a.cfg
				cfg.Headers = map[string]string{"X-Extra": "custom"}
				c, err := NewClient(cfg, ClientOptions{Origin: mustParse(t, srv.URL), Header: map[string]string{"X-Scope-OrgID": "team-a"}})
				if err != nil {
					t.Fatal(err)
				}
				err = send(t, c, tt.method, srv.URL+"/go")
				wantErrors(t, tt.method+" /go", err, tt.wantErr)
				if err != nil {
					var re *RedirectError
					if !errors.As(err, &re) || re.Status != tt.status {
						t.Errorf("err = %#v, want a *RedirectError with status %d", err, tt.status)
					}
				}
				select {
				case h := <-otherGot:
					t.Errorf("the other origin got a request (Authorization %q, X-Scope-OrgID %q)", h.Get("Authorization"), h.Get("X-Scope-OrgID"))
				default:
				}
				if tt.wantErr != nil {
					return
				}
				h := <-got // the same origin's final request carries everything again
				for k, v := range map[string]string{"Authorization": a.want, "X-Scope-OrgID": "team-a", "X-Extra": "custom"} {
					if h.Get(k) != v {
						t.Errorf("after the redirect %s = %q, want %q", k, h.Get(k), v)
					}
				}
			})
		}
	}
}

func TestRedirectHTTPSToHTTP(t *testing.T) {
	plain, plainGot := headerRecorder(t)
	pki := newTestPKI(t, "127.0.0.1")
	// The same host and port in http: only the scheme differs.
	var secure *httptest.Server
	secure = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, strings.Replace(secure.URL, "https://", "http://", 1)+"/x", http.StatusFound)
	}))
	secure.TLS = &tls.Config{Certificates: []tls.Certificate{pki.serverCert}}
	secure.StartTLS()
	t.Cleanup(secure.Close)
	down := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, plain.URL+"/x", http.StatusMovedPermanently)
	}))
	t.Cleanup(down.Close)
	for _, u := range []string{secure.URL, down.URL} {
		c, err := NewClient(HTTPClientConfig{BearerToken: "tok", TLS: TLSConfig{CAFile: pki.caFile, InsecureSkipVerify: true}, Timeout: 5 * time.Second},
			ClientOptions{Origin: mustParse(t, u)})
		if err != nil {
			t.Fatal(err)
		}
		err = send(t, c, http.MethodGet, u)
		wantErrors(t, "GET "+u, err, []string{"redirecting to http://", "is not the configured origin https://", "configure the final URL"})
	}
	select {
	case <-plainGot:
		t.Error("the plain http server got a request")
	default:
	}
}

// A request the caller sends to another origin itself goes out without the
// auth or the headers.
func TestHeadersOnlyToOrigin(t *testing.T) {
	home, homeGot := headerRecorder(t)
	other, otherGot := headerRecorder(t)
	c, err := NewClient(HTTPClientConfig{BearerToken: "tok", Headers: map[string]string{"X-Extra": "custom"}},
		ClientOptions{Version: "1", Origin: mustParse(t, home.URL+"/api"), Header: map[string]string{"X-Scope-OrgID": "team-a"}})
	if err != nil {
		t.Fatal(err)
	}
	for _, u := range []string{home.URL + "/other/path", other.URL} {
		if err := send(t, c, http.MethodGet, u); err != nil {
			t.Fatal(err)
		}
	}
	if h := <-homeGot; h.Get("Authorization") != "Bearer tok" || h.Get("X-Scope-OrgID") != "team-a" {
		t.Errorf("the origin got Authorization %q, X-Scope-OrgID %q; want both", h.Get("Authorization"), h.Get("X-Scope-OrgID"))
	}
	h := <-otherGot
	for _, k := range secretHeaders {
		if v := h.Get(k); v != "" {
			t.Errorf("another origin got %s: %q", k, v)
		}
	}
	if ua := h.Get("User-Agent"); ua != "goroscope/1" {
		t.Errorf("another origin got User-Agent %q, want goroscope/1", ua)
	}
}

func TestOrigin(t *testing.T) {
	tests := []struct{ a, b string }{
		{"http://h", "http://H:80/x"},
		{"https://h/", "https://h:443"},
		{"http://[::1]:8080", "http://[::1]:8080/y"},
	}
	for _, tt := range tests {
		if !sameOrigin(mustParse(t, tt.a), mustParse(t, tt.b)) {
			t.Errorf("sameOrigin(%s, %s) = false", tt.a, tt.b)
		}
	}
	for _, tt := range []struct{ a, b string }{
		{"http://h", "https://h"},
		{"http://h:80", "http://h:8080"},
		{"http://h", "http://h.evil"},
	} {
		if sameOrigin(mustParse(t, tt.a), mustParse(t, tt.b)) {
			t.Errorf("sameOrigin(%s, %s) = true", tt.a, tt.b)
		}
	}
}
