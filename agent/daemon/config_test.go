package daemon

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/goroscope/goroscope/pkg/fold"
)

func TestLoadConfig(t *testing.T) {
	t.Setenv("GOROSCOPE_TEST_DIR", "/srv/goroscope")
	for _, tc := range []struct {
		name, yaml string
		err        string // want an error with this
		check      func(t *testing.T, c Config)
	}{
		{name: "empty", yaml: "", check: func(t *testing.T, c Config) {
			if c.Listen != "127.0.0.1:7070" || time.Duration(c.SnapshotInterval) != 10*time.Second {
				t.Errorf("defaults not kept: %+v", c)
			}
		}},
		{name: "values", yaml: "listen: 0.0.0.0:9000\nhttp:\n  bearer_token_file: /etc/goroscope/token\nsnapshot_interval: 30s\nstore:\n  max_bytes: 512MiB\n  max_age: 2h\ndiscovery:\n  min_goroutines: 10\n  exclude:\n    - exe: '/usr/bin/containerd'\n",
			check: func(t *testing.T, c Config) {
				if c.Listen != "0.0.0.0:9000" || time.Duration(c.SnapshotInterval) != 30*time.Second || c.Store.MaxBytes != 512<<20 ||
					time.Duration(c.Store.MaxAge) != 2*time.Hour || c.Discovery.MinGoroutines != 10 || len(c.Discovery.Exclude) != 1 {
					t.Errorf("got %+v", c)
				}
			}},
		{name: "environment", yaml: "# ${NOT_SET} in a comment is fine\ndata_dir: ${GOROSCOPE_TEST_DIR}/data\n", check: func(t *testing.T, c Config) {
			if c.DataDir != "/srv/goroscope/data" {
				t.Errorf("data_dir = %q", c.DataDir)
			}
		}},
		{name: "unknown key", yaml: "listen: :1\nsnapshot_intervall: 5s\n", err: `line 2: unknown key "snapshot_intervall"`},
		{name: "nested unknown key", yaml: "store:\n  max_size: 1GB\n", err: `line 2: unknown key "max_size"`},
		{name: "bad duration", yaml: "listen: :1\n\nsnapshot_interval: soon\n", err: `line 3: "soon" is not a duration`},
		{name: "bad size", yaml: "store:\n  max_bytes: lots\n", err: `line 2: "lots" is not a size`},
		{name: "unset variable", yaml: "listen: :1\ndata_dir: ${GOROSCOPE_SURELY_UNSET}\n", err: `line 2: key "data_dir" refers to ${GOROSCOPE_SURELY_UNSET}`},
		{name: "bad walker", yaml: "walker: turbo\n", err: `walker "turbo"`},
		{name: "too short", yaml: "snapshot_interval: 1ms\n", err: "snapshot_interval 1ms is too short"},
		{name: "bad regexp", yaml: "discovery:\n  include:\n    - exe: '('\n", err: "discovery.include[0]: exe: bad regular expression"},
		{name: "not yaml", yaml: "listen: [unclosed\n", err: "line"},
		{name: "key out of line", yaml: "# a comment\nwalker: auto\nstore:\n  max_age: 1h\n max_bytes: 1GiB\n", err: "line 5: indented 1 spaces"},
		{name: "list item key out of line", yaml: "remote_write:\n  - url: http://h:1\n   name: x\n", err: "line 3: indented 3 spaces"},
		{name: "dash among keys", yaml: "discovery:\n  include:\n  - exe: a\n    - exe: b\n", err: "line 4: a list item where a key of the item above is expected"},
		{name: "tab", yaml: "store:\n\tmax_age: 1h\n", err: "line 2: indented with a tab"},
		{name: "bare number for a duration", yaml: "snapshot_interval: 5\n", err: `line 1: "5" has no unit: write 5s`},
		{name: "wrong type", yaml: "discovery:\n  min_goroutines: many\n", err: "line 2"},
		{name: "endpoint timeout", yaml: "remote_write:\n  - url: http://h:1\n    timeout: soon\n", err: `line 3: "soon" is not a duration (write e.g. 10s, 5m, 1h)`},
		{name: "scrape timeout", yaml: "pprof_scrape:\n  targets:\n    - url: http://h:1\n      timeout: 5\n", err: `line 4: "5" has no unit: write 5s`},
		{name: "endpoint proxy_url", yaml: "pyroscope:\n  - url: http://h:1\n    proxy_url: ftp://p:21\n",
			err: `pyroscope[0] (pyroscope-h_1): proxy_url: scheme "ftp" is not supported; use http://, https:// or socks5://`},
		{name: "scrape proxy_url", yaml: "pprof_scrape:\n  targets:\n    - url: http://h:1\n      proxy_url: p:3128\n",
			err: `pprof_scrape: targets[0].proxy_url: scheme "p" is not supported`},
		{name: "endpoint client config", yaml: "remote_write:\n  - url: http://h:1\n    tls: {server_name: x}\n    basic_auth: {password: p}\n",
			err: "tls: set for a plain http URL; use https:// or remove the tls block\nbasic_auth.username: missing"},
		{name: "limits", yaml: "limits:\n  memory: 180MiB\n  max_goroutines: 50000\n  label_keys: 8\n  label_values: 20\n",
			check: func(t *testing.T, c Config) {
				if auto, size, _ := c.Limits.memoryLimit(); auto || size != 180<<20 || c.Limits.MaxGoroutines != 50000 ||
					c.Limits.labelLimits() != (fold.LabelLimits{MaxKeys: 8, MaxValues: 20}) {
					t.Errorf("got %+v", c.Limits)
				}
			}},
		{name: "limits by default", yaml: "", check: func(t *testing.T, c Config) {
			if auto, _, _ := c.Limits.memoryLimit(); !auto || c.Limits.MaxGoroutines != DefaultMaxGoroutines {
				t.Errorf("got %+v", c.Limits)
			}
		}},
		{name: "bad memory limit", yaml: "limits:\n  memory: plenty\n", err: `limits.memory "plenty": want auto, off or a size such as 200MiB`},
		{name: "tiny memory limit", yaml: "limits:\n  memory: 1MiB\n", err: `limits.memory "1MiB" is below 32MiB`},
		{name: "tiny goroutine limit", yaml: "limits:\n  max_goroutines: 10\n", err: "limits.max_goroutines 10: want at least 1000"},
		{name: "no label values", yaml: "limits:\n  label_values: 0\n", err: "limits.label_keys 32 and limits.label_values 0: want at least 1 each"},
		{name: "endpoint keys", yaml: "remote_write:\n  - name: mimir\n    url: https://mimir.example/api/v1/push\n    tenant: team-a\n    proxy_url: http://proxy:3128\n    timeout: 5s\n    headers: {X-Extra: v}\n",
			check: func(t *testing.T, c Config) {
				e := c.RemoteWrite[0]
				if e.Name != "mimir" || e.URL != "https://mimir.example/api/v1/push" || e.Tenant != "team-a" || e.ProxyURL != "http://proxy:3128" ||
					e.Timeout != 5*time.Second || e.Headers["X-Extra"] != "v" {
					t.Errorf("got %+v", e)
				}
			}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "goroscope.yaml")
			if err := os.WriteFile(path, []byte(tc.yaml), 0o644); err != nil {
				t.Fatal(err)
			}
			c, err := LoadConfig(path, DefaultConfig())
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) || !strings.Contains(err.Error(), path) {
					t.Fatalf("LoadConfig = %v; want an error naming %s and saying %q", err, path, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			tc.check(t, c)
		})
	}
}

