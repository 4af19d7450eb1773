package ui

import (
	"context"
	"net"
	"net/http"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/goroscope/goroscope/pkg/fold"
	"github.com/goroscope/goroscope/pkg/snapshot"
	"github.com/goroscope/goroscope/pkg/store"
)

// hostileService is a service name a target controls, made to be parsed
// as HTML if the list ever did.
const hostileService = `<img src=x onerror="window.__xss=3">`

// listResult is what testdata/list.spec.mjs measured in the page. Rows
// are "group:service:count", "proc:pid", "member:pid" or "empty".
type listResult struct {
	Default         []string `json:"default"`
	DefaultPressed  string   `json:"default_pressed"`
	FindingsHeader  string   `json:"findings_header"`
	FirstProc       int      `json:"first_proc"`
	GroupFindings   int      `json:"group_findings"`
	GroupBadges     []string `json:"group_badges"`
	GroupText       string   `json:"group_text"`
	CountText       string   `json:"count_text"`
	Expanded        []string `json:"expanded"`
	Live            []string `json:"live"`
	Stored          []string `json:"stored"`
	All             []string `json:"all"`
	AllShown        int      `json:"all_shown"`
	ByGoroutines    []string `json:"by_goroutines"`
	ByGoroutinesAsc []string `json:"by_goroutines_asc"`
	ByLast          []string `json:"by_last"`
	ByService       []string `json:"by_service"`
	ByFindingsAsc   []string `json:"by_findings_asc"`
	ByFindings      []string `json:"by_findings"`
	SearchService   []string `json:"search_service"`
	SearchPID       []string `json:"search_pid"`
	SearchExe       []string `json:"search_exe"`
	SearchNone      []string `json:"search_none"`
	SearchCleared   []string `json:"search_cleared"`
	Hostile         string   `json:"hostile"`
	Opened          string   `json:"opened"`
	BackSearch      string   `json:"back_search"`
	Back            []string `json:"back"`
}

