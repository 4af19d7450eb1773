package ui

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math"
	"net/http"
	"net/http/httptest"
	"net/url"
	"reflect"
	"runtime"
	"runtime/metrics"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/pprof/profile"

	"github.com/goroscope/goroscope/pkg/fold"
	"github.com/goroscope/goroscope/pkg/store"
)

func TestMergeRule(t *testing.T) {
	for _, tt := range []struct {
		kind, sampleType, want string
	}{
		{store.KindGoroutines, "goroutine", MergeAverage},
		{store.KindGoroutines, "goroutines", MergeAverage}, // entries of earlier versions
		{store.KindGoroutineLeak, "goroutineleak", MergeAverage},
		{store.KindMemory, "inuse_space", MergeAverage}, // the heap profile's default (its last type)
		{store.KindMemory, "inuse_objects", MergeAverage},
		{store.KindMemory, "alloc_space", MergeSum}, // deltas over the interval
		{store.KindMemory, "alloc_objects", MergeSum},
		{store.KindGoroutineWall, "wall", MergeSum},
		{store.KindCPU, "cpu", MergeSum},
		{store.KindCPU, "samples", MergeSum},
		{store.KindMutex, "delay", MergeSum},
		{store.KindBlock, "contentions", MergeSum},
		{"", "", MergeSum},
	} {
		if got := MergeRule(tt.sampleType); got != tt.want {
			t.Errorf("%s profile of sample type %q merges by %q, want %q", tt.kind, tt.sampleType, got, tt.want)
		}
	}
}

// TestMergeRuleOfStoredKinds: the sample type the flame graph shows of
// the profiles the agent stores decides their rule: the goroutine
// profiles folded from snapshots, and the runtime's heap profile (no
// default sample type: the last, inuse_space).
func TestMergeRuleOfStoredKinds(t *testing.T) {
	heap := &profile.Profile{SampleType: []*profile.ValueType{{Type: "alloc_objects", Unit: "count"}, {Type: "alloc_space", Unit: "bytes"},
		{Type: "inuse_objects", Unit: "count"}, {Type: "inuse_space", Unit: "bytes"}}}
	goroutines, wall := fold.Goroutines(snapA()), fold.GoroutineWall(snapA(), wallInterval)
	for _, tt := range []struct {
		name string
		p    *profile.Profile
		want string
	}{
		{"goroutines", goroutines, MergeAverage},
		{"goroutine_wall", wall, MergeSum},
		{"memory", heap, MergeAverage},
	} {
		if got := MergeRule(tt.p.SampleType[sampleIndex(tt.p)].Type); got != tt.want {
			t.Errorf("%s merges by %q, want %q", tt.name, got, tt.want)
		}
	}
}

func TestSpread(t *testing.T) {
	for _, tt := range []struct {
		n, limit int
		want     []int
	}{
		{0, 5, nil},
		{3, 5, []int{0, 1, 2}},
		{5, 5, []int{0, 1, 2, 3, 4}},
		{10, 1, []int{0}},
		{10, 2, []int{0, 9}},
		{10, 4, []int{0, 3, 6, 9}},
		{7, 3, []int{0, 3, 6}},
		{300, 240, nil}, // checked below
	} {
		got := spread(tt.n, tt.limit)
		if tt.want != nil && !reflect.DeepEqual(got, tt.want) {
			t.Errorf("spread(%d, %d) = %v, want %v", tt.n, tt.limit, got, tt.want)
		}
		if want := min(tt.n, tt.limit); len(got) != want || want > 0 && (got[0] != 0 || want > 1 && got[len(got)-1] != tt.n-1) || !slices.IsSorted(got) || len(slices.Compact(slices.Clone(got))) != len(got) {
			t.Errorf("spread(%d, %d) = %v: want %d distinct ascending positions, the first and last (but with one) included", tt.n, tt.limit, got, want)
		}
	}
}

// appendProfile stores p as an entry of kind at its time.
func appendProfile(tb testing.TB, st *store.Store, kind string, p *profile.Profile) store.Meta {
	tb.Helper()
	var buf bytes.Buffer
	if err := p.Write(&buf); err != nil {
		tb.Fatal(err)
	}
	m, err := st.Append(store.Entry{Process: testProc, Kind: kind, Time: time.Unix(0, p.TimeNanos).UTC(), Data: buf.Bytes()})
	if err != nil {
		tb.Fatal(err)
	}
	return m
}

