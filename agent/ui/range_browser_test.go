package ui

import (
	"context"
	"encoding/json"
	"math"
	"net"
	"net/http"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/goroscope/goroscope/pkg/snapshot"
)

// The range views' snapshots, at t0-10m (rangeOld) and t0, t0+10s and
// t0+20s (rangeSnaps: 3, 6 and 9 goroutines): chan receive in main.loop
// (growing: 2, 4, 8), sync.Mutex.Lock in main.handle (1, 2, then none)
// and, last, one select in main.poll. rangeOld has 30 goroutines, 4 of
// them the runtime's own (wait reasons only the runtime waits with).
func rangeOld() *snapshot.Snapshot {
	sys := func(id uint64, reason string) snapshot.Goroutine {
		return snapshot.Goroutine{ID: id, State: snapshot.StateWaiting, WaitReason: reason, System: true,
			Frames: []snapshot.Frame{{Function: "runtime.gopark", File: "/go/src/runtime/proc.go", Line: 100, PC: 0x100},
				{Function: "runtime.gcBgMarkWorker", File: "/go/src/runtime/mgc.go", Line: 1400, PC: 0xa00}}}
	}
	return makeSnapshot(t0.Add(-10*time.Minute),
		goroutines(1, 26, "chan receive", 5, map[string]string{"handler": "api"}, stackRecv),
		[]snapshot.Goroutine{sys(900, "GC worker (idle)"), sys(901, "GC worker (idle)"), sys(902, "finalizer wait"), sys(903, "GC sweep wait")})
}

func rangeSnaps() []*snapshot.Snapshot {
	return []*snapshot.Snapshot{
		makeSnapshot(t0, goroutines(1, 2, "chan receive", 1, nil, stackRecv), goroutines(100, 1, "sync.Mutex.Lock", 2, nil, stackMutex)),
		makeSnapshot(t0.Add(10*time.Second), goroutines(1, 4, "chan receive", 1, nil, stackRecv), goroutines(100, 2, "sync.Mutex.Lock", 2, nil, stackMutex)),
		makeSnapshot(t0.Add(20*time.Second), goroutines(1, 8, "chan receive", 1, nil, stackRecv), goroutines(200, 1, "select", 3, nil, stackSelect)),
	}
}

// serveRange serves a store holding rangeOld and rangeSnaps, and, for the
// live refresh, POST /test/append: the next snapshot of n+1 goroutines
// (n appended so far: 12, 13, ...), 10 s after the newest, answering its
// time. It returns the UI's URL.
func serveRange(t *testing.T) string {
	t.Helper()
	st := openStore(t)
	appendSnapshot(t, st, testProc, rangeOld())
	snaps := rangeSnaps()
	for _, s := range snaps {
		appendSnapshot(t, st, testProc, s)
	}
	last := snaps[len(snaps)-1]
	live := Process{Process: testProc, Live: true, Walker: "procmem", LastSnapshot: last.Time, Counts: last.Counts}
	var mu sync.Mutex
	next := last.Time
	mux := http.NewServeMux()
	mux.Handle("/", New(testSource{Store: st, live: []Process{live}}, nil))
	mux.HandleFunc("POST /test/append", func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		next = next.Add(10 * time.Second)
		n := 12 + int(next.Sub(last.Time)/(10*time.Second)) - 1
		appendSnapshot(t, st, testProc, makeSnapshot(next, goroutines(1, n, "chan receive", 1, nil, stackRecv)))
		_ = json.NewEncoder(w).Encode(map[string]any{"time": next, "goroutines": n})
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { srv.Close() })
	return "http://" + ln.Addr().String() + "/"
}

// rangeResult is what testdata/range.spec.mjs measured in the page.
type rangeResult struct {
	Default struct {
		Moments   int      `json:"moments"`
		Total     float64  `json:"total"`
		Merged    int      `json:"merged"`
		Merge     string   `json:"merge"`
		RangeText string   `json:"range_text"`
		Span      float64  `json:"span"`
		Legend    []string `json:"legend"`  // the states chart's legend, the cursor away
		Folded    string   `json:"folded"`  // the note on "runtime (system)"
		Title     string   `json:"title"`   // its legend row's title
		Reasons   []string `json:"reasons"` // the wait reasons' series
		Apart     []string `json:"apart"`   // the same with runtime=1
		Resized   []int    `json:"resized"` // the states chart's width at 1400 and at 1000 px
	} `json:"default"`
	Drag struct {
		Total    float64 `json:"total"`
		Merged   int     `json:"merged"`
		Hash     string  `json:"hash"`
		Live     string  `json:"live"`
		MainLoop float64 `json:"main_loop"`
	} `json:"drag"`
	Moment struct {
		At      string `json:"at"`
		Matched int    `json:"matched"`
		Cleared int    `json:"cleared"`
	} `json:"moment"`
	Diff struct {
		Base       float64  `json:"base"`
		Total      float64  `json:"total"`
		Red        []string `json:"red"`
		Green      []string `json:"green"`
		Tip        string   `json:"tip"`
		LoopText   string   `json:"loop_text"`
		Normalised float64  `json:"normalised"`
		Fresh      []string `json:"fresh"` // base, total and rows on a fresh page from the URL
		Before     []string `json:"before"`
	} `json:"diff"`
	Filters struct {
		Chips   []string `json:"chips"`
		Matched int      `json:"matched"`
		Removed int      `json:"removed"`
	} `json:"filters"`
	Link struct {
		Before []string `json:"before"`
		After  []string `json:"after"`
		Href   string   `json:"href"`
		Groups []string `json:"groups"` // the goroutine table's view, before and after
	} `json:"link"`
}