// TestProcessListInBrowser serves two live processes (one of a hostile
// name) and six stored ones (two of billing with findings, three of
// compile, one of api) and drives the process list in chromium
// (testdata/list.spec.mjs): the default filter shows the live processes
// and the stored ones with findings, findings first, billing's two in one
// service row that expands to them; the live, stored and all filters;
// sorting by each sortable header, both ways; the search by service, pid
// and executable; the hostile name as text; and a process row opening its
// page, the list as it was on coming back.
func TestProcessListInBrowser(t *testing.T) {
	if testing.Short() {
		t.Skip("starts Chromium")
	}
	chromium, node, dir := browserPrereqs(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	st := openStore(t)
	// stored appends a snapshot of n goroutines of pid, at t0+sec, with
	// findings by kind in its summary.
	stored := func(service string, pid int, exe string, sec, n int, kinds map[string]int) {
		proc := store.Process{PID: pid, StartTime: uint64(pid) * 10, ServiceName: service, Exe: exe, GoVersion: "go1.26.8"}
		s := makeSnapshot(t0.Add(time.Duration(sec)*time.Second), goroutines(1, n, "chan receive", 1, nil, stackRecv))
		s.PID, s.Exe = pid, exe
		sum := fold.Summary(s)
		all := 0
		for k, c := range kinds {
			sum[summaryFindingKind+k] = float64(c)
			all += c
		}
		if all > 0 {
			sum[summaryFindings] = float64(all)
		}
		appendSnapshotSummary(t, st, proc, s, sum)
	}
	const compile = "/usr/lib/go/pkg/tool/linux_amd64/compile"
	stored("billing", 6001, "/usr/lib/billing/billing", 10, 10, map[string]int{"leak": 2})
	stored("billing", 6002, "/usr/lib/billing/billing", 20, 20, map[string]int{"stuck": 1})
	stored("compile", 7001, compile, 1, 2, nil)
	stored("compile", 7002, compile, 2, 3, nil)
	stored("compile", 7003, compile, 3, 4, nil)
	stored("api", 8001, "/usr/bin/api", 25, 6, nil)
	snap := snapA()
	appendSnapshot(t, st, testProc, snap)
	live := []Process{
		{Process: testProc, Live: true, Counts: snap.Counts, LastSnapshot: snap.Time, Walker: "procmem"},
		{Process: store.Process{PID: 5001, StartTime: 50010, ServiceName: hostileService, Exe: "/usr/bin/hostile"}, Live: true,
			Counts: snapshot.Counts{Waiting: 50}, LastSnapshot: t1, Walker: "procmem"},
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: New(testSource{Store: st, live: live}, nil), ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	defer srv.Close()

	spec, err := filepath.Abs(filepath.Join("testdata", "list.spec.mjs"))
	if err != nil {
		t.Fatal(err)
	}
	got := runSpec[listResult](t, ctx, node, chromium, dir, spec, "http://"+ln.Addr().String()+"/", filepath.Join(dir, "artifacts", "list"), dir)

	billing, compileRow := "group:billing:2", "group:compile:3"
	byFindings := []string{billing, "proc:5001", "proc:4242", "proc:8001", compileRow}
	for _, c := range []struct {
		name      string
		got, want []string
	}{
		{"default", got.Default, []string{billing, "proc:5001", "proc:4242"}},
		{"billing expanded", got.Expanded, []string{billing, "member:6001", "member:6002", "proc:5001", "proc:4242"}},
		{"live", got.Live, []string{"proc:5001", "proc:4242"}},
		{"stored", got.Stored, []string{billing, "proc:8001", compileRow}},
		{"all", got.All, byFindings},
		{"by goroutines", got.ByGoroutines, []string{"proc:5001", billing, "proc:4242", "proc:8001", compileRow}},
		{"by goroutines, ascending", got.ByGoroutinesAsc, []string{compileRow, "proc:8001", "proc:4242", billing, "proc:5001"}},
		{"by last snapshot", got.ByLast, []string{"proc:5001", "proc:8001", billing, compileRow, "proc:4242"}},
		{"by service", got.ByService, []string{"proc:5001", "proc:8001", billing, "proc:4242", compileRow}},
		{"by findings, ascending", got.ByFindingsAsc, []string{compileRow, "proc:8001", "proc:4242", "proc:5001", billing}},
		{"by findings", got.ByFindings, byFindings},
		{"search COMPILE", got.SearchService, []string{compileRow}},
		{"search 6002", got.SearchPID, []string{"proc:6002"}},
		{"search usr/LIB/billing", got.SearchExe, []string{billing}},
		{"search no-such-process", got.SearchNone, []string{"empty"}},
		{"search cleared", got.SearchCleared, byFindings},
		{"back from a process page", got.Back, []string{"proc:4242"}},
	} {
		if !slices.Equal(c.got, c.want) {
			t.Errorf("%s: rows %q, want %q", c.name, c.got, c.want)
		}
	}
	if got.DefaultPressed != "true" || got.FindingsHeader != "findings" || got.FirstProc != 5001 {
		t.Errorf("default: filter pressed %q, first header %q, first process row %d; want true, findings, 5001",
			got.DefaultPressed, got.FindingsHeader, got.FirstProc)
	}
	if got.GroupFindings != 3 || !slices.Equal(got.GroupBadges, []string{"leak ×2", "stuck"}) || got.GroupText != "▸ billing — 2 earlier processes" {
		t.Errorf("billing's service row: %d findings, badges %q, text %q; want 3, [leak ×2 stuck], ▸ billing — 2 earlier processes",
			got.GroupFindings, got.GroupBadges, got.GroupText)
	}
	if want := "4 of 8 processes, 4 hidden by the filter; 2 stored processes in 1 service row"; got.CountText != want {
		t.Errorf("count line %q, want %q", got.CountText, want)
	}
	if got.AllShown != 8 {
		t.Errorf("all: %d processes shown, want 8", got.AllShown)
	}
	if got.Hostile != hostileService {
		t.Errorf("hostile service shows as %q, want %q as text", got.Hostile, hostileService)
	}
	if want := "#/p/4242/777"; got.Opened != want || got.BackSearch != "checkout" {
		t.Errorf("opened %q, back with search %q; want %q, checkout", got.Opened, got.BackSearch, want)
	}
}
