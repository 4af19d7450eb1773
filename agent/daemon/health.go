package daemon

import (
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/goroscope/goroscope/collect/cgroup"
	"github.com/goroscope/goroscope/collect/process"
	"github.com/goroscope/goroscope/collect/rtstate"
	"github.com/goroscope/goroscope/pkg/findings"
	"github.com/goroscope/goroscope/pkg/fold"
)

// Series of a process's runtime health: its runtime's settings and figures
// (collect/rtstate) and its cgroup's (collect/cgroup), labelled
// service_name and pid.
const (
	MetricGoGOMAXPROCS          = "goroscope_go_gomaxprocs"
	MetricGoGOGC                = "goroscope_go_gogc_percent"
	MetricGoMemoryLimit         = "goroscope_go_memory_limit_bytes"
	MetricGoHeapLive            = "goroscope_go_heap_live_bytes"
	MetricGoHeapGoal            = "goroscope_go_heap_goal_bytes"
	MetricGoHeapInUse           = "goroscope_go_heap_inuse_bytes"
	MetricGoGCCycles            = "goroscope_go_gc_cycles_total"
	MetricGoRunqueue            = "goroscope_go_runqueue_goroutines"
	MetricGoIdleProcs           = "goroscope_go_idle_procs"
	MetricGoThreads             = "goroscope_go_threads"
	MetricCgroupCPUQuota        = "goroscope_cgroup_cpu_quota_cores"
	MetricCgroupCPUPeriods      = "goroscope_cgroup_cpu_periods_total"
	MetricCgroupCPUThrottled    = "goroscope_cgroup_cpu_throttled_periods_total"
	MetricCgroupCPUThrottledSec = "goroscope_cgroup_cpu_throttled_seconds_total"
	MetricCgroupMemoryLimit     = "goroscope_cgroup_memory_limit_bytes"
	MetricCgroupMemoryUsage     = "goroscope_cgroup_memory_usage_bytes"
	MetricCgroupOOMKills        = "goroscope_cgroup_oom_kills_total"
)

// healthMetric describes one series of the runtime health for /metrics.
type healthMetric struct {
	help string
	kind prometheus.ValueType
}

// healthMetrics are the series of the runtime health, by name.
var healthMetrics = map[string]healthMetric{
	MetricGoGOMAXPROCS:          {"GOMAXPROCS of the process (runtime.gomaxprocs).", prometheus.GaugeValue},
	MetricGoGOGC:                {"The GC percent of the process (GOGC, debug.SetGCPercent); -1 when the GC is off.", prometheus.GaugeValue},
	MetricGoMemoryLimit:         {"The soft memory limit of the process (GOMEMLIMIT, debug.SetMemoryLimit); 9223372036854775807 when none is set.", prometheus.GaugeValue},
	MetricGoHeapLive:            {"The heap the last GC cycle marked live (/gc/heap/live:bytes).", prometheus.GaugeValue},
	MetricGoHeapGoal:            {"The heap size the current GC cycle aims to end at (/gc/heap/goal:bytes).", prometheus.GaugeValue},
	MetricGoHeapInUse:           {"Bytes of the heap spans in use (runtime.MemStats.HeapInuse).", prometheus.GaugeValue},
	MetricGoGCCycles:            {"GC cycles the process completed (/gc/cycles/total:gc-cycles).", prometheus.CounterValue},
	MetricGoRunqueue:            {"Goroutines ready to run and waiting for a P: the global run queue and every P's.", prometheus.GaugeValue},
	MetricGoIdleProcs:           {"Ps of the process without work.", prometheus.GaugeValue},
	MetricGoThreads:             {"Threads of the process.", prometheus.GaugeValue},
	MetricCgroupCPUQuota:        {"The CPU bandwidth limit of the process's cgroup, the tightest of its ancestors', in cores (quota over period); absent without one.", prometheus.GaugeValue},
	MetricCgroupCPUPeriods:      {"Enforcement periods of the cgroup that sets the CPU quota (cpu.stat nr_periods).", prometheus.CounterValue},
	MetricCgroupCPUThrottled:    {"Enforcement periods at whose end the cgroup that sets the CPU quota was throttled (cpu.stat nr_throttled).", prometheus.CounterValue},
	MetricCgroupCPUThrottledSec: {"Time the threads of the cgroup that sets the CPU quota were held back by it (cpu.stat throttled_time, throttled_usec).", prometheus.CounterValue},
	MetricCgroupMemoryLimit:     {"The memory limit of the process's cgroup, the tightest of its ancestors'; absent without one.", prometheus.GaugeValue},
	MetricCgroupMemoryUsage:     {"Memory charged to the process's cgroup, page cache included (memory.current, memory.usage_in_bytes).", prometheus.GaugeValue},
	MetricCgroupOOMKills:        {"Processes of the process's cgroup the OOM killer killed (memory.events, memory.oom_control oom_kill).", prometheus.CounterValue},
}

