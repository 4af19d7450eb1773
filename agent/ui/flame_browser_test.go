package ui

import (
	"bytes"
	"context"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/google/pprof/profile"

	"github.com/goroscope/goroscope/pkg/store"
)

// cpuStacks are the on-CPU profile appendCPUProfile stores: stacks root
// first, nanoseconds each (232 ms in all). One leaf is hostileFrame.
var cpuStacks = []struct {
	frames []string
	ns     int64
}{
	{[]string{"main.main", "github.com/acme/shop/cart.(*Cart).Total", "runtime.memmove"}, 150_000_000},
	{[]string{"main.main", "github.com/acme/shop/cart.(*Cart).Total"}, 50_000_000},
	{[]string{"main.main", hostileFrame}, 32_000_000},
}

// appendCPUProfile stores cpuStacks as a process_cpu profile at at.
func appendCPUProfile(tb testing.TB, st *store.Store, proc store.Process, at time.Time) {
	tb.Helper()
	p := &profile.Profile{SampleType: []*profile.ValueType{{Type: "cpu", Unit: "nanoseconds"}}, TimeNanos: at.UnixNano()}
	fns := map[string]*profile.Location{}
	for _, s := range cpuStacks {
		sample := &profile.Sample{Value: []int64{s.ns}}
		for i := len(s.frames) - 1; i >= 0; i-- { // leaf first
			name := s.frames[i]
			loc := fns[name]
			if loc == nil {
				id := uint64(len(fns) + 1)
				fn := &profile.Function{ID: id, Name: name, SystemName: name, Filename: "/app/x.go"}
				loc = &profile.Location{ID: id, Address: 0x1000 * id, Line: []profile.Line{{Function: fn, Line: int64(id)}}}
				fns[name] = loc
				p.Function = append(p.Function, fn)
				p.Location = append(p.Location, loc)
			}
			sample.Location = append(sample.Location, loc)
		}
		p.Sample = append(p.Sample, sample)
	}
	var buf bytes.Buffer
	if err := p.Write(&buf); err != nil {
		tb.Fatal(err)
	}
	if _, err := st.Append(store.Entry{Process: proc, Kind: store.KindCPU, Time: at, Data: buf.Bytes()}); err != nil {
		tb.Fatal(err)
	}
}

// flameResult is what testdata/flame.spec.mjs measured in the page.
type flameResult struct {
	Summary       string    `json:"summary"`
	Range         string    `json:"range"`
	XWindow       []float64 `json:"x_window"`
	Tip           string    `json:"tip"`
	TipInside     bool      `json:"tip_inside"`
	TipAfter      string    `json:"tip_after_redraw"`
	SearchValue   int64     `json:"search_value"`
	SearchPercent string    `json:"search_percent"`
	SearchNames   []string  `json:"search_names"`
	RegexpValue   int64     `json:"regexp_value"`
	Crumbs        []string  `json:"crumbs"`
	CrumbsBack    []string  `json:"crumbs_back"`
	ResetDepth    int       `json:"reset_depth"`
	TopFirst      []string  `json:"top_first"`
	TopByTotal    string    `json:"top_by_total"`
	TopClicked    []string  `json:"top_clicked"`
	Callers       []string  `json:"callers"`
	Callees       []string  `json:"callees"`
	StateFrames   []string  `json:"state_frames"`
	StateLegend   []string  `json:"state_legend"`
	CPUSummary    string    `json:"cpu_summary"`
	CPUTip        string    `json:"cpu_tip"`
	CPUHostile    bool      `json:"cpu_hostile"`
	PackageLegend []string  `json:"package_legend"`
}

