package httpconf

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestValidate(t *testing.T) {
	dir := t.TempDir()
	missing := filepath.Join(dir, "missing")
	tests := []struct {
		name   string
		server string // the URL the config is for; empty means unknown
		cfg    HTTPClientConfig
		want   []string // substrings of the error; none means valid
	}{
		{"zero", "http://127.0.0.1:9090/api/v1/write", HTTPClientConfig{}, nil},
		{"https with everything", "https://h:1/x", HTTPClientConfig{BearerToken: "tok", Headers: map[string]string{"X-Extra": "1"},
			TLS: TLSConfig{ServerName: "h"}, ProxyURL: "http://proxy:3128", Timeout: time.Second}, nil},
		{"tls on http", "http://h/x", HTTPClientConfig{TLS: TLSConfig{ServerName: "h"}}, []string{"tls: set for a plain http URL"}},
		{"tls, server unknown", "", HTTPClientConfig{TLS: TLSConfig{ServerName: "h"}}, nil},
		{"basic without user", "", HTTPClientConfig{BasicAuth: &BasicAuth{Password: "p"}}, []string{"basic_auth.username: missing"}},
		{"basic both passwords", "", HTTPClientConfig{BasicAuth: &BasicAuth{Username: "u", Password: "p", PasswordFile: missing}},
			[]string{"password and password_file are both set", "basic_auth.password_file: open " + missing}},
		{"basic and bearer", "", HTTPClientConfig{BasicAuth: &BasicAuth{Username: "u"}, BearerToken: "t"}, []string{"one kind of auth"}},
		{"both bearer", "", HTTPClientConfig{BearerToken: "t", BearerTokenFile: missing},
			[]string{"bearer_token and bearer_token_file are both set", "bearer_token_file: open"}},
		{"bad header name", "", HTTPClientConfig{Headers: map[string]string{"a b": "1"}}, []string{`headers.a b: "a b" is not a valid header name`}},
		{"reserved header", "", HTTPClientConfig{Headers: map[string]string{"content-type": "x"}}, []string{"headers.content-type: Content-Type is set by the client"}},
		{"auth header twice", "", HTTPClientConfig{BearerToken: "t", Headers: map[string]string{"Authorization": "x"}}, []string{"Authorization is set by basic_auth/bearer_token"}},
		{"cert without key", "", HTTPClientConfig{TLS: TLSConfig{CertFile: missing}}, []string{"cert_file and key_file go together", "tls.cert_file: open"}},
		{"missing ca", "", HTTPClientConfig{TLS: TLSConfig{CAFile: missing}}, []string{"tls.ca_file: open " + missing}},
		{"negative timeout", "", HTTPClientConfig{Timeout: -time.Second}, []string{"timeout: -1s is negative"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var server *url.URL
			if tt.server != "" {
				var err error
				if server, err = ParseURL(tt.server); err != nil {
					t.Fatal(err)
				}
			}
			err := tt.cfg.Validate(server)
			wantErrors(t, "Validate()", err, tt.want)
			if _, cerr := NewClient(tt.cfg, ClientOptions{}); server == nil && (cerr == nil) != (err == nil) {
				t.Errorf("NewClient: %v, but Validate: %v", cerr, err)
			}
		})
	}
}

func TestParseURL(t *testing.T) {
	tests := []struct {
		in   string
		want []string // substrings of the error; none means valid
	}{
		{"http://127.0.0.1:9090/api/v1/write", nil},
		{"https://h", nil},
		{"/api/v1/write", []string{`url: scheme "" is not supported`, "has no host"}},
		{"127.0.0.1:6060", []string{"url: \"127.0.0.1:6060\" does not parse"}},
		{"ftp://h/x", []string{`url: scheme "ftp" is not supported; use http:// or https://`}},
		{"http://u:p@h/x", []string{"url: credentials in the URL are not allowed; use basic_auth instead"}},
	}
	for _, tt := range tests {
		u, err := ParseURL(tt.in)
		wantErrors(t, fmt.Sprintf("ParseURL(%q)", tt.in), err, tt.want)
		if err == nil && u == nil {
			t.Errorf("ParseURL(%q) = nil, nil", tt.in)
		}
	}
}

// wantErrors checks that err holds each of want, or that it is nil when
// want is empty.
func wantErrors(t *testing.T, call string, err error, want []string) {
	t.Helper()
	if err != nil && len(want) == 0 {
		t.Errorf("%s = %v, want no error", call, err)
	}
	for _, w := range want {
		if got := fmt.Sprint(err); !strings.Contains(got, w) {
			t.Errorf("%s = %s, want an error containing %q", call, got, w)
		}
	}
}

// headerRecorder is a server that records the headers of every request.
func headerRecorder(t *testing.T) (*httptest.Server, <-chan http.Header) {
	ch := make(chan http.Header, 16)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ch <- r.Header.Clone()
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(srv.Close)
	return srv, ch
}

func do(t *testing.T, c *http.Client, url string) error {
	t.Helper()
	req, err := http.NewRequestWithContext(context.Background(), http.MethodPost, url, strings.NewReader("x"))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "text/plain")
	resp, err := c.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("HTTP %d", resp.StatusCode)
	}
	return nil
}

