package ui

import (
	"context"
	"net"
	"net/http"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/goroscope/goroscope/pkg/findings"
	"github.com/goroscope/goroscope/pkg/snapshot"
)

// hostileGODEBUG is a GODEBUG value a target controls, with a debugging
// setting left on (gctrace=1) and markup the page must show as text.
const hostileGODEBUG = `gctrace=1,<img src=x onerror="window.__xss=3">`

// healthMoments are the runtime health's fixture moments: four snapshots
// 10 s apart from t0, the health read at the first, third and fourth (a
// process read every few snapshots), none at the second.
var healthMoments = []time.Time{t0, t0.Add(10 * time.Second), t0.Add(20 * time.Second), t0.Add(30 * time.Second)}

// healthReads are the reads at healthMoments (nil: not read then):
// GOMAXPROCS=2 from the environment against a 1-core quota, the kernel
// throttling it (10, 12, then 15 s held back); no GOMEMLIMIT in a cgroup
// limited to 256 MiB, the live heap growing past half of it (100, 150,
// 180 MiB); GODEBUG=hostileGODEBUG.
func healthReads() []*findings.RuntimeHealth {
	const mib = 1 << 20
	env := []findings.EnvVar{{Name: "GODEBUG", Value: hostileGODEBUG}, {Name: "GOMAXPROCS", Value: "2"}}
	read := func(at time.Time, heapLive uint64, periods, throttled uint64, throttledSec float64, usage int64, gc uint32) *findings.RuntimeHealth {
		return &findings.RuntimeHealth{Time: at, GoVersion: testProc.GoVersion, Env: env,
			Runtime: &findings.GoRuntime{GOMAXPROCS: 2, GOGCPercent: 100, MemoryLimitBytes: findings.NoMemoryLimit,
				HeapLiveBytes: heapLive, HeapGoalBytes: 2 * heapLive, HeapInUseBytes: heapLive + 20*mib, GCCycles: gc,
				RunQueue: 5, GlobalRunQueue: 1, IdleProcs: 0, Threads: 9},
			Cgroup: &findings.Cgroup{CPUVersion: 2, MemoryVersion: 2, CPUQuotaCores: 1, CPUPeriods: periods, CPUThrottledPeriods: throttled,
				CPUThrottledSeconds: throttledSec, MemoryLimitBytes: 256 * mib, MemoryUsageBytes: usage, OOMKills: 0, HaveOOMKills: true}}
	}
	return []*findings.RuntimeHealth{
		read(healthMoments[0], 100*mib, 1000, 100, 10, 190*mib, 40),
		nil,
		read(healthMoments[2], 150*mib, 1200, 150, 12, 220*mib, 44),
		read(healthMoments[3], 180*mib, 1300, 200, 15, 240*mib, 47),
	}
}

// healthSummary adds a read's series to an entry's summary as the agent
// does (agent/daemon healthSeries, addHealthSummary).
func healthSummary(sum map[string]float64, h *findings.RuntimeHealth) {
	rt, cg := h.Runtime, h.Cgroup
	for k, v := range map[string]float64{
		"go_gomaxprocs": float64(rt.GOMAXPROCS), "go_gogc_percent": float64(rt.GOGCPercent), "go_memory_limit_bytes": float64(rt.MemoryLimitBytes),
		"go_heap_live_bytes": float64(rt.HeapLiveBytes), "go_heap_goal_bytes": float64(rt.HeapGoalBytes), "go_heap_inuse_bytes": float64(rt.HeapInUseBytes),
		"go_gc_cycles_total": float64(rt.GCCycles), "go_runqueue_goroutines": float64(rt.RunQueue), "go_idle_procs": float64(rt.IdleProcs),
		"go_threads": float64(rt.Threads), "cgroup_cpu_quota_cores": cg.CPUQuotaCores, "cgroup_cpu_periods_total": float64(cg.CPUPeriods),
		"cgroup_cpu_throttled_periods_total": float64(cg.CPUThrottledPeriods), "cgroup_cpu_throttled_seconds_total": cg.CPUThrottledSeconds,
		"cgroup_memory_limit_bytes": float64(cg.MemoryLimitBytes), "cgroup_memory_usage_bytes": float64(cg.MemoryUsageBytes),
		"cgroup_oom_kills_total": float64(cg.OOMKills),
	} {
		sum[summaryRuntime+k] = v
	}
}

