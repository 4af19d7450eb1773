package daemon

import (
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/goroscope/goroscope/collect/discovery"
	"github.com/goroscope/goroscope/test/eventually"
	"github.com/goroscope/goroscope/test/logbuf"
	"github.com/goroscope/goroscope/test/targettest"
)

// logCounts counts the agent's lines about processes in a log.
type logCounts struct {
	watching, gone, refused, summaries int
	summary                            string // the last summary
}

func countLog(log string) logCounts {
	var c logCounts
	for _, l := range strings.Split(log, "\n") {
		switch {
		case strings.Contains(l, `msg="watching Go process"`):
			c.watching++
		case strings.Contains(l, `msg="Go process gone"`):
			c.gone++
		case strings.Contains(l, `msg="cannot watch Go process"`):
			c.refused++
		case strings.Contains(l, `msg="short-lived Go processes came and went"`):
			c.summaries++
			c.summary = l
		}
	}
	return c
}

// buildGo120 builds a Go 1.20 program (which the agent cannot watch) that
// sleeps an hour, or skips the test without the toolchain (fails in CI).
func buildGo120(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	src := "package main\n\nimport \"time\"\n\nfunc main() { time.Sleep(time.Hour) }\n"
	if err := os.WriteFile(filepath.Join(dir, "main.go"), []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "go.mod"), []byte("module old\n\ngo 1.20\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	exe := filepath.Join(dir, "old-go120")
	build := exec.Command("go", "build", "-o", exe, ".")
	build.Dir = dir
	build.Env = append(os.Environ(), "GOTOOLCHAIN=go1.20.14", "GOFLAGS=-mod=mod", "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("build with go1.20.14: %v\n%s", err, out)
		}
		t.Skipf("go1.20.14 toolchain not available: %v\n%s", err, out)
	}
	return exe
}

// runFor runs exe for d; any goroutine may call it.
func runFor(t *testing.T, exe string, d time.Duration) {
	t.Helper()
	cmd := exec.Command(exe)
	if err := cmd.Start(); err != nil {
		t.Error(err)
		return
	}
	time.Sleep(d)
	_ = cmd.Process.Kill()
	_ = cmd.Wait()
}

// TestAgentLogShortLived: fifty-one short-lived Go processes, each watched
// for a few discovery cycles, and one the agent cannot watch, get no line
// of their own: one summary counts them when the agent stops.
func TestAgentLogShortLived(t *testing.T) {
	if testing.Short() {
		t.Skip("builds targets and runs the agent")
	}
	const n, parallel = 50, 5
	pop := buildTarget(t, "population", targettest.BuildOpts{})
	old := buildGo120(t)
	var logBuf logbuf.Buffer
	r := startAgentWith(t, func(cfg *Config) {
		cfg.CPUFrequency = 0
		cfg.DiscoveryInterval = Duration(100 * time.Millisecond)
		cfg.Discovery = discovery.Rules{Include: []discovery.Match{ownTargets(), {Exe: "/old-go120"}}}
	}, func(a *Agent) { a.log = slog.New(slog.NewTextHandler(&logBuf, nil)) })

	// One more keeps the executable's parse in the agent's cache (which
	// takes longer than the others live under the race detector); it too
	// goes before shortLived.
	pin := targettest.Start(t, pop, "-n", "1", "-spin", "0")
	eventually.True(t, 30*time.Second, "the agent watches the first target", func() bool {
		r.a.mu.Lock()
		defer r.a.mu.Unlock()
		for k := range r.a.procs {
			if k.PID == pin.PID {
				return true
			}
		}
		return false
	})
	var wg sync.WaitGroup
	wg.Go(func() { runFor(t, old, 2*time.Second) })
	for range parallel {
		wg.Go(func() {
			for range n / parallel {
				tg, err := targettest.Launch(targettest.StartOpts{}, pop, "-n", "1", "-spin", "0")
				if err != nil {
					t.Error(err)
					return
				}
				time.Sleep(500 * time.Millisecond) // five discovery cycles
				tg.Stop()
			}
		})
	}
	wg.Wait()
	pin.Stop()
	eventually.True(t, 5*time.Second, "the agent counted the refusal", func() bool {
		return testutil.ToFloat64(r.a.metrics.errors.WithLabelValues("attach")) > 0
	})
	time.Sleep(300 * time.Millisecond) // three cycles: every process found gone
	r.stop()

	c := countLog(logBuf.String())
	t.Logf("%d short-lived Go processes and one refused: %d watching, %d gone, %d cannot watch, %d summaries: %s",
		n+1, c.watching, c.gone, c.refused, c.summaries, c.summary)
	if c.watching != 0 || c.gone != 0 || c.refused != 0 || c.summaries != 1 {
		t.Errorf("want one summary and no other line about processes; log:\n%s", logBuf.String())
	}
	if !strings.Contains(c.summary, fmt.Sprintf("count=%d", n+2)) || !strings.Contains(c.summary, "not_watched=1") ||
		!strings.Contains(c.summary, "old-go120=1") {
		t.Errorf("summary %q, want count=%d with old-go120=1 and not_watched=1", c.summary, n+2)
	}
	if got := testutil.ToFloat64(r.a.metrics.errors.WithLabelValues("attach")); got != 1 {
		t.Errorf("errors_total{reason=\"attach\"} = %v, want 1 (once per process)", got)
	}
}

// TestAgentLogOnce: processes older than shortLived (here the host's boot
// moved an hour back, so every process is) are named once: the one the
// agent watches gets a "watching" and a "gone" line, the one it cannot
// watch one "cannot watch" line, counted once, however many discovery
// cycles it lives through.
func TestAgentLogOnce(t *testing.T) {
	if testing.Short() {
		t.Skip("builds targets and runs the agent")
	}
	pop := buildTarget(t, "population", targettest.BuildOpts{})
	old := buildGo120(t)
	var logBuf logbuf.Buffer
	r := startAgentWith(t, func(cfg *Config) {
		cfg.CPUFrequency = 0
		cfg.DiscoveryInterval = Duration(100 * time.Millisecond)
		cfg.Discovery = discovery.Rules{Include: []discovery.Match{ownTargets(), {Exe: "/old-go120"}}}
	}, func(a *Agent) {
		a.log = slog.New(slog.NewTextHandler(&logBuf, nil))
		a.boot = a.boot.Add(-time.Hour)
	})
	tg := targettest.Start(t, pop, "-n", "1", "-spin", "0")
	runFor(t, old, 3*time.Second) // thirty discovery cycles
	tg.Stop()
	eventually.True(t, 5*time.Second, "the target's gone line", func() bool { return countLog(logBuf.String()).gone > 0 })
	r.stop()

	c := countLog(logBuf.String())
	t.Logf("over 30 discovery cycles: %d watching, %d gone, %d cannot watch, %d summaries", c.watching, c.gone, c.refused, c.summaries)
	if c.watching != 1 || c.gone != 1 || c.refused != 1 || c.summaries != 0 {
		t.Errorf("want one watching, one gone and one cannot watch line; log:\n%s", logBuf.String())
	}
	if got := testutil.ToFloat64(r.a.metrics.errors.WithLabelValues("attach")); got != 1 {
		t.Errorf("errors_total{reason=\"attach\"} = %v, want 1 (once per process)", got)
	}
}