// TestFlameInBrowser drives the flame graph's tools in chromium
// (testdata/flame.spec.mjs) over the hand-made snapshots (snapA, snapB)
// and an on-CPU profile: units in the summary and the tooltip (inside the
// viewport, gone after a redraw), the search and its share of the total,
// zoom and the breadcrumb, the top table, the sandwich view, colours by
// state, and the hostile frame name as text.
func TestFlameInBrowser(t *testing.T) {
	if testing.Short() {
		t.Skip("starts Chromium")
	}
	chromium, node, dir := browserPrereqs(t)
	st := openStore(t)
	appendSnapshot(t, st, testProc, snapA())
	appendSnapshot(t, st, testProc, snapB())
	appendCPUProfile(t, st, testProc, t1)
	live := Process{Process: testProc, Live: true, Walker: "procmem", WalkerReason: "loading", LastSnapshot: t1, Counts: snapB().Counts}

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: New(testSource{Store: st, live: []Process{live}}, nil), ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	defer srv.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	artifacts := filepath.Join(dir, "artifacts", "flame")
	if err := os.RemoveAll(artifacts); err != nil {
		t.Fatal(err)
	}
	spec, err := filepath.Abs(filepath.Join("testdata", "flame.spec.mjs"))
	if err != nil {
		t.Fatal(err)
	}
	// The range of snapB alone (the page's default, the last hour, would
	// average snapA and snapB).
	at := t1.Format(time.RFC3339)
	got := runSpec[flameResult](t, ctx, node, chromium, dir, spec, "http://"+ln.Addr().String()+"/#/p/4242/777?from="+at+"&to="+at, artifacts, dir)

	// snapB, the newest: 5 chan receive (main.start;main.loop;main.worker;
	// runtime.chanrecv1;runtime.gopark), 2 select (main.poll;
	// runtime.selectgo;runtime.gopark), 1 running.
	checks := []struct {
		name      string
		got, want any
	}{
		{"summary", got.Summary, "8 of 8 goroutines"},
		{"range", got.Range, "1 snapshot at 2026-11-23 09:00:30 UTC"},
		{"tooltip inside the viewport", got.TipInside, true},
		{"tooltip after a redraw", got.TipAfter, "none"},
		{"search chanrecv: value", got.SearchValue, int64(5)},
		{"search chanrecv: percent", got.SearchPercent, "62.5"},
		{"regexp search: value", got.RegexpValue, int64(7)},
		{"breadcrumb after zooming to main.worker", got.Crumbs, []string{"all", "main.start", "main.loop", "main.worker"}},
		{"breadcrumb back to main.start", got.CrumbsBack, []string{"all", "main.start"}},
		{"depth after reset", got.ResetDepth, 0},
		{"top table's first row (by self)", got.TopFirst, []string{"runtime.gopark", "7 goroutines", "88%", "7 goroutines", "88%"}},
		{"top table by total", got.TopByTotal, "runtime.gopark"},
		{"highlighted after a top table click", got.TopClicked, []string{"main.loop"}},
		{"sandwich callers of runtime.gopark", got.Callers, []string{"runtime.gopark", "runtime.chanrecv1", "runtime.selectgo", "main.worker", "main.poll", "main.loop", "main.start"}},
		{"sandwich callees of runtime.gopark", got.Callees, []string{"runtime.gopark"}},
		{"state frames", got.StateFrames, []string{"state:running", "state:waiting", "wait_reason:chan receive", "wait_reason:select"}},
		{"state legend", got.StateLegend, []string{"running", "waiting"}},
		{"cpu summary", got.CPUSummary, "232 ms of 232 ms on CPU"},
		{"cpu hostile frame as text", got.CPUHostile, true},
	}
	for _, c := range checks {
		if !equalAny(c.got, c.want) {
			t.Errorf("%s: page shows %#v, want %#v", c.name, c.got, c.want)
		}
	}
	if at := float64(t1.Unix()); len(got.XWindow) != 2 || got.XWindow[0] != at-30 || got.XWindow[1] != at+30 {
		t.Errorf("charts of the range of one moment %v span %v, want the minute around it", t1, got.XWindow)
	}
	for _, want := range []string{"main.start", "5 goroutines", "63% of total", "of parent"} {
		if !bytes.Contains([]byte(got.Tip), []byte(want)) {
			t.Errorf("tooltip %q lacks %q", got.Tip, want)
		}
	}
	for _, want := range []string{"main.main", "232 ms", "100% of total"} {
		if !bytes.Contains([]byte(got.CPUTip), []byte(want)) {
			t.Errorf("cpu tooltip %q lacks %q", got.CPUTip, want)
		}
	}
	if !slices.Contains(got.PackageLegend, "github.com/acme/shop/cart") || !slices.Contains(got.PackageLegend, "runtime") {
		t.Errorf("package legend %q, want github.com/acme/shop/cart and runtime", got.PackageLegend)
	}
}

// equalAny compares values of the comparable kinds and string slices.
func equalAny(a, b any) bool {
	if as, ok := a.([]string); ok {
		bs, ok := b.([]string)
		return ok && slices.Equal(as, bs)
	}
	return a == b
}
