package daemon

import (
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/goroscope/goroscope/collect/discovery"
	"github.com/goroscope/goroscope/pkg/findings"
	"github.com/goroscope/goroscope/pkg/store"
	"github.com/goroscope/goroscope/test/targettest"
)

// TestHealthBudget: reads are spent while the walks' share covers them: a
// read of 20µs after walks of 40µs at 5% comes every 10 walks, and the
// reads never take more than 5% of the walks.
func TestHealthBudget(t *testing.T) {
	hs := &health{cost: 20 * time.Microsecond} // the first read, not charged
	reads := 0
	var spent, earned time.Duration
	for i := 0; i < 1000; i++ {
		earned += 2 * time.Microsecond
		if hs.earn(40*time.Microsecond, 5) {
			hs.spend(20 * time.Microsecond)
			spent += 20 * time.Microsecond
			reads++
		}
		if spent > earned {
			t.Fatalf("after %d walks: spent %v of %v earned", i+1, spent, earned)
		}
	}
	if reads != 100 {
		t.Errorf("%d reads after 1000 walks, want 100", reads)
	}
	hs.credit = 0
	for i := 0; i < 100; i++ {
		hs.earn(time.Hour, 100)
	}
	if hs.credit != maxCredit {
		t.Errorf("credit %v, want at most %v", hs.credit, maxCredit)
	}
}

// TestHealthSeries: a read gives the series the issue names, labelled as
// the process, and their summary keys; the absent limits give no series.
func TestHealthSeries(t *testing.T) {
	h := &findings.RuntimeHealth{
		Runtime: &findings.GoRuntime{GOMAXPROCS: 2, GOGCPercent: -1, MemoryLimitBytes: findings.NoMemoryLimit, HeapLiveBytes: 3, HeapGoalBytes: 4,
			HeapInUseBytes: 5, GCCycles: 6, RunQueue: 7, IdleProcs: 1, Threads: 9},
		Cgroup: &findings.Cgroup{CPUVersion: 1, MemoryVersion: 1, CPUQuotaCores: 1.5, CPUPeriods: 100, CPUThrottledPeriods: 10, CPUThrottledSeconds: 1.25,
			MemoryLimitBytes: 256 << 20, MemoryUsageBytes: 100 << 20, OOMKills: 2, HaveOOMKills: true},
	}
	labels := map[string]string{"service_name": "svc", "pid": "42"}
	got := map[string]float64{}
	for _, s := range healthSeries(h, labels) {
		if fmt.Sprint(s.Labels) != fmt.Sprint(labels) {
			t.Errorf("%s labels %v", s.Name, s.Labels)
		}
		if _, ok := healthMetrics[s.Name]; !ok {
			t.Errorf("%s has no help", s.Name)
		}
		got[s.Name] = s.Value
	}
	want := map[string]float64{
		"goroscope_go_gomaxprocs": 2, "goroscope_go_gogc_percent": -1, "goroscope_go_memory_limit_bytes": math.MaxInt64,
		"goroscope_go_heap_live_bytes": 3, "goroscope_go_heap_goal_bytes": 4, "goroscope_go_heap_inuse_bytes": 5, "goroscope_go_gc_cycles_total": 6,
		"goroscope_go_runqueue_goroutines": 7, "goroscope_go_idle_procs": 1, "goroscope_go_threads": 9,
		"goroscope_cgroup_cpu_quota_cores": 1.5, "goroscope_cgroup_cpu_periods_total": 100, "goroscope_cgroup_cpu_throttled_periods_total": 10,
		"goroscope_cgroup_cpu_throttled_seconds_total": 1.25, "goroscope_cgroup_memory_limit_bytes": 256 << 20,
		"goroscope_cgroup_memory_usage_bytes": 100 << 20, "goroscope_cgroup_oom_kills_total": 2,
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("series\n%v\nwant\n%v", got, want)
	}
	if len(healthMetrics) != len(want) {
		t.Errorf("%d series described, %d made", len(healthMetrics), len(want))
	}
	sum := map[string]float64{}
	addHealthSummary(sum, healthSeries(h, labels))
	if sum["rt/go_gomaxprocs"] != 2 || sum["rt/cgroup_cpu_throttled_seconds_total"] != 1.25 || len(sum) != len(want) {
		t.Errorf("summary %v", sum)
	}
	// Without limits, or a cgroup: no limit series; counters of what was
	// not read are left out.
	h.Cgroup = &findings.Cgroup{CPUVersion: 2, MemoryVersion: 2, MemoryUsageBytes: 1}
	h.Runtime.Threads = -1
	var names []string
	for _, s := range healthSeries(h, labels) {
		names = append(names, s.Name)
	}
	for _, absent := range []string{MetricCgroupCPUQuota, MetricCgroupCPUThrottledSec, MetricCgroupMemoryLimit, MetricCgroupOOMKills, MetricGoThreads} {
		if slices.Contains(names, absent) {
			t.Errorf("%s made without its figure: %v", absent, names)
		}
	}
}