// stackProfile is a profile of one sample type at at: a sample per
// stack, written "root;...;leaf", of the value given.
func stackProfile(typ, unit string, at time.Time, stacks map[string]int64) *profile.Profile {
	p := &profile.Profile{SampleType: []*profile.ValueType{{Type: typ, Unit: unit}}, TimeNanos: at.UnixNano()}
	locs := map[string]*profile.Location{}
	for _, stack := range slicesSortedKeys(stacks) {
		s := &profile.Sample{Value: []int64{stacks[stack]}}
		names := strings.Split(stack, ";")
		for i := len(names) - 1; i >= 0; i-- { // leaf first
			loc := locs[names[i]]
			if loc == nil {
				fn := &profile.Function{ID: uint64(len(p.Function) + 1), Name: names[i], SystemName: names[i], Filename: "f.go"}
				loc = &profile.Location{ID: uint64(len(p.Location) + 1), Address: uint64(0x1000 + len(p.Location)), Line: []profile.Line{{Function: fn, Line: 1}}}
				p.Function, p.Location = append(p.Function, fn), append(p.Location, loc)
				locs[names[i]] = loc
			}
			s.Location = append(s.Location, loc)
		}
		p.Sample = append(p.Sample, s)
	}
	return p
}

func slicesSortedKeys(m map[string]int64) []string {
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	slices.Sort(ks)
	return ks
}

// checkTree fails when a node's children together exceed it.
func checkTree(t *testing.T, n *Node) {
	t.Helper()
	var sum float64
	for _, c := range n.Children {
		if c.Value > n.Value {
			t.Errorf("%s (%v) exceeds its parent %s (%v)", c.Name, c.Value, n.Name, n.Value)
		}
		sum += c.Value
		checkTree(t, c)
	}
	if sum > n.Value*(1+1e-12) {
		t.Errorf("the children of %s sum to %v, more than its %v", n.Name, sum, n.Value)
	}
}

func rfc(at time.Time) string { return url.QueryEscape(at.Format(time.RFC3339Nano)) }

// TestDiffDefaultBase: a diff naming no baseline compares with the
// equally long range before the comparison, or, when nothing is stored
// there, with the first quarter of the comparison's span.
func TestDiffDefaultBase(t *testing.T) {
	st := openStore(t)
	// Four snapshots 10 s apart of 2, 4, 6 and 8 goroutines.
	var times []time.Time
	for i := range 4 {
		at := t0.Add(time.Duration(i) * 10 * time.Second)
		times = append(times, at)
		appendSnapshot(t, st, testProc, makeSnapshot(at, goroutines(1, 2*(i+1), "chan receive", 0.5, nil, stackRecv)))
	}
	srv := httptest.NewServer(New(testSource{Store: st}, nil))
	t.Cleanup(srv.Close)
	for _, tt := range []struct {
		query             string
		def               string
		baseTotal, total  float64
		baseFirst, baseTo time.Time
	}{
		// 20 s to 30 s: the 10 s before it (10 s to 20 s, exclusive) hold the one at 10 s.
		{"from=" + rfc(times[2]) + "&to=" + rfc(times[3]), BasePrevious, 4, 7, times[1], times[2].Add(-time.Nanosecond)},
		// From the oldest: nothing before; the first quarter of 0-30 s holds the first snapshot.
		{"from=" + rfc(times[0]), BaseFirstQuarter, 2, 5, times[0], times[0].Add(7500 * time.Millisecond)},
		// One moment (30 s): the equally long range before it is empty; the newest entry before it.
		{"from=" + rfc(times[3]) + "&to=" + rfc(times[3]), BasePreviousMoment, 6, 8, times[2], times[2]},
		// Named: as named.
		{"from=" + rfc(times[3]) + "&base_from=" + rfc(times[0]) + "&base_to=" + rfc(times[1]), "", 3, 8, times[0], times[1]},
	} {
		d := getJSON[Diff](t, srv, procPath+"/diff?"+tt.query)
		if d.BaseDefault != tt.def || d.BaseTotal != tt.baseTotal || d.Total != tt.total || !d.Base.First.Equal(tt.baseFirst) || !d.Base.To.Equal(tt.baseTo) {
			t.Errorf("diff?%s: default %q, totals %v -> %v, base %+v; want %q, %v -> %v, base from %v to %v",
				tt.query, d.BaseDefault, d.BaseTotal, d.Total, d.Base, tt.def, tt.baseTotal, tt.total, tt.baseFirst, tt.baseTo)
		}
	}
}