// summaryHealthPrefix starts the summary keys of the runtime health: each
// is the prefix and a series' name without "goroscope_", e.g.
// "rt/go_gomaxprocs", "rt/cgroup_cpu_throttled_seconds_total".
const summaryHealthPrefix = "rt/"

// How often a HealthReader reads the cgroup's limits again (and follows a
// process to another cgroup), and tries again to open one it could not.
const cgroupRefresh = time.Minute

// HealthReader reads a process's runtime health: its runtime's settings
// and figures, from its memory, and its cgroup's limits and counters.
type HealthReader struct {
	goVersion string
	pid       int
	rt        *rtstate.Reader
	rtErr     string
	cg        *cgroup.Reader
	cgErr     string
	// env is the process's GO* environment, read once by rt, in the
	// findings' form (shared by the reads: not to be modified).
	env    []findings.EnvVar
	envSet bool
	// mounts are the agent's cgroup mounts; refreshed is when the cgroup
	// was last refreshed (or tried).
	mounts    cgroup.Mounts
	refreshed time.Time
}

// NewHealthReader prepares the reads of t's runtime health; goVersion is
// its Go version, mounts the agent's cgroup mounts (cgroup.ReadMounts;
// nil reads them). What cannot be read is said in each read.
func NewHealthReader(t *process.Target, goVersion string, mounts cgroup.Mounts) *HealthReader {
	h := &HealthReader{goVersion: goVersion, pid: t.PID, mounts: mounts}
	rt, err := rtstate.NewReader(t)
	if err != nil {
		h.rtErr = err.Error()
	} else {
		h.rt = rt
	}
	h.openCgroup(time.Now())
	return h
}

func (h *HealthReader) openCgroup(now time.Time) {
	h.refreshed = now
	cg, err := cgroup.Open(h.pid, cgroup.Options{Mounts: h.mounts})
	if err != nil {
		h.cgErr = err.Error()
		return
	}
	h.cg, h.cgErr = cg, ""
}

// Close releases the reader.
func (h *HealthReader) Close() {
	if h.rt != nil {
		h.rt.Close()
	}
	if h.cg != nil {
		h.cg.Close()
	}
}

// Read reads the runtime health now.
func (h *HealthReader) Read(now time.Time) findings.RuntimeHealth {
	out := findings.RuntimeHealth{Time: now, GoVersion: h.goVersion, RuntimeError: h.rtErr, CgroupError: h.cgErr}
	if h.rt != nil {
		st, err := h.rt.Read()
		if err != nil {
			out.RuntimeError = err.Error()
		} else {
			out.Runtime = &findings.GoRuntime{GOMAXPROCS: st.GOMAXPROCS, GOGCPercent: st.GOGCPercent, MemoryLimitBytes: st.MemoryLimitBytes,
				HeapLiveBytes: st.HeapLiveBytes, HeapGoalBytes: st.HeapGoalBytes, HeapInUseBytes: st.HeapInUseBytes, GCCycles: st.GCCycles,
				RunQueue: st.GlobalRunQueue + st.LocalRunQueued, GlobalRunQueue: st.GlobalRunQueue, IdleProcs: st.IdlePs, Threads: st.Threads}
			if !h.envSet {
				for _, v := range st.Env {
					h.env = append(h.env, findings.EnvVar{Name: v.Name, Value: v.Value, Truncated: v.Truncated})
				}
				h.envSet = true
			}
			out.Env, out.EnvError = h.env, st.EnvError
		}
	}
	if now.Sub(h.refreshed) >= cgroupRefresh {
		switch {
		case h.cg == nil:
			h.openCgroup(now)
		default:
			h.refreshed, h.cgErr = now, ""
			if err := h.cg.Refresh(); err != nil {
				h.cgErr = err.Error()
			}
		}
	}
	out.CgroupError = h.cgErr
	if h.cg != nil {
		s := h.cg.Read()
		out.Cgroup = &findings.Cgroup{CPUVersion: s.CPUVersion, MemoryVersion: s.MemoryVersion, CPUQuotaCores: s.CPUQuotaCores,
			CPUPeriods: s.Periods, CPUThrottledPeriods: s.ThrottledPeriods, CPUThrottledSeconds: s.ThrottledTime.Seconds(),
			MemoryLimitBytes: s.MemoryLimitBytes, MemoryUsageBytes: s.MemoryUsageBytes, OOMKills: s.OOMKills, HaveOOMKills: s.HaveOOMKills,
			CPUError: s.CPUError, MemoryError: s.MemoryError}
	}
	return out
}

