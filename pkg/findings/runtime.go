package findings

import (
	"cmp"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/goroscope/goroscope/pkg/golayout"
)

// Kinds of the runtime findings, judged from the runtime's settings and health and the
// process's cgroup (RuntimeTracker).
const (
	// KindGomaxprocsOverQuota: GOMAXPROCS above the cgroup's CPU quota rounded up, with the
	// kernel throttling the process: more threads run Go code than the quota lets run at
	// once, and all of them stop when it is spent, each CFS period.
	KindGomaxprocsOverQuota = "gomaxprocs-over-quota"
	// KindNoMemoryLimit: a cgroup memory limit, no GOMEMLIMIT, and the live heap above a part
	// of the limit (half by default): the GC aims for a heap the cgroup may not hold, and
	// the process is OOM-killed instead of collecting harder.
	KindNoMemoryLimit = "no-memory-limit"
	// KindGCOffUnbounded: GOGC=off without a memory limit: the heap grows until the process
	// is killed.
	KindGCOffUnbounded = "gc-off-unbounded"
	// KindRunqueueBacklog: more goroutines ready to run than the Ps run, for long.
	KindRunqueueBacklog = "runqueue-backlog"
	// KindGodebugLeftOn: GODEBUG settings for debugging that cost in production.
	KindGodebugLeftOn = "godebug-left-on"
)

// RuntimeKinds are the kinds of the runtime findings.
var RuntimeKinds = []string{KindGomaxprocsOverQuota, KindNoMemoryLimit, KindGCOffUnbounded, KindRunqueueBacklog, KindGodebugLeftOn}

// RuntimeEvidence is what a runtime finding was judged on. Fields that do not apply to its
// kind are left out.
type RuntimeEvidence struct {
	GoVersion        string `json:"go_version,omitempty"`
	GOMAXPROCS       int    `json:"gomaxprocs,omitempty"`
	GOGCPercent      int    `json:"gogc_percent,omitempty"`
	MemoryLimitBytes int64  `json:"memory_limit_bytes,omitempty"`
	// SetBy says where the setting judged came from: "environment" (GOMAXPROCS=2,
	// GOGC=off), "program" (runtime.GOMAXPROCS, debug.SetGCPercent), or "default" (the
	// runtime's own, or the program's where the two cannot be told apart: GOMAXPROCS
	// before Go 1.25).
	SetBy string `json:"set_by,omitempty"`
	// CPUQuotaCores and the throttling over the window: the periods throttled in, their
	// part of the periods run, and the time held back.
	CPUQuotaCores        float64 `json:"cpu_quota_cores,omitempty"`
	ThrottledPeriods     uint64  `json:"throttled_periods,omitempty"`
	ThrottledRatio       float64 `json:"throttled_ratio,omitempty"`
	ThrottledSeconds     float64 `json:"throttled_seconds,omitempty"`
	WindowSeconds        float64 `json:"window_seconds,omitempty"`
	CgroupMemoryLimit    int64   `json:"cgroup_memory_limit_bytes,omitempty"`
	HeapLiveBytes        uint64  `json:"heap_live_bytes,omitempty"`
	HeapInUseBytes       uint64  `json:"heap_inuse_bytes,omitempty"`
	HeapGoalBytes        uint64  `json:"heap_goal_bytes,omitempty"`
	SuggestedMemoryLimit int64   `json:"suggested_memory_limit_bytes,omitempty"`
	RunQueue             int     `json:"runqueue_goroutines,omitempty"`
	RunQueuePerP         float64 `json:"runqueue_per_p,omitempty"`
	// GODEBUG is the debugging settings left on, as set.
	GODEBUG []string `json:"godebug,omitempty"`
}

// RuntimeTracker judges the runtime health of one process, read after read. It is not safe
// for concurrent use: one per process, fed in time order.
type RuntimeTracker struct {
	cfg Config
	// throttling are the reads of the throttling counters over the window, the oldest
	// first; lastGrowth is the last read that saw them grow.
	throttling []throttleRead
	lastGrowth time.Time
	// backlogSince is when the run queue was first seen over the threshold, in the current
	// run of reads over it.
	backlogSince time.Time
	// since is when each kind began to hold, in its current run.
	since map[string]time.Time
}