// TestMergeRangeAverageAndSum: three snapshots with 3, 6 and 9 goroutines
// parked on one stack merge into 6 goroutines (the average) and into the
// goroutine_wall time of 18 goroutines (the sum); part of the range merges
// part of them, a fractional average included.
func TestMergeRangeAverageAndSum(t *testing.T) {
	st := openStore(t)
	times := []time.Time{t0, t0.Add(10 * time.Second), t0.Add(20 * time.Second)}
	for i, at := range times {
		appendSnapshot(t, st, testProc, makeSnapshot(at, goroutines(1, 3*(i+1), "chan receive", 0.5, nil, stackRecv)))
	}
	srv := httptest.NewServer(New(testSource{Store: st}, nil))
	t.Cleanup(srv.Close)
	recv := "all;main.start;main.loop;main.worker;runtime.chanrecv1;runtime.gopark "
	wall := float64(wallInterval)
	for _, tt := range []struct {
		query                 string
		total                 float64
		merge                 string
		merged                int
		scale                 float64
		first, last, resolved time.Time
	}{
		{"from=" + rfc(t0) + "&to=" + rfc(times[2]), 6, MergeAverage, 3, 1.0 / 3, t0, times[2], times[2]},
		{"from=" + rfc(t0), 6, MergeAverage, 3, 1.0 / 3, t0, times[2], times[2]}, // to: the newest
		{"from=" + rfc(times[1]) + "&to=" + rfc(times[2]), 7.5, MergeAverage, 2, 0.5, times[1], times[2], times[2]},
		{"from=" + rfc(t0) + "&to=" + rfc(times[1].Add(5*time.Second)), 4.5, MergeAverage, 2, 0.5, t0, times[1], times[1].Add(5 * time.Second)},
		{"from=" + rfc(times[2]) + "&to=" + rfc(times[2]), 9, MergeAverage, 1, 1, times[2], times[2], times[2]}, // bounds inclusive
		{"kind=goroutine_wall&from=" + rfc(t0), 18 * wall, MergeSum, 3, 1, t0, times[2], times[2]},
		{"kind=goroutine_wall&from=" + rfc(times[1]) + "&group=state", 15 * wall, MergeSum, 2, 1, times[1], times[2], times[2]},
	} {
		f := getJSON[FlameAnswer](t, srv, procPath+"/flame?"+tt.query)
		r := f.Range
		if r == nil {
			t.Fatalf("flame?%s: no range in the answer", tt.query)
		}
		if f.Total != tt.total || f.Root.Value != tt.total || f.UnfilteredTotal != tt.total || r.Merge != tt.merge || r.Merged != tt.merged || r.Entries != tt.merged ||
			r.Skipped != 0 || math.Abs(r.Scale-tt.scale) > 1e-15 || !r.First.Equal(tt.first) || !r.Last.Equal(tt.last) || !r.To.Equal(tt.resolved) || !f.Entry.Time.Equal(tt.last) {
			t.Errorf("flame?%s: total %v root %v, range %+v, entry at %v; want %v, %s of %d by %v, %v to %v (to %v)", tt.query, f.Total, f.Root.Value,
				*r, f.Entry.Time, tt.total, tt.merge, tt.merged, tt.scale, tt.first, tt.last, tt.resolved)
		}
		checkTree(t, f.Root)
		if tt.merge == MergeAverage {
			if got, want := paths(f.Root), []string{recv + fmt.Sprint(tt.total)}; !reflect.DeepEqual(got, want) {
				t.Errorf("flame?%s: paths %q, want %q", tt.query, got, want)
			}
			if f.Facets.States["waiting"] != tt.total || f.Facets.WaitReasons["chan receive"] != tt.total {
				t.Errorf("flame?%s: facets %+v, want %v waiting in chan receive", tt.query, f.Facets, tt.total)
			}
		}
	}
	// One moment (at=) is as before: no range.
	if f := getJSON[FlameAnswer](t, srv, procPath+"/flame?at="+rfc(times[1])); f.Range != nil || f.Total != 6 {
		t.Errorf("flame?at=: total %v range %+v, want 6 and none", f.Total, f.Range)
	}
}

