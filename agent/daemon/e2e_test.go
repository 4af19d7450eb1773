package daemon

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/klauspost/compress/gzip"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/goroscope/goroscope/collect/discovery"
	"github.com/goroscope/goroscope/pkg/goroutinedump"
	"github.com/goroscope/goroscope/pkg/snapshot"
	"github.com/goroscope/goroscope/pkg/store"
	"github.com/goroscope/goroscope/test/eventually"
	"github.com/goroscope/goroscope/test/targettest"
)

// TestAgentEndToEnd runs the agent on real targets and checks what it
// serves against the targets' own view: goroutine counts by state and wait
// reason in /metrics equal the counts of /debug/pprof/goroutine?debug=2, the
// store holds the profiles, and a growing population shows in the series.
func TestAgentEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("builds targets and runs the agent")
	}
	steady := targettest.Start(t, buildTarget(t, "population", targettest.BuildOpts{}), "-spin", "0")
	stripped := targettest.Start(t, buildTarget(t, "population", targettest.BuildOpts{GoVersion: "go1.22.12", Stripped: true}), "-spin", "0")
	growing := targettest.Start(t, buildTarget(t, "population", targettest.BuildOpts{}), "-spin", "0", "-grow", "20")
	targets := []*targettest.Target{steady, stripped, growing}

	a, base := runAgent(t, func(cfg *Config) {
		cfg.SnapshotInterval = Duration(500 * time.Millisecond)
	})

	// Wait until every target has been snapshotted at least twice.
	eventually.Succeeds(t, 60*time.Second, func() error {
		n := 0
		for _, tg := range targets {
			if len(storeEntries(t, a, tg.PID, store.KindGoroutines)) >= 2 {
				n++
			}
		}
		if n < len(targets) {
			return fmt.Errorf("only %d of %d targets snapshotted twice", n, len(targets))
		}
		return nil
	})
	if resp, err := http.Get(base + "/healthz"); err != nil || resp.StatusCode != 200 {
		t.Fatalf("/healthz: %v %v", resp, err)
	}

	// /metrics equals the newest snapshot, and that snapshot equals the
	// runtime's own dump, goroutine by goroutine.
	for _, tg := range []*targettest.Target{steady, stripped} {
		runtimeCounts(t, tg) // opens the keep-alive connection the checks reuse
		meta, got := consistentMetrics(t, a, base, tg.PID)
		for k, v := range meta.Summary {
			if strings.HasPrefix(k, "state/") && k != "state/waiting" && got[strings.TrimPrefix(k, "state/")] != v {
				t.Errorf("pid %d: %s = %v in the snapshot, %v in /metrics", tg.PID, k, v, got[strings.TrimPrefix(k, "state/")])
			}
			if r, ok := strings.CutPrefix(k, "wait_reason/"); ok && got["waiting/"+r] != v {
				t.Errorf("pid %d: %s = %v in the snapshot, %v in /metrics", tg.PID, k, v, got["waiting/"+r])
			}
		}
		snap := storedSnapshot(t, a, meta.ID)
		dump, _, err := tg.Dump(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		ours := map[uint64]string{}
		for _, g := range snap.Goroutines {
			st := string(g.State)
			if g.WaitReason != "" {
				st = g.WaitReason
			}
			ours[g.ID] = st
		}
		matched := 0
		for _, d := range dump {
			st, ok := ours[d.ID]
			if !ok || d.Status == "running" {
				continue // created after the snapshot, or serving this dump
			}
			if st != d.Status {
				t.Errorf("pid %d: goroutine %d is %q in the agent's snapshot, %q in the runtime's dump", tg.PID, d.ID, st, d.Status)
				continue
			}
			matched++
		}
		if matched < tg.Goroutines {
			t.Errorf("pid %d: %d goroutines matched the runtime's dump; the target has %d", tg.PID, matched, tg.Goroutines)
		}
	}

	// The growing target's chart rises (20 goroutines a second) and the
	// diff shows what appeared.
	eventually.Succeeds(t, 30*time.Second, func() error {
		var series struct {
			Total []float64 `json:"total"`
		}
		getJSON(t, fmt.Sprintf("%s/api/processes/%d/%d/series", base, growing.PID, processStart(t, growing.PID)), &series)
		if n := len(series.Total); n < 3 || series.Total[n-1] < series.Total[0]+20 {
			return fmt.Errorf("series of the growing target does not grow by 20 a second: %v", series.Total)
		}
		return nil
	})
	entries := storeEntries(t, a, growing.PID, store.KindGoroutines)
	from, to := entries[0].Time.Format(time.RFC3339Nano), entries[len(entries)-1].Time.Format(time.RFC3339Nano)
	var diff struct {
		BaseTotal float64 `json:"base_total"`
		Total     float64 `json:"total"`
	}
	getJSON(t, fmt.Sprintf("%s/api/processes/%d/%d/diff?base_from=%s&base_to=%s&from=%s&to=%s", base, growing.PID, processStart(t, growing.PID),
		url.QueryEscape(from), url.QueryEscape(from), url.QueryEscape(to), url.QueryEscape(to)), &diff)
	if diff.Total < diff.BaseTotal+20 {
		t.Errorf("diff of the growing target's first and last snapshots shows no growth: %+v", diff)
	}

	// Every kind of entry is stored for every target.
	for _, tg := range targets {
		for _, kind := range []string{store.KindGoroutines, store.KindGoroutineWall, store.KindSnapshot} {
			if len(storeEntries(t, a, tg.PID, kind)) == 0 {
				t.Errorf("pid %d: no %s entries in the store", tg.PID, kind)
			}
		}
	}
	// A process that exits is dropped; the agent keeps going.
	steady.Cmd.Process.Kill()
	eventually.True(t, 30*time.Second, "the exited target no longer watched", func() bool {
		return strings.Contains(get(t, base+"/metrics"), "goroscope_processes_watched 2")
	})
	before := len(storeEntries(t, a, growing.PID, store.KindGoroutines))
	eventually.Succeeds(t, 10*time.Second, func() error { // snapshots come every 500ms
		if after := len(storeEntries(t, a, growing.PID, store.KindGoroutines)); after < before+2 {
			return fmt.Errorf("snapshots stopped after a target exited: %d then %d", before, after)
		}
		return nil
	})

	// Self-metrics are served.
	body := get(t, base+"/metrics")
	for _, m := range []string{"goroscope_snapshot_duration_seconds_bucket", "goroscope_snapshots_total", "goroscope_process_info", "goroscope_goroutine_blocked_seconds_bucket", "goroscope_store_bytes"} {
		if !strings.Contains(body, m) {
			t.Errorf("/metrics lacks %s", m)
		}
	}
}