func TestHeaders(t *testing.T) {
	srv, got := headerRecorder(t)
	dir := t.TempDir()
	passFile := filepath.Join(dir, "pass")
	if err := os.WriteFile(passFile, []byte("s3cret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := NewClient(HTTPClientConfig{
		BasicAuth: &BasicAuth{Username: "agent", PasswordFile: passFile},
		Headers:   map[string]string{"X-Extra": "yes"},
	}, ClientOptions{Version: "1.2.3", Header: map[string]string{"X-Scope-OrgID": "team-a"}})
	if err != nil {
		t.Fatal(err)
	}
	if err := do(t, c, srv.URL); err != nil {
		t.Fatal(err)
	}
	h := <-got
	want := map[string]string{
		"User-Agent":    "goroscope/1.2.3",
		"X-Scope-Orgid": "team-a",
		"X-Extra":       "yes",
		"Content-Type":  "text/plain",
		"Authorization": "Basic YWdlbnQ6czNjcmV0", // agent:s3cret
	}
	for k, v := range want {
		if h.Get(k) != v {
			t.Errorf("header %s = %q, want %q", k, h.Get(k), v)
		}
	}

	// A rewritten password file is picked up by the next request.
	if err := os.WriteFile(passFile, []byte("rotated"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := do(t, c, srv.URL); err != nil {
		t.Fatal(err)
	}
	if a := (<-got).Get("Authorization"); a != "Basic YWdlbnQ6cm90YXRlZA==" {
		t.Errorf("after rotation Authorization = %q, want agent:rotated", a)
	}
}

func TestBearerTokenFileRotation(t *testing.T) {
	srv, got := headerRecorder(t)
	tokFile := filepath.Join(t.TempDir(), "token")
	write := func(s string) {
		// Rotate as Kubernetes does: write a new file and rename it over the old.
		tmp := tokFile + ".tmp"
		if err := os.WriteFile(tmp, []byte(s), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, tokFile); err != nil {
			t.Fatal(err)
		}
	}
	write("tok-0001")
	c, err := NewClient(HTTPClientConfig{BearerTokenFile: tokFile}, ClientOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for i, tok := range []string{"tok-0001", "tok-0002", "tok-0003"} {
		if i > 0 {
			write(tok) // same length: only the inode or mtime tells
		}
		if err := do(t, c, srv.URL); err != nil {
			t.Fatal(err)
		}
		if a := (<-got).Get("Authorization"); a != "Bearer "+tok {
			t.Errorf("request %d: Authorization = %q, want %q", i, a, "Bearer "+tok)
		}
	}
	// A token file that disappears fails the request with the field named.
	if err := os.Remove(tokFile); err != nil {
		t.Fatal(err)
	}
	err = do(t, c, srv.URL)
	if err == nil || !strings.Contains(err.Error(), "bearer_token_file") {
		t.Errorf("with the token file gone: %v, want a bearer_token_file error", err)
	}
}

func TestTLS(t *testing.T) {
	pki := newTestPKI(t, "127.0.0.1", "receiver.test")
	start := func(clientAuth tls.ClientAuthType) (*httptest.Server, <-chan string) {
		cn := make(chan string, 4)
		srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			name := ""
			if len(r.TLS.PeerCertificates) > 0 {
				name = r.TLS.PeerCertificates[0].Subject.CommonName
			}
			cn <- name
			w.WriteHeader(http.StatusNoContent)
		}))
		srv.TLS = &tls.Config{Certificates: []tls.Certificate{pki.serverCert}, ClientAuth: clientAuth, ClientCAs: pki.caPool}
		srv.StartTLS()
		t.Cleanup(srv.Close)
		return srv, cn
	}
	plain, _ := start(tls.NoClientCert)
	mtls, peer := start(tls.RequireAndVerifyClientCert)
	hostURL := strings.Replace(plain.URL, "127.0.0.1", "localhost", 1)

	tests := []struct {
		name    string
		url     string
		tls     TLSConfig
		wantErr string
		wantCN  string
	}{
		{"trusted CA", plain.URL, TLSConfig{CAFile: pki.caFile}, "", ""},
		{"system roots reject test CA", plain.URL, TLSConfig{}, "certificate signed by unknown authority", ""},
		{"server name overrides host", hostURL, TLSConfig{CAFile: pki.caFile, ServerName: "receiver.test"}, "", ""},
		{"wrong host without server name", hostURL, TLSConfig{CAFile: pki.caFile}, "not localhost", ""},
		{"insecure skip verify", plain.URL, TLSConfig{InsecureSkipVerify: true}, "", ""},
		{"mTLS without client cert", mtls.URL, TLSConfig{CAFile: pki.caFile}, "certificate required", ""},
		{"mTLS with client cert", mtls.URL, TLSConfig{CAFile: pki.caFile, CertFile: pki.clientCert, KeyFile: pki.clientKey}, "", "goroscope-agent"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := NewClient(HTTPClientConfig{TLS: tt.tls, Timeout: 5 * time.Second}, ClientOptions{})
			if err != nil {
				t.Fatal(err)
			}
			err = do(t, c, tt.url)
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("request failed: %v", err)
				}
			} else if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("err = %v, want one containing %q", err, tt.wantErr)
			}
			if tt.wantCN != "" {
				if got := <-peer; got != tt.wantCN {
					t.Errorf("server saw client CN %q, want %q", got, tt.wantCN)
				}
			}
		})
	}

	// Bad PEM content is reported at build time with the field named.
	junk := filepath.Join(t.TempDir(), "junk.pem")
	if err := os.WriteFile(junk, []byte("not pem"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := NewClient(HTTPClientConfig{TLS: TLSConfig{CAFile: junk}}, ClientOptions{}); err == nil || !strings.Contains(err.Error(), "tls.ca_file") {
		t.Errorf("junk CA file: %v, want a tls.ca_file error", err)
	}
	if _, err := NewClient(HTTPClientConfig{TLS: TLSConfig{CertFile: junk, KeyFile: junk}}, ClientOptions{}); err == nil || !strings.Contains(err.Error(), "tls.cert_file/key_file") {
		t.Errorf("junk key pair: %v, want a tls.cert_file/key_file error", err)
	}
}