// TestMergeRangeSpread: a range of more than maxRangeEntries entries is
// read at maxRangeEntries of them spread evenly, its oldest and newest
// included; a sum is scaled by entries/merged, an average is theirs.
func TestMergeRangeSpread(t *testing.T) {
	st := openStore(t)
	const n = maxRangeEntries + 60
	for i := range n {
		at := t0.Add(time.Duration(i) * time.Second)
		appendProfile(t, st, store.KindGoroutineWall, stackProfile("wall", "nanoseconds", at, map[string]int64{"main.main;main.work": int64(i + 1)}))
		appendProfile(t, st, store.KindGoroutines, stackProfile("goroutine", "count", at, map[string]int64{"main.main;main.park": int64(i + 1)}))
	}
	var sum int64
	picks := spread(n, maxRangeEntries)
	for _, pos := range picks {
		sum += int64(n - pos) // the value of the entry pos from the newest
	}
	srv := httptest.NewServer(New(testSource{Store: st}, nil))
	t.Cleanup(srv.Close)
	for _, tt := range []struct {
		kind  string
		total float64
		merge string
		scale float64
	}{
		{store.KindGoroutineWall, float64(sum) * n / maxRangeEntries, MergeSum, float64(n) / maxRangeEntries},
		{store.KindGoroutines, float64(sum) / maxRangeEntries, MergeAverage, 1.0 / maxRangeEntries},
	} {
		f := getJSON[FlameAnswer](t, srv, procPath+"/flame?kind="+tt.kind+"&from="+rfc(t0))
		r := f.Range
		if r.Entries != n || r.Merged != maxRangeEntries || r.Merge != tt.merge || math.Abs(r.Scale-tt.scale) > 1e-12 ||
			math.Abs(f.Total-tt.total) > 1e-9*tt.total || !r.First.Equal(t0) || !r.Last.Equal(t0.Add((n-1)*time.Second)) {
			t.Errorf("%s: total %v, range %+v; want %v, %d of %d entries merged by %s (scale %v)", tt.kind, f.Total, *r, tt.total, maxRangeEntries, n, tt.merge, tt.scale)
		}
		checkTree(t, f.Root)
	}
}

// TestMergeRangeSkipsTooLarge: a profile past MaxProfileBytes is skipped
// and counted, not a failure of the range; a range of nothing else fails
// with 413 naming the limit.
func TestMergeRangeSkipsTooLarge(t *testing.T) {
	st := openStore(t)
	big := map[string]int64{}
	for i := range 400 {
		big[fmt.Sprintf("main.main;main.handler%03d;main.deep%03d", i, i)] = 1
	}
	appendProfile(t, st, store.KindGoroutines, stackProfile("goroutine", "count", t0, map[string]int64{"main.main;main.park": 3}))
	appendProfile(t, st, store.KindGoroutines, stackProfile("goroutine", "count", t0.Add(time.Second), big))
	appendProfile(t, st, store.KindGoroutines, stackProfile("goroutine", "count", t0.Add(2*time.Second), map[string]int64{"main.main;main.park": 5}))
	const limit = 4096
	srv := httptest.NewServer(NewWithOptions(testSource{Store: st}, Options{MaxProfileBytes: limit}))
	t.Cleanup(srv.Close)
	f := getJSON[FlameAnswer](t, srv, procPath+"/flame?from="+rfc(t0))
	if r := f.Range; f.Total != 4 || r.Entries != 3 || r.Merged != 2 || r.Skipped != 1 || r.Scale != 0.5 {
		t.Errorf("range with a profile too large: total %v, range %+v; want 4 (3 and 5 averaged), 2 of 3 merged, 1 skipped", f.Total, *r)
	}
	body := string(get(t, srv, procPath+"/flame?from="+rfc(t0.Add(time.Second))+"&to="+rfc(t0.Add(time.Second)), http.StatusRequestEntityTooLarge))
	if !strings.Contains(body, "larger than 4096 bytes") || !strings.Contains(body, "MaxProfileBytes") || !strings.Contains(body, "none of the 1 goroutines entries") {
		t.Errorf("range of a profile too large only: %s", body)
	}
}

