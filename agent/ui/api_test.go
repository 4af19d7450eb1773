package ui

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/google/pprof/profile"

	"github.com/goroscope/goroscope/pkg/snapshot"
)

// newTestServer serves the UI over a real store holding snapA and snapB.
func newTestServer(t *testing.T) *httptest.Server {
	t.Helper()
	st := openStore(t)
	appendSnapshot(t, st, testProc, snapA())
	appendSnapshot(t, st, testProc, snapB())
	live := Process{Process: testProc, Live: true, Walker: "procmem", WalkerReason: "loading", LastSnapshot: t1}
	live.Counts = snapB().Counts
	srv := httptest.NewServer(New(testSource{Store: st, live: []Process{live}}, nil))
	t.Cleanup(srv.Close)
	return srv
}

func get(t testing.TB, srv *httptest.Server, path string, wantStatus int) []byte {
	t.Helper()
	resp, err := http.Get(srv.URL + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != wantStatus {
		t.Fatalf("GET %s: status %d, want %d: %s", path, resp.StatusCode, wantStatus, body)
	}
	return body
}

func getJSON[T any](t testing.TB, srv *httptest.Server, path string) T {
	t.Helper()
	var v T
	if err := json.Unmarshal(get(t, srv, path, http.StatusOK), &v); err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	return v
}

const procPath = "/api/processes/4242/777"

func TestAPI(t *testing.T) {
	srv := newTestServer(t)
	at0, at1 := url.QueryEscape(t0.Format(time.RFC3339Nano)), url.QueryEscape(t1.Format(time.RFC3339Nano))

	t.Run("processes", func(t *testing.T) {
		rows := getJSON[[]ProcessRow](t, srv, "/api/processes")
		if len(rows) != 1 || rows[0].PID != 4242 || !rows[0].Live || rows[0].Total != 8 || rows[0].ServiceName != "checkout" || rows[0].Counts.Waiting != 7 ||
			rows[0].Walker != "procmem" || rows[0].WalkerReason != "loading" {
			t.Errorf("processes %+v", rows)
		}
	})
	t.Run("series", func(t *testing.T) {
		s := getJSON[Series](t, srv, procPath+"/series")
		if len(s.Moments) != 2 || !s.Moments[0].Equal(t0) || s.Total[0] != 6 || s.Total[1] != 8 ||
			s.WaitReasons["chan receive"][1] != 5 || s.States["waiting"][0] != 5 {
			t.Errorf("series %+v", s)
		}
		s = getJSON[Series](t, srv, procPath+"/series?from="+at1)
		if len(s.Moments) != 1 || s.Total[0] != 8 {
			t.Errorf("series from t1: %+v", s)
		}
	})
	t.Run("flame", func(t *testing.T) {
		tests := []struct {
			query           string
			entry           time.Time
			total, unfilt   float64
			unit, firstNode string
		}{
			{"", t1, 8, 8, "count", "(running: stack is live)"},
			{"?at=" + at0, t0, 6, 6, "count", "(running: stack is live)"},
			{"?at=" + url.QueryEscape(t0.Add(5*time.Second).Format(time.RFC3339)), t0, 6, 6, "count", "(running: stack is live)"},
			{"?at=" + url.QueryEscape(t0.Add(-time.Hour).Format(time.RFC3339)), t0, 6, 6, "count", "(running: stack is live)"},
			{"?at=" + at0 + "&wait_reason=chan+receive", t0, 3, 6, "count", "main.start"},
			{"?wait_reason=select", t1, 2, 8, "count", "main.poll"},
			{"?label=handler%3Dapi&wait_duration=1s-10s", t1, 5, 8, "count", "main.start"},
			{"?kind=goroutine_wall&at=" + at0 + "&state=waiting", t0, 5 * float64(wallInterval), 6 * float64(wallInterval), "nanoseconds", "main.start"},
		}
		for _, tt := range tests {
			f := getJSON[FlameAnswer](t, srv, procPath+"/flame"+tt.query)
			first := ""
			if len(f.Root.Children) > 0 {
				first = f.Root.Children[0].Name
			}
			if !f.Entry.Time.Equal(tt.entry) || f.Total != tt.total || f.UnfilteredTotal != tt.unfilt || f.Unit != tt.unit || first != tt.firstNode {
				t.Errorf("flame%s: entry %v total %v/%v unit %s first %q; want %v %v/%v %s %q", tt.query,
					f.Entry.Time, f.Total, f.UnfilteredTotal, f.Unit, first, tt.entry, tt.total, tt.unfilt, tt.unit, tt.firstNode)
			}
		}
	})
	t.Run("diff", func(t *testing.T) {
		// One moment on each side: snapA against snapB.
		d := getJSON[Diff](t, srv, procPath+"/diff?base_from="+at0+"&base_to="+at0+"&from="+at1+"&to="+at1)
		if d.BaseTotal != 6 || d.Total != 8 || d.Root.Base != 6 || d.Root.Value != 8 || d.Merge != MergeAverage || d.Unit != "count" || d.SampleType != "goroutine" ||
			d.Base.Merged != 1 || !d.Base.Last.Equal(t0) || d.Comparison.Merged != 1 || !d.Comparison.Last.Equal(t1) || d.Truncated {
			t.Errorf("diff %+v", d)
		}
		want := []string{
			"all 8/6",
			"all;(running: stack is live) 1/1",
			"all;main.poll 2/0",
			"all;main.poll;runtime.selectgo 2/0",
			"all;main.poll;runtime.selectgo;runtime.gopark 2/0",
			"all;main.start 5/5",
			"all;main.start;main.handle 0/2",
			"all;main.start;main.handle;sync.(*Mutex).Lock 0/2",
			"all;main.start;main.handle;sync.(*Mutex).Lock;runtime.gopark 0/2",
			"all;main.start;main.loop 5/3",
			"all;main.start;main.loop;main.worker 5/3",
			"all;main.start;main.loop;main.worker;runtime.chanrecv1 5/3",
			"all;main.start;main.loop;main.worker;runtime.chanrecv1;runtime.gopark 5/3",
		}
		if got := diffPaths(d.Root); !reflect.DeepEqual(got, want) {
			t.Errorf("diff paths:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
		}
		// Both moments in the comparison (to: the newest), the first as the
		// baseline, filtered, grouped: averages.
		d = getJSON[Diff](t, srv, procPath+"/diff?base_from="+at0+"&base_to="+at0+"&from="+at0+"&wait_reason=chan+receive&group=state")
		if d.BaseTotal != 3 || d.Total != 4 || d.Comparison.Merged != 2 || d.Comparison.Scale != 0.5 || !d.Comparison.To.Equal(t1) ||
			len(d.Root.Children) != 1 || d.Root.Children[0].Kind != KindState || d.Root.Children[0].Value != 4 || d.Root.Children[0].Base != 3 {
			t.Errorf("diff of chan receive, grouped: %+v, root %+v", d, d.Root)
		}
		// Every kind: goroutine_wall sums.
		d = getJSON[Diff](t, srv, procPath+"/diff?kind=goroutine_wall&base_from="+at0+"&base_to="+at0+"&from="+at0+"&state=waiting")
		if w := float64(wallInterval); d.Merge != MergeSum || d.BaseTotal != 5*w || d.Total != 12*w || d.Unit != "nanoseconds" {
			t.Errorf("goroutine_wall diff: %s, %v -> %v %s; want sum, %v -> %v nanoseconds", d.Merge, d.BaseTotal, d.Total, d.Unit, 5*w, 12*w)
		}
	})
	t.Run("goroutines", func(t *testing.T) {
		g := getJSON[GoroutinesAnswer](t, srv, procPath+"/goroutines?at="+at0+"&q=mutex")
		if g.Total != 6 || g.Matched != 2 || len(g.Goroutines) != 2 || g.Goroutines[0].ID != 10 || len(g.Goroutines[0].Frames) != 4 {
			t.Errorf("goroutines %+v", g.Page)
		}
		g = getJSON[GoroutinesAnswer](t, srv, procPath+"/goroutines?limit=3&offset=1")
		if g.Total != 8 || g.Matched != 8 || len(g.Goroutines) != 3 || g.Goroutines[0].ID != 2 {
			t.Errorf("goroutines page %+v", g.Page)
		}
	})
	t.Run("download", func(t *testing.T) {
		// pprof unfiltered: the stored payload, a valid profile.
		p, err := profile.Parse(bytes.NewReader(get(t, srv, procPath+"/download?kind=goroutines&at="+at0, 200)))
		if err != nil || len(p.Sample) != 3 {
			t.Fatalf("pprof download: %v, %d samples", err, len(p.Sample))
		}
		p, err = profile.Parse(bytes.NewReader(get(t, srv, procPath+"/download?kind=goroutines&at="+at0+"&state=running", 200)))
		if err != nil || len(p.Sample) != 1 || p.Sample[0].Value[0] != 1 {
			t.Fatalf("filtered pprof download: %v, %d samples", err, len(p.Sample))
		}
		folded := string(get(t, srv, procPath+"/download?kind=goroutines&format=folded&wait_reason=select", 200))
		if want := "waiting: select;main.poll;runtime.selectgo;runtime.gopark 2\n"; folded != want {
			t.Errorf("folded %q, want %q", folded, want)
		}
		var snap snapshot.Snapshot
		if err := json.Unmarshal(get(t, srv, procPath+"/download?kind=snapshot&format=json&at="+at0, 200), &snap); err != nil || len(snap.Goroutines) != 6 || snap.PID != 4242 {
			t.Errorf("snapshot json: %v, %d goroutines", err, len(snap.Goroutines))
		}
		folded = string(get(t, srv, procPath+"/download?kind=snapshot&format=folded&state=running", 200))
		if folded != "running 1\n" {
			t.Errorf("snapshot folded %q", folded)
		}
		zp := get(t, srv, procPath+"/download?kind=snapshot&format=pprof&at="+at0, 200)
		if _, err := gzip.NewReader(bytes.NewReader(zp)); err != nil {
			t.Errorf("snapshot pprof not gzipped: %v", err)
		}
		var fl FlameAnswer
		if err := json.Unmarshal(get(t, srv, procPath+"/download?kind=goroutine_wall&format=json", 200), &fl); err != nil || fl.Unit != "nanoseconds" {
			t.Errorf("wall json: %v %+v", err, fl.Flame)
		}
	})
	t.Run("errors", func(t *testing.T) {
		for _, tt := range []struct {
			path   string
			status int
			msg    string
		}{
			{"/api/processes/x/1/flame", 400, "positive number"},
			{"/api/processes/1/-1/flame", 400, "start time"},
			{procPath + "/flame?kind=bogus", 400, "kind="},
			{procPath + "/flame?state=napping", 400, "state="},
			{procPath + "/flame?at=yesterday", 400, "RFC 3339"},
			{procPath + "/diff", 400, "diff needs from="},
			{procPath + "/download?format=svg", 400, "format="},
			{procPath + "/goroutines?limit=-1", 400, "limit="},
			{"/api/processes/1/2/flame", 404, "no goroutines entry"},
			{"/api/nothing", 404, "no API endpoint"},
		} {
			body := get(t, srv, tt.path, tt.status)
			var e struct{ Error string }
			if err := json.Unmarshal(body, &e); err != nil || !strings.Contains(e.Error, tt.msg) {
				t.Errorf("%s: error %q (%v), want it to mention %q", tt.path, e.Error, err, tt.msg)
			}
		}
	})
	t.Run("headers", func(t *testing.T) {
		resp, err := http.Get(srv.URL + "/")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if csp := resp.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "script-src 'self'") {
			t.Errorf("Content-Security-Policy %q", csp)
		}
		for _, lib := range []string{"d3", "d3-flame-graph", "uplot"} {
			if b, err := staticFiles.ReadFile("static/vendor/" + lib + "/LICENSE"); err != nil || len(b) < 100 {
				t.Errorf("vendored %s has no LICENSE embedded: %v", lib, err)
			}
		}
	})
	t.Run("page", func(t *testing.T) {
		for path, want := range map[string]string{
			"/":                           `<script type="module" src="static/app.js">`,
			"/static/app.js":              `import { processView } from "./js/process.js"`,
			"/static/js/process.js":       "export function processView",
			"/static/vendor/d3/d3.min.js": "d3js.org",
			"/static/vendor/d3-flame-graph/d3-flamegraph.umd.min.js": "flamegraph",
			"/static/vendor/uplot/uPlot.iife.min.js":                 "uPlot",
		} {
			if body := string(get(t, srv, path, 200)); !strings.Contains(body, want) {
				t.Errorf("%s does not contain %q", path, want)
			}
		}
	})
}
