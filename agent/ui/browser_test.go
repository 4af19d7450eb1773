package ui

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/goroscope/goroscope/collect/process"
	"github.com/goroscope/goroscope/collect/walk"
	"github.com/goroscope/goroscope/pkg/findings"
	"github.com/goroscope/goroscope/pkg/snapshot"
	"github.com/goroscope/goroscope/pkg/store"
	"github.com/goroscope/goroscope/test/targettest"
)

// browserPrereqs returns the chromium and node to run the browser test
// with and the test/ui directory, skipping (failing in CI) when missing.
func browserPrereqs(t *testing.T) (chromium, node, dir string) {
	t.Helper()
	missing := func(what string) {
		msg := what + "; install with: apt-get install -y chromium && (cd test/ui && npm ci)"
		if os.Getenv("CI") == "true" {
			t.Fatal("browser test must run in CI: " + msg)
		}
		t.Skip(msg)
	}
	chromium = os.Getenv("CHROMIUM")
	if chromium == "" {
		chromium = "/usr/bin/chromium"
	}
	if _, err := os.Stat(chromium); err != nil {
		missing("no chromium at " + chromium)
	}
	node, err := exec.LookPath("node")
	if err != nil {
		missing("no node on PATH")
	}
	dir, err = filepath.Abs(filepath.Join("..", "..", "test", "ui"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "node_modules", "playwright-core", "package.json")); err != nil {
		missing("no playwright-core in " + filepath.Join(dir, "node_modules"))
	}
	return chromium, node, dir
}

// specResult is what test/ui/ui.spec.mjs measured in the page.
type specResult struct {
	Processes int `json:"processes"`
	ListPID   int `json:"list_pid"`
	// Unfiltered and ChanReceive are the flame graph's totals over the
	// default range (the last hour: every snapshot, averaged), MergedN the
	// snapshots it says it merged.
	Unfiltered  float64 `json:"unfiltered"`
	ChanReceive float64 `json:"chan_receive"`
	MergedN     int     `json:"merged"`
	RectsAll    int     `json:"rects_all"`
	RectsChan   int     `json:"rects_chan"`
	Moments     int     `json:"moments"`
	// The diff of the first snapshot (baseline) and the last (comparison),
	// filtered by chan receive: its totals and main.parkChanRecv's change.
	DiffBase      float64 `json:"diff_base"`
	DiffTotal     float64 `json:"diff_total"`
	DiffRecvDelta float64 `json:"diff_recv_delta"`
	DiffRecvText  string  `json:"diff_recv_text"`
	// DiffDefaultBase is how the server chose the diff's default baseline.
	DiffDefaultBase string `json:"diff_default_base"`
	SearchMatched   int    `json:"search_matched"`
	SearchBefore    int    `json:"search_before"`
	Downloads       int    `json:"downloads"`
	Walker          string `json:"walker"`
	// APIKinds are GET /api/kinds' kinds; DownloadKinds the rows of the
	// downloads table and KindOptions the flame graph's profile selector.
	APIKinds      []string `json:"api_kinds"`
	DownloadKinds []string `json:"download_kinds"`
	KindOptions   []string `json:"kind_options"`
	// LeakFrame and LeakLabel are the goroutineleak flame graph's hostile
	// frame and label value, as shown (as text).
	LeakFrame string `json:"leak_frame"`
	LeakLabel string `json:"leak_label"`
}