type throttleRead struct {
	t                  time.Time
	periods, throttled uint64
	throttledSeconds   float64
	quotaCores         float64
}

// NewRuntimeTracker returns a tracker judging by cfg (zero fields: defaults).
func NewRuntimeTracker(cfg Config) *RuntimeTracker {
	return &RuntimeTracker{cfg: cfg.withDefaults(), since: map[string]time.Time{}}
}

// Observe takes the next read of the process's runtime health and returns the runtime
// findings that hold now, the worst first.
func (t *RuntimeTracker) Observe(h *RuntimeHealth) []Finding {
	var out []Finding
	add := func(f Finding, ok bool) {
		if ok {
			out = append(out, f)
		}
	}
	add(t.overQuota(h))
	add(t.gcOff(h))
	add(t.noMemoryLimit(h))
	add(t.backlog(h))
	add(t.godebug(h))
	held := map[string]bool{}
	for i := range out {
		f := &out[i]
		held[f.Kind] = true
		if _, ok := t.since[f.Kind]; !ok {
			t.since[f.Kind] = h.Time
		}
		if f.FirstSeen.IsZero() {
			f.FirstSeen = t.since[f.Kind]
		}
		f.ID, f.Time = findingID(f.Kind, f.Kind), h.Time
		if f.Fix != "" {
			f.Summary += "; " + f.Fix
		}
	}
	for k := range t.since {
		if !held[k] {
			delete(t.since, k)
		}
	}
	sortFindings(out)
	return out
}

// sortFindings orders findings the worst first, then by the goroutines involved.
func sortFindings(fs []Finding) {
	slices.SortStableFunc(fs, func(a, b Finding) int {
		if c := cmp.Compare(Severity(b.Kind), Severity(a.Kind)); c != 0 {
			return c
		}
		return cmp.Compare(b.Goroutines, a.Goroutines)
	})
}

// Merge returns the findings of a and b, the worst first.
func Merge(a, b []Finding) []Finding {
	out := append(slices.Clip(a), b...)
	sortFindings(out)
	return out
}

