package daemon

import (
	"log/slog"
	"math"
	"runtime/debug"
	"strings"
	"testing"
)

// TestSetMemoryLimit: limits.memory sets the runtime's soft limit, off
// clears it, and GOMEMLIMIT in the environment wins. (auto, which needs a
// memory cgroup with a limit, is tested in test/memcg.)
func TestSetMemoryLimit(t *testing.T) {
	defer debug.SetMemoryLimit(debug.SetMemoryLimit(-1))
	for _, tc := range []struct {
		name, memory, env string
		want              int64
		source            string
	}{
		{name: "size", memory: "200MiB", want: 200 << 20, source: "limits.memory"},
		{name: "off", memory: "off", want: 0, source: "off"},
		{name: "environment wins", memory: "200MiB", env: "123MiB", want: 0, source: "GOMEMLIMIT"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv("GOMEMLIMIT", tc.env)
			debug.SetMemoryLimit(math.MaxInt64)
			got, source, err := SetMemoryLimit(LimitsConfig{Memory: tc.memory}, slog.New(slog.DiscardHandler))
			if err != nil {
				t.Fatal(err)
			}
			if got != tc.want || !strings.HasPrefix(source, tc.source) {
				t.Errorf("SetMemoryLimit = %d, %q; want %d, %q", got, source, tc.want, tc.source)
			}
			if now := current(); now != tc.want {
				t.Errorf("runtime's soft limit is %d after, want %d", now, tc.want)
			}
		})
	}
	if _, _, err := SetMemoryLimit(LimitsConfig{Memory: "lots"}, slog.New(slog.DiscardHandler)); err == nil || !strings.Contains(err.Error(), `limits.memory "lots"`) {
		t.Errorf("a bad limits.memory gave %v", err)
	}
}
