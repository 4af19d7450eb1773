package ui

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/goroscope/goroscope/pkg/crash"
	"github.com/goroscope/goroscope/pkg/fold"
	"github.com/goroscope/goroscope/pkg/snapshot"
	"github.com/goroscope/goroscope/pkg/store"
)

// serviceResult is what testdata/service.spec.mjs measured in the page.
type serviceResult struct {
	Rows       []string `json:"rows"`
	Status     []string `json:"status"`
	Peaks      []string `json:"peaks"`
	Findings   []string `json:"findings"`
	Links      []string `json:"links"`
	Series     int      `json:"series"`
	Starts     int      `json:"starts"`
	Moments    int      `json:"moments"`
	Legend     []string `json:"legend"`
	Count      string   `json:"count"`
	Heading    string   `json:"heading"`
	Range      string   `json:"range"`
	Rows15m    []string `json:"rows_15m"`
	Hash15m    string   `json:"hash_15m"`
	Opened     string   `json:"opened"`
	Back       []string `json:"back"`
	Hostile    string   `json:"hostile"`
	HostileRow []string `json:"hostile_rows"`
	Crumb      string   `json:"crumb"`
	Unknown    string   `json:"unknown"`
	// Crash is billing's crash row: pid, class, message and the link to
	// the goroutines of its last snapshot.
	Crash []string `json:"crash"`
}

