package memcg_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/goroscope/goroscope/test/eventually"
	"github.com/goroscope/goroscope/test/memcg"
	"github.com/goroscope/goroscope/test/targettest"
)

// Limits of the cgroup the targets run in: one core, 256 MiB.
const (
	targetCores = 1
	targetLimit = 256 << 20
)

// finding is what /api/processes says of a finding.
type finding struct {
	Kind    string `json:"kind"`
	Summary string `json:"summary"`
	Fix     string `json:"fix"`
}

// processFindings are the findings /api/processes lists for pid, and
// whether it lists pid.
func (a *agent) processFindings(pid int) ([]finding, bool, error) {
	body, err := a.get("/api/processes", 16<<20)
	if err != nil {
		return nil, false, err
	}
	var procs []struct {
		PID      int       `json:"pid"`
		Findings []finding `json:"findings"`
	}
	if err := json.Unmarshal(body, &procs); err != nil {
		return nil, false, fmt.Errorf("decode /api/processes: %w", err)
	}
	for _, p := range procs {
		if p.PID == pid {
			return p.Findings, true, nil
		}
	}
	return nil, false, nil
}

func kindsOf(fs []finding) []string {
	var out []string
	for _, f := range fs {
		out = append(out, f.Kind)
	}
	return out
}

// unsetenv removes a variable from the test's environment, which the
// targets inherit, until the test ends.
func unsetenv(t *testing.T, name string) {
	if v, ok := os.LookupEnv(name); ok {
		if err := os.Unsetenv(name); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = os.Setenv(name, v) })
	}
}

// burnInCgroup starts the rtmetrics target exe in a new cgroup of one core
// and 256 MiB: 160 MiB of live heap (collected once, so that the GC marked
// it), no further allocation, 1000 parked goroutines, and 3 goroutines
// spinning, which the quota throttles.
func burnInCgroup(t *testing.T, exe string, env ...string) (*targettest.Target, *memcg.Group) {
	t.Helper()
	g, err := memcg.NewWith(fmt.Sprintf("goroscope-rt-%d-%d", os.Getpid(), time.Now().UnixNano()), memcg.Limits{MemoryBytes: targetLimit, CPUCores: targetCores})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := g.Close(); err != nil {
			t.Error(err)
		}
	})
	tgt := targettest.StartWith(t, targettest.StartOpts{Env: env, Wrap: g.Wrapper()}, exe,
		"-live", "160", "-churn", "0", "-parked", "1000", "-burn", "3")
	t.Cleanup(tgt.Stop) // before the group's Close, which would kill it
	for _, path := range []string{"/quiesce", "/resume"} {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, tgt.URL(path), nil)
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
		cancel()
		if err != nil {
			t.Fatalf("%s of the target: %v", path, err)
		}
	}
	return tgt, g
}

// throttledGrows waits until the agent's goroscope_cgroup_cpu_throttled_seconds_total
// of pid has taken n+1 values, each larger than the last, checking it against the
// kernel's own count, and returns the last.
func throttledGrows(t *testing.T, a *agent, g *memcg.Group, pid, n int) float64 {
	t.Helper()
	label := fmt.Sprintf(`pid="%d"`, pid)
	var seen []float64
	eventually.Succeeds(t, 60*time.Second, func() error {
		v, err := a.metric("goroscope_cgroup_cpu_throttled_seconds_total", label)
		if err != nil {
			return err
		}
		if len(seen) == 0 || v > seen[len(seen)-1] {
			seen = append(seen, v)
		}
		if _, kernel, err := g.Throttled(); err != nil || v > kernel.Seconds() {
			return fmt.Errorf("the agent says %v s throttled, the kernel a moment later %v (%v)", v, kernel, err)
		}
		if len(seen) <= n {
			return fmt.Errorf("throttled seconds seen so far: %v; want %d increases", seen, n)
		}
		return nil
	})
	return seen[len(seen)-1]
}