// TestRangeInBrowser drives the process page's time range in chromium
// (testdata/range.spec.mjs, in the Europe/Berlin zone) over rangeOld and
// rangeSnaps: the last 15 minutes averaged; the legends' newest values;
// the runtime's wait reasons folded and apart; a drag on a chart merging
// rangeSnaps (3, 6, 9 goroutines: 6); a click picking a moment for the
// goroutine table; a diff of two dragged ranges (red grew, green shrank,
// normalised); the filter bar; and a copied link reproducing the flame
// graph's view (range, kind, filter, zoom, search) and the goroutine
// table's (grouped, a group expanded) on a fresh page.
func TestRangeInBrowser(t *testing.T) {
	if testing.Short() {
		t.Skip("starts Chromium")
	}
	chromium, node, dir := browserPrereqs(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	url := serveRange(t)
	spec, err := filepath.Abs(filepath.Join("testdata", "range.spec.mjs"))
	if err != nil {
		t.Fatal(err)
	}
	got := runSpec[rangeResult](t, ctx, node, chromium, dir, spec, url+"#/p/4242/777?range=15m", filepath.Join(dir, "artifacts", "range"), dir)

	// The default view: the last 15 minutes, every snapshot averaged.
	all := append([]*snapshot.Snapshot{rangeOld()}, rangeSnaps()...)
	var avg float64
	for _, s := range all {
		avg += float64(len(s.Goroutines)) / float64(len(all))
	}
	d := got.Default
	if d.Moments != 4 || d.Merged != 4 || d.Merge != MergeAverage || math.Abs(d.Total-avg) > 1e-9 || d.Span != 900 {
		t.Errorf("last 15 min: %d moments charted, %d merged (%s), total %v, window %v s; want 4, 4 (average), %v, 900 s", d.Moments, d.Merged, d.Merge, d.Total, d.Span, avg)
	}
	if len(d.Resized) != 2 || d.Resized[1] >= d.Resized[0]-100 {
		t.Errorf("the states chart's width at 1400 and 1000 px: %v, want it narrower by more than 100 px", d.Resized)
	}
	// Berlin is UTC+1 in November: the page says so.
	if want := "average of 4 snapshots, 2026-11-23 09:50:00–10:00:20 +01:00"; d.RangeText != want {
		t.Errorf("flame graph's range %q, want %q", d.RangeText, want)
	}
	if want := []string{"total 9", "running 0", "runnable 0", "syscall 0", "waiting 9"}; !slices.Equal(d.Legend, want) {
		t.Errorf("legend, the cursor away: %q, want the newest values %q", d.Legend, want)
	}
	for _, r := range []string{"GC worker (idle)", "finalizer wait", "GC sweep wait"} {
		if !strings.Contains(d.Folded, r) || !strings.Contains(d.Title, r) {
			t.Errorf("runtime (system) explained as %q (title %q), lacks %q", d.Folded, d.Title, r)
		}
		if slices.Contains(d.Reasons, r) || !slices.Contains(d.Apart, r) {
			t.Errorf("wait reason %q: series %q folded, %q apart; want it only apart", r, d.Reasons, d.Apart)
		}
	}
	if !slices.Contains(d.Reasons, RuntimeSeries) || slices.Contains(d.Apart, RuntimeSeries) {
		t.Errorf("series %q folded, %q apart: want %q only folded", d.Reasons, d.Apart, RuntimeSeries)
	}

	// The drag over rangeSnaps: 3, 6 and 9 goroutines, averaged.
	if g := got.Drag; g.Total != 6 || g.Merged != 3 || !strings.Contains(g.Hash, "from=") || strings.Contains(g.Hash, "range=") || g.Live != "off" ||
		math.Abs(g.MainLoop-float64(2+4+8)/3) > 1e-9 {
		t.Errorf("dragged range: total %v of %d merged, main.loop %v, hash %q, live %q; want 6 of 3, main.loop 4.67, a custom range, not live",
			g.Total, g.Merged, g.MainLoop, g.Hash, g.Live)
	}
	if m := got.Moment; m.At != t0.Add(10*time.Second).Format(time.RFC3339) || m.Matched != 6 || m.Cleared != 9 {
		t.Errorf("moment picked %q: %d goroutines, %d back at the range's end; want t0+10s: 6, then 9", m.At, m.Matched, m.Cleared)
	}

	// The diff: t0 (3 goroutines) against t0+20s (9).
	df := got.Diff
	if df.Base != 3 || df.Total != 9 || !slices.Contains(df.Red, "main.loop") || !slices.Contains(df.Red, "main.poll") ||
		!slices.Equal(df.Green, []string{"main.handle", "runtime.gopark", "sync.(*Mutex).Lock"}) {
		t.Errorf("diff: %v → %v, red %q, green %q; want 3 → 9, main.loop and main.poll red, main.handle's frames green", df.Base, df.Total, df.Red, df.Green)
	}
	for _, want := range []string{"main.loop", "baseline 2 goroutines", "comparison 8 goroutines", "change +6 goroutines (+300%)", "of parent"} {
		if !strings.Contains(df.Tip, want) {
			t.Errorf("diff tooltip %q lacks %q", df.Tip, want)
		}
	}
	if df.LoopText != "+6 goroutines" || df.Normalised != 2 {
		t.Errorf("main.loop's change %q, normalised %v; want +6 goroutines, +2 (its baseline 2 × 9/3)", df.LoopText, df.Normalised)
	}
	if !slices.Equal(df.Fresh, df.Before) {
		t.Errorf("the diff's link on a fresh page shows %q, want %q", df.Fresh, df.Before)
	}

	// The filter bar: set on the flame graph, shown and removed on the goroutine table.
	if f := got.Filters; !slices.Equal(f.Chips, []string{"wait_reason=chan receive"}) || f.Matched != 8 || f.Removed != 9 {
		t.Errorf("filter bar %q on the goroutine table: %d goroutines, %d once removed; want wait_reason=chan receive: 8, then 9", f.Chips, f.Matched, f.Removed)
	}
	// The copied link: the same views on a fresh page.
	if l := got.Link; len(l.Before) < 6 || !slices.Equal(l.Before, l.After) || len(l.Groups) != 2 || l.Groups[0] != l.Groups[1] {
		t.Errorf("copied link %s: flame view %q, on a fresh page %q; goroutine table %q", l.Href, l.Before, l.After, l.Groups)
	}
}

// liveResult is what testdata/live.spec.mjs measured in the page.
type liveResult struct {
	Start        []int    `json:"start"`        // moments charted, snapshots merged
	Appended     []int    `json:"appended"`     // the same after an append, no reload
	Paused       []int    `json:"paused"`       // after another append, paused
	Resumed      []int    `json:"resumed"`      // resumed
	Inspecting   []int    `json:"inspecting"`   // after another append, the pointer on the graph
	Left         []int    `json:"left"`         // the pointer gone
	States       []string `json:"states"`       // the indicator's states seen
	Why          string   `json:"why"`          // its text while inspecting
	MaxInFlight  int      `json:"max_inflight"` // requests of one kind at once, at most
	Reloaded     bool     `json:"reloaded"`
	ScrollKept   bool     `json:"scroll_kept"`
	ZoomKept     bool     `json:"zoom_kept"`
	NewestLegend string   `json:"newest_legend"`
}

// TestLiveRefreshInBrowser: with a relative range, the page refreshes by
// itself (refresh=1: every second): a snapshot appended to the store
// shows in the charts and the flame graph without a reload; not while
// paused, nor while the pointer is on the graph; the page's scroll and
// the graph's zoom stay; requests never pile up.
func TestLiveRefreshInBrowser(t *testing.T) {
	if testing.Short() {
		t.Skip("starts Chromium")
	}
	chromium, node, dir := browserPrereqs(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	url := serveRange(t)
	spec, err := filepath.Abs(filepath.Join("testdata", "live.spec.mjs"))
	if err != nil {
		t.Fatal(err)
	}
	got := runSpec[liveResult](t, ctx, node, chromium, dir, spec, url+"#/p/4242/777?range=15m&refresh=1", filepath.Join(dir, "artifacts", "live"), dir)
	checks := []struct {
		name      string
		got, want []int
	}{
		{"at the start", got.Start, []int{4, 4}},
		{"after an append", got.Appended, []int{5, 5}},
		{"after an append, paused", got.Paused, []int{5, 5}},
		{"resumed", got.Resumed, []int{6, 6}},
		{"after an append, the pointer on the graph", got.Inspecting, []int{6, 6}},
		{"the pointer gone", got.Left, []int{7, 7}},
	}
	for _, c := range checks {
		if !slices.Equal(c.got, c.want) {
			t.Errorf("%s: %v moments charted and snapshots merged, want %v", c.name, c.got, c.want)
		}
	}
	for _, s := range []string{"live", "paused", "inspecting"} {
		if !slices.Contains(got.States, s) {
			t.Errorf("indicator states %q lack %q", got.States, s)
		}
	}
	if got.Reloaded || !got.ScrollKept || !got.ZoomKept || got.MaxInFlight > 1 || !strings.Contains(got.Why, "pointer") {
		t.Errorf("reloaded %v, scroll kept %v, zoom kept %v, %d requests of a kind at once, inspecting %q; want no reload, kept, at most 1, the pointer",
			got.Reloaded, got.ScrollKept, got.ZoomKept, got.MaxInFlight, got.Why)
	}
	if got.NewestLegend != "total 14" {
		t.Errorf("states legend, the cursor away: %q, want the newest total (14)", got.NewestLegend)
	}
}