// serveHealth serves a store holding a snapshot at each of healthMoments
// with the runtime health's series where it was read, and the findings a
// findings.RuntimeTracker judges from the reads (stored with each
// snapshot, the newest read's, as the agent stores them); the live
// process holds the newest read and its findings. It returns the UI's URL
// and those findings.
func serveHealth(t *testing.T) (string, []findings.Finding) {
	t.Helper()
	st := openStore(t)
	tr := findings.NewRuntimeTracker(findings.Config{})
	var fs []findings.Finding
	var last *snapshot.Snapshot
	reads := healthReads()
	for i, at := range healthMoments {
		s := makeSnapshot(at, goroutines(1, 3+i, "chan receive", 1, nil, stackRecv))
		if h := reads[i]; h != nil {
			fs = tr.Observe(h)
		}
		sum := findingsSummary(s, fs)
		if h := reads[i]; h != nil {
			healthSummary(sum, h)
		}
		appendSnapshotSummary(t, st, testProc, s, sum)
		if len(fs) > 0 {
			appendFindings(t, st, testProc, at, sum, storedFindings{PID: testProc.PID, Time: at.Format(time.RFC3339Nano), Findings: fs})
		}
		last = s
	}
	live := Process{Process: testProc, Live: true, Walker: "procmem", LastSnapshot: last.Time, Counts: last.Counts, Findings: fs,
		Runtime: reads[len(reads)-1]}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: New(testSource{Store: st, live: []Process{live}}, nil), ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { srv.Close() })
	return "http://" + ln.Addr().String() + "/", fs
}

// healthResult is what testdata/health.spec.mjs measured in the page.
type healthResult struct {
	// ListBadges are the process list's badges as "kind:class".
	ListBadges []string `json:"list_badges"`
	// Panel is each figure of the panel: key to [value, note].
	Panel map[string][2]string `json:"panel"`
	// Env is the environment table: name to value, as text.
	Env    map[string]string `json:"env"`
	XSS    bool              `json:"xss"`
	Images int               `json:"images"`
	// Heap and CPU are the charts' legends, the cursor away ("series
	// value"), and Gap the heap chart's at the moment without a read.
	Heap []string `json:"heap"`
	CPU  []string `json:"cpu"`
	Gap  []string `json:"gap"`
	// Drawn counts, per chart, the series whose colour is on its canvas.
	Drawn []int `json:"drawn"`
	// Cards are the findings panel's cards: kind, fix, evidence; Links
	// the goroutine and flame links in them.
	Cards []struct {
		Kind     string `json:"kind"`
		Summary  string `json:"summary"`
		Fix      string `json:"fix"`
		Evidence string `json:"evidence"`
		Site     int    `json:"site"`
	} `json:"cards"`
	Links int `json:"links"`
	// Dragged is the page's hash after a drag on the heap chart.
	Dragged string `json:"dragged"`
}