// TestUIInBrowser fills a real store with snapshots of a growing population
// target, serves the UI and drives it in chromium (test/ui/ui.spec.mjs):
// the flame graph renders the last hour (every snapshot, averaged),
// filtering by "chan receive" changes it to that many goroutines, the diff
// of the first and the last snapshot shows the grown goroutines and the
// goroutine search finds them; the downloads and the profile selector
// offer every kind the API lists, and goroutineleak's hostile frame name
// shows as text.
// Then (testdata/findings.spec.mjs) the growing group's leak finding: its
// badge on the process list, the findings panel on the process page
// (hostile text as text), and its links: the goroutine table with exactly
// the group's goroutines, the flame graph filtered and focused on it.
// Screenshots land in test/ui/artifacts/.
func TestUIInBrowser(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a target and Chromium")
	}
	chromium, node, dir := browserPrereqs(t)
	const grow = 25
	bin := targettest.Build(t, "population", targettest.BuildOpts{})
	tgt := targettest.Start(t, bin, "-n", "4", "-grow", "25")
	wt, err := process.Attach(tgt.PID)
	if err != nil {
		t.Fatalf("attach to the population target: %v", err)
	}
	defer wt.Close()
	snapper := walk.NewSnapshotter(wt, walk.ProcMemWalker{})
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()

	st := openStore(t)
	proc := store.Process{PID: tgt.PID, StartTime: wt.StartTime, ServiceName: "population", Exe: wt.Exe, GoVersion: tgt.GoVersion}
	var snaps []*snapshot.Snapshot
	const moments = 4
	for i := range moments {
		if i > 0 {
			time.Sleep(1100 * time.Millisecond) // the workload: moments a second apart, the target grows every second
		}
		s, err := snapper.Snapshot(ctx)
		if err != nil {
			t.Fatalf("snapshot %d: %v", i, err)
		}
		snaps = append(snaps, s)
	}
	first, last := snaps[0], snaps[len(snaps)-1]
	// The growing group's leak, from the second moment on, stored as the
	// agent stores findings and held by the live process.
	leakSite, leakIDs := growingSite(t, last)
	var liveFindings []findings.Finding
	for i, s := range snaps {
		var fs []findings.Finding
		if i > 0 {
			fs = []findings.Finding{leakFinding(t, first, s, leakSite)}
			liveFindings = fs
		}
		appendJudged(t, st, proc, s, fs)
	}
	// Every other profile kind (goroutineleak among them) at the newest
	// moment, so the page offers them all.
	appendOtherKinds(t, st, proc, last.Time)
	if grown := len(last.Goroutines) - len(first.Goroutines); grown < grow*(moments-2) {
		t.Fatalf("population grew by %d goroutines over %d snapshots, want at least %d", grown, moments, grow*(moments-2))
	}
	liveProc := Process{Process: proc, Live: true, Counts: last.Counts, LastSnapshot: last.Time, Walker: last.Walker, WalkerReason: "loading",
		Findings: liveFindings}

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: New(testSource{Store: st, live: []Process{liveProc}}, nil), ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	defer srv.Close()

	// Its screenshots are the artifact directory's own files; the other
	// browser tests' are in its subdirectories, kept.
	artifacts := filepath.Join(dir, "artifacts")
	old, err := filepath.Glob(filepath.Join(artifacts, "*.png"))
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range old {
		if err := os.Remove(f); err != nil {
			t.Fatal(err)
		}
	}
	cmd := exec.CommandContext(ctx, node, filepath.Join(dir, "ui.spec.mjs"), "http://"+ln.Addr().String()+"/", artifacts)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "CHROMIUM="+chromium)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	start := time.Now()
	err = cmd.Run()
	t.Logf("ui.spec.mjs ran %v; stdout:\n%s\nstderr:\n%s", time.Since(start).Round(time.Millisecond), stdout.String(), stderr.String())
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			t.Fatalf("browser test failed (exit %d); screenshots so far in %s", ee.ExitCode(), artifacts)
		}
		t.Fatalf("run node: %v", err)
	}
	lines := strings.Split(strings.TrimSpace(stdout.String()), "\n")
	var got specResult
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &got); err != nil {
		t.Fatalf("parse the spec's result line: %v", err)
	}

	// What the page showed must be what the store holds.
	// count counts s's goroutines waiting on chan receive, and those of
	// them in main.parkChanRecv (as the search and the diff find them).
	count := func(s *snapshot.Snapshot) (chanRecv, inPark int) {
		for i := range s.Goroutines {
			g := &s.Goroutines[i]
			if g.WaitReason != "chan receive" {
				continue
			}
			chanRecv++
			for _, f := range g.Frames {
				if strings.Contains(strings.ToLower(f.Function+" "+f.File), "parkchanrecv") {
					inPark++
					break
				}
			}
		}
		return chanRecv, inPark
	}
	chanRecv, searchHits := count(last)
	firstRecv, firstPark := count(first)
	// The flame graph's default range (the last hour) averages every snapshot.
	var avgAll, avgRecv float64
	for _, s := range snaps {
		r, _ := count(s)
		avgAll += float64(len(s.Goroutines)) / moments
		avgRecv += float64(r) / moments
	}
	if searchHits-firstPark < grow {
		t.Fatalf("main.parkChanRecv grew by %d goroutines between the first and last snapshot, want at least %d", searchHits-firstPark, grow)
	}
	checks := []struct {
		name      string
		got, want float64
	}{
		{"processes listed", float64(got.Processes), 1},
		{"pid listed", float64(got.ListPID), float64(tgt.PID)},
		{"moments charted", float64(got.Moments), moments},
		{"flame total (average of the last hour)", got.Unfiltered, avgAll},
		{"snapshots merged", float64(got.MergedN), moments},
		{"flame total filtered by chan receive", got.ChanReceive, avgRecv},
		{"diff baseline total (first snapshot, chan receive)", got.DiffBase, float64(firstRecv)},
		{"diff comparison total (last snapshot, chan receive)", got.DiffTotal, float64(chanRecv)},
		{"diff change of main.parkChanRecv", got.DiffRecvDelta, float64(searchHits - firstPark)},
		{"goroutines found searching parkChanRecv", float64(got.SearchMatched), float64(searchHits)},
		{"goroutines listed before the search (chan receive)", float64(got.SearchBefore), float64(chanRecv)},
		{"download links", float64(got.Downloads), float64(3 * len(Kinds()))},
	}
	for _, c := range checks {
		if math.Abs(c.got-c.want) > 1e-6*math.Max(1, math.Abs(c.want)) {
			t.Errorf("%s: page shows %v, store holds %v", c.name, c.got, c.want)
		}
	}
	if got.DiffDefaultBase != BasePreviousMoment {
		t.Errorf("default diff baseline of the newest moment %q, want %q", got.DiffDefaultBase, BasePreviousMoment)
	}
	if want := fmt.Sprintf("+%d goroutines", searchHits-firstPark); got.DiffRecvText != want {
		t.Errorf("diff table says main.parkChanRecv changed by %q, want %q", got.DiffRecvText, want)
	}
	var kinds []string
	for _, k := range Kinds() {
		kinds = append(kinds, k.Kind)
	}
	if !slices.Contains(kinds, store.KindGoroutineLeak) {
		t.Errorf("Kinds() %v lacks %s", kinds, store.KindGoroutineLeak)
	}
	for _, c := range []struct {
		name      string
		got, want []string
	}{
		{"kinds GET /api/kinds lists", got.APIKinds, kinds},
		{"kinds offered for download", got.DownloadKinds, kinds},
		{"kinds offered by the flame graph", got.KindOptions, store.ProfileKinds},
	} {
		if !slices.Equal(c.got, c.want) {
			t.Errorf("%s: page shows %v, want %v", c.name, c.got, c.want)
		}
	}
	if got.LeakFrame != hostileFrame {
		t.Errorf("goroutineleak flame graph shows frame %q, want %q as text", got.LeakFrame, hostileFrame)
	}
	if got.LeakLabel != hostileLabel {
		t.Errorf("goroutineleak flame graph's label filter offers handler=%q, want %q as text", got.LeakLabel, hostileLabel)
	}
	if want := "walker " + last.Walker + " (loading)"; got.Walker != want {
		t.Errorf("process header shows %q, want %q", got.Walker, want)
	}
	t.Logf("flame: %.2f goroutines in %d frames, %.2f chan receive in %d frames; diff: %v → %v, main.parkChanRecv %s; search: %d",
		got.Unfiltered, got.RectsAll, got.ChanReceive, got.RectsChan, got.DiffBase, got.DiffTotal, got.DiffRecvText, got.SearchMatched)

	// The findings views, in a fresh browser against the same UI.
	spec, err := filepath.Abs(filepath.Join("testdata", "findings.spec.mjs"))
	if err != nil {
		t.Fatal(err)
	}
	fr := runSpec[findingsResult](t, ctx, node, chromium, dir, spec, "http://"+ln.Addr().String()+"/", artifacts, dir)
	checkFindingsViews(t, fr, tgt.PID, leakSite, leakIDs, chanRecv)
}

