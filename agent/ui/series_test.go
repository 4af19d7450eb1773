package ui

import (
	"reflect"
	"strconv"
	"testing"
	"time"

	"github.com/goroscope/goroscope/pkg/store"
)

func TestBuildSeries(t *testing.T) {
	ms := []store.Meta{
		{Time: t1, Summary: map[string]float64{"goroutines": 8, "state/waiting": 7, "state/running": 1, "wait_reason/chan receive": 5, "wait_reason/select": 2}},
		{Time: t0, Summary: map[string]float64{"goroutines": 6, "state/waiting": 5, "state/running": 1, "wait_reason/chan receive": 3, "wait_reason/sync.Mutex.Lock": 2}},
		{Time: t1, Summary: map[string]float64{"goroutines": 8}}, // same moment, another kind: counted once
		{Time: t1.Add(time.Second), Summary: map[string]float64{"state/waiting": 4, "state/syscall": 1}},
	}
	s := BuildSeries(ms)
	want := &Series{
		Moments: []time.Time{t0, t1, t1.Add(time.Second)},
		Total:   []float64{6, 8, 5}, // the last has no "goroutines": the states' sum
		States:  map[string][]float64{"waiting": {5, 7, 4}, "running": {1, 1, 0}, "syscall": {0, 0, 1}},
		WaitReasons: map[string][]float64{
			"chan receive": {3, 5, 0}, "select": {0, 2, 0}, "sync.Mutex.Lock": {2, 0, 0},
		},
	}
	if !reflect.DeepEqual(s, want) {
		t.Errorf("series %+v\nwant %+v", s, want)
	}
	if s := BuildSeries(nil); len(s.Moments) != 0 || s.States == nil {
		t.Errorf("empty series %+v", s)
	}
}

func TestTopSeries(t *testing.T) {
	m := map[string][]float64{}
	for i := range 15 {
		m["r"+strconv.Itoa(i)] = []float64{float64(i), 1}
	}
	got := topSeries(m, 4, 2)
	want := map[string][]float64{"r14": {14, 1}, "r13": {13, 1}, "r12": {12, 1}, "other": {0 + 1 + 2 + 3 + 4 + 5 + 6 + 7 + 8 + 9 + 10 + 11, 12}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("topSeries = %v, want %v", got, want)
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
