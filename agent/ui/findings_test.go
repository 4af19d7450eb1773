package ui

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/goroscope/goroscope/pkg/findings"
	"github.com/goroscope/goroscope/pkg/fold"
	"github.com/goroscope/goroscope/pkg/snapshot"
	"github.com/goroscope/goroscope/pkg/store"
)

// findingsSummary is s's summary with the findings counts the agent adds
// (agent/daemon addFindingsSummary): "findings", "findings/<kind>".
func findingsSummary(s *snapshot.Snapshot, fs []findings.Finding) map[string]float64 {
	sum := fold.Summary(s)
	sum["findings"] = float64(len(fs))
	for _, f := range fs {
		sum["findings/"+f.Kind]++
	}
	return sum
}

// appendJudged stores s as appendSnapshot does, as the agent does once it
// judges snapshots: the summaries count fs, and a findings entry holds
// them (only when there are any).
func appendJudged(tb testing.TB, st *store.Store, proc store.Process, s *snapshot.Snapshot, fs []findings.Finding) {
	tb.Helper()
	appendSnapshotSummary(tb, st, proc, s, findingsSummary(s, fs))
	if len(fs) > 0 {
		appendFindings(tb, st, proc, s.Time, findingsSummary(s, fs), storedFindings{PID: proc.PID, Time: s.Time.Format(time.RFC3339Nano), Findings: fs})
	}
}

// appendFindings stores v as a findings entry (gzipped JSON) at at.
func appendFindings(tb testing.TB, st *store.Store, proc store.Process, at time.Time, sum map[string]float64, v any) {
	tb.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	if err := json.NewEncoder(zw).Encode(v); err != nil {
		tb.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		tb.Fatal(err)
	}
	if _, err := st.Append(store.Entry{Process: proc, Kind: store.KindFindings, Time: at, Summary: sum, Data: buf.Bytes()}); err != nil {
		tb.Fatalf("append findings: %v", err)
	}
}

// findingOf is a finding of kind about the group of s at site, as the
// tracker would make it (the numbers are the group's).
func findingOf(tb testing.TB, s *snapshot.Snapshot, kind string, site findings.Site, summary string) findings.Finding {
	tb.Helper()
	for _, g := range findings.Groups(s) {
		if g.Site != site {
			continue
		}
		return findings.Finding{ID: kind + "-" + site.ID(), Kind: kind, Summary: summary, Site: site, SiteID: site.ID(),
			Goroutines: g.Goroutines, FirstSeen: s.Time.Add(-time.Hour), Time: s.Time, OldestSeconds: g.MaxWait,
			Objects: g.Objects, DistinctObjects: g.DistinctObjects, Example: g.Example, Labels: g.Labels}
	}
	tb.Fatalf("no group at site %+v", site)
	return findings.Finding{}
}

// Sites of the hand-made snapshots' groups.
var (
	siteRecv   = findings.Site{Frame: "main.worker /app/w.go:10", State: snapshot.StateWaiting, WaitReason: "chan receive"}
	siteMutex  = findings.Site{Frame: "main.handle /app/h.go:5", State: snapshot.StateWaiting, WaitReason: "sync.Mutex.Lock"}
	siteSelect = findings.Site{Frame: "main.poll /app/p.go:7", State: snapshot.StateWaiting, WaitReason: "select"}
)

// Processes of the findings fixture besides testProc (live).
var (
	gonePlain  = store.Process{PID: 5151, StartTime: 1, ServiceName: "billing", Exe: "/usr/bin/billing", GoVersion: "go1.26.8"}
	goneAsleep = store.Process{PID: 6161, StartTime: 2, ServiceName: "zeta", Exe: "/usr/bin/zeta", GoVersion: "go1.26.8"}
	goneOld    = store.Process{PID: 7171, StartTime: 3, ServiceName: "alpha", Exe: "/usr/bin/alpha", GoVersion: "go1.22.1"}
)