// runSpec runs a browser spec (node SPEC ARGS...) in dir and parses the
// JSON object its last line prints.
func runSpec[T any](t *testing.T, ctx context.Context, node, chromium, dir, spec string, args ...string) T {
	t.Helper()
	cmd := exec.CommandContext(ctx, node, append([]string{spec}, args...)...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "CHROMIUM="+chromium)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	start := time.Now()
	err := cmd.Run()
	t.Logf("%s ran %v; stdout:\n%s\nstderr:\n%s", filepath.Base(spec), time.Since(start).Round(time.Millisecond), stdout.String(), stderr.String())
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			t.Fatalf("browser spec %s failed (exit %d); screenshots so far in %s", filepath.Base(spec), ee.ExitCode(), args[1])
		}
		t.Fatalf("run node: %v", err)
	}
	lines := strings.Split(strings.TrimSpace(stdout.String()), "\n")
	var v T
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &v); err != nil {
		t.Fatalf("parse the result line of %s: %v", filepath.Base(spec), err)
	}
	return v
}

// growingSite is the site of the population target's growing group (its
// chan-receive goroutines, parked in main.parkChanRecv, grow every
// second) in s, and the ids of its goroutines.
func growingSite(t *testing.T, s *snapshot.Snapshot) (findings.Site, []uint64) {
	t.Helper()
	var site findings.Site
	best := 0
	for _, g := range findings.Groups(s) {
		if strings.HasPrefix(g.Site.Frame, "main.parkChanRecv ") && g.Site.WaitReason == "chan receive" && g.Goroutines > best {
			site, best = g.Site, g.Goroutines
		}
	}
	if best == 0 {
		t.Fatal("no group parked in main.parkChanRecv")
	}
	var ids []uint64
	for i := range s.Goroutines {
		if g := &s.Goroutines[i]; !g.System && findings.SiteOf(g) == site {
			ids = append(ids, g.ID)
		}
	}
	return site, ids
}