// TestServicePageInBrowser stores three processes of billing one after
// the other (restarts: the last one live), one of another service and
// one of a hostile name, and drives the service page in chromium
// (testdata/service.spec.mjs): the table lists billing's three processes,
// the newest first, with their status, peaks and findings, each linking
// to its page; the chart draws a series and a start marker per process;
// the range picker narrows it to the last 15 minutes; a link opens a
// process's page; the hostile name shows as text; an unknown service
// says so. A screenshot of the page lands in test/ui/artifacts/service.
func TestServicePageInBrowser(t *testing.T) {
	if testing.Short() {
		t.Skip("starts Chromium")
	}
	chromium, node, dir := browserPrereqs(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	st := openStore(t)
	now := time.Now().Truncate(time.Second)
	ago := func(min int) time.Time { return now.Add(-time.Duration(min) * time.Minute) }
	proc := func(service string, pid int) store.Process {
		return store.Process{PID: pid, StartTime: uint64(pid) * 7, ServiceName: service, Exe: "/usr/bin/" + strings.Fields(service)[0], GoVersion: "go1.26.8"}
	}
	// put stores a snapshot of n goroutines of p at at, with findings
	// counted in its summary.
	put := func(p store.Process, at time.Time, n, findings int) {
		s := makeSnapshot(at, goroutines(1, n, "chan receive", 1, nil, stackRecv))
		s.PID, s.Exe = p.PID, p.Exe
		sum := fold.Summary(s)
		if findings > 0 {
			sum[summaryFindings] = float64(findings)
			sum[summaryFindingKind+"leak"] = float64(findings)
		}
		appendSnapshotSummary(t, st, p, s, sum)
	}
	b1, b2, b3 := proc("billing", 9101), proc("billing", 9102), proc("billing", 9103)
	for m := 50; m >= 36; m -= 2 { // 10, 12, ..., 24
		put(b1, ago(m), 10+(50-m), 0)
	}
	for m := 34; m >= 14; m -= 2 {
		f := 0
		if m == 14 {
			f = 2
		}
		put(b2, ago(m), 20, f)
	}
	for m := 12; m >= 1; m-- { // 30, 35, ..., 85
		put(b3, ago(m), 30+5*(12-m), 0)
	}
	put(proc("billing-worker", 9201), ago(20), 99, 0)
	hostile := proc(hostileService+" /../?#%", 9301)
	put(hostile, ago(5), 7, 0)
	// b1 crashed (a nil map write) a second after its last snapshot.
	rec := crash.Record{PID: b1.PID, StartTime: b1.StartTime, ServiceName: "billing", Time: ago(36).Add(time.Second), Reason: "exit", Code: 2,
		Message: "panic: assignment to entry in nil map", LastSnapshot: ago(36).UTC(), LastSnapshotAge: 1}
	rec.Class = crash.ClassOf(rec.Reason, rec.Code, "", rec.Message)
	data, err := json.Marshal(rec)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.Append(store.Entry{Process: b1, Kind: store.KindCrash, Time: rec.Time, Data: data}); err != nil {
		t.Fatal(err)
	}
	live := []Process{{Process: b3, Live: true, Counts: snapshot.Counts{Waiting: 90}, LastSnapshot: ago(0).Add(-30 * time.Second), Walker: "procmem"}}

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: New(testSource{Store: st, live: live}, nil), ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	defer srv.Close()

	spec, err := filepath.Abs(filepath.Join("testdata", "service.spec.mjs"))
	if err != nil {
		t.Fatal(err)
	}
	got := runSpec[serviceResult](t, ctx, node, chromium, dir, spec, "http://"+ln.Addr().String()+"/", filepath.Join(dir, "artifacts", "service"), dir, hostile.ServiceName)

	link := func(p store.Process) string { return fmt.Sprintf("#/p/%d/%d", p.PID, p.StartTime) }
	for _, c := range []struct {
		name      string
		got, want []string
	}{
		{"rows, the newest first", got.Rows, []string{"9103", "9102", "9101"}},
		{"status", got.Status, []string{"live", "gone", "gone"}},
		{"peaks", got.Peaks, []string{"90", "20", "24"}},
		{"findings", got.Findings, []string{"", "2", ""}},
		{"links", got.Links, []string{link(b3), link(b2), link(b1)}},
		{"rows in the last 15 minutes", got.Rows15m, []string{"9103", "9102"}},
		{"rows back from a process page", got.Back, []string{"9103", "9102", "9101"}},
		{"hostile service's rows", got.HostileRow, []string{"9301"}},
	} {
		if !slices.Equal(c.got, c.want) {
			t.Errorf("%s: %q, want %q", c.name, c.got, c.want)
		}
	}
	if got.Series != 3 || got.Starts != 3 || got.Moments != 8+11+12 {
		t.Errorf("chart: %d series, %d start markers, %d moments; want 3, 3, %d", got.Series, got.Starts, got.Moments, 8+11+12)
	}
	if len(got.Legend) != 3 || !strings.HasPrefix(got.Legend[0], "pid 9103 · ") || !strings.HasPrefix(got.Legend[2], "pid 9101 · ") {
		t.Errorf("legend %q, want a series per process labelled by pid and first seen, the newest first", got.Legend)
	}
	if got.Heading != "Service billing" || !strings.HasPrefix(got.Count, "3 processes in the range (1 live)") || got.Range != "1h" {
		t.Errorf("heading %q, count %q, range %q", got.Heading, got.Count, got.Range)
	}
	if got.Hash15m != "#/s/billing?range=15m" {
		t.Errorf("15 minutes: hash %q", got.Hash15m)
	}
	if !strings.HasPrefix(got.Opened, link(b1)) {
		t.Errorf("the pid 9101 link opened %q, want %s", got.Opened, link(b1))
	}
	wantCrash := []string{"9101", crash.ClassNilMapWrite, "panic: assignment to entry in nil map",
		"#/p/9101/63707?tab=goroutines&at=" + url.QueryEscape(ago(36).UTC().Format(time.RFC3339)) + "&from=" + url.QueryEscape(ago(36).UTC().Format(time.RFC3339)) + "&to=" + url.QueryEscape(ago(36).UTC().Format(time.RFC3339))}
	if !slices.Equal(got.Crash, wantCrash) {
		t.Errorf("billing's crashes show %q, want %q", got.Crash, wantCrash)
	}
	if got.Hostile != hostile.ServiceName || got.Crumb != hostile.ServiceName {
		t.Errorf("hostile service shows as %q (crumb %q), want %q as text", got.Hostile, got.Crumb, hostile.ServiceName)
	}
	if want := `no process of service "nosuch"`; !strings.Contains(got.Unknown, want) {
		t.Errorf("unknown service: %q, want it to say %s", got.Unknown, want)
	}
}