// findingsFixture serves a store where:
//   - testProc (live) had no findings at t0, a leak of the chan receive
//     group at t1 (stored), and holds the leak and a stuck finding live;
//   - gonePlain (stored) had a stuck and a leak finding at t0, none at t1;
//   - goneAsleep (stored) was all asleep at t0 and t1;
//   - goneOld (stored) was stored before findings (no counts).
func findingsFixture(t *testing.T) (srv *httptest.Server, live []findings.Finding, leak findings.Finding) {
	t.Helper()
	st := openStore(t)
	a, b := snapA(), snapB()
	appendJudged(t, st, testProc, a, nil)
	leak = findingOf(t, b, findings.KindLeak, siteRecv, "5 goroutines wait to receive in main.worker, +600/h")
	appendJudged(t, st, testProc, b, []findings.Finding{leak})
	stuck := findingOf(t, b, findings.KindStuck, siteSelect, "2 goroutines wait in select in main.poll for 5 min")
	live = []findings.Finding{stuck, leak} // not worst first: the answer sorts

	plain := func(s *snapshot.Snapshot) *snapshot.Snapshot { s.PID = gonePlain.PID; return s }
	a2, b2 := plain(snapA()), plain(snapB())
	appendJudged(t, st, gonePlain, a2, []findings.Finding{
		findingOf(t, a2, findings.KindStuck, siteMutex, "2 goroutines wait for sync.Mutex.Lock"),
		findingOf(t, a2, findings.KindLeak, siteRecv, "3 goroutines wait to receive"),
	})
	appendJudged(t, st, gonePlain, b2, nil)

	for _, s := range []*snapshot.Snapshot{snapA(), snapB()} {
		s.PID = goneAsleep.PID
		f := findingOf(t, s, findings.KindAllAsleep, siteRecv, fmt.Sprintf("all %d goroutines asleep", len(s.Goroutines)))
		f.ID = "all-asleep-0123456789ab"
		appendJudged(t, st, goneAsleep, s, []findings.Finding{f})
	}
	appendSnapshot(t, st, goneOld, snapA())

	lp := Process{Process: testProc, Live: true, Walker: "procmem", LastSnapshot: t1, Counts: b.Counts, Findings: live}
	srv = httptest.NewServer(New(testSource{Store: st, live: []Process{lp}}, nil))
	t.Cleanup(srv.Close)
	return srv, live, leak
}

func TestFindingsProcessList(t *testing.T) {
	srv, _, _ := findingsFixture(t)
	rows := getJSON[[]ProcessRow](t, srv, "/api/processes")
	type row struct {
		pid, count int
		kinds      string
		live       bool
	}
	var got []row
	for _, r := range rows {
		var kinds []string
		for _, k := range r.FindingKinds {
			kinds = append(kinds, fmt.Sprintf("%s=%d", k.Kind, k.Count))
		}
		got = append(got, row{r.PID, r.FindingsCount, strings.Join(kinds, ","), r.Live})
	}
	// All asleep (stored) first, then the live process's leak and stuck;
	// then the rest as before: live first, then by service.
	want := []row{
		{goneAsleep.PID, 1, "all-asleep=1", false},
		{testProc.PID, 2, "leak=1,stuck=1", true},
		{goneOld.PID, 0, "", false},
		{gonePlain.PID, 0, "", false}, // its findings of t0 no longer held at t1
	}
	if !slices.Equal(got, want) {
		t.Errorf("process rows (pid, findings, kinds, live)\n got %v\nwant %v", got, want)
	}
}