// healthSeries are the series of a read of the runtime health.
func healthSeries(h *findings.RuntimeHealth, labels map[string]string) []fold.Series {
	var out []fold.Series
	add := func(name string, v float64) {
		out = append(out, fold.Series{Name: name, Labels: labels, Value: v})
	}
	if rt := h.Runtime; rt != nil {
		add(MetricGoGOMAXPROCS, float64(rt.GOMAXPROCS))
		add(MetricGoGOGC, float64(rt.GOGCPercent))
		add(MetricGoMemoryLimit, float64(rt.MemoryLimitBytes))
		add(MetricGoHeapLive, float64(rt.HeapLiveBytes))
		add(MetricGoHeapGoal, float64(rt.HeapGoalBytes))
		add(MetricGoHeapInUse, float64(rt.HeapInUseBytes))
		add(MetricGoGCCycles, float64(rt.GCCycles))
		add(MetricGoRunqueue, float64(rt.RunQueue))
		add(MetricGoIdleProcs, float64(rt.IdleProcs))
		if rt.Threads >= 0 {
			add(MetricGoThreads, float64(rt.Threads))
		}
	}
	if cg := h.Cgroup; cg != nil {
		if cg.CPUError == "" && cg.CPUVersion != 0 {
			if cg.CPUQuotaCores > 0 {
				add(MetricCgroupCPUQuota, cg.CPUQuotaCores)
				add(MetricCgroupCPUPeriods, float64(cg.CPUPeriods))
				add(MetricCgroupCPUThrottled, float64(cg.CPUThrottledPeriods))
				add(MetricCgroupCPUThrottledSec, cg.CPUThrottledSeconds)
			}
		}
		if cg.MemoryError == "" && cg.MemoryVersion != 0 {
			if cg.MemoryLimitBytes > 0 {
				add(MetricCgroupMemoryLimit, float64(cg.MemoryLimitBytes))
			}
			add(MetricCgroupMemoryUsage, float64(cg.MemoryUsageBytes))
			if cg.HaveOOMKills {
				add(MetricCgroupOOMKills, float64(cg.OOMKills))
			}
		}
	}
	return out
}

// addHealthSummary puts the series of a read in an entry's summary, under
// summaryHealthPrefix.
func addHealthSummary(sum map[string]float64, series []fold.Series) {
	if sum == nil {
		return
	}
	for _, s := range series {
		sum[summaryHealthPrefix+strings.TrimPrefix(s.Name, "goroscope_")] = s.Value
	}
}

// RuntimeHealthConfig sets the reads of each process's runtime health.
type RuntimeHealthConfig struct {
	// Enabled reads it (the goroscope_go_* and goroscope_cgroup_* series,
	// the runtime findings).
	Enabled bool `yaml:"enabled"`
	// MaxCostPercent bounds the time the reads take, as a percentage of
	// the time spent walking the process's goroutines: a process is read
	// at a snapshot when the reads so far have taken less, so a small
	// process, whose walk is quick, is read every few snapshots.
	MaxCostPercent float64 `yaml:"max_cost_percent"`
}