// TestMergeRangeCanceled: a merge whose request is gone stops between two
// profiles with its error.
func TestMergeRangeCanceled(t *testing.T) {
	st := openStore(t)
	appendSnapshot(t, st, testProc, snapA())
	appendSnapshot(t, st, testProc, snapB())
	s := newServer(testSource{Store: st}, Options{})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := s.mergeRange(ctx, newTree(Filter{}, "all", false), sideComparison, true, testProc.Key(), store.KindGoroutines, t0, time.Time{}, maxRangeEntries, comparisonRange)
	if !errors.Is(err, context.Canceled) {
		t.Errorf("merge after cancel: %v, want %v", err, context.Canceled)
	}
	mr, err := s.mergeRange(context.Background(), newTree(Filter{}, "all", false), sideComparison, true, testProc.Key(), store.KindGoroutines, t0, time.Time{}, maxRangeEntries, comparisonRange)
	if err != nil || mr.info.Merged != 2 {
		t.Errorf("merge: %v, %+v; want 2 merged", err, mr)
	}
}

// TestListRange: listing a range a page at a time gives what one query
// of the whole range does, entries sharing a time included, and spreads
// its picks over it when it holds more than the limit.
func TestListRange(t *testing.T) {
	st := openStore(t)
	var want []store.Meta
	for i := range 50 {
		at := t0.Add(time.Duration(i/2) * time.Second) // two entries per time
		want = append(want, appendProfile(t, st, store.KindGoroutines, stackProfile("goroutine", "count", at, map[string]int64{"main.main": 1})))
	}
	// Another kind and process in between, which the range leaves out.
	appendProfile(t, st, store.KindGoroutineWall, stackProfile("wall", "nanoseconds", t0, map[string]int64{"main.main": 1}))
	other := testProc
	other.PID++
	if _, err := st.Append(store.Entry{Process: other, Kind: store.KindGoroutines, Time: t0, Data: []byte("x")}); err != nil {
		t.Fatal(err)
	}
	ids := func(ms []store.Meta) []uint64 {
		var out []uint64
		for _, m := range ms {
			out = append(out, m.ID)
		}
		return out
	}
	for _, chunk := range []int{3, 4, 7, 50, 1000} {
		for _, tt := range []struct {
			from, to time.Time
			lo, hi   int // want[lo:hi]
		}{
			{t0, time.Time{}, 0, 50},
			{t0, t0.Add(24 * time.Second), 0, 50},
			{t0.Add(3 * time.Second), t0.Add(10 * time.Second), 6, 22},
			{t0.Add(10 * time.Second), t0.Add(10 * time.Second), 20, 22},
			{t0.Add(time.Hour), time.Time{}, 0, 0},
		} {
			for _, limit := range []int{1000, 5} {
				got, total, newest, err := listRange(context.Background(), testSource{Store: st}, testProc.Key(), store.KindGoroutines, tt.from, tt.to, limit, chunk)
				if err != nil {
					t.Fatal(err)
				}
				all := want[tt.lo:tt.hi]
				exp := all
				if len(all) > limit {
					exp = nil
					for _, pos := range slices.Backward(spread(len(all), limit)) {
						exp = append(exp, all[len(all)-1-pos])
					}
				}
				if total != len(all) || !slices.Equal(ids(got), ids(exp)) || len(all) > 0 && !newest.Equal(all[len(all)-1].Time) {
					t.Errorf("chunk %d, limit %d, %v to %v: %d entries %v (newest %v); want %d, %v", chunk, limit, tt.from, tt.to, total, ids(got), newest, len(all), ids(exp))
				}
			}
		}
	}
}