// runAgent is startAgent for a test that lets cleanup stop the agent.
func runAgent(t *testing.T, edit func(*Config)) (*Agent, string) {
	t.Helper()
	r := startAgent(t, edit)
	return r.a, r.base
}

// agentRun is an agent a test stops itself (runAgent's stop at cleanup
// does not allow a restart in the middle of a test).
type agentRun struct {
	a    *Agent
	base string // http://listen-address
	stop func() // cancels Run as SIGTERM does and waits for it; idempotent
}

// startAgent runs an agent for a test: defaults, a temporary data dir, a
// free port, quick discovery, and only the population targets watched;
// edit adjusts the rest. It stops (and must stop cleanly) at cleanup at
// the latest.
func startAgent(t *testing.T, edit func(*Config)) *agentRun {
	t.Helper()
	return startAgentWith(t, edit, nil)
}

// startAgentWith is startAgent with prepare, if not nil, called on the
// agent before Run (to replace its BPF loaders).
func startAgentWith(t *testing.T, edit func(*Config), prepare func(*Agent)) *agentRun {
	t.Helper()
	cfg := DefaultConfig()
	cfg.DataDir = t.TempDir()
	cfg.Listen = freeAddr(t)
	cfg.DiscoveryInterval = Duration(300 * time.Millisecond)
	cfg.Discovery = discovery.Rules{Include: []discovery.Match{ownTargets()}}
	edit(&cfg)
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	if testing.Verbose() {
		log = slog.New(slog.NewTextHandler(os.Stderr, nil))
	}
	a, err := New(cfg, log, "dev")
	if err != nil {
		t.Fatal(err)
	}
	if prepare != nil {
		prepare(a)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	stopped := false
	r := &agentRun{a: a, base: "http://" + cfg.Listen}
	r.stop = func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("agent Run: %v", err)
			}
		case <-time.After(30 * time.Second):
			t.Fatal("agent did not stop within 30s of its context ending")
		}
	}
	t.Cleanup(r.stop)
	return r
}

