package daemon

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/goroscope/goroscope/agent/bpfload"
	"github.com/goroscope/goroscope/agent/bpfload/bpfloadtest"
	"github.com/goroscope/goroscope/agent/ui"
	"github.com/goroscope/goroscope/collect/cpu"
	"github.com/goroscope/goroscope/pkg/snapshot"
	"github.com/goroscope/goroscope/pkg/store"
	"github.com/goroscope/goroscope/test/eventually"
	"github.com/goroscope/goroscope/test/logbuf"
	"github.com/goroscope/goroscope/test/targettest"
)

// TestAgentServesWhileBPFLoads: with both BPF loads stuck in the kernel
// verifier, the agent answers /healthz and /metrics within a second of its
// start, says so in goroscope_walker_info, and becomes ready (/healthz
// 200) without them; procmem snapshots the
// processes meanwhile, and when the eBPF walker arrives they move to it at
// their next snapshot.
func TestAgentServesWhileBPFLoads(t *testing.T) {
	var bin string
	if !testing.Short() {
		bin = buildTarget(t, "population", targettest.BuildOpts{})
	}
	g := bpfloadtest.NewGatedLoader[bpfload.EBPFWalker]()
	start := time.Now()
	r := startAgentWith(t, func(cfg *Config) {
		cfg.SnapshotInterval = Duration(200 * time.Millisecond)
		cfg.CPUFrequency = 99
	}, func(a *Agent) {
		a.loadWalker = g.Load
		a.loadCPU = func(ctx context.Context, _ cpu.Options) (*cpu.Sampler, error) {
			<-ctx.Done() // a verifier that never finishes
			return nil, ctx.Err()
		}
	})
	want := []string{
		`goroscope_walker_info{reason="loading",walker="procmem"} 1`,
		`goroscope_cpu_sampler_info{reason="loading",state="loading"} 1`,
	}
	// Within a second: /metrics says the BPF objects are loading and
	// /healthz answers (503 until the first discovery scan, which reads
	// every executable on the host and does not wait for BPF either).
	eventually.Succeeds(t, time.Second-time.Since(start), func() error {
		status, _ := tryGet(r.base + "/healthz")
		_, metrics := tryGet(r.base + "/metrics")
		if status == 0 || !containsAll(metrics, want) {
			return fmt.Errorf("/healthz %d, /metrics lacks some of %q:\n%s", status, want, grepLines(metrics, "goroscope_walker_info", "goroscope_cpu_sampler_info"))
		}
		return nil
	})
	t.Logf("/healthz and /metrics answered %v after start", time.Since(start).Round(time.Millisecond))
	eventually.True(t, 10*time.Second, "200 from /healthz while BPF loads", func() bool {
		status, _ := tryGet(r.base + "/healthz")
		return status == http.StatusOK
	})
	if _, metrics := tryGet(r.base + "/metrics"); !containsAll(metrics, want) {
		t.Fatalf("the loads ended: /metrics has\n%s", grepLines(metrics, "goroscope_walker_info", "goroscope_cpu_sampler_info"))
	}
	t.Logf("/healthz ready %v after start, BPF still loading", time.Since(start).Round(time.Millisecond))
	if bin == "" {
		return
	}
	// Started now, so that the first discovery scan above had nothing to
	// attach to: its time is the agent's, not the target's.
	tgt := targettest.Start(t, bin, "-spin", "0")

	// procmem serves until the eBPF walker is ready, then the eBPF one.
	walkers := func() map[string]bool {
		seen := map[string]bool{}
		for _, m := range storeEntries(t, r.a, tgt.PID, store.KindSnapshot) {
			s, err := snapshot.DecodeBinary(storedPayload(t, r.a, m.ID))
			if err != nil {
				t.Fatal(err)
			}
			seen[s.Walker] = true
		}
		return seen
	}
	eventually.True(t, 20*time.Second, "a procmem snapshot of the target", func() bool { return walkers()["procmem"] })
	g.Release <- &bpfloadtest.FakeEBPF{}
	eventually.True(t, 20*time.Second, "an eBPF snapshot of the target", func() bool { return walkers()["ebpf"] })
	_, metrics := tryGet(r.base + "/metrics")
	if !strings.Contains(metrics, `goroscope_walker_info{reason="",walker="ebpf"} 1`) {
		t.Errorf("after the switch /metrics has:\n%s", grepLines(metrics, "goroscope_walker_info"))
	}
	var procs []ui.ProcessRow
	getJSON(t, r.base+"/api/processes", &procs)
	for _, p := range procs {
		if p.PID == tgt.PID && (p.Walker != "ebpf" || p.WalkerReason != "") {
			t.Errorf("UI shows walker %q (%q) for the target, want ebpf", p.Walker, p.WalkerReason)
		}
	}
	stopStart := time.Now()
	r.stop()
	if d := time.Since(stopStart); d > 3*time.Second {
		t.Errorf("the agent took %v to stop", d)
	}
}

// TestAgentRejectedWalker: a rejected eBPF walker is one log line with the
// cause and where the verifier's log is, and goroscope_walker_info says
// why procmem serves.
func TestAgentRejectedWalker(t *testing.T) {
	var logBuf logbuf.Buffer
	g := bpfloadtest.NewGatedLoader[bpfload.EBPFWalker]()
	g.Fail <- bpfloadtest.TooComplex()
	r := startAgentWith(t, func(cfg *Config) { cfg.CPUFrequency = 0 }, func(a *Agent) {
		a.log = slog.New(slog.NewTextHandler(&logBuf, nil))
		a.loadWalker = g.Load
	})
	cause := "verifier: too complex, 1,000,001 instructions processed, limit 1,000,000"
	eventually.True(t, 5*time.Second, "walker_info with the cause", func() bool {
		_, m := tryGet(r.base + "/metrics")
		return strings.Contains(m, `goroscope_walker_info{reason="`+cause+`",walker="procmem"} 1`)
	})
	r.stop()
	var lines []string
	for _, l := range strings.Split(logBuf.String(), "\n") {
		if strings.Contains(l, "eBPF goroutine walker") {
			lines = append(lines, l)
		}
	}
	if len(lines) != 1 || !strings.Contains(lines[0], cause) || !strings.Contains(lines[0], "verifier_log=") ||
		strings.Contains(lines[0], "Linux >= 5.18") || strings.Contains(lines[0], "max_states_per_insn") {
		t.Errorf("want one line with the cause and the log's path, no verifier log, no kernel advice; got:\n%s", strings.Join(lines, "\n"))
	}
}

func tryGet(url string) (int, string) {
	resp, err := http.Get(url)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func containsAll(s string, subs []string) bool {
	for _, sub := range subs {
		if !strings.Contains(s, sub) {
			return false
		}
	}
	return true
}

func grepLines(s string, prefixes ...string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		for _, p := range prefixes {
			if strings.HasPrefix(l, p) {
				out = append(out, l)
			}
		}
	}
	return strings.Join(out, "\n")
}
