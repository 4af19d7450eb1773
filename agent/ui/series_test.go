package ui

import (
	"encoding/json"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/goroscope/goroscope/pkg/golayout"
	"github.com/goroscope/goroscope/pkg/store"
)

func TestBuildSeries(t *testing.T) {
	ms := []store.Meta{
		{Time: t1, Summary: map[string]float64{"goroutines": 8, "state/waiting": 7, "state/running": 1, "wait_reason/chan receive": 5, "wait_reason/select": 2}},
		{Time: t0, Summary: map[string]float64{"goroutines": 6, "state/waiting": 5, "state/running": 1, "wait_reason/chan receive": 3, "wait_reason/sync.Mutex.Lock": 2}},
		{Time: t1, Summary: map[string]float64{"goroutines": 8}}, // same moment, another kind: counted once
		{Time: t1.Add(time.Second), Summary: map[string]float64{"state/waiting": 4, "state/syscall": 1}},
	}
	s := BuildSeries(ms, false)
	want := &Series{
		Moments: []time.Time{t0, t1, t1.Add(time.Second)},
		Total:   []float64{6, 8, 5}, // the last has no "goroutines": the states' sum
		States:  map[string][]float64{"waiting": {5, 7, 4}, "running": {1, 1, 0}, "syscall": {0, 0, 1}},
		WaitReasons: map[string][]float64{
			"chan receive": {3, 5, 0}, "select": {0, 2, 0}, "sync.Mutex.Lock": {2, 0, 0},
		},
		Folded:      map[string][]string{},
		Runtime:     map[string][]*float64{},
		StepSeconds: 30, // the median of 30s and 1s: the upper one
	}
	if !reflect.DeepEqual(s, want) {
		t.Errorf("series %+v\nwant %+v", s, want)
	}
	if s := BuildSeries(nil, false); len(s.Moments) != 0 || s.States == nil || s.Folded == nil || s.StepSeconds != 0 {
		t.Errorf("empty series %+v", s)
	}
}

// TestBuildSeriesHealth: the runtime health's summary keys are series of
// their own (Series.Runtime), null where a moment has no read, and leave
// the goroutine counts alone.
func TestBuildSeriesHealth(t *testing.T) {
	ms := []store.Meta{
		{Time: t0, Summary: map[string]float64{"goroutines": 6, "state/waiting": 6, "rt/go_gomaxprocs": 2, "rt/go_heap_live_bytes": 100 << 20,
			"rt/cgroup_cpu_quota_cores": 1, "rt/cgroup_cpu_throttled_seconds_total": 0.5}},
		{Time: t0.Add(10 * time.Second), Summary: map[string]float64{"goroutines": 7, "state/waiting": 7}}, // no read
		{Time: t0.Add(20 * time.Second), Summary: map[string]float64{"goroutines": 8, "state/waiting": 8, "rt/go_gomaxprocs": 4, "rt/go_heap_live_bytes": 0,
			"rt/cgroup_memory_limit_bytes": 256 << 20}},
	}
	s := BuildSeries(ms, false)
	f := func(v float64) *float64 { return &v }
	want := map[string][]*float64{
		"go_gomaxprocs":                      {f(2), nil, f(4)},
		"go_heap_live_bytes":                 {f(100 << 20), nil, f(0)},
		"cgroup_cpu_quota_cores":             {f(1), nil, nil},
		"cgroup_cpu_throttled_seconds_total": {f(0.5), nil, nil},
		"cgroup_memory_limit_bytes":          {nil, nil, f(256 << 20)},
	}
	if !reflect.DeepEqual(s.Runtime, want) {
		t.Errorf("runtime series %s, want %s", seriesJSON(t, s.Runtime), seriesJSON(t, want))
	}
	if !reflect.DeepEqual(s.Total, []float64{6, 7, 8}) || len(s.States) != 1 || len(s.WaitReasons) != 0 {
		t.Errorf("goroutine series total %v, states %v, wait reasons %v; want the counts alone", s.Total, s.States, s.WaitReasons)
	}
	// In the answer: null where there is no read.
	if got, want := seriesJSON(t, s.Runtime["go_gomaxprocs"]), "[2,null,4]"; got != want {
		t.Errorf("go_gomaxprocs in JSON %s, want %s", got, want)
	}
	if got := seriesJSON(t, BuildSeries(ms[1:2], false).Runtime); got != "{}" {
		t.Errorf("runtime series without reads %s, want {}", got)
	}
}