func TestMergeProcessesFindingsOrder(t *testing.T) {
	proc := func(pid int, svc string) store.Process {
		return store.Process{PID: pid, StartTime: uint64(pid), ServiceName: svc}
	}
	stored := func(p store.Process, sum map[string]float64) store.Meta {
		return store.Meta{Process: p, Kind: store.KindGoroutines, Time: t0, Summary: sum}
	}
	live := []Process{
		{Process: proc(1, "a"), Live: true},
		{Process: proc(2, "b"), Live: true, Findings: []findings.Finding{{Kind: findings.KindStuck}, {Kind: findings.KindStuck}, {Kind: findings.KindStuck}}},
		{Process: proc(3, "c"), Live: true, Findings: []findings.Finding{{Kind: findings.KindStuck}, {Kind: findings.KindLeak}}},
	}
	rows := MergeProcesses(live, []store.Meta{
		stored(proc(4, "d"), map[string]float64{"findings": 1, "findings/leak": 1}),
		stored(proc(5, "e"), map[string]float64{"findings": 0}),
		stored(proc(6, "f"), map[string]float64{"findings": 2, "findings/stuck": 1, "findings/all-asleep": 1}),
		stored(proc(7, "g"), map[string]float64{"findings": 1, "findings/novel": 1}),
	})
	var pids []int
	for _, r := range rows {
		pids = append(pids, r.PID)
	}
	// all-asleep; leak (2 findings, then 1); unknown kind; stuck; none (live first).
	if want := []int{6, 3, 4, 2, 7, 1, 5}; !slices.Equal(pids, want) {
		t.Errorf("order %v, want %v", pids, want)
	}
	if k := rows[0].FindingKinds; len(k) != 2 || k[0] != (KindCount{"all-asleep", 1}) || k[1] != (KindCount{"stuck", 1}) {
		t.Errorf("kinds of pid 6: %+v, want the worst first", k)
	}
}

func TestFindingsAPI(t *testing.T) {
	srv, live, leak := findingsFixture(t)
	at := func(tm time.Time) string { return url.QueryEscape(tm.Format(time.RFC3339Nano)) }
	path := func(p store.Process) string { return fmt.Sprintf("/api/processes/%d/%d/findings", p.PID, p.StartTime) }
	ids := func(fs []findings.Finding) string {
		var out []string
		for _, f := range fs {
			out = append(out, f.ID)
		}
		return strings.Join(out, ",")
	}
	type hist struct {
		id          string
		first, last time.Time
		moments     int
		holding     bool
	}
	histOf := func(a FindingsAnswer) []hist {
		var out []hist
		for _, h := range a.History {
			out = append(out, hist{h.ID, h.First, h.Last, h.Moments, h.Holding})
		}
		return out
	}
	stuckLive := live[0]
	tests := []struct {
		name, path   string
		live         bool
		time         time.Time
		entry        bool
		findings     string
		history      []hist
		from, to     time.Time
		entries      int
		checkSummary string
	}{
		{name: "live: the live findings, worst first; the stored leak since t1",
			path: path(testProc), live: true, time: t1, findings: leak.ID + "," + stuckLive.ID,
			history: []hist{{leak.ID, t1, t1, 1, true}}, from: t1, to: t1, entries: 1, checkSummary: leak.Summary},
		{name: "live before t1: stored, none at t0",
			path: path(testProc) + "?to=" + at(t1), time: t0, findings: "", history: nil},
		{name: "stored: none held at the last moment; the earlier ones, the worst first",
			path: path(gonePlain), time: t1, findings: "",
			history: []hist{{"leak-" + siteRecv.ID(), t0, t0, 1, false}, {"stuck-" + siteMutex.ID(), t0, t0, 1, false}},
			from:    t0, to: t0, entries: 1},
		{name: "stored: holding at the last moment, since t0",
			path: path(goneAsleep), time: t1, entry: true, findings: "all-asleep-0123456789ab",
			history: []hist{{"all-asleep-0123456789ab", t0, t1, 2, true}}, from: t0, to: t1, entries: 2,
			checkSummary: "all 8 goroutines asleep"},
		{name: "stored, history from t1",
			path: path(goneAsleep) + "?from=" + at(t1), time: t1, entry: true, findings: "all-asleep-0123456789ab",
			history: []hist{{"all-asleep-0123456789ab", t1, t1, 1, true}}, from: t1, to: t1, entries: 1},
		{name: "stored, up to t1: the findings of t0",
			path: path(goneAsleep) + "?to=" + at(t1), time: t0, entry: true, findings: "all-asleep-0123456789ab",
			history: []hist{{"all-asleep-0123456789ab", t0, t0, 1, true}}, from: t0, to: t0, entries: 1,
			checkSummary: "all 6 goroutines asleep"},
		{name: "stored before findings", path: path(goneOld), time: t0, findings: ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := getJSON[FindingsAnswer](t, srv, tt.path)
			if a.Live != tt.live || !a.Time.Equal(tt.time) || (a.Entry != nil) != tt.entry || ids(a.Findings) != tt.findings {
				t.Errorf("live %v time %v entry %v findings %q; want %v %v %v %q", a.Live, a.Time, a.Entry != nil, ids(a.Findings),
					tt.live, tt.time, tt.entry, tt.findings)
			}
			if got := histOf(a); !slices.Equal(got, tt.history) {
				t.Errorf("history\n got %+v\nwant %+v", got, tt.history)
			}
			if !a.HistoryFrom.Equal(tt.from) || !a.HistoryTo.Equal(tt.to) || a.Entries != tt.entries || a.Truncated || a.Skipped != 0 || a.Omitted != 0 {
				t.Errorf("history of %v to %v, %d entries (truncated %v, skipped %d, omitted %d); want %v to %v, %d",
					a.HistoryFrom, a.HistoryTo, a.Entries, a.Truncated, a.Skipped, a.Omitted, tt.from, tt.to, tt.entries)
			}
			if a.Findings == nil || a.History == nil {
				t.Error("findings or history null, want arrays")
			}
			if tt.checkSummary != "" && (len(a.History) == 0 || a.History[0].Summary != tt.checkSummary) {
				t.Errorf("newest summary %+v, want %q", a.History, tt.checkSummary)
			}
		})
	}
	t.Run("evidence", func(t *testing.T) {
		a := getJSON[FindingsAnswer](t, srv, path(goneAsleep))
		f := a.Findings[0]
		if f.Kind != findings.KindAllAsleep || f.Site != siteRecv || f.SiteID != siteRecv.ID() || f.Goroutines != 5 || len(f.Example) != len(stackRecv) ||
			f.Labels["handler"][0] != "api" || a.History[0].SiteID != siteRecv.ID() || a.History[0].Site != siteRecv {
			t.Errorf("finding %+v, history %+v", f, a.History[0])
		}
	})
	t.Run("errors", func(t *testing.T) {
		get(t, srv, "/api/processes/1/2/findings", http.StatusNotFound)
		get(t, srv, path(testProc)+"?from=yesterday", http.StatusBadRequest)
		get(t, srv, "/api/processes/0/2/findings", http.StatusBadRequest)
	})
}