// leakFinding is the leak of the group at site in s, grown since first, as
// the agent would judge it. It is made here, not by a findings.Tracker:
// the tracker judges a leak after minutes of history (pkg/findings tests
// that), and this test is about showing one. Its related site and label
// are hostile (hostileFrame, hostileLabel): the page must show them as text.
func leakFinding(t *testing.T, first, s *snapshot.Snapshot, site findings.Site) findings.Finding {
	t.Helper()
	f := findingOf(t, s, findings.KindLeak, site, "")
	was := 0
	for _, g := range findings.Groups(first) {
		if g.Site == site {
			was = g.Goroutines
		}
	}
	span := s.Time.Sub(first.Time)
	f.ID = "leak-" + site.ID()
	f.FirstSeen = first.Time
	if span > 0 {
		f.GrowthPerHour = float64(f.Goroutines-was) / span.Hours()
	}
	f.OldestSeconds = span.Seconds()
	f.Summary = fmt.Sprintf("%d goroutines wait to receive in %s, +%.0f/h, created by %s", f.Goroutines, site.Frame, f.GrowthPerHour, site.CreatedBy)
	f.Related = []findings.Site{{Frame: hostileFrame + " /app/x.go:1", CreatedBy: "main.main /app/main.go:3", State: snapshot.StateWaiting, WaitReason: hostileLabel}}
	f.Labels = map[string][]string{"handler": {hostileLabel}}
	return f
}

// findingsResult is what testdata/findings.spec.mjs measured in the page.
type findingsResult struct {
	ListPID      int      `json:"list_pid"`
	ListFindings int      `json:"list_findings"`
	ListCount    string   `json:"list_count"`
	ListBadges   []string `json:"list_badges"`
	ListHeader   string   `json:"list_header"`
	Panel        struct {
		Cards   int      `json:"cards"`
		Kind    string   `json:"kind"`
		ID      string   `json:"id"`
		SiteID  string   `json:"site_id"`
		Summary string   `json:"summary"`
		Site    string   `json:"site"`
		Facts   string   `json:"facts"`
		Objects int      `json:"objects"`
		Object  []string `json:"object"`
		Related []string `json:"related"`
		Labels  string   `json:"labels"`
	} `json:"panel"`
	Goroutines tableView `json:"goroutines"`
	DeepLink   tableView `json:"deep_link"`
	Flame      struct {
		Total        int64    `json:"total"`
		FocusMatches int      `json:"focus_matches"`
		Highlighted  []string `json:"highlighted"`
	} `json:"flame"`
	ClearedMatched int `json:"cleared_matched"`
}

