package scrape

import (
	"bytes"
	"slices"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/goroscope/goroscope/pkg/httpconf"
)

// exampleYAML is the section as documented in docs/scrape.md.
const exampleYAML = `
interval: 15s
timeout: 10s
concurrency: 8
profiles: [cpu, heap, mutex, block, goroutine, goroutineleak]
targets:
  - url: http://127.0.0.1:6060
  - url: https://10.0.0.5:8443/internal
    name: api-1
    service_name: shop-api
    labels: {env: prod}
    profiles: [heap, goroutine]
    timeout: 5s
    bearer_token: secret
    headers: {X-Debug: "1"}
    tls: {server_name: api, insecure_skip_verify: true}
    proxy_url: http://proxy.example:3128
  - url: http://127.0.0.1:7070
    cpu_duration: 5s
    basic_auth: {username: goroscope, password: pw}
`

func TestConfigYAML(t *testing.T) {
	var c Config
	dec := yaml.NewDecoder(bytes.NewReader([]byte(exampleYAML)))
	dec.KnownFields(true)
	if err := dec.Decode(&c); err != nil {
		t.Fatalf("decode: %v", err)
	}
	set, rs, err := c.resolve()
	if err != nil {
		t.Fatalf("resolve: %v", err)
	}
	if set.interval != 15*time.Second || set.concurrency != 8 {
		t.Errorf("settings %+v", set)
	}
	if len(rs) != 3 {
		t.Fatalf("%d targets, want 3", len(rs))
	}
	checks := []struct {
		name        string
		url         string
		kinds       []Kind
		cpu         time.Duration
		timeout     time.Duration
		heapURL     string
		goroutineQ  string
		basicAuthed bool
	}{
		{"127.0.0.1:6060", "http://127.0.0.1:6060", AllKinds, 14 * time.Second, 10 * time.Second, "http://127.0.0.1:6060/debug/pprof/heap", "debug=2", false},
		{"api-1", "https://10.0.0.5:8443/internal", []Kind{KindGoroutine, KindHeap}, 0, 5 * time.Second, "https://10.0.0.5:8443/internal/debug/pprof/heap", "debug=2", false},
		{"127.0.0.1:7070", "http://127.0.0.1:7070", AllKinds, 5 * time.Second, 10 * time.Second, "http://127.0.0.1:7070/debug/pprof/heap", "debug=2", true},
	}
	for i, want := range checks {
		r := rs[i]
		tg := &target{r: r}
		if r.Name != want.name || !slices.Equal(r.kinds, want.kinds) || r.cpuDuration != want.cpu || r.timeout != want.timeout ||
			tg.url(KindHeap) != want.heapURL || (r.http.BasicAuth != nil) != want.basicAuthed {
			t.Errorf("target %d: name %q kinds %v cpu %s timeout %s heap %s basic %v; want %+v",
				i, r.Name, r.kinds, r.cpuDuration, r.timeout, tg.url(KindHeap), r.http.BasicAuth != nil, want)
		}
	}
	if got := (&target{r: rs[2]}).url(KindCPU); got != "http://127.0.0.1:7070/debug/pprof/profile?seconds=5" {
		t.Errorf("cpu url %s", got)
	}
	if got := (&target{r: rs[0]}).url(KindGoroutine); got != "http://127.0.0.1:6060/debug/pprof/goroutine?debug=2" {
		t.Errorf("goroutine url %s", got)
	}
	if got := rs[0].http.Timeout; got != 24*time.Second {
		t.Errorf("client timeout %s, want timeout+cpu_duration = 24s", got)
	}
	if got := rs[1].http; got.ProxyURL != "http://proxy.example:3128" || got.BearerToken != "secret" || got.Headers["X-Debug"] != "1" || !got.TLS.InsecureSkipVerify {
		t.Errorf("target 1's client config %+v, want the proxy, token, header and tls of the YAML", got)
	}
}