// TestFindingsBounds: the history reads at most the newest entries the
// server allows and its read budget, skips an entry over the per-entry
// limit, and refuses (413) current findings over it.
func TestFindingsBounds(t *testing.T) {
	st := openStore(t)
	proc := goneAsleep
	finding := func(id string) findings.Finding {
		return findings.Finding{ID: id, Kind: findings.KindStuck, Summary: "s " + id, SiteID: "0123456789ab", Time: t0}
	}
	// Six moments a second apart: findings a (all), b (the newest three);
	// the third is larger than one entry may be.
	for i := range 6 {
		at := t0.Add(time.Duration(i) * time.Second)
		fs := []findings.Finding{finding("stuck-a")}
		if i >= 3 {
			fs = append(fs, finding("stuck-b"))
		}
		if i == 2 {
			fs[0].Summary = strings.Repeat("x", maxFindingsBytes)
		}
		appendFindings(t, st, proc, at, nil, storedFindings{PID: proc.PID, Time: at.Format(time.RFC3339Nano), Findings: fs})
	}
	s := newServer(testSource{Store: st}, Options{})
	srv := httptest.NewServer(s.handler())
	t.Cleanup(srv.Close)
	path := fmt.Sprintf("/api/processes/%d/%d/findings", proc.PID, proc.StartTime)

	a := getJSON[FindingsAnswer](t, srv, path)
	if a.Entries != 5 || a.Skipped != 1 || a.Truncated || len(a.History) != 2 || a.History[0].ID != "stuck-a" || a.History[0].Moments != 5 ||
		!a.History[0].First.Equal(t0) || a.History[1].ID != "stuck-b" || !a.History[1].First.Equal(t0.Add(3*time.Second)) {
		t.Errorf("all entries: %d read, %d skipped, truncated %v, history %+v", a.Entries, a.Skipped, a.Truncated, a.History)
	}

	s.findingsEntries = 2
	a = getJSON[FindingsAnswer](t, srv, path)
	if a.Entries != 2 || !a.Truncated || !a.HistoryFrom.Equal(t0.Add(4*time.Second)) || a.History[0].Moments != 2 {
		t.Errorf("2 entries: %d read, truncated %v, from %v, history %+v", a.Entries, a.Truncated, a.HistoryFrom, a.History)
	}

	s.findingsEntries = maxFindingsEntries
	s.findingsReadBytes = 1 // the current entry takes it all
	a = getJSON[FindingsAnswer](t, srv, path)
	if a.Entries != 1 || !a.Truncated || len(a.Findings) != 2 {
		t.Errorf("read budget: %d read, truncated %v, %d findings", a.Entries, a.Truncated, len(a.Findings))
	}

	body := get(t, srv, path+"?to="+url.QueryEscape(t0.Add(3*time.Second).Format(time.RFC3339)), http.StatusRequestEntityTooLarge)
	if !strings.Contains(string(body), "4 MiB") {
		t.Errorf("413 answer %s, want it to name the limit", body)
	}
}

