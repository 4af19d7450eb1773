package endpoint

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/goroscope/goroscope/pkg/httpconf"
)

func TestValidate(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
		want []string // substrings of the error; none means valid
	}{
		{"minimal http", Config{URL: "http://127.0.0.1:9090/api/v1/write"}, nil},
		{"https with everything", Config{URL: "https://h:1/x", Tenant: "t1", HTTPClientConfig: httpconf.HTTPClientConfig{
			BearerToken: "tok", Headers: map[string]string{"X-Extra": "1"}, TLS: httpconf.TLSConfig{ServerName: "h"},
			ProxyURL: "socks5://127.0.0.1:1080", Timeout: time.Second}}, nil},
		{"empty url", Config{}, []string{"url: missing; set it to the endpoint"}},
		{"relative url", Config{URL: "/api/v1/write"}, []string{"url: scheme", "has no host"}},
		{"ftp url", Config{URL: "ftp://h/x"}, []string{`scheme "ftp" is not supported`}},
		{"credentials in url", Config{URL: "http://u:p@h/x"}, []string{"use basic_auth instead"}},
		{"tls on http", Config{URL: "http://h/x", HTTPClientConfig: httpconf.HTTPClientConfig{TLS: httpconf.TLSConfig{ServerName: "h"}}},
			[]string{"tls: set for a plain http URL"}},
		{"tenant newline", Config{URL: "http://h/x", Tenant: "a\nb"}, []string{"tenant:"}},
		{"tenant header twice", Config{URL: "http://h", Tenant: "a", HTTPClientConfig: httpconf.HTTPClientConfig{Headers: map[string]string{"X-Scope-OrgID": "b"}}},
			[]string{"headers.X-Scope-OrgID: X-Scope-OrgID is set by tenant"}},
		{"tenant header without tenant", Config{URL: "http://h", HTTPClientConfig: httpconf.HTTPClientConfig{Headers: map[string]string{"X-Scope-OrgID": "b"}}}, nil},
		{"wire client header", Config{URL: "http://h", HTTPClientConfig: httpconf.HTTPClientConfig{Headers: map[string]string{"connect-protocol-version": "1"}}},
			[]string{"headers.connect-protocol-version: Connect-Protocol-Version is set by the client itself"}},
		{"client config", Config{URL: "http://h", HTTPClientConfig: httpconf.HTTPClientConfig{ProxyURL: "ftp://p", Timeout: -1}},
			[]string{"proxy_url: scheme", "timeout: -1ns is negative"}},
	}
	for _, tt := range tests {
		err := tt.cfg.Validate()
		_, cerr := tt.cfg.NewClient()
		if len(tt.want) == 0 && (err != nil || cerr != nil) {
			t.Errorf("%s: Validate() = %v, NewClient: %v; want both to accept it", tt.name, err, cerr)
		}
		// NewClient reports what Validate does, under the endpoint's URL.
		for _, w := range tt.want {
			if v, c := fmt.Sprint(err), fmt.Sprint(cerr); !strings.Contains(v, w) || !strings.Contains(c, w) {
				t.Errorf("%s: Validate() = %s, NewClient: %s; want both to contain %q", tt.name, v, c, w)
			}
		}
	}
}

// TestClientHeaders: the client sends the tenant and the User-Agent with
// the configured auth and headers.
func TestClientHeaders(t *testing.T) {
	got := make(chan http.Header, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got <- r.Header.Clone()
		w.WriteHeader(http.StatusNoContent)
	}))
	defer srv.Close()
	cfg := Config{URL: srv.URL, Tenant: "team-a", Version: "1.2.3", HTTPClientConfig: httpconf.HTTPClientConfig{
		BasicAuth: &httpconf.BasicAuth{Username: "agent", Password: "s3cret"}, Headers: map[string]string{"X-Extra": "yes"}}}
	c, err := cfg.NewClient()
	if err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequestWithContext(context.Background(), http.MethodPost, srv.URL, strings.NewReader("x"))
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	h := <-got
	for k, v := range map[string]string{
		"User-Agent":    "goroscope/1.2.3",
		"X-Scope-Orgid": "team-a",
		"X-Extra":       "yes",
		"Authorization": "Basic YWdlbnQ6czNjcmV0", // agent:s3cret
	} {
		if h.Get(k) != v {
			t.Errorf("header %s = %q, want %q", k, h.Get(k), v)
		}
	}
}

func TestNewClientNamesEndpoint(t *testing.T) {
	cfg := Config{URL: "http://h:1/x", HTTPClientConfig: httpconf.HTTPClientConfig{BearerToken: "t", BearerTokenFile: "/nonexistent"}}
	_, err := cfg.NewClient()
	if err == nil || !strings.HasPrefix(err.Error(), "endpoint http://h:1/x: ") || !strings.Contains(err.Error(), "bearer_token_file: open /nonexistent") {
		t.Errorf("NewClient = %v, want an error naming the endpoint and the key", err)
	}
}