// seriesJSON is v in JSON.
func seriesJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestBuildSeriesRuntime: the runtime's own wait reasons are summed into
// RuntimeSeries unless kept apart, and the series past the limit into
// OtherSeries; Folded names what each sums.
func TestBuildSeriesRuntime(t *testing.T) {
	sum := func(reasons map[string]float64) map[string]float64 {
		m := map[string]float64{"goroutines": 100}
		for r, n := range reasons {
			m["wait_reason/"+r] = n
		}
		return m
	}
	ms := []store.Meta{
		{Time: t0, Summary: sum(map[string]float64{"chan receive": 50, "GC worker (idle)": 8, "force gc (idle)": 1, "GC sweep wait": 1, "GC assist wait": 30})},
		{Time: t0.Add(10 * time.Second), Summary: sum(map[string]float64{"chan receive": 40, "GC worker (idle)": 8, "finalizer wait": 1})},
	}
	for i := range 12 { // 12 application reasons of peaks 12, 11, ... 1
		ms[0].Summary["wait_reason/app"+strconv.Itoa(i)] = float64(12 - i)
	}
	s := BuildSeries(ms, false)
	wantFolded := map[string][]string{
		RuntimeSeries: {"GC worker (idle)", "GC sweep wait", "finalizer wait", "force gc (idle)"},
		OtherSeries:   {"app8", "app9", "app10", "app11"},
	}
	if !reflect.DeepEqual(s.Folded, wantFolded) {
		t.Errorf("folded %q, want %q", s.Folded, wantFolded)
	}
	if got := s.WaitReasons[RuntimeSeries]; !reflect.DeepEqual(got, []float64{10, 9}) {
		t.Errorf("%s = %v, want [10 9]", RuntimeSeries, got)
	}
	if got := s.WaitReasons[OtherSeries]; !reflect.DeepEqual(got, []float64{4 + 3 + 2 + 1, 0}) {
		t.Errorf("%s = %v, want [10 0]", OtherSeries, got)
	}
	// "GC assist wait" is an application goroutine's: kept; 12 series in all.
	if len(s.WaitReasons) != maxWaitReasonSeries || s.WaitReasons["GC assist wait"] == nil || s.WaitReasons["chan receive"] == nil || s.StepSeconds != 10 {
		t.Errorf("%d series (%v), step %v; want %d with GC assist wait and chan receive, 10s", len(s.WaitReasons), slices.Sorted(maps.Keys(s.WaitReasons)), s.StepSeconds, maxWaitReasonSeries)
	}
	// runtime=1: each apart, competing for the top.
	s = BuildSeries(ms, true)
	if s.WaitReasons[RuntimeSeries] != nil || s.WaitReasons["GC worker (idle)"] == nil || len(s.WaitReasons) != maxWaitReasonSeries || len(s.Folded[OtherSeries]) != 18-11 {
		t.Errorf("runtime apart: %v, folded %q", slices.Sorted(maps.Keys(s.WaitReasons)), s.Folded)
	}
	// Few reasons: nothing folded but the runtime's.
	s = BuildSeries(ms[1:], false)
	if want := map[string][]string{RuntimeSeries: {"GC worker (idle)", "finalizer wait"}}; !reflect.DeepEqual(s.Folded, want) || len(s.WaitReasons) != 2 {
		t.Errorf("folded %q, series %v; want %q and 2 series", s.Folded, slices.Sorted(maps.Keys(s.WaitReasons)), want)
	}
}

// TestRuntimeReasons: every runtime reason is one the Go runtime has (in
// some version pkg/golayout knows), spelled as it spells it.
func TestRuntimeReasons(t *testing.T) {
	known := map[string]bool{}
	for minor := 21; minor <= 40; minor++ {
		rs, err := golayout.WaitReasons(fmt.Sprintf("go1.%d", minor))
		if err != nil {
			continue
		}
		for _, r := range rs {
			known[r] = true
		}
	}
	if len(known) == 0 {
		t.Fatal("no wait reasons from pkg/golayout")
	}
	for r := range runtimeReasons {
		if !known[r] {
			t.Errorf("runtime reason %q is not in any Go version's waitReasonStrings", r)
		}
	}
	for _, r := range []string{"chan receive", "select", "sync.Mutex.Lock", "GC assist wait", "sleep", "IO wait"} {
		if IsRuntimeReason(r) {
			t.Errorf("IsRuntimeReason(%q): an application's goroutine waits with it", r)
		}
	}
}

func TestTopSeries(t *testing.T) {
	m := map[string][]float64{}
	for i := range 15 {
		m["r"+strconv.Itoa(i)] = []float64{float64(i), 1}
	}
	got, folded := topSeries(m, 4, 2, "rest")
	want := map[string][]float64{"r14": {14, 1}, "r13": {13, 1}, "r12": {12, 1}, "rest": {0 + 1 + 2 + 3 + 4 + 5 + 6 + 7 + 8 + 9 + 10 + 11, 12}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("topSeries = %v, want %v", got, want)
	}
	// r0 and r1 peak at 1 both: by name.
	if wantFolded := []string{"r11", "r10", "r9", "r8", "r7", "r6", "r5", "r4", "r3", "r2", "r0", "r1"}; !reflect.DeepEqual(folded, wantFolded) {
		t.Errorf("folded %q, want %q", folded, wantFolded)
	}
}

func TestMergeProcesses(t *testing.T) {
	gone := store.Process{PID: 7, StartTime: 1, ServiceName: "batch", GoVersion: "go1.22.12"}
	live := []Process{
		{Process: testProc, Live: true, Walker: "ebpf"},
		{Process: store.Process{PID: 9, StartTime: 5, ServiceName: "api"}, Live: true},
		{Process: testProc, Live: true}, // duplicate
	}
	live[0].Counts.Waiting, live[0].Counts.Running = 10, 2
	stored := []store.Meta{
		{Process: gone, Time: t0, Summary: map[string]float64{"state/waiting": 3}},
		{Process: gone, Time: t1, Summary: map[string]float64{"state/waiting": 4, "state/syscall": 1}},
		{Process: testProc, Time: t1},
	}
	rows := MergeProcesses(live, stored)
	type row struct {
		pid   int
		live  bool
		total int
		last  time.Time
	}
	var got []row
	for _, r := range rows {
		got = append(got, row{r.PID, r.Live, r.Total, r.LastSnapshot})
	}
	want := []row{{9, true, 0, time.Time{}}, {4242, true, 12, t1}, {7, false, 5, t1}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("rows %+v, want %+v", got, want)
	}
}