// TestHealthInBrowser drives the runtime settings and health views in
// chromium (testdata/health.spec.mjs) over serveHealth's store: the list's
// badges of the runtime findings; the process page's panel (GOMAXPROCS 2
// against a 1-core quota, no GOMEMLIMIT against a 256 MiB cgroup limit,
// the heap, the run queue, the hostile GODEBUG as text); the heap and CPU
// charts from the stored series, a moment without a read shown as none;
// the runtime findings with their fix and evidence, without goroutine
// links; a drag on a health chart picking a range like the others.
func TestHealthInBrowser(t *testing.T) {
	if testing.Short() {
		t.Skip("starts Chromium")
	}
	chromium, node, dir := browserPrereqs(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	url, fs := serveHealth(t)
	var kinds []string
	for _, f := range fs {
		kinds = append(kinds, f.Kind)
	}
	want := []string{findings.KindNoMemoryLimit, findings.KindGomaxprocsOverQuota, findings.KindGodebugLeftOn}
	if !slices.Equal(kinds, want) {
		t.Fatalf("the tracker judged %q from the fixture, want %q", kinds, want)
	}
	spec, err := filepath.Abs(filepath.Join("testdata", "health.spec.mjs"))
	if err != nil {
		t.Fatal(err)
	}
	got := runSpec[healthResult](t, ctx, node, chromium, dir, spec, url, filepath.Join(dir, "artifacts", "health"), dir)

	var badges []string
	for _, k := range want {
		badges = append(badges, k+":badge badge-"+k)
	}
	if !slices.Equal(got.ListBadges, badges) {
		t.Errorf("process list badges %q, want %q", got.ListBadges, badges)
	}
	for key, w := range map[string][2]string{
		"gomaxprocs":          {"2", "vs a CPU quota of 1 core"},
		"cpu-quota":           {"1 core", "cgroup v2"},
		"throttled":           {"15.0 s", "held back in 200 of 1,300 periods (15%), since the cgroup began"},
		"gogc":                {"100", ""},
		"gomemlimit":          {"none", "vs a cgroup memory limit of 256 MiB"},
		"cgroup-memory-limit": {"256 MiB", ""},
		"cgroup-memory-usage": {"240 MiB", "94% of the limit"},
		"heap-live":           {"180 MiB", ""},
		"heap-goal":           {"360 MiB", ""},
		"heap-inuse":          {"200 MiB", ""},
		"gc-cycles":           {"47", ""},
		"runqueue":            {"5", "goroutines waiting for a P: 1 global, 4 in the Ps' queues"},
		"idle-procs":          {"0", "of 2"},
		"threads":             {"9", ""},
		"oom-kills":           {"0", ""},
	} {
		g, ok := got.Panel[key]
		if !ok || g[0] != w[0] || (w[1] != "" && g[1] != w[1]) {
			t.Errorf("panel %s: %q, want %q", key, g, w)
		}
	}
	if got.Env["GODEBUG"] != hostileGODEBUG || got.Env["GOMAXPROCS"] != "2" || got.XSS || got.Images != 0 {
		t.Errorf("environment %q, xss %v, %d images in the panel; want GODEBUG=%q as text", got.Env, got.XSS, got.Images, hostileGODEBUG)
	}
	// The legends, the cursor away: the newest read. Throttled: 3 s over
	// the last 10 s.
	for name, c := range map[string]struct{ got, want []string }{
		"heap": {got.Heap, []string{"heap live 180 MiB", "heap in use 200 MiB", "heap goal 360 MiB", "GOMEMLIMIT none", "cgroup limit 256 MiB", "cgroup usage 240 MiB"}},
		"cpu":  {got.CPU, []string{"GOMAXPROCS 2", "CPU quota 1 core", "throttled 300 ms/s"}},
		"gap":  {got.Gap, []string{"heap live –", "heap in use –", "heap goal –", "GOMEMLIMIT –", "cgroup limit –", "cgroup usage –"}},
	} {
		if !slices.Equal(c.got, c.want) {
			t.Errorf("%s chart legend %q, want %q", name, c.got, c.want)
		}
	}
	if len(got.Drawn) != 2 || got.Drawn[0] != 5 || got.Drawn[1] != 3 {
		t.Errorf("series drawn per health chart %v, want [5 3] (every series with a value; GOMEMLIMIT none)", got.Drawn)
	}
	if len(got.Cards) != len(want) {
		t.Fatalf("findings cards %+v, want %q", got.Cards, want)
	}
	for i, c := range got.Cards {
		f := fs[i]
		if c.Kind != f.Kind || c.Fix != f.Fix || c.Fix == "" || c.Site != 0 || c.Summary+"; "+c.Fix != f.Summary {
			t.Errorf("card %d: %s, %q, fix %q, %d site lines; want %s, %q without its fix, fix %q, no site", i, c.Kind, c.Summary, c.Fix, c.Site, f.Kind, f.Summary, f.Fix)
		}
	}
	if ev := got.Cards[1].Evidence; !strings.Contains(ev, "GOMAXPROCS 2") || !strings.Contains(ev, "CPU quota 1 core") || !strings.Contains(ev, "set by environment") {
		t.Errorf("gomaxprocs-over-quota evidence %q, want GOMAXPROCS 2, CPU quota 1 core, set by environment", ev)
	}
	if !strings.Contains(got.Cards[1].Fix, "GOMAXPROCS=1") || !strings.Contains(got.Cards[2].Evidence, "GODEBUG gctrace=1") {
		t.Errorf("fix %q, godebug evidence %q", got.Cards[1].Fix, got.Cards[2].Evidence)
	}
	if got.Links != 0 {
		t.Errorf("%d goroutine or flame links on runtime findings, want none", got.Links)
	}
	if !strings.Contains(got.Dragged, "from=") || strings.Contains(got.Dragged, "range=") {
		t.Errorf("after a drag on the heap chart the page is at %q, want a custom range", got.Dragged)
	}
}