// tableView is the goroutine table as a finding's link shows it.
type tableView struct {
	Matched int      `json:"matched"`
	IDs     []uint64 `json:"ids"`
	Site    string   `json:"site"`
	States  []string `json:"states"`
}

// checkFindingsViews compares what the findings views showed with the
// store: the list's badge, the panel's finding, and the goroutine table a
// finding's link lands on: exactly the group's goroutines.
func checkFindingsViews(t *testing.T, fr findingsResult, pid int, site findings.Site, ids []uint64, chanRecv int) {
	t.Helper()
	if fr.ListPID != pid || fr.ListFindings != 1 || fr.ListCount != "1" || !slices.Equal(fr.ListBadges, []string{"leak:leak:badge badge-leak"}) || fr.ListHeader != "findings" {
		t.Errorf("process list: pid %d, findings %d (%q), badges %q, first column %q; want pid %d, 1 leak badge",
			fr.ListPID, fr.ListFindings, fr.ListCount, fr.ListBadges, fr.ListHeader, pid)
	}
	p := fr.Panel
	if p.Cards != 1 || p.Kind != findings.KindLeak || p.ID != "leak-"+site.ID() || p.SiteID != site.ID() ||
		!strings.Contains(p.Site, site.Frame) || !strings.Contains(p.Site, site.CreatedBy) || !strings.Contains(p.Summary, fmt.Sprintf("%d goroutines", len(ids))) {
		t.Errorf("findings panel %+v; want the leak of site %s (%+v), %d goroutines", p, site.ID(), site, len(ids))
	}
	if p.Objects < 1 || len(p.Object) != 7 || p.Object[1] != "chan" || p.Object[2] != "unbuffered" {
		t.Errorf("findings panel objects: %d rows, first %q; want the channel they wait on", p.Objects, p.Object)
	}
	if len(p.Related) != 1 || !strings.Contains(p.Related[0], hostileFrame[:strings.IndexByte(hostileFrame, ' ')]) || !strings.Contains(p.Related[0], hostileLabel) ||
		!strings.Contains(p.Labels, hostileLabel) {
		t.Errorf("findings panel: related %q, labels %q; want the hostile frame and label as text", p.Related, p.Labels)
	}
	for name, tv := range map[string]tableView{"show these goroutines": fr.Goroutines, "deep link": fr.DeepLink} {
		if tv.Site != site.ID() || tv.Matched != len(ids) || len(tv.IDs) != min(len(ids), 100) || !slices.Equal(tv.States, []string{"waiting"}) {
			t.Errorf("%s: table of site %s, %d matched, %d rows, states %q; want the group's %d goroutines", name, tv.Site, tv.Matched, len(tv.IDs), tv.States, len(ids))
		}
		for _, id := range tv.IDs {
			if !slices.Contains(ids, id) {
				t.Errorf("%s: goroutine %d listed, not of the group", name, id)
			}
		}
	}
	if fr.Flame.Total != int64(chanRecv) || fr.Flame.FocusMatches < 1 || !slices.Equal(fr.Flame.Highlighted, []string{"main.parkChanRecv"}) {
		t.Errorf("flame graph link: total %d, %d frames in focus, highlighted %q; want the %d chan receive goroutines, main.parkChanRecv",
			fr.Flame.Total, fr.Flame.FocusMatches, fr.Flame.Highlighted, chanRecv)
	}
	if fr.ClearedMatched <= len(ids) {
		t.Errorf("site filter cleared: %d goroutines, want more than the group's %d", fr.ClearedMatched, len(ids))
	}
	t.Logf("findings: leak of %d goroutines at %s; table %d, flame %d chan receive with main.parkChanRecv in focus in %d places",
		len(ids), site.Label(), fr.Goroutines.Matched, fr.Flame.Total, fr.Flame.FocusMatches)
}
