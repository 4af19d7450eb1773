package ui

import (
	"context"
	"net"
	"net/http"
	"path/filepath"
	"slices"
	"strings"
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
	ShortButton     string   `json:"short_button"`
	ShortShown      []string `json:"short_shown"`
	ShortHideButton string   `json:"short_hide_button"`
	ShortHidden     []string `json:"short_hidden"`
	LiveShort       []string `json:"live_short"`
	ExitedStatus    string   `json:"exited_status"`
	Errors          int      `json:"errors"`
	ByGrowth        []string `json:"by_growth"`
	ByGrowthAsc     []string `json:"by_growth_asc"`
	GrowthText      string   `json:"growth_text"`
	GrowthClass     string   `json:"growth_class"`
	ServiceLink     string   `json:"service_link"`
	ServiceRows     int      `json:"service_rows"`
	HistoryLink     string   `json:"history_link"`
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

// TestProcessListInBrowser serves six live processes (one of a hostile
// name, one growing, two short-lived tools, one that just exited) and six
// stored ones (two of billing with findings, three of compile, one of
// api) and drives the process list in chromium (testdata/list.spec.mjs):
// the default filter shows the live processes but the short-lived ones
// and the stored ones with findings, findings first, then the growing
// one, billing's two in one service row that expands to them; the toggle
// showing and hiding the short-lived ones; the live, stored and all
// filters; the exited process as exited, not as a live one in error;
// sorting by each sortable header (growth among them), both ways; the
// search by service, pid and executable; the hostile name as text; a
// service row's link to the service's page; and a process row opening its
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
	// The live ones' history: checkout grew by 4 in the last 10 minutes
	// (not growing); ledger by 200 (growing); go was first seen 20 s
	// ago (short-lived); worker exited 5 minutes before t1.
	storedAt := func(service string, pid int, exe string, at time.Time, n int) {
		stored(service, pid, exe, int(at.Sub(t0)/time.Second), n, nil)
	}
	appendSnapshot(t, st, testProc, makeSnapshot(t0.Add(-10*time.Minute), goroutines(1, 2, "chan receive", 1, nil, stackRecv)))
	storedAt("ledger", 5101, "/usr/bin/ledger", t1.Add(-14*time.Minute), 100)
	storedAt("ledger", 5101, "/usr/bin/ledger", t1.Add(-5*time.Minute), 150)
	storedAt("go", 5201, "/usr/lib/go/bin/go", t1.Add(-20*time.Second), 8)
	storedAt("worker", 5301, "/usr/bin/worker", t1.Add(-5*time.Minute), 12)
	stored("billing", 6001, "/usr/lib/billing/billing", 10, 10, map[string]int{"leak": 2})
	stored("billing", 6002, "/usr/lib/billing/billing", 20, 20, map[string]int{"stuck": 1})
	stored("compile", 7001, compile, 1, 2, nil)
	stored("compile", 7002, compile, 2, 3, nil)
	stored("compile", 7003, compile, 3, 4, nil)
	stored("api", 8001, "/usr/bin/api", 25, 6, nil)
	snap := snapA()
	appendSnapshot(t, st, testProc, snap)
	liveProc := func(service string, pid int, exe string) store.Process {
		return store.Process{PID: pid, StartTime: uint64(pid) * 10, ServiceName: service, Exe: exe, GoVersion: "go1.26.8"}
	}
	live := []Process{
		{Process: testProc, Live: true, Counts: snap.Counts, LastSnapshot: snap.Time, Walker: "procmem"},
		{Process: store.Process{PID: 5001, StartTime: 50010, ServiceName: hostileService, Exe: "/usr/bin/hostile"}, Live: true,
			Counts: snapshot.Counts{Waiting: 50}, LastSnapshot: t1, Walker: "procmem"},
		{Process: liveProc("ledger", 5101, "/usr/bin/ledger"), Live: true, Counts: snapshot.Counts{Waiting: 300}, LastSnapshot: t1, Walker: "procmem"},
		{Process: liveProc("go", 5201, "/usr/lib/go/bin/go"), Live: true, Counts: snapshot.Counts{Waiting: 8}, LastSnapshot: t1, Walker: "procmem"},
		{Process: liveProc("compile", 5202, compile), Live: true, Counts: snapshot.Counts{Running: 4}, LastSnapshot: t1, Walker: "procmem"},
		{Process: liveProc("worker", 5301, "/usr/bin/worker"), Live: true, Counts: snapshot.Counts{Waiting: 12}, LastSnapshot: t1.Add(-5 * time.Minute),
			Walker: "procmem", Error: "walk: read /proc/5301/mem: process gone"},
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
	byFindings := []string{billing, "proc:5101", "proc:5001", "proc:4242", "proc:5202", "proc:5201", "proc:8001", compileRow, "proc:5301"}
	def := []string{billing, "proc:5101", "proc:5001", "proc:4242"}
	for _, c := range []struct {
		name      string
		got, want []string
	}{
		{"default", got.Default, def},
		{"short-lived shown", got.ShortShown, []string{billing, "proc:5101", "proc:5001", "proc:4242", "proc:5202", "proc:5201"}},
		{"short-lived hidden again", got.ShortHidden, def},
		{"billing expanded", got.Expanded, []string{billing, "member:6001", "member:6002", "proc:5101", "proc:5001", "proc:4242"}},
		{"live", got.Live, []string{"proc:5101", "proc:5001", "proc:4242"}},
		{"live, short-lived shown", got.LiveShort, []string{"proc:5101", "proc:5001", "proc:4242", "proc:5202", "proc:5201"}},
		{"stored", got.Stored, []string{billing, "proc:8001", compileRow, "proc:5301"}},
		{"all", got.All, byFindings},
		{"by goroutines", got.ByGoroutines, []string{"proc:5101", "proc:5001", billing, "proc:5301", "proc:5201", "proc:4242", "proc:8001", "proc:5202", compileRow}},
		{"by goroutines, ascending", got.ByGoroutinesAsc, []string{compileRow, "proc:5202", "proc:8001", "proc:4242", "proc:5201", "proc:5301", billing, "proc:5001", "proc:5101"}},
		{"by growth", got.ByGrowth, []string{"proc:5101", "proc:4242", "proc:5201", billing, "proc:5001", "proc:5202", "proc:8001", compileRow, "proc:5301"}},
		{"by growth, ascending", got.ByGrowthAsc, []string{"proc:5301", compileRow, "proc:8001", "proc:5202", "proc:5001", billing, "proc:5201", "proc:4242", "proc:5101"}},
		{"by last snapshot", got.ByLast, []string{"proc:5101", "proc:5001", "proc:5202", "proc:5201", "proc:8001", billing, compileRow, "proc:4242", "proc:5301"}},
		{"by service", got.ByService, []string{"proc:5001", "proc:8001", billing, "proc:4242", compileRow, "proc:5202", "proc:5201", "proc:5101", "proc:5301"}},
		{"by findings, ascending", got.ByFindingsAsc, []string{"proc:5301", compileRow, "proc:8001", "proc:5201", "proc:5202", "proc:4242", "proc:5001", "proc:5101", billing}},
		{"by findings", got.ByFindings, byFindings},
		{"search COMPILE", got.SearchService, []string{"proc:5202", compileRow}},
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
	if got.DefaultPressed != "true" || got.FindingsHeader != "findings" || got.FirstProc != 5101 {
		t.Errorf("default: filter pressed %q, first header %q, first process row %d; want true, findings, 5101 (growing)",
			got.DefaultPressed, got.FindingsHeader, got.FirstProc)
	}
	if got.GroupFindings != 3 || !slices.Equal(got.GroupBadges, []string{"leak ×2", "stuck"}) || got.GroupText != "▸ billing — 2 earlier processes" {
		t.Errorf("billing's service row: %d findings, badges %q, text %q; want 3, [leak ×2 stuck], ▸ billing — 2 earlier processes",
			got.GroupFindings, got.GroupBadges, got.GroupText)
	}
	if want := "5 of 12 processes, 5 hidden by the filter; 2 stored processes in 1 service row; 2 short-lived hidden — show"; got.CountText != want {
		t.Errorf("count line %q, want %q", got.CountText, want)
	}
	if got.ShortButton != "2 short-lived hidden — show" || got.ShortHideButton != "hide 2 short-lived processes" {
		t.Errorf("short-lived toggle %q, then %q", got.ShortButton, got.ShortHideButton)
	}
	if got.ExitedStatus != "exited" || got.Errors != 0 {
		t.Errorf("exited worker shows %q, %d errors in red in the list; want exited, none", got.ExitedStatus, got.Errors)
	}
	if got.GrowthText != "+200" || got.GrowthClass != "num growth growing" {
		t.Errorf("ledger's growth %q (class %q), want +200, growing", got.GrowthText, got.GrowthClass)
	}
	if got.ServiceLink != "#/s/billing" || got.ServiceRows != 2 || got.HistoryLink != "#/s/ledger" {
		t.Errorf("billing's service link %q to a page of %d processes, ledger's history link %q; want #/s/billing, 2, #/s/ledger",
			got.ServiceLink, got.ServiceRows, got.HistoryLink)
	}
	if got.AllShown != 12 {
		t.Errorf("all: %d processes shown, want 12", got.AllShown)
	}
	if got.Hostile != hostileService {
		t.Errorf("hostile service shows as %q, want %q as text", got.Hostile, hostileService)
	}
	// The process page may add its view's parameters (#/p/PID/START?...).
	if want := "#/p/4242/777"; (got.Opened != want && !strings.HasPrefix(got.Opened, want+"?")) || got.BackSearch != "checkout" {
		t.Errorf("opened %q, back with search %q; want %q, checkout", got.Opened, got.BackSearch, want)
	}
}
