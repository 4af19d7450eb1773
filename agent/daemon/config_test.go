package daemon

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
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
		{name: "values", yaml: "listen: 0.0.0.0:9000\nsnapshot_interval: 30s\nstore:\n  max_bytes: 512MiB\n  max_age: 2h\ndiscovery:\n  min_goroutines: 10\n  exclude:\n    - exe: '/usr/bin/containerd'\n",
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
		{name: "wrong type", yaml: "discovery:\n  min_goroutines: many\n", err: "line 2"},
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