// TestRuntimeHealthInCgroup: the agent watching a program in a cgroup of
// one core and 256 MiB that spins on 3 goroutines and holds 160 MiB of live
// heap. Built with Go 1.21, which takes GOMAXPROCS from the host's CPU count
// and sets no memory limit, it gets the gomaxprocs-over-quota and
// no-memory-limit findings, with what to change, and the series show the
// limits and the throttling growing. Built with Go 1.25+ and GOMEMLIMIT set,
// it gets neither, while throttled as much.
//
// This host has 2 CPUs and its cgroups are v1, whose quota Go 1.25+ reads
// too: it sets GOMAXPROCS to the quota rounded up but never below 2, so
// both programs run with GOMAXPROCS 2 on the one core. The rule counts Go's
// own choice (its minimum of 2) as no finding; the Go 1.21 program, whose 2
// is the CPU count, gets one.
func TestRuntimeHealthInCgroup(t *testing.T) {
	needRoot(t)
	if runtime.NumCPU() < 2 {
		if os.Getenv("CI") == "true" {
			t.Fatal("needs 2 CPUs at least: with one, GOMAXPROCS is 1, within the quota of one core")
		}
		t.Skip("needs 2 CPUs at least: with one, GOMAXPROCS is 1, within the quota of one core")
	}
	unsetenv(t, "GOMAXPROCS")
	unsetenv(t, "GOMEMLIMIT")
	unsetenv(t, "GOGC")
	dir := t.TempDir()
	old, cur := filepath.Join(dir, "rt-go121"), filepath.Join(dir, "rt-local")
	copyExe(t, targettest.Build(t, "rtmetrics", targettest.BuildOpts{GoVersion: "go1.21.13"}), old)
	copyExe(t, targettest.Build(t, "rtmetrics", targettest.BuildOpts{}), cur)
	a := startAgent(t, dir, "")

	// Go 1.21: both findings, and the series.
	tgt, g := burnInCgroup(t, old)
	var fs []finding
	eventually.Succeeds(t, 60*time.Second, func() error {
		var err error
		var listed bool
		fs, listed, err = a.processFindings(tgt.PID)
		if err == nil && (!listed || !slices.Contains(kindsOf(fs), "gomaxprocs-over-quota") || !slices.Contains(kindsOf(fs), "no-memory-limit")) {
			err = fmt.Errorf("pid %d (listed: %v) has findings %v; want gomaxprocs-over-quota and no-memory-limit", tgt.PID, listed, kindsOf(fs))
		}
		return err
	})
	for _, f := range fs {
		switch f.Kind {
		case "gomaxprocs-over-quota":
			if !strings.HasPrefix(f.Fix, "set GOMAXPROCS=1; or upgrade to Go >= 1.25") || !strings.Contains(f.Summary, "GOMAXPROCS is 2 but the CPU quota is 1 core") {
				t.Errorf("gomaxprocs-over-quota: %q, fix %q", f.Summary, f.Fix)
			}
		case "no-memory-limit":
			if f.Fix != "set GOMEMLIMIT=230MiB (90% of the limit), so that the GC works harder as the heap nears it" || !strings.Contains(f.Summary, "of the cgroup's 256 MiB memory limit") {
				t.Errorf("no-memory-limit: %q, fix %q", f.Summary, f.Fix)
			}
		}
		t.Logf("go1.21: %s: %s", f.Kind, f.Summary)
	}
	pid := fmt.Sprintf(`pid="%d"`, tgt.PID)
	for name, want := range map[string]float64{
		"goroscope_cgroup_cpu_quota_cores": targetCores, "goroscope_cgroup_memory_limit_bytes": targetLimit,
		"goroscope_go_gomaxprocs": float64(runtime.NumCPU()), "goroscope_go_memory_limit_bytes": 1<<63 - 1,
	} {
		if v, err := a.metric(name, pid); err != nil || v != want {
			t.Errorf("%s{%s} = %v (%v), want %v", name, pid, v, err, want)
		}
	}
	if v, err := a.metric("goroscope_go_heap_live_bytes", pid); err != nil || v < 128<<20 {
		t.Errorf("goroscope_go_heap_live_bytes{%s} = %v (%v), want over 128 MiB", pid, v, err)
	}
	if v, err := a.metric("goroscope_findings", pid, `kind="gomaxprocs-over-quota"`); err != nil || v != 1 {
		t.Errorf("goroscope_findings{kind=gomaxprocs-over-quota} = %v (%v), want 1", v, err)
	}
	throttled := throttledGrows(t, a, g, tgt.PID, 2)
	t.Logf("go1.21: throttled %.1f s so far", throttled)
	tgt.Stop()

	// Go 1.25+ with automatic GOMAXPROCS and GOMEMLIMIT: silent, through
	// as many reads of growing throttling, over half the limit in live heap.
	tgt, g = burnInCgroup(t, cur, "GOMEMLIMIT=200MiB")
	pid = fmt.Sprintf(`pid="%d"`, tgt.PID)
	throttledGrows(t, a, g, tgt.PID, 3)
	fs, listed, err := a.processFindings(tgt.PID)
	if err != nil || !listed {
		t.Fatalf("pid %d not listed: %v", tgt.PID, err)
	}
	if len(fs) > 0 {
		t.Errorf("%s: findings %v; want none (%+v)", tgt.GoVersion, kindsOf(fs), fs)
	}
	for name, want := range map[string]float64{"goroscope_go_gomaxprocs": max(2, targetCores), "goroscope_go_memory_limit_bytes": 200 << 20} {
		if v, err := a.metric(name, pid); err != nil || v != want {
			t.Errorf("%s: %s{%s} = %v (%v), want %v", tgt.GoVersion, name, pid, v, err, want)
		}
	}
	if v, err := a.metric("goroscope_go_heap_live_bytes", pid); err != nil || v < 128<<20 {
		t.Errorf("%s: goroscope_go_heap_live_bytes{%s} = %v (%v), want over 128 MiB", tgt.GoVersion, pid, v, err)
	}
	if parts := strings.Split(tgt.GoVersion, "."); len(parts) < 2 || atoi(parts[1]) < 25 {
		t.Errorf("the local toolchain is %s: the silent case needs Go 1.25+", tgt.GoVersion)
	}
	a.healthy(t)
}

func atoi(s string) int {
	n, _ := strconv.Atoi(s)
	return n
}
