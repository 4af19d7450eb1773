package findings

import (
	"strings"
	"testing"
	"time"
)

var rt0 = time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)

// health is a read at rt0+at of a process of goVersion with GOMAXPROCS procs, in a cgroup of
// quota cores that throttled it throttled times so far (of 10 periods a second).
func health(at time.Duration, goVersion string, procs int, quota float64, throttled uint64, env ...string) *RuntimeHealth {
	h := &RuntimeHealth{Time: rt0.Add(at), GoVersion: goVersion,
		Runtime: &GoRuntime{GOMAXPROCS: procs, GOGCPercent: 100, MemoryLimitBytes: NoMemoryLimit, HeapLiveBytes: 10 << 20, HeapGoalBytes: 20 << 20},
		Cgroup:  &Cgroup{CPUVersion: 1, MemoryVersion: 1, CPUQuotaCores: quota, CPUPeriods: uint64(at/time.Second) * 10, CPUThrottledPeriods: throttled, CPUThrottledSeconds: float64(throttled) / 20}}
	for _, kv := range env {
		k, v, _ := strings.Cut(kv, "=")
		h.Env = append(h.Env, EnvVar{Name: k, Value: v})
	}
	return h
}

// kinds lists the findings' kinds.
func kinds(fs []Finding) string {
	var k []string
	for _, f := range fs {
		k = append(k, f.Kind)
	}
	return strings.Join(k, ",")
}

func TestGomaxprocsOverQuota(t *testing.T) {
	for _, tc := range []struct {
		name      string
		goVersion string
		procs     int
		quota     float64
		env       []string
		fix       string // "" when silent
		setBy     string
	}{
		{name: "go1.21 on 1 core", goVersion: "go1.21.13", procs: 2, quota: 1,
			fix: "set GOMAXPROCS=1; or upgrade to Go >= 1.25, which sets GOMAXPROCS from the quota (to 2 here: it never sets less than 2)", setBy: "default"},
		{name: "go1.24 on 2 cores of 16", goVersion: "go1.24.1", procs: 16, quota: 2,
			fix: "set GOMAXPROCS=2; or upgrade to Go >= 1.25, which sets GOMAXPROCS from the quota", setBy: "default"},
		{name: "go1.21 on 1.5 cores", goVersion: "go1.21.13", procs: 4, quota: 1.5,
			fix: "set GOMAXPROCS=2; or upgrade to Go >= 1.25, which sets GOMAXPROCS from the quota", setBy: "default"},
		{name: "go1.21 within the quota", goVersion: "go1.21.13", procs: 2, quota: 1.5},
		{name: "go1.26 automatic on 1 core", goVersion: "go1.26.8", procs: 2, quota: 1},
		{name: "go1.26 automatic on 3 cores", goVersion: "go1.26.8", procs: 3, quota: 2.5},
		{name: "go1.26 set by the program", goVersion: "go1.26.8", procs: 8, quota: 2, setBy: "program",
			fix: "the program sets GOMAXPROCS itself (runtime.GOMAXPROCS; go.uber.org/automaxprocs is not needed on Go >= 1.25): stop, so that Go go1.26 follows the quota (2), or set GOMAXPROCS=2"},
		{name: "go1.26 from the environment", goVersion: "go1.26.8", procs: 8, quota: 2, env: []string{"GOMAXPROCS=8"}, setBy: "environment",
			fix: "unset GOMAXPROCS (it is 8 in the environment): Go go1.26 then follows the quota, setting 2"},
		{name: "go1.26 from the environment on 1 core", goVersion: "go1.26.8", procs: 2, quota: 1, env: []string{"GOMAXPROCS=2"}, setBy: "environment",
			fix: "set GOMAXPROCS=1 (it is 2 in the environment)"},
		{name: "go1.25 with containermaxprocs=0", goVersion: "go1.25.8", procs: 8, quota: 2, env: []string{"GODEBUG=containermaxprocs=0"}, setBy: "default",
			fix: "remove containermaxprocs=0 from GODEBUG: Go go1.25 then follows the quota, setting 2; or set GOMAXPROCS=2"},
		{name: "no quota", goVersion: "go1.21.13", procs: 2},
		{name: "go1.26 with an empty GOMAXPROCS", goVersion: "go1.26.8", procs: 2, quota: 1, env: []string{"GOMAXPROCS="}},
		{name: "unknown version", goVersion: "devel +abc", procs: 4, quota: 1, fix: "set GOMAXPROCS=1", setBy: "default"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tr := NewRuntimeTracker(Config{})
			// The first read sees no growth yet.
			if fs := tr.Observe(health(0, tc.goVersion, tc.procs, tc.quota, 100, tc.env...)); len(fs) != 0 {
				t.Fatalf("first read: %s", kinds(fs))
			}
			fs := tr.Observe(health(10*time.Second, tc.goVersion, tc.procs, tc.quota, 150, tc.env...))
			if tc.fix == "" {
				if len(fs) != 0 {
					t.Fatalf("want silence, got %+v", fs)
				}
				return
			}
			if len(fs) != 1 || fs[0].Kind != KindGomaxprocsOverQuota {
				t.Fatalf("got %s, want gomaxprocs-over-quota", kinds(fs))
			}
			f := fs[0]
			if f.Fix != tc.fix || !strings.HasSuffix(f.Summary, "; "+tc.fix) || f.Runtime.SetBy != tc.setBy {
				t.Errorf("fix %q (set by %s)\nwant %q (set by %s)\nsummary %q", f.Fix, f.Runtime.SetBy, tc.fix, tc.setBy, f.Summary)
			}
			if ev := f.Runtime; ev.ThrottledPeriods != 50 || ev.ThrottledSeconds != 2.5 || ev.ThrottledRatio != 0.5 || ev.WindowSeconds != 10 || ev.GOMAXPROCS != tc.procs {
				t.Errorf("evidence %+v", *ev)
			}
			if f.ID != "gomaxprocs-over-quota-"+f.ID[len("gomaxprocs-over-quota-"):] || !f.FirstSeen.Equal(rt0.Add(10*time.Second)) {
				t.Errorf("id %s, first seen %v", f.ID, f.FirstSeen)
			}
		})
	}
}

