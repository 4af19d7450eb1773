package ui

import (
	"context"
	"net"
	"net/http"
	"path/filepath"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/goroscope/goroscope/pkg/snapshot"
)

// chanE is the channel snapBrowserGroups' largest group sends on.
const chanE = "0xc000ee0000"

// snapBrowserGroups is snapGroups and two more groups: 150 goroutines
// sending on chanE (the largest group, more members than a page) and 2 of
// hostile text (a frame, a label value, a creator).
func snapBrowserGroups() *snapshot.Snapshot {
	s := snapGroups()
	send := []snapshot.Frame{
		{Function: "runtime.gopark", File: "/go/src/runtime/proc.go", Line: 100, PC: 0x100},
		{Function: "runtime.chansend1", File: "/go/src/runtime/chan.go", Line: 150, PC: 0x210},
		{Function: "main.produce", File: "/app/prod.go", Line: 12, PC: 0x910},
	}
	onE := &snapshot.BlockedOn{Kind: snapshot.BlockedOnChan, Address: chanE, Capacity: 8, Length: 8, Senders: 150}
	for i := range 150 {
		s.Goroutines = append(s.Goroutines, snapshot.Goroutine{ID: uint64(1000 + i), State: snapshot.StateWaiting, WaitReason: "chan send",
			WaitingSeconds: float64(1 + i%7), BlockedOn: onE, Frames: send})
	}
	hostile := []snapshot.Frame{{Function: hostileFrame, File: "/app/x.go", Line: 1, PC: 0x990}}
	for i := range 2 {
		s.Goroutines = append(s.Goroutines, snapshot.Goroutine{ID: uint64(2000 + i), State: snapshot.StateWaiting, WaitReason: "select (no cases)",
			WaitingSeconds: 7, Labels: map[string]string{"handler": hostileLabel}, CreatedBy: &snapshot.Frame{Function: hostileFrame, File: "/app/x.go", Line: 2}, Frames: hostile})
	}
	s.Counts = snapshot.Counts{}
	for i := range s.Goroutines {
		s.Counts.Add(s.Goroutines[i].State)
	}
	return s
}

// groupsResult is what testdata/goroutines.spec.mjs measured in the page.
type groupsResult struct {
	EachMatched  int      `json:"each_matched"`
	EachBlocked  string   `json:"each_blocked"`
	GroupsTotal  int      `json:"groups_total"`
	Matched      int      `json:"matched"`
	ByCount      []string `json:"by_count"`  // "first id:count" per row
	ByWait       []string `json:"by_wait"`   // the same, sorted by wait
	Members      []uint64 `json:"members"`   // the largest group's first page
	Members2     []uint64 `json:"members2"`  // its second page
	MembersCount int      `json:"members_n"` // its members, as the page says
	Queue        []uint64 `json:"queue"`     // the goroutines queued on chanA
	QueueAddr    string   `json:"queue_addr"`
	QueueMatched int      `json:"queue_matched"`
	Cleared      int      `json:"cleared"`
	Search       []string `json:"search"` // groups found searching chanD's address
	HostileFrame string   `json:"hostile_frame"`
	HostileLabel string   `json:"hostile_label"`
	// XWindow is the charts' x axis (Unix seconds), from and to.
	XWindow []float64 `json:"x_window"`
}