func TestDecodeFindingBriefs(t *testing.T) {
	for _, tt := range []struct {
		in, want string
		err      bool
	}{
		{`{"pid":1,"time":"x","findings":[{"id":"a","kind":"leak","example":[{"function":"f"}]},{"id":"b","objects":[{"kind":"chan"}]}],"more":{"x":[1]}}`, "a,b", false},
		{`{"findings":null}`, "", false},
		{`{"findings":[]}`, "", false},
		{`{}`, "", false},
		{`[]`, "", true},
		{`{"findings":{}}`, "", true},
		{`{"findings":[{"id":"a"}`, "a", true},
	} {
		var got []string
		err := decodeFindingBriefs(strings.NewReader(tt.in), func(b *findingBrief) { got = append(got, b.ID) })
		if (err != nil) != tt.err || strings.Join(got, ",") != tt.want {
			t.Errorf("%s: %q, %v; want %q, error %v", tt.in, got, err, tt.want, tt.err)
		}
	}
}

// siteSnapshot holds a group (site main.worker, created by main.start,
// chan receive: 3 waiting goroutines and 1 the runtime found leaked) among
// goroutines the words of a search cannot tell from it: the same stack
// created elsewhere, another wait reason, main.worker deeper in the stack,
// a system goroutine.
func siteSnapshot() (s *snapshot.Snapshot, site findings.Site, group []uint64) {
	start := snapshot.Frame{Function: "main.start", File: "/app/w.go", Line: 30}
	other := snapshot.Frame{Function: "main.other", File: "/app/o.go", Line: 3}
	deeper := append([]snapshot.Frame{stackRecv[0], stackRecv[1], {Function: "main.helper", File: "/app/w.go", Line: 50, PC: 0x900}}, stackRecv[2:]...)
	g := func(id uint64, state snapshot.State, reason string, by snapshot.Frame, stack []snapshot.Frame) snapshot.Goroutine {
		return snapshot.Goroutine{ID: id, State: state, WaitReason: reason, WaitingSeconds: 30, CreatedBy: &by, Frames: stack}
	}
	w := snapshot.StateWaiting
	gs := []snapshot.Goroutine{
		g(1, w, "chan receive", start, stackRecv),
		g(2, w, "chan receive", other, stackRecv),
		g(3, w, "chan receive", start, stackRecv),
		g(4, w, "chan receive (nil chan)", start, stackRecv),
		g(5, w, "chan receive", other, stackRecv),
		g(6, w, "chan receive", start, deeper),
		g(7, w, "chan receive", start, stackRecv),
		g(8, snapshot.StateLeaked, "chan receive", start, stackRecv),
		g(9, w, "chan receive", start, stackRecv),
		{ID: 10, State: snapshot.StateRunning},
	}
	gs[6].System = true
	s = makeSnapshot(t0, gs)
	site = findings.Site{CreatedBy: "main.start /app/w.go:30", Frame: "main.worker /app/w.go:10", State: w, WaitReason: "chan receive"}
	return s, site, []uint64{1, 3, 8, 9}
}