// TestOverQuotaWindow: the finding holds while throttling grew within the window, and ends
// when it has not for longer; a counter that goes back (another cgroup) starts over.
func TestOverQuotaWindow(t *testing.T) {
	tr := NewRuntimeTracker(Config{GomaxprocsOverQuota: QuotaRule{Window: time.Minute}})
	steps := []struct {
		at        time.Duration
		throttled uint64
		want      string
	}{
		{0, 10, ""}, {10 * time.Second, 20, "gomaxprocs-over-quota"}, {20 * time.Second, 20, "gomaxprocs-over-quota"},
		{70 * time.Second, 20, "gomaxprocs-over-quota"}, {71 * time.Second, 20, ""}, {80 * time.Second, 5, ""}, {90 * time.Second, 6, "gomaxprocs-over-quota"},
	}
	var first string
	for _, s := range steps {
		fs := tr.Observe(health(s.at, "go1.21.13", 2, 1, s.throttled))
		if got := kinds(fs); got != s.want {
			t.Errorf("at %v with %d throttled: %q, want %q", s.at, s.throttled, got, s.want)
		}
		if s.at == 10*time.Second && len(fs) == 1 {
			first = fs[0].ID
		}
	}
	if fs := tr.Observe(health(95*time.Second, "go1.21.13", 2, 1, 30)); len(fs) != 1 || fs[0].ID != first || !fs[0].FirstSeen.Equal(rt0.Add(90*time.Second)) {
		t.Errorf("%+v: want the same id %s, holding since it began again", fs, first)
	}
}