// overQuota: GOMAXPROCS above the CPU quota rounded up (or above what Go 1.25+ chooses from
// it, when it chooses), while the kernel throttles the process.
func (t *RuntimeTracker) overQuota(h *RuntimeHealth) (Finding, bool) {
	rt, cg := h.Runtime, h.Cgroup
	if cg == nil || cg.CPUError != "" || cg.CPUQuotaCores <= 0 {
		t.throttling, t.lastGrowth = nil, time.Time{}
		return Finding{}, false
	}
	// The throttling counters of the cgroup that sets the quota, over the window.
	window := t.cfg.GomaxprocsOverQuota.Window
	now := throttleRead{t: h.Time, periods: cg.CPUPeriods, throttled: cg.CPUThrottledPeriods,
		throttledSeconds: cg.CPUThrottledSeconds, quotaCores: cg.CPUQuotaCores}
	if n := len(t.throttling); n > 0 {
		last := t.throttling[n-1]
		switch {
		case now.throttled < last.throttled || now.quotaCores != last.quotaCores:
			t.throttling, t.lastGrowth = nil, time.Time{} // another cgroup, or the quota changed
		case now.throttled > last.throttled:
			t.lastGrowth = h.Time
		}
	}
	t.throttling = append(t.throttling, now)
	cut := 0
	for cut < len(t.throttling)-2 && h.Time.Sub(t.throttling[cut+1].t) >= window {
		cut++ // keep one read at or before the window's start
	}
	t.throttling = t.throttling[cut:]
	if rt == nil || t.lastGrowth.IsZero() || h.Time.Sub(t.lastGrowth) > window {
		return Finding{}, false
	}
	want := max(1, int(math.Ceil(cg.CPUQuotaCores-1e-9)))
	v, verr := golayout.ParseVersion(h.GoVersion)
	modern := verr == nil && (v.Major > 1 || v.Minor >= 25)
	// The runtime takes GOMAXPROCS from the environment when it is a positive number.
	envProcs, _ := h.EnvValue("GOMAXPROCS")
	n, err := strconv.Atoi(envProcs)
	inEnv := err == nil && n > 0
	godebug, _ := h.EnvValue("GODEBUG")
	containerOff := godebugValue(godebug, "containermaxprocs") == "0"
	// Go 1.25+ sets GOMAXPROCS from the quota rounded up, at least 2, unless told not to.
	auto := max(2, want)
	threshold := want
	if modern && !inEnv && !containerOff {
		threshold = auto
	}
	if rt.GOMAXPROCS <= threshold {
		return Finding{}, false
	}
	first := t.throttling[0]
	ev := &RuntimeEvidence{GoVersion: h.GoVersion, GOMAXPROCS: rt.GOMAXPROCS, CPUQuotaCores: cg.CPUQuotaCores,
		ThrottledPeriods: now.throttled - first.throttled, ThrottledSeconds: now.throttledSeconds - first.throttledSeconds,
		WindowSeconds: h.Time.Sub(first.t).Seconds()}
	if periods := now.periods - first.periods; periods > 0 {
		ev.ThrottledRatio = float64(ev.ThrottledPeriods) / float64(periods)
	}
	var fix string
	set := fmt.Sprintf("set GOMAXPROCS=%d", want)
	switch {
	case inEnv:
		ev.SetBy = "environment"
	case modern && !containerOff:
		ev.SetBy = "program" // Go 1.25+ would have set at most auto
	default:
		ev.SetBy = "default"
	}
	switch {
	case verr != nil:
		fix = set
	case !modern:
		fix = set + "; or upgrade to Go >= 1.25, which sets GOMAXPROCS from the quota"
		if auto >= rt.GOMAXPROCS {
			fix += fmt.Sprintf(" (to %d here: it never sets less than 2)", auto)
		}
	case inEnv && auto < rt.GOMAXPROCS:
		fix = fmt.Sprintf("unset GOMAXPROCS (it is %s in the environment): Go %s then follows the quota, setting %d", envProcs, v, auto)
	case inEnv:
		fix = fmt.Sprintf("%s (it is %s in the environment)", set, envProcs)
	case containerOff:
		fix = fmt.Sprintf("remove containermaxprocs=0 from GODEBUG: Go %s then follows the quota, setting %d; or %s", v, auto, set)
	default:
		fix = fmt.Sprintf("the program sets GOMAXPROCS itself (runtime.GOMAXPROCS; go.uber.org/automaxprocs is not needed on Go >= 1.25): stop, so that Go %s follows the quota (%d), or %s", v, auto, set)
	}
	f := Finding{Kind: KindGomaxprocsOverQuota, Runtime: ev, Fix: fix}
	f.Summary = fmt.Sprintf("GOMAXPROCS is %d but the CPU quota is %s: the kernel throttled the process in %d periods over the last %s (%.0f%% of them), holding it back %s",
		rt.GOMAXPROCS, cores(cg.CPUQuotaCores), ev.ThrottledPeriods, duration(ev.WindowSeconds), 100*ev.ThrottledRatio, seconds(ev.ThrottledSeconds))
	return f, true
}

// gcOff: GOGC=off with no soft memory limit.
func (t *RuntimeTracker) gcOff(h *RuntimeHealth) (Finding, bool) {
	rt := h.Runtime
	if rt == nil || rt.GOGCPercent != -1 || rt.MemoryLimitBytes != NoMemoryLimit {
		return Finding{}, false
	}
	ev := &RuntimeEvidence{GoVersion: h.GoVersion, GOGCPercent: -1, HeapInUseBytes: rt.HeapInUseBytes, SetBy: "program"}
	if v, ok := h.EnvValue("GOGC"); ok && strings.EqualFold(v, "off") {
		ev.SetBy = "environment"
	}
	where := "the program turned the GC off (debug.SetGCPercent(-1))"
	if ev.SetBy == "environment" {
		where = "GOGC=off is set in the environment"
	}
	fix := "set GOMEMLIMIT to what the process may use, or GOGC to a percentage (100 is the default)"
	if cg := h.Cgroup; cg != nil && cg.MemoryLimitBytes > 0 {
		ev.CgroupMemoryLimit = cg.MemoryLimitBytes
		ev.SuggestedMemoryLimit = suggestedLimit(cg.MemoryLimitBytes)
		fix = fmt.Sprintf("set GOMEMLIMIT=%s (90%% of the cgroup's %s memory limit), or GOGC to a percentage", limitText(ev.SuggestedMemoryLimit), bytesText(cg.MemoryLimitBytes))
	}
	f := Finding{Kind: KindGCOffUnbounded, Runtime: ev, Fix: fix}
	f.Summary = fmt.Sprintf("the GC is off and no memory limit is set (%s): the heap, %s in use now, grows until the process is killed", where, bytesText(int64(rt.HeapInUseBytes)))
	return f, true
}