// TestRangeParams: bad or missing range parameters are refused with 400
// naming the parameter and what to pass.
func TestRangeParams(t *testing.T) {
	srv := newTestServer(t)
	for _, tt := range []struct {
		query  string
		status int
		msg    []string
	}{
		{"/flame?from=yesterday", 400, []string{"from=", "RFC 3339"}},
		{"/flame?from=" + rfc(t0) + "&to=later", 400, []string{"to=", "RFC 3339"}},
		{"/flame?to=" + rfc(t0), 400, []string{"to=", "needs from="}},
		{"/flame?from=" + rfc(t1) + "&to=" + rfc(t0), 400, []string{"to=", "before from="}},
		{"/flame?from=" + rfc(t0) + "&at=" + rfc(t1), 400, []string{"at=", "from="}},
		{"/flame?from=" + rfc(t1.Add(time.Hour)), 404, []string{"no goroutines entry", "from="}},
		{"/diff", 400, []string{"diff needs from=", "RFC 3339"}},
		{"/diff?base_from=" + rfc(t0), 400, []string{"diff needs from="}},
		{"/diff?base_from=" + rfc(t0) + "&to=" + rfc(t1), 400, []string{"to=", "needs from="}},
		{"/diff?base_to=" + rfc(t0) + "&from=" + rfc(t0), 400, []string{"base_to=", "needs base_from="}},
		{"/diff?base_from=" + rfc(t1) + "&base_to=" + rfc(t0) + "&from=" + rfc(t0), 400, []string{"base_to=", "before base_from="}},
		{"/diff?base_from=" + rfc(t0) + "&from=" + rfc(t0) + "&group=package", 400, []string{"group="}},
		{"/diff?base_from=" + rfc(t0) + "&from=" + rfc(t0) + "&kind=snapshot", 400, []string{"kind="}},
		{"/diff?base_from=" + rfc(t1.Add(time.Hour)) + "&from=" + rfc(t0), 404, []string{"baseline range", "base_from="}},
		{"/series?runtime=maybe", 400, []string{"runtime=", "want 1"}},
	} {
		body := string(get(t, srv, procPath+tt.query, tt.status))
		for _, m := range tt.msg {
			if !strings.Contains(body, m) {
				t.Errorf("%s: %s; want it to mention %q", tt.query, body, m)
			}
		}
	}
}

// BenchmarkMergeRange merges a range of maxRangeEntries stored goroutine
// profiles of 2000 distinct stacks 20 to 40 frames deep, over the API.
func BenchmarkMergeRange(b *testing.B) {
	st := openStore(b)
	stacks := map[string]int64{}
	for i := range 2000 {
		var fr []string
		for j := range 20 + i%21 {
			fr = append(fr, fmt.Sprintf("github.com/acme/shop/pkg%d.(*T%d).Method%d", (i+j)%50, j%7, (i*j)%300))
		}
		stacks[strings.Join(fr, ";")] = int64(1 + i%17)
	}
	size := 0
	for i := range maxRangeEntries {
		m := appendProfile(b, st, store.KindGoroutines, stackProfile("goroutine", "count", t0.Add(time.Duration(i)*10*time.Second), stacks))
		size = int(m.Size)
	}
	srv := httptest.NewServer(New(testSource{Store: st}, nil))
	b.Cleanup(srv.Close)
	path := procPath + "/flame?from=" + rfc(t0)
	runtime.GC()
	heap := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	metrics.Read(heap)
	before, peak := heap[0].Value.Uint64(), uint64(0)
	done, sampled := make(chan struct{}), make(chan struct{})
	go func() { // the heap's peak, sampled every millisecond
		defer close(sampled)
		for {
			select {
			case <-done:
				return
			case <-time.After(time.Millisecond):
			}
			metrics.Read(heap)
			peak = max(peak, heap[0].Value.Uint64())
		}
	}()
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if f := getJSON[FlameAnswer](b, srv, path); f.Range.Merged != maxRangeEntries {
			b.Fatalf("merged %d", f.Range.Merged)
		}
	}
	b.StopTimer()
	close(done)
	<-sampled
	b.ReportMetric(float64(size), "stored-bytes/profile")
	b.ReportMetric(float64(peak-min(peak, before))/(1<<20), "peak-heap-MiB")
}