// TestExampleConfig: the documented example loads.
func TestExampleConfig(t *testing.T) {
	if _, err := LoadConfig("../../configs/goroscope.yaml", DefaultConfig()); err != nil {
		t.Fatalf("configs/goroscope.yaml: %v", err)
	}
}

// TestSameHTTPClientBlock: the same YAML block (url, auth, headers, tls,
// proxy_url, timeout) means the same for a pprof scrape target and for a
// push endpoint: both inline the one httpconf.HTTPClientConfig.
func TestSameHTTPClientBlock(t *testing.T) {
	dir := t.TempDir()
	file := func(name string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte("x"), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	blocks := map[string]string{
		"basic auth and tls": `url: https://10.0.0.5:8443/internal
basic_auth: {username: goroscope, password_file: ` + file("pass") + `}
headers: {X-Extra: "1", X-Other: two}
tls:
  ca_file: ` + file("ca.pem") + `
  cert_file: ` + file("c.pem") + `
  key_file: ` + file("k.pem") + `
  server_name: api
  insecure_skip_verify: true
proxy_url: socks5://127.0.0.1:1080
timeout: 7s
`,
		"bearer token file": `url: http://127.0.0.1:6060
bearer_token_file: ` + file("token") + `
proxy_url: http://user:pw@proxy.example:3128
`,
		"inline secrets": `url: https://h
basic_auth: {username: u, password: p}
`,
	}
	indent := func(block, first, rest string) string {
		lines := strings.Split(strings.TrimSuffix(block, "\n"), "\n")
		for i := range lines {
			if i == 0 {
				lines[i] = first + lines[i]
			} else {
				lines[i] = rest + lines[i]
			}
		}
		return strings.Join(lines, "\n") + "\n"
	}
	for name, block := range blocks {
		t.Run(name, func(t *testing.T) {
			yaml := "pprof_scrape:\n  targets:\n" + indent(block, "    - ", "      ") +
				"remote_write:\n" + indent(block, "  - ", "    ") +
				"pyroscope:\n" + indent(block, "  - name: py\n    ", "    ")
			c, err := parseConfig([]byte(yaml), DefaultConfig())
			if err != nil {
				t.Fatalf("%v\n%s", err, yaml)
			}
			tg, rw, py := c.PprofScrape.Targets[0], c.RemoteWrite[0], c.Pyroscope[0]
			if tg.HTTPClientConfig.BasicAuth == nil && tg.HTTPClientConfig.BearerTokenFile == "" {
				t.Fatalf("the block did not decode: %+v", tg)
			}
			if !reflect.DeepEqual(tg.HTTPClientConfig, rw.HTTPClientConfig) || !reflect.DeepEqual(rw.HTTPClientConfig, py.HTTPClientConfig) {
				t.Errorf("client configs differ:\nscrape target %+v\nremote_write  %+v\npyroscope     %+v", tg.HTTPClientConfig, rw.HTTPClientConfig, py.HTTPClientConfig)
			}
			if tg.URL != rw.URL || rw.URL != py.URL {
				t.Errorf("urls differ: %q %q %q", tg.URL, rw.URL, py.URL)
			}
		})
	}
}
