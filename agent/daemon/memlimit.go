package daemon

import (
	"fmt"
	"log/slog"
	"math"
	"os"
	"runtime/debug"

	"github.com/KimMachineGun/automemlimit/memlimit"
)

// SetMemoryLimit gives the Go runtime the soft memory limit limits.memory
// asks for, so that the agent collects garbage harder as it nears its
// cgroup's limit instead of being OOM-killed there: with "auto",
// MemoryRatio of the limit of its own memory cgroup (v1 or v2, the
// tightest of its ancestors), none outside one; a GOMEMLIMIT in the
// environment wins. It returns the limit now in force (0 for none) and
// where it came from. It changes the whole process: only the agent's main
// calls it.
func SetMemoryLimit(l LimitsConfig, log *slog.Logger) (limit int64, source string, err error) {
	if v := os.Getenv("GOMEMLIMIT"); v != "" {
		return current(), "GOMEMLIMIT", nil
	}
	auto, size, err := l.memoryLimit()
	switch {
	case err != nil:
		return current(), "", err
	case size > 0:
		debug.SetMemoryLimit(size)
		return size, "limits.memory", nil
	case !auto:
		debug.SetMemoryLimit(math.MaxInt64)
		return 0, "off", nil
	}
	n, err := memlimit.Set(memlimit.WithRatio(MemoryRatio), memlimit.WithProvider(memlimit.FromCgroup),
		memlimit.WithLogger(log))
	switch {
	case err != nil:
		// No cgroup, or no limit on it: nothing to keep inside.
		return current(), "none: " + err.Error(), nil
	case n <= 0 || n == math.MaxInt64:
		return 0, "none: the agent's cgroup has no memory limit", nil
	}
	return n, fmt.Sprintf("%.0f%% of the cgroup's memory limit", MemoryRatio*100), nil
}

// current is the soft memory limit in force, 0 for none.
func current() int64 {
	if n := debug.SetMemoryLimit(-1); n != math.MaxInt64 {
		return n
	}
	return 0
}