func pageIDs(p Page) []uint64 {
	var ids []uint64
	for _, g := range p.Goroutines {
		ids = append(ids, g.ID)
	}
	return ids
}

// TestSiteFilter: site= selects exactly the goroutines pkg/findings groups
// at that site, in memory and streamed from the store (whose decoder
// reuses one creator frame for every goroutine); the existing search
// cannot; profiles refuse it.
func TestSiteFilter(t *testing.T) {
	s, site, want := siteSnapshot()
	var grp *findings.Group
	for _, g := range findings.Groups(s) {
		if g.Site == site {
			grp = g
		}
	}
	if grp == nil || grp.Goroutines != len(want) {
		t.Fatalf("pkg/findings groups %d goroutines at %+v, want %d", grp.Goroutines, site, len(want))
	}
	if p := SearchGoroutines(s, Filter{State: "waiting", WaitReason: "chan receive"}, "main.worker main.start", 0, 100); slices.Equal(pageIDs(p), want) {
		t.Errorf("words and filters select the group (%v): the site filter is not needed", pageIDs(p))
	}
	for _, f := range []Filter{{Site: site.ID()}, {Site: site.ID(), WaitReason: "chan receive"}} {
		if got := pageIDs(SearchGoroutines(s, f, "", 0, 100)); !slices.Equal(got, want) {
			t.Errorf("%+v: goroutines %v, want %v", f, got, want)
		}
	}
	if got := pageIDs(SearchGoroutines(s, Filter{Site: site.ID(), State: "waiting"}, "", 0, 100)); !slices.Equal(got, []uint64{1, 3, 9}) {
		t.Errorf("site and state=waiting: %v, want the group but the leaked one", got)
	}
	for i := range s.Goroutines {
		g := &s.Goroutines[i]
		if got := (Filter{Site: site.ID()}).MatchGoroutine(g); got != slices.Contains(want, g.ID) {
			t.Errorf("MatchGoroutine(goroutine %d) = %v", g.ID, got)
		}
	}

	st := openStore(t)
	appendSnapshot(t, st, testProc, s)
	srv := httptest.NewServer(New(testSource{Store: st}, nil))
	t.Cleanup(srv.Close)
	g := getJSON[GoroutinesAnswer](t, srv, procPath+"/goroutines?site="+site.ID())
	if got := pageIDs(g.Page); !slices.Equal(got, want) || g.Matched != len(want) || g.Total != len(s.Goroutines) {
		t.Errorf("stored: goroutines %v (%d of %d), want %v", got, g.Matched, g.Total, want)
	}
	var dl snapshot.Snapshot
	if err := json.Unmarshal(get(t, srv, procPath+"/download?kind=snapshot&format=json&site="+site.ID(), 200), &dl); err != nil {
		t.Fatal(err)
	}
	if got := pageIDs(Page{Goroutines: dl.Goroutines}); !slices.Equal(got, want) {
		t.Errorf("snapshot download: goroutines %v, want %v", got, want)
	}
	for _, path := range []string{
		"/goroutines?site=main.worker", "/goroutines?site=ABCDEF012345", "/flame?site=" + site.ID(),
		"/diff?from=" + url.QueryEscape(t0.Format(time.RFC3339)) + "&site=" + site.ID(), "/download?kind=goroutines&site=" + site.ID(),
	} {
		body := get(t, srv, procPath+path, http.StatusBadRequest)
		if !strings.Contains(string(body), "site=") {
			t.Errorf("%s: %s, want it to explain site=", path, body)
		}
	}
}