// noMemoryLimit: a cgroup memory limit, no GOMEMLIMIT, and the live heap above a part of the
// limit. With the GC off, gcOff says it.
func (t *RuntimeTracker) noMemoryLimit(h *RuntimeHealth) (Finding, bool) {
	rt, cg := h.Runtime, h.Cgroup
	if rt == nil || cg == nil || cg.MemoryLimitBytes <= 0 || rt.MemoryLimitBytes != NoMemoryLimit || rt.GOGCPercent == -1 {
		return Finding{}, false
	}
	limit := cg.MemoryLimitBytes
	if float64(rt.HeapLiveBytes) <= t.cfg.NoMemoryLimit.MinHeapFraction*float64(limit) {
		return Finding{}, false
	}
	ev := &RuntimeEvidence{GoVersion: h.GoVersion, GOGCPercent: rt.GOGCPercent, CgroupMemoryLimit: limit, HeapLiveBytes: rt.HeapLiveBytes,
		HeapGoalBytes: rt.HeapGoalBytes, SuggestedMemoryLimit: suggestedLimit(limit)}
	f := Finding{Kind: KindNoMemoryLimit, Runtime: ev,
		Fix: fmt.Sprintf("set GOMEMLIMIT=%s (90%% of the limit), so that the GC works harder as the heap nears it", limitText(ev.SuggestedMemoryLimit))}
	f.Summary = fmt.Sprintf("the live heap is %s, %.0f%% of the cgroup's %s memory limit, and no GOMEMLIMIT is set: the GC aims for %s (GOGC=%d), and past the limit the process is OOM-killed rather than collecting harder",
		bytesText(int64(rt.HeapLiveBytes)), 100*float64(rt.HeapLiveBytes)/float64(limit), bytesText(limit), bytesText(int64(rt.HeapGoalBytes)), rt.GOGCPercent)
	return f, true
}

// backlog: more than MinPerP goroutines per P waiting to run, in every read for at least For.
func (t *RuntimeTracker) backlog(h *RuntimeHealth) (Finding, bool) {
	rt := h.Runtime
	r := t.cfg.RunqueueBacklog
	if rt == nil || rt.GOMAXPROCS < 1 || float64(rt.RunQueue) <= r.MinPerP*float64(rt.GOMAXPROCS) {
		t.backlogSince = time.Time{}
		return Finding{}, false
	}
	if t.backlogSince.IsZero() {
		t.backlogSince = h.Time
	}
	long := h.Time.Sub(t.backlogSince)
	if long < r.For {
		return Finding{}, false
	}
	per := float64(rt.RunQueue) / float64(rt.GOMAXPROCS)
	ev := &RuntimeEvidence{GoVersion: h.GoVersion, GOMAXPROCS: rt.GOMAXPROCS, RunQueue: rt.RunQueue, RunQueuePerP: per, WindowSeconds: long.Seconds()}
	f := Finding{Kind: KindRunqueueBacklog, Runtime: ev, Goroutines: rt.RunQueue, FirstSeen: t.backlogSince,
		Fix: "give the process more CPU (GOMAXPROCS, the CPU quota), or bound how much work it starts at once"}
	f.Summary = fmt.Sprintf("%s goroutines wait to run, %.0f per P (GOMAXPROCS %d), in every read for %s: the Ps do not keep up, and each goroutine waits behind the others on its P before it runs",
		count(rt.RunQueue), per, rt.GOMAXPROCS, duration(long.Seconds()))
	return f, true
}