func TestNoMemoryLimit(t *testing.T) {
	read := func(heap uint64, gomemlimit, cgroupLimit int64, gogc int) *RuntimeHealth {
		h := health(0, "go1.21.13", 1, 0, 0)
		h.Runtime.HeapLiveBytes, h.Runtime.HeapGoalBytes, h.Runtime.MemoryLimitBytes, h.Runtime.GOGCPercent = heap, 2*heap, gomemlimit, gogc
		h.Cgroup.MemoryLimitBytes = cgroupLimit
		return h
	}
	for _, tc := range []struct {
		name string
		h    *RuntimeHealth
		want string
	}{
		{"over half", read(160<<20, NoMemoryLimit, 256<<20, 100), KindNoMemoryLimit},
		{"under half", read(100<<20, NoMemoryLimit, 256<<20, 100), ""},
		{"GOMEMLIMIT set", read(160<<20, 230<<20, 256<<20, 100), ""},
		{"no cgroup limit", read(160<<20, NoMemoryLimit, 0, 100), ""},
		{"GC off", read(160<<20, NoMemoryLimit, 256<<20, -1), KindGCOffUnbounded},
	} {
		fs := NewRuntimeTracker(Config{}).Observe(tc.h)
		if kinds(fs) != tc.want {
			t.Errorf("%s: %s, want %q", tc.name, kinds(fs), tc.want)
			continue
		}
		if tc.want == KindNoMemoryLimit {
			f := fs[0]
			want := "the live heap is 160 MiB, 62% of the cgroup's 256 MiB memory limit, and no GOMEMLIMIT is set: the GC aims for 320 MiB (GOGC=100), " +
				"and past the limit the process is OOM-killed rather than collecting harder; set GOMEMLIMIT=230MiB (90% of the limit), so that the GC works harder as the heap nears it"
			if f.Summary != want || f.Runtime.SuggestedMemoryLimit != 230<<20 || f.Runtime.CgroupMemoryLimit != 256<<20 {
				t.Errorf("%s:\n%q\nwant\n%q\n%+v", tc.name, f.Summary, want, *f.Runtime)
			}
		}
	}
}

func TestGCOffUnbounded(t *testing.T) {
	h := health(0, "go1.22.1", 1, 0, 0, "GOGC=off")
	h.Runtime.GOGCPercent = -1
	fs := NewRuntimeTracker(Config{}).Observe(h)
	if len(fs) != 1 || fs[0].Kind != KindGCOffUnbounded || fs[0].Runtime.SetBy != "environment" ||
		fs[0].Fix != "set GOMEMLIMIT to what the process may use, or GOGC to a percentage (100 is the default)" {
		t.Fatalf("%+v", fs)
	}
	h.Cgroup.MemoryLimitBytes = 1 << 30
	h.Env = nil
	fs = NewRuntimeTracker(Config{}).Observe(h)
	if len(fs) != 1 || fs[0].Runtime.SetBy != "program" || fs[0].Fix != "set GOMEMLIMIT=921MiB (90% of the cgroup's 1.0 GiB memory limit), or GOGC to a percentage" ||
		!strings.Contains(fs[0].Summary, "debug.SetGCPercent(-1)") {
		t.Fatalf("%+v", fs)
	}
	h.Runtime.MemoryLimitBytes = 900 << 20
	if fs := NewRuntimeTracker(Config{}).Observe(h); len(fs) != 0 {
		t.Errorf("GOGC off under a memory limit: %s", kinds(fs))
	}
}

func TestRunqueueBacklog(t *testing.T) {
	tr := NewRuntimeTracker(Config{RunqueueBacklog: RunqueueRule{MinPerP: 10, For: time.Minute}})
	at := func(d time.Duration, q int) []Finding {
		h := health(d, "go1.26.8", 2, 0, 0)
		h.Runtime.RunQueue = q
		return tr.Observe(h)
	}
	for _, s := range []struct {
		at   time.Duration
		q    int
		want string
	}{{0, 50, ""}, {30 * time.Second, 40, ""}, {60 * time.Second, 60, KindRunqueueBacklog}, {70 * time.Second, 20, ""}, {80 * time.Second, 50, ""}, {150 * time.Second, 50, KindRunqueueBacklog}} {
		fs := at(s.at, s.q)
		if kinds(fs) != s.want {
			t.Fatalf("at %v with %d waiting: %s, want %q", s.at, s.q, kinds(fs), s.want)
		}
		if s.want != "" && (fs[0].Goroutines != s.q || !strings.Contains(fs[0].Summary, "per P (GOMAXPROCS 2)") || fs[0].Runtime.RunQueuePerP != float64(s.q)/2) {
			t.Errorf("at %v: %+v", s.at, fs[0])
		}
	}
	if fs := at(160*time.Second, 50); !fs[0].FirstSeen.Equal(rt0.Add(80 * time.Second)) {
		t.Errorf("first seen %v, want when the backlog began", fs[0].FirstSeen)
	}
}

