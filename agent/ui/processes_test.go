package ui

import (
	"slices"
	"testing"
	"time"

	"github.com/goroscope/goroscope/pkg/findings"
	"github.com/goroscope/goroscope/pkg/snapshot"
	"github.com/goroscope/goroscope/pkg/store"
)

// countsOf is n waiting goroutines.
func countsOf(n int) snapshot.Counts { return snapshot.Counts{Waiting: n} }

// TestMergeProcessesGrowth: a process's growth is from its oldest moment
// in the window ending at its last snapshot to its last; growing ones
// (by at least 10 and 10%) rank just after those with findings, the
// largest growth first.
func TestMergeProcessesGrowth(t *testing.T) {
	proc := func(pid int, svc string) store.Process {
		return store.Process{PID: pid, StartTime: uint64(pid), ServiceName: svc}
	}
	meta := func(p store.Process, at time.Time, n int) store.Meta {
		return store.Meta{Process: p, Kind: store.KindGoroutines, Time: at, Summary: map[string]float64{"state/waiting": float64(n)}}
	}
	end := t0.Add(time.Hour)
	ago := func(d time.Duration) time.Time { return end.Add(-d) }
	stored := []store.Meta{
		meta(proc(1, "a"), ago(20*time.Minute), 1), // before the window
		meta(proc(1, "a"), ago(14*time.Minute), 100),
		meta(proc(1, "a"), ago(5*time.Minute), 120),
		meta(proc(2, "b"), ago(10*time.Minute), 100),
		meta(proc(2, "b"), ago(0), 105), // +5: not growing
		meta(proc(3, "c"), ago(10*time.Minute), 0),
		meta(proc(3, "c"), ago(0), 400), // stored, +400
		meta(proc(4, "d"), ago(3*time.Minute), 1000),
		meta(proc(4, "d"), ago(2*time.Minute), 1050), // +50 of 1000: under 10%
		meta(proc(5, "e"), ago(0), 9),                // one moment: no growth
		meta(proc(6, "f"), ago(time.Minute), 10),
	}
	live := []Process{
		{Process: proc(1, "a"), Live: true, LastSnapshot: end, Counts: countsOf(150)}, // +50
		{Process: proc(2, "b"), Live: true, LastSnapshot: end, Counts: countsOf(105)},
		{Process: proc(4, "d"), Live: true, LastSnapshot: ago(2 * time.Minute), Counts: countsOf(1050)},
		{Process: proc(6, "f"), Live: true, LastSnapshot: end, Counts: countsOf(10), Findings: []findings.Finding{{Kind: findings.KindStuck}}},
	}
	rows := MergeProcesses(live, stored)
	type row struct {
		pid            int
		since          time.Time
		from, to, d    int
		growing, short bool
	}
	var got []row
	for _, r := range rows {
		x := row{pid: r.PID, short: r.ShortLived}
		if g := r.Growth; g != nil {
			if g.WindowSeconds != 900 {
				t.Errorf("pid %d: window %vs, want 900", r.PID, g.WindowSeconds)
			}
			x.since, x.from, x.to, x.d, x.growing = g.Since, g.From, g.To, g.Delta, g.Growing
		}
		got = append(got, x)
	}
	want := []row{
		{6, ago(time.Minute), 10, 10, 0, false, false}, // findings first
		{3, ago(10 * time.Minute), 0, 400, 400, true, false},
		{1, ago(14 * time.Minute), 100, 150, 50, true, false},
		{2, ago(10 * time.Minute), 100, 105, 5, false, false},
		{4, ago(3 * time.Minute), 1000, 1050, 50, false, false},
		{5, time.Time{}, 0, 0, 0, false, false},
	}
	if !slices.Equal(got, want) {
		t.Errorf("rows\n got %+v\nwant %+v", got, want)
	}
}

// TestMergeProcessesShortLived: a live process seen for under a minute
// with few goroutines and no findings is short-lived; a live process whose
// last snapshot found it gone is exited, not live.
func TestMergeProcessesShortLived(t *testing.T) {
	proc := func(pid int) store.Process { return store.Process{PID: pid, StartTime: 1, ServiceName: "go"} }
	meta := func(pid int, at time.Time) store.Meta {
		return store.Meta{Process: proc(pid), Kind: store.KindGoroutines, Time: at, Summary: map[string]float64{"state/waiting": 3}}
	}
	stored := []store.Meta{
		meta(1, t0.Add(-20*time.Second)),
		meta(2, t0.Add(-2*time.Minute)),
		meta(3, t0.Add(-20*time.Second)),
		meta(4, t0.Add(-20*time.Second)),
		meta(6, t0.Add(-20*time.Second)),
	}
	live := []Process{
		{Process: proc(1), Live: true, LastSnapshot: t0, Counts: countsOf(8)},                                                           // young, few: short-lived
		{Process: proc(2), Live: true, LastSnapshot: t0, Counts: countsOf(8)},                                                           // two minutes old
		{Process: proc(3), Live: true, LastSnapshot: t0, Counts: countsOf(shortLivedGoroutines + 1)},                                    // many goroutines
		{Process: proc(4), Live: true, LastSnapshot: t0, Counts: countsOf(8), Findings: []findings.Finding{{Kind: findings.KindStuck}}}, // findings
		{Process: proc(5), Live: true}, // not snapshotted yet
		{Process: proc(6), Live: true, LastSnapshot: t0, Counts: countsOf(8), Error: "walk: read memory: process gone"}, // exited
		{Process: proc(7), Live: true, Error: "process exec'd another executable: process gone (walk: bad magic)"},      // exec'd
	}
	type row struct {
		pid                 int
		live, short, exited bool
	}
	var got []row
	for _, r := range MergeProcesses(live, stored) {
		got = append(got, row{r.PID, r.Live, r.ShortLived, r.Exited})
	}
	slices.SortFunc(got, func(a, b row) int { return a.pid - b.pid })
	want := []row{{1, true, true, false}, {2, true, false, false}, {3, true, false, false}, {4, true, false, false},
		{5, true, true, false}, {6, false, false, true}, {7, false, false, true}}
	if !slices.Equal(got, want) {
		t.Errorf("rows\n got %+v\nwant %+v", got, want)
	}
}