// DefaultHealthCostPercent is runtime_health.max_cost_percent by default.
const DefaultHealthCostPercent = 5

func (c RuntimeHealthConfig) validate() []string {
	if c.Enabled && (c.MaxCostPercent <= 0 || c.MaxCostPercent > 100 || math.IsNaN(c.MaxCostPercent)) {
		return []string{fmt.Sprintf("runtime_health.max_cost_percent %g: want more than 0 and at most 100", c.MaxCostPercent)}
	}
	return nil
}

// health is what the agent keeps of a process's runtime health.
type health struct {
	r       *HealthReader
	tracker *findings.RuntimeTracker
	// credit is the read time the process's walks have earned and its reads
	// not spent; cost is what the last read took.
	credit, cost time.Duration
	// last is the newest read, series its series, findings those it holds
	// (a.mu for last: the UI reads it).
	last     *findings.RuntimeHealth
	series   []fold.Series
	findings []findings.Finding
}

// maxCredit bounds the read time a process saves up.
const maxCredit = time.Second

// earn adds pct percent of a walk's time to the credit, and reports
// whether it covers a read (one that costs what the last one did).
func (hs *health) earn(walk time.Duration, pct float64) bool {
	hs.credit = min(hs.credit+time.Duration(float64(walk)*pct/100), maxCredit)
	return hs.credit >= hs.cost
}

// spend takes a read's cost from the credit.
func (hs *health) spend(took time.Duration) {
	hs.credit -= took
	hs.cost = took
}

func (hs *health) close() {
	if hs != nil && hs.r != nil {
		hs.r.Close()
	}
}

// readHealth reads the runtime health of w after a walk that took walk, if
// the reads' budget allows: the walk earns MaxCostPercent of its time, and
// a read comes when the credit covers what the last one cost, and spends
// what it takes. The first read, like the setup, comes at once and is not
// charged: a process is read at its first snapshot, and then reads take
// at most MaxCostPercent of the walks. It reports whether it read; the
// snapshot loop alone calls it.
func (a *Agent) readHealth(w *watched, walk time.Duration, now time.Time) bool {
	c := a.cfg.RuntimeHealth
	if !c.Enabled {
		return false
	}
	hs := w.health
	first := hs == nil
	if first {
		start := time.Now()
		hs = &health{r: NewHealthReader(w.target, w.proc.GoVersion, a.cgroupMounts(start)),
			tracker: findings.NewRuntimeTracker(a.cfg.Findings.forService(w.proc.ServiceName))}
		a.metrics.healthSetup.Add(time.Since(start).Seconds())
		w.health = hs
	} else if !hs.earn(walk, c.MaxCostPercent) {
		return false
	}
	start := time.Now()
	h := hs.r.Read(now)
	took := time.Since(start)
	if first {
		hs.cost = took
	} else {
		hs.spend(took)
	}
	a.metrics.healthReads.Inc()
	a.metrics.healthSeconds.Add(took.Seconds())
	hs.findings = hs.tracker.Observe(&h)
	hs.series = healthSeries(&h, w.labels())
	a.mu.Lock()
	hs.last = &h
	a.mu.Unlock()
	return true
}

// cgroupMounts are the agent's cgroup mounts, read again when older than
// cgroupRefresh; nil when unreadable (each reader then says why).
func (a *Agent) cgroupMounts(now time.Time) cgroup.Mounts {
	if a.cgMounts == nil || now.Sub(a.cgMountsAt) >= cgroupRefresh {
		a.cgMountsAt = now
		if ms, err := cgroup.ReadMounts("/proc"); err == nil {
			a.cgMounts = ms
		} else if a.cgMounts == nil {
			a.log.Warn("cannot read the agent's cgroup mounts: no cgroup figures", "err", err)
		}
	}
	return a.cgMounts
}

// runtimeHealth is the newest read of w's runtime health, nil before the
// first; a.mu held. For the UI's process panel.
func (w *watched) runtimeHealth() *findings.RuntimeHealth {
	if w.health == nil {
		return nil
	}
	return w.health.last
}