func TestConfigErrors(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
		// want lists substrings of the error, each naming a key and a fix.
		want []string
	}{
		{"no url", Config{Targets: []TargetConfig{{}}},
			[]string{"targets[0].url: missing; set it to the program's pprof base address"}},
		{"bad scheme", Config{Targets: []TargetConfig{{URL: "ftp://h:1"}}},
			[]string{`targets[0].url: scheme "ftp" is not supported; use http:// or https://`}},
		{"pprof path", Config{Targets: []TargetConfig{{URL: "http://h:1/debug/pprof/"}}},
			[]string{"targets[0].url: \"http://h:1/debug/pprof/\" ends in /debug/pprof; give the base address"}},
		{"query", Config{Targets: []TargetConfig{{URL: "http://h:1/?seconds=3"}}},
			[]string{"targets[0].url: \"http://h:1/?seconds=3\" has a query or fragment"}},
		{"credentials", Config{Targets: []TargetConfig{{URL: "http://u:p@h:1"}}},
			[]string{"targets[0].url: credentials in the URL are not allowed; use basic_auth instead"}},
		{"unknown profile", Config{Profiles: []string{"heap", "heapp"}, Targets: []TargetConfig{{URL: "http://h:1"}}},
			[]string{`profiles: "heapp" is not a profile; use one of cpu, goroutineleak, goroutine, heap, mutex, block`}},
		{"duplicate profile", Config{Targets: []TargetConfig{{URL: "http://h:1", Profiles: []string{"heap", "heap"}}}},
			[]string{`targets[0].profiles: "heap" is listed twice; list it once`}},
		{"interval", Config{Interval: 500 * time.Millisecond},
			[]string{"interval: 500ms is too short; use at least 1s"}},
		{"cpu fraction", Config{CPUDuration: 1500 * time.Millisecond, Targets: []TargetConfig{{URL: "http://h:1"}}},
			[]string{"targets[0].cpu_duration: 1.5s is not whole seconds (net/http/pprof takes ?seconds=N); use e.g. 1s"}},
		{"cpu too long", Config{Interval: 10 * time.Second, Targets: []TargetConfig{{URL: "http://h:1", CPUDuration: 10 * time.Second}}},
			[]string{"targets[0].cpu_duration: 10s leaves no room in the 10s interval; use at most 9s"}},
		{"cpu with 1s interval", Config{Interval: time.Second, Targets: []TargetConfig{{URL: "http://h:1"}}},
			[]string{"targets[0].cpu_duration: 0s is too short"}},
		{"no cpu with 1s interval is fine", Config{Interval: time.Second, Targets: []TargetConfig{{URL: "http://h:1", Profiles: []string{"heap"}}}},
			nil},
		{"negative timeout", Config{Timeout: -time.Second}, []string{"timeout: -1s is negative"}},
		{"concurrency", Config{Concurrency: 1000}, []string{"concurrency: 1000 is out of range; use 1 to 256"}},
		{"reserved label", Config{Targets: []TargetConfig{{URL: "http://h:1", Labels: map[string]string{"service_name": "x"}}}},
			[]string{"targets[0].labels.service_name: service_name is set by the scraper; use the service_name or name key instead"}},
		{"bad label", Config{Targets: []TargetConfig{{URL: "http://h:1", Labels: map[string]string{"a-b": "x", "__x": "y"}}}},
			[]string{"targets[0].labels.a-b: label name must match", "targets[0].labels.__x: label name must match"}},
		{"duplicate names", Config{Targets: []TargetConfig{{URL: "http://h:1"}, {URL: "http://h:1"}}},
			[]string{`targets[1].name: "h:1" is also the name of targets[0]; give each target its own name`}},
		{"basic auth without user", Config{Targets: []TargetConfig{{URL: "http://h:1", HTTPClientConfig: httpconf.HTTPClientConfig{BasicAuth: &httpconf.BasicAuth{Password: "p"}}}}},
			[]string{"targets[0].basic_auth.username: missing; basic auth needs a username"}},
		{"two auths", Config{Targets: []TargetConfig{{URL: "http://h:1", HTTPClientConfig: httpconf.HTTPClientConfig{BasicAuth: &httpconf.BasicAuth{Username: "u"}, BearerToken: "t"}}}},
			[]string{"targets[0].basic_auth: set together with bearer_token(_file)"}},
		{"tls on http", Config{Targets: []TargetConfig{{URL: "http://h:1", HTTPClientConfig: httpconf.HTTPClientConfig{TLS: httpconf.TLSConfig{ServerName: "x"}}}}},
			[]string{"targets[0].tls: set for a plain http URL; use https:// or remove the tls block"}},
		{"unreadable token file", Config{Targets: []TargetConfig{{URL: "http://h:1", HTTPClientConfig: httpconf.HTTPClientConfig{BearerTokenFile: "/nonexistent/token"}}}},
			[]string{"targets[0].bearer_token_file: open /nonexistent/token: no such file or directory; point it at a readable file"}},
		{"bad proxy", Config{Targets: []TargetConfig{{URL: "http://h:1", HTTPClientConfig: httpconf.HTTPClientConfig{ProxyURL: "ftp://proxy:21"}}}},
			[]string{`targets[0].proxy_url: scheme "ftp" is not supported; use http://, https:// or socks5://`}},
		{"negative target timeout", Config{Targets: []TargetConfig{{URL: "http://h:1", HTTPClientConfig: httpconf.HTTPClientConfig{Timeout: -time.Second}}}},
			[]string{"targets[0].timeout: -1s is negative"}},
		{"url without host", Config{Targets: []TargetConfig{{URL: "http:///x"}}},
			[]string{`targets[0].url: "http:///x" has no host`}},
		{"several at once", Config{Timeout: -1, Targets: []TargetConfig{{}, {URL: "gopher://x"}}},
			[]string{"timeout:", "targets[0].url: missing", "targets[1].url: scheme"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.cfg.Validate()
			if len(tt.want) == 0 {
				if err != nil {
					t.Fatalf("unexpected error: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("no error, want %q", tt.want)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error\n%v\ndoes not contain %q", err, w)
				}
			}
		})
	}
}