func TestGodebugLeftOn(t *testing.T) {
	fs := NewRuntimeTracker(Config{}).Observe(health(0, "go1.26.8", 1, 0, 0, "GODEBUG=gctrace=1,http2client=0,asyncpreemptoff=0,schedtrace=1000,gctrace=2"))
	if len(fs) != 1 || fs[0].Kind != KindGodebugLeftOn || fs[0].Fix != "remove gctrace=2, schedtrace=1000 from GODEBUG" ||
		strings.Join(fs[0].Runtime.GODEBUG, " ") != "gctrace=2 schedtrace=1000" {
		t.Fatalf("%+v", fs)
	}
	if fs := NewRuntimeTracker(Config{}).Observe(health(0, "go1.26.8", 1, 0, 0, "GODEBUG=http2client=0,x509sha1=1")); len(fs) != 0 {
		t.Errorf("compatibility settings: %s", kinds(fs))
	}
}

// TestRuntimeOrder: the findings of one read come the worst first, and Merge orders them with
// the goroutine findings; an unread runtime judges nothing.
func TestRuntimeOrder(t *testing.T) {
	h := health(0, "go1.21.13", 2, 1, 0, "GODEBUG=gctrace=1")
	h.Runtime.GOGCPercent, h.Runtime.RunQueue = -1, 100
	tr := NewRuntimeTracker(Config{RunqueueBacklog: RunqueueRule{For: time.Nanosecond}})
	tr.Observe(h)
	h2 := *h
	h2.Time = h.Time.Add(time.Second)
	h2.Cgroup = &Cgroup{CPUQuotaCores: 1, CPUThrottledPeriods: 5, CPUPeriods: 10}
	fs := tr.Observe(&h2)
	if got := kinds(fs); got != "gc-off-unbounded,gomaxprocs-over-quota,runqueue-backlog,godebug-left-on" &&
		got != "gc-off-unbounded,runqueue-backlog,gomaxprocs-over-quota,godebug-left-on" {
		t.Errorf("order %s", got)
	}
	all := Merge([]Finding{{Kind: KindAllAsleep}, {Kind: KindStuck, Goroutines: 3}}, fs)
	if all[0].Kind != KindAllAsleep || all[1].Kind != KindGCOffUnbounded || all[len(all)-1].Kind != KindGodebugLeftOn {
		t.Errorf("merged order %s", kinds(all))
	}
	if fs := NewRuntimeTracker(Config{}).Observe(&RuntimeHealth{Time: rt0, RuntimeError: "unsupported"}); len(fs) != 0 {
		t.Errorf("without a runtime read: %s", kinds(fs))
	}
}

func TestRuntimeConfig(t *testing.T) {
	for _, c := range []Config{
		{NoMemoryLimit: MemoryRule{MinHeapFraction: 1.5}},
		{RunqueueBacklog: RunqueueRule{MinPerP: -1}},
		{GomaxprocsOverQuota: QuotaRule{Window: -time.Second}},
	} {
		if err := c.Validate(); err == nil {
			t.Errorf("%+v: valid", c)
		}
	}
	if d := DefaultConfig(); d.Validate() != nil || d.RunqueueBacklog.MinPerP != 10 || d.NoMemoryLimit.MinHeapFraction != 0.5 {
		t.Errorf("defaults %+v", d)
	}
}