// TestHealthConfig: runtime_health's defaults and bounds.
func TestHealthConfig(t *testing.T) {
	c := DefaultConfig()
	if !c.RuntimeHealth.Enabled || c.RuntimeHealth.MaxCostPercent != 5 {
		t.Errorf("defaults %+v", c.RuntimeHealth)
	}
	for _, pct := range []float64{0, -1, 101, math.NaN()} {
		c.RuntimeHealth.MaxCostPercent = pct
		if errs := c.RuntimeHealth.validate(); len(errs) != 1 || !strings.Contains(errs[0], "runtime_health.max_cost_percent") {
			t.Errorf("%v: %v", pct, errs)
		}
	}
	c.RuntimeHealth.Enabled = false
	if errs := c.RuntimeHealth.validate(); len(errs) != 0 {
		t.Errorf("off: %v", errs)
	}
	c, err := parseConfig([]byte("runtime_health:\n  max_cost_percent: 2.5\nfindings:\n  runqueue_backlog: {min_per_p: 4, for: 30s}\n  services:\n    web:\n      no_memory_limit: {min_heap_fraction: 0.8}\n"), DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	if c.RuntimeHealth.MaxCostPercent != 2.5 || c.Findings.RunqueueBacklog.MinPerP != 4 || c.Findings.RunqueueBacklog.For != 30*time.Second ||
		c.Findings.forService("web").NoMemoryLimit.MinHeapFraction != 0.8 || c.Findings.forService("web").RunqueueBacklog.MinPerP != 4 {
		t.Errorf("%+v %+v", c.RuntimeHealth, c.Findings)
	}
}

// TestAgentRuntimeHealth: the agent reads a process's runtime settings and
// health and serves them: the series on /metrics (counters as counters),
// the summary keys of its stored entries, the newest read for the UI, and
// the runtime findings stored, logged and exported as the goroutine ones
// are: the GC off without a memory limit, and GODEBUG's gctrace left on.
func TestAgentRuntimeHealth(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a target and the agent")
	}
	tgt := targettest.StartWith(t, targettest.StartOpts{Env: []string{"GOMAXPROCS=3", "GOGC=off", "GODEBUG=gctrace=1"}},
		buildTarget(t, "rtmetrics", targettest.BuildOpts{}), "-churn", "0", "-live", "4")
	a, base := runAgent(t, func(cfg *Config) {
		cfg.SnapshotInterval = Duration(300 * time.Millisecond)
		cfg.Discovery = discovery.Rules{Include: []discovery.Match{ownTargets()}}
	})
	_, e := newestFindings(t, a, store.ProcessKey{PID: tgt.PID, StartTime: processStart(t, tgt.PID)})
	var kinds []string
	for _, f := range e.Findings {
		kinds = append(kinds, f.Kind)
		if f.Fix == "" || f.Runtime == nil || !strings.HasSuffix(f.Summary, f.Fix) {
			t.Errorf("finding %+v lacks its fix or evidence", f)
		}
	}
	if strings.Join(kinds, ",") != "gc-off-unbounded,godebug-left-on" {
		t.Errorf("stored findings %v, want gc-off-unbounded and godebug-left-on", kinds)
	}

	// The summary of a snapshot read with its health.
	var sum map[string]float64
	for _, m := range storeEntries(t, a, tgt.PID, store.KindSnapshot) {
		if _, ok := m.Summary["rt/go_gomaxprocs"]; ok {
			sum = m.Summary
		}
	}
	if sum["rt/go_gomaxprocs"] != 3 || sum["rt/go_gogc_percent"] != -1 || sum["rt/go_memory_limit_bytes"] != math.MaxInt64 || sum["rt/go_heap_inuse_bytes"] <= 0 {
		t.Errorf("summary %v: want rt/go_gomaxprocs 3, rt/go_gogc_percent -1, no memory limit", sum)
	}

	// /metrics: the settings, typed.
	parser := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := parser.TextToMetricFamilies(strings.NewReader(get(t, base+"/metrics")))
	if err != nil {
		t.Fatal(err)
	}
	pid := strconv.Itoa(tgt.PID)
	value := func(name string) (float64, string) {
		f := fams[name]
		if f == nil {
			return math.NaN(), ""
		}
		for _, m := range f.Metric {
			for _, l := range m.Label {
				if l.GetName() == "pid" && l.GetValue() == pid {
					if m.Counter != nil {
						return m.Counter.GetValue(), f.GetType().String()
					}
					return m.Gauge.GetValue(), f.GetType().String()
				}
			}
		}
		return math.NaN(), ""
	}
	for name, want := range map[string]float64{MetricGoGOMAXPROCS: 3, MetricGoGOGC: -1, MetricGoMemoryLimit: math.MaxInt64} {
		if v, typ := value(name); v != want || typ != "GAUGE" {
			t.Errorf("%s = %v (%s), want %v", name, v, typ, want)
		}
	}
	if v, typ := value(MetricGoGCCycles); v < 0 || typ != "COUNTER" {
		t.Errorf("%s = %v (%s), want a counter", MetricGoGCCycles, v, typ)
	}
	if v, _ := value(MetricFindings); v != 1 {
		t.Errorf("%s = %v, want 1 per runtime finding", MetricFindings, v)
	}
	if v, _ := value("goroscope_runtime_health_reads_total"); !math.IsNaN(v) {
		t.Errorf("the agent's own counter carries a pid")
	}
	if f := fams["goroscope_runtime_health_reads_total"]; f == nil || f.Metric[0].Counter.GetValue() < 1 {
		t.Errorf("goroscope_runtime_health_reads_total: %v", f)
	}

	// The newest read, for the UI's panel: GODEBUG as the process started.
	a.mu.Lock()
	var h *findings.RuntimeHealth
	for _, w := range a.procs {
		if w.proc.PID == tgt.PID {
			h = w.runtimeHealth()
		}
	}
	a.mu.Unlock()
	if h == nil || h.Runtime == nil {
		t.Fatalf("no runtime health of pid %d: %+v", tgt.PID, h)
	}
	if v, _ := h.EnvValue("GODEBUG"); v != "gctrace=1" || h.GoVersion == "" || (h.Cgroup == nil) != (h.CgroupError != "") {
		t.Errorf("health %+v", h)
	}
}