// debugSettings are the GODEBUG settings for debugging that cost when left on, with what
// they do; a setting counts when its value is neither empty nor 0.
var debugSettings = []struct{ name, does string }{
	{"gctrace", "prints a line per GC cycle"},
	{"gcpacertrace", "prints the pacer's state per GC cycle"},
	{"scavtrace", "prints the scavenger's work"},
	{"schedtrace", "prints the scheduler's state periodically"},
	{"scheddetail", "prints every P, M and goroutine with schedtrace"},
	{"inittrace", "prints the time of each package's init"},
	{"allocfreetrace", "traces every allocation and free"},
	{"efence", "puts every object on its own page, never reused"},
	{"sbrk", "turns the GC off and never frees"},
	{"gcstoptheworld", "stops the world for whole GC cycles"},
	{"gccheckmark", "verifies every mark phase"},
	{"clobberfree", "overwrites freed objects"},
	{"gcshrinkstackoff", "never shrinks goroutine stacks"},
	{"asyncpreemptoff", "turns asynchronous preemption off: a goroutine in a tight loop holds its P"},
	{"harddecommit", "returns memory to the OS the costly way"},
	{"dontfreezetheworld", "leaves goroutines running at a fatal error"},
	{"tracebackancestors", "records the creators' stacks of every new goroutine"},
}

// godebug: debugging settings left on in GODEBUG.
func (t *RuntimeTracker) godebug(h *RuntimeHealth) (Finding, bool) {
	v, ok := h.EnvValue("GODEBUG")
	if !ok {
		return Finding{}, false
	}
	var set, does, drop []string
	for _, s := range debugSettings {
		if val := godebugValue(v, s.name); val != "" && val != "0" {
			set = append(set, s.name+"="+val)
			does = append(does, s.name+" "+s.does)
			drop = append(drop, s.name+"="+val)
		}
	}
	if len(set) == 0 {
		return Finding{}, false
	}
	f := Finding{Kind: KindGodebugLeftOn, Runtime: &RuntimeEvidence{GoVersion: h.GoVersion, GODEBUG: set},
		Fix: "remove " + strings.Join(drop, ", ") + " from GODEBUG"}
	f.Summary = fmt.Sprintf("GODEBUG=%s left on: %s", strings.Join(set, ","), strings.Join(does, "; "))
	return f, true
}

// godebugValue is the value of setting name in a GODEBUG value; the last one wins, as in
// the runtime.
func godebugValue(godebug, name string) string {
	val := ""
	for _, kv := range strings.Split(godebug, ",") {
		if k, v, ok := strings.Cut(strings.TrimSpace(kv), "="); ok && k == name {
			val = v
		}
	}
	return val
}

// suggestedLimit is GOMEMLIMIT at 90% of a memory limit, in whole MiB.
func suggestedLimit(limit int64) int64 { return limit / 10 * 9 >> 20 << 20 }

// limitText writes a GOMEMLIMIT value: "230MiB".
func limitText(n int64) string { return fmt.Sprintf("%dMiB", n>>20) }

// bytesText writes a size for people: "160 MiB", "1.5 GiB".
func bytesText(n int64) string {
	switch {
	case n >= 10<<30:
		return fmt.Sprintf("%.0f GiB", float64(n)/(1<<30))
	case n >= 1<<30:
		return fmt.Sprintf("%.1f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.0f MiB", float64(n)/(1<<20))
	}
	return fmt.Sprintf("%.0f KiB", float64(n)/(1<<10))
}

// cores writes a CPU quota: "1 core", "1.5 cores".
func cores(c float64) string {
	if c == 1 {
		return "1 core"
	}
	return fmt.Sprintf("%.3g cores", c)
}

// seconds writes a short duration: "4.2 s", "17 min".
func seconds(s float64) string {
	if s < 10 {
		return fmt.Sprintf("%.1f s", s)
	}
	return duration(s)
}