// TestGoroutineGroupsInBrowser serves a store holding snapBrowserGroups
// and drives the goroutine table in chromium (testdata/goroutines.spec.mjs):
// the per-goroutine view shows what each goroutine is blocked on; the
// grouped view lists the groups by count, then by oldest wait; the largest
// group expands to its members, paged; a click on a channel lists everyone
// queued on it; an address search finds the group blocked on it; hostile
// text shows as text.
func TestGoroutineGroupsInBrowser(t *testing.T) {
	if testing.Short() {
		t.Skip("starts Chromium")
	}
	chromium, node, dir := browserPrereqs(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	st := openStore(t)
	snap := snapBrowserGroups()
	appendSnapshot(t, st, testProc, snap)
	live := Process{Process: testProc, Live: true, Counts: snap.Counts, LastSnapshot: snap.Time, Walker: "procmem"}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: New(testSource{Store: st, live: []Process{live}}, nil), ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	defer srv.Close()

	spec, err := filepath.Abs(filepath.Join("testdata", "goroutines.spec.mjs"))
	if err != nil {
		t.Fatal(err)
	}
	url := "http://" + ln.Addr().String() + "/#/p/" + strconv.Itoa(testProc.PID) + "/" + strconv.FormatUint(testProc.StartTime, 10) + "?tab=goroutines"
	got := runSpec[groupsResult](t, ctx, node, chromium, dir, spec, url, filepath.Join(dir, "artifacts", "goroutines"), dir)

	// What the page showed must be what the API groups.
	rows := func(sortBy string) []string {
		var out []string
		for _, g := range GroupGoroutines(snap, Filter{}, Narrow{}, "", sortBy, 0, jsGroupPage).Groups {
			out = append(out, strconv.FormatUint(g.FirstID, 10)+":"+strconv.Itoa(g.Count))
		}
		return out
	}
	n := len(snap.Goroutines)
	byCount, byWait := rows(sortCount), rows(sortWait)
	if got.EachMatched != n || got.Matched != n || got.GroupsTotal != len(byCount) || got.Cleared != n {
		t.Errorf("page: %d goroutines each, %d grouped in %d groups, %d after the queue cleared; want %d in %d groups",
			got.EachMatched, got.Matched, got.GroupsTotal, got.Cleared, n, len(byCount))
	}
	if !slices.Equal(got.ByCount, byCount) || byCount[0] != "1000:150" {
		t.Errorf("groups by count %q, want %q", got.ByCount, byCount)
	}
	if !slices.Equal(got.ByWait, byWait) || byWait[0] != "30:1" {
		t.Errorf("groups by wait %q, want %q", got.ByWait, byWait)
	}
	var want1, want2 []uint64
	for i := range 150 {
		if i < jsMembersPage {
			want1 = append(want1, uint64(1000+i))
		} else {
			want2 = append(want2, uint64(1000+i))
		}
	}
	if got.MembersCount != 150 || !slices.Equal(got.Members, want1) || !slices.Equal(got.Members2, want2) {
		t.Errorf("largest group's members: %d, pages %v and %v; want 150: 1000-1099, 1100-1149", got.MembersCount, got.Members, got.Members2)
	}
	if got.QueueAddr != chanA || got.QueueMatched != 5 || !slices.Equal(got.Queue, []uint64{1, 2, 3, 4, 30}) {
		t.Errorf("queue of %s: %q, %d goroutines %v; want 1-4 and 30", chanA, got.QueueAddr, got.QueueMatched, got.Queue)
	}
	if got.EachBlocked != "chan "+chanA {
		t.Errorf("goroutine 1 shows blocked on %q, want chan %s", got.EachBlocked, chanA)
	}
	if !slices.Equal(got.Search, []string{"30:1"}) {
		t.Errorf("searching %s: groups %q, want the select's (30:1)", chanD, got.Search)
	}
	if at := float64(snap.Time.Unix()); len(got.XWindow) != 2 || got.XWindow[1] != at || got.XWindow[0] != at-3600 {
		t.Errorf("charts of one snapshot at %v span %v, want the hour up to it", snap.Time, got.XWindow)
	}
	if got.HostileFrame != hostileFrame || got.HostileLabel != "handler="+hostileLabel {
		t.Errorf("hostile group shows frame %q, label %q; want them as text", got.HostileFrame, got.HostileLabel)
	}
}

// The page sizes of goroutines.js: groups per page, members per page.
const (
	jsGroupPage   = 100
	jsMembersPage = 100
)