// consistentMetrics reads /metrics between two looks at the store that
// see the same newest snapshot, so that both describe one moment.
func consistentMetrics(t *testing.T, a *Agent, base string, pid int) (store.Meta, map[string]float64) {
	for try := 0; try < 20; try++ {
		before := storeEntries(t, a, pid, store.KindSnapshot)
		got := metricCounts(t, base, pid)
		after := storeEntries(t, a, pid, store.KindSnapshot)
		if len(before) > 0 && before[len(before)-1].ID == after[len(after)-1].ID {
			return after[len(after)-1], got
		}
	}
	t.Fatalf("pid %d: snapshots kept changing while /metrics was read", pid)
	return store.Meta{}, nil
}

func storedSnapshot(t *testing.T, a *Agent, id uint64) *snapshot.Snapshot {
	s, err := snapshot.DecodeBinary(storedPayload(t, a, id))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// storedPayload is a store entry's payload, gunzipped.
func storedPayload(t *testing.T, a *Agent, id uint64) []byte {
	t.Helper()
	b, err := a.store.Read(id)
	if err != nil {
		t.Fatal(err)
	}
	zr, err := gzip.NewReader(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	raw, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

func freeAddr(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

func processStart(t *testing.T, pid int) uint64 {
	p, err := discovery.NewScanner().Lookup(pid)
	if err != nil {
		t.Fatal(err)
	}
	return p.StartTime
}

func storeEntries(t *testing.T, a *Agent, pid int, kind string) []store.Meta {
	ms, err := a.store.List(store.Query{Process: store.ProcessKey{PID: pid, StartTime: processStart(t, pid)}, Kind: kind})
	if err != nil {
		t.Fatal(err)
	}
	return ms
}

// runtimeCounts counts the target's goroutines by "state/wait_reason" as
// its own dump reports them.
func runtimeCounts(t *testing.T, tg *targettest.Target) map[string]float64 {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	gs, _, err := tg.Dump(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return countDump(gs)
}

func countDump(gs []goroutinedump.Goroutine) map[string]float64 {
	out := map[string]float64{}
	for _, g := range gs {
		switch g.Status {
		case "running", "runnable", "syscall":
			out[g.Status]++
		default:
			out["waiting/"+g.Status]++
		}
	}
	return out
}

// metricCounts reads goroscope_goroutines of one pid from /metrics.
func metricCounts(t *testing.T, base string, pid int) map[string]float64 {
	parser := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := parser.TextToMetricFamilies(strings.NewReader(get(t, base+"/metrics")))
	if err != nil {
		t.Fatalf("parse /metrics: %v", err)
	}
	out := map[string]float64{}
	fam := fams["goroscope_goroutines"]
	if fam == nil {
		t.Fatal("no goroscope_goroutines in /metrics")
	}
	for _, m := range fam.Metric {
		l := map[string]string{}
		for _, lp := range m.Label {
			l[lp.GetName()] = lp.GetValue()
		}
		if l["pid"] != strconv.Itoa(pid) {
			continue
		}
		k := l["state"]
		if k == "waiting" {
			k += "/" + l["wait_reason"]
		}
		out[k] += m.GetGauge().GetValue()
	}
	return out
}

func get(t *testing.T, url string) string {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		t.Fatalf("GET %s: %s: %s", url, resp.Status, b)
	}
	return string(b)
}

func getJSON(t *testing.T, url string, v any) {
	t.Helper()
	if err := json.Unmarshal([]byte(get(t, url)), v); err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
}
