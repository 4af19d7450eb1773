package ui

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"testing"

	"github.com/goroscope/goroscope/pkg/snapshot"
)

// Addresses of the objects snapGroups' goroutines are blocked on.
const (
	chanA = "0xc000aa0000" // ids 1-4 receive from it; 30 selects on it (among others)
	chanB = "0xc000bb0000"
	semC  = "0xc000cc0000"
	chanD = "0xc000dd0000"
)

// snapGroups is 12 goroutines in 5 groups:
//
//	recv/start   ids 1-4   chan receive on chanA, waits 5 50 10 1, handler=api but 4 (batch)
//	mutex        ids 10-12 sync.Mutex.Lock on semC, waits 20
//	recv/other   ids 5-6   chan receive on chanB, created elsewhere, waits 500
//	running      ids 40-41 no stack
//	select       id 30     select on chanD and chanA, waits 3000
func snapGroups() *snapshot.Snapshot {
	start := &snapshot.Frame{Function: "main.start", File: "/app/w.go", Line: 31}
	other := &snapshot.Frame{Function: "main.other", File: "/app/o.go", Line: 8}
	api, batch := map[string]string{"handler": "api"}, map[string]string{"handler": "batch"}
	onA := &snapshot.BlockedOn{Kind: snapshot.BlockedOnChan, Address: chanA, Receivers: 4}
	var gs []snapshot.Goroutine
	for i, w := range []float64{5, 50, 10, 1} {
		l := api
		if i == 3 {
			l = batch
		}
		gs = append(gs, snapshot.Goroutine{ID: uint64(1 + i), State: snapshot.StateWaiting, WaitReason: "chan receive", WaitingSeconds: w,
			CreatedBy: start, Labels: l, BlockedOn: onA, Frames: stackRecv})
	}
	for i := range 2 {
		gs = append(gs, snapshot.Goroutine{ID: uint64(5 + i), State: snapshot.StateWaiting, WaitReason: "chan receive", WaitingSeconds: 500,
			CreatedBy: other, BlockedOn: &snapshot.BlockedOn{Kind: snapshot.BlockedOnChan, Address: chanB, Capacity: 2, Receivers: 2}, Frames: stackRecv})
	}
	for i := range 3 {
		gs = append(gs, snapshot.Goroutine{ID: uint64(10 + i), State: snapshot.StateWaiting, WaitReason: "sync.Mutex.Lock", WaitingSeconds: 20,
			CreatedBy: start, BlockedOn: &snapshot.BlockedOn{Kind: snapshot.BlockedOnSync, Address: semC}, Frames: stackMutex})
	}
	gs = append(gs, snapshot.Goroutine{ID: 30, State: snapshot.StateWaiting, WaitReason: "select", WaitingSeconds: 3000, Frames: stackSelect,
		BlockedOn: &snapshot.BlockedOn{Kind: snapshot.BlockedOnChan, Address: chanD, Receivers: 1, Others: []snapshot.BlockedOn{{Kind: snapshot.BlockedOnChan, Address: chanA}}}})
	gs = append(gs, snapshot.Goroutine{ID: 40, State: snapshot.StateRunning}, snapshot.Goroutine{ID: 41, State: snapshot.StateRunning})
	return makeSnapshot(t0, gs)
}

// groupSig is a group as the tests compare it.
type groupSig struct {
	First  uint64
	Count  int
	Oldest float64
}

func sigs(gs []Group) []groupSig {
	out := []groupSig{}
	for _, g := range gs {
		out = append(out, groupSig{g.FirstID, g.Count, g.OldestWait})
	}
	return out
}

func TestGroupGoroutinesAPI(t *testing.T) {
	st := openStore(t)
	appendSnapshot(t, st, testProc, snapGroups())
	srv := httptest.NewServer(New(testSource{Store: st}, nil))
	t.Cleanup(srv.Close)

	byCount := []groupSig{{1, 4, 50}, {10, 3, 20}, {5, 2, 500}, {40, 2, 0}, {30, 1, 3000}}
	byWait := []groupSig{{30, 1, 3000}, {5, 2, 500}, {1, 4, 50}, {10, 3, 20}, {40, 2, 0}}
	tests := []struct {
		name, query   string
		matched, grps int
		want          []groupSig
	}{
		{"default: by count", "", 12, 5, byCount},
		{"by count", "sort=count", 12, 5, byCount},
		{"by wait", "sort=wait", 12, 5, byWait},
		{"paged", "sort=wait&offset=1&limit=2", 12, 5, byWait[1:3]},
		{"past the end", "offset=10", 12, 5, []groupSig{}},
		{"filtered", "state=waiting&sort=wait", 10, 4, byWait[:4]},
		{"search", "q=main.handle", 3, 1, byCount[1:2]},
		{"queue of chanA", "addr=" + chanA, 5, 2, []groupSig{{1, 4, 50}, {30, 1, 3000}}},
		{"queue of chanA, upper case", "addr=0XC000AA0000&sort=wait", 5, 2, []groupSig{{30, 1, 3000}, {1, 4, 50}}},
		{"address search", "q=0xc000aa", 5, 2, []groupSig{{1, 4, 50}, {30, 1, 3000}}},
		{"address search of a semaphore", "q=" + semC, 3, 1, byCount[1:2]},
		{"nobody queued", "addr=0xc0ffee", 0, 0, []groupSig{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := getJSON[GroupsAnswer](t, srv, procPath+"/goroutines/groups?"+tt.query)
			if got.Total != 12 || got.Matched != tt.matched || got.GroupsTotal != tt.grps || got.Cut || got.Ungrouped != 0 || got.MaxGroups != maxGroups ||
				!slices.Equal(sigs(got.Groups), tt.want) {
				t.Errorf("%s: total %d matched %d groups %d cut %v (%d) %v; want 12, %d, %d, %v",
					tt.query, got.Total, got.Matched, got.GroupsTotal, got.Cut, got.Ungrouped, sigs(got.Groups), tt.matched, tt.grps, tt.want)
			}
		})
	}

	// One group's facts: creator, labels, blocked-on object, members.
	all := getJSON[GroupsAnswer](t, srv, procPath+"/goroutines/groups")
	recv, mutex, sel := all.Groups[0], all.Groups[1], all.Groups[4]
	if recv.State != "waiting" || recv.WaitReason != "chan receive" || recv.CreatedBy == nil || recv.CreatedBy.Function != "main.start" ||
		recv.Labels["handler"] != "api" || !recv.LabelsVary || recv.OldestID != 2 || recv.MinWait != 1 || len(recv.Frames) != len(stackRecv) ||
		recv.Blocked != 4 || recv.BlockedOn == nil || recv.BlockedOn.Address != chanA || recv.BlockedOn.Receivers != 4 ||
		!slices.Equal(recv.Objects, []string{chanA}) || recv.ObjectsMore || len(recv.ID) != groupIDLen {
		t.Errorf("chan receive group %+v", recv)
	}
	if mutex.LabelsVary || mutex.BlockedOn == nil || mutex.BlockedOn.Kind != "sync" || !slices.Equal(mutex.Objects, []string{semC}) {
		t.Errorf("mutex group %+v", mutex)
	}
	if sel.BlockedOn == nil || len(sel.BlockedOn.Others) != 1 || sel.BlockedOn.Others[0].Address != chanA {
		t.Errorf("select group %+v", sel)
	}
	ids := func(q string) []uint64 {
		p := getJSON[GoroutinesAnswer](t, srv, procPath+"/goroutines?"+q)
		if p.Total != 12 {
			t.Errorf("goroutines?%s: total %d, want 12", q, p.Total)
		}
		return pageIDs(p.Page)
	}
	for _, c := range []struct {
		query string
		want  []uint64
	}{
		{"group=" + recv.ID, []uint64{1, 2, 3, 4}},
		{"group=" + recv.ID + "&offset=2&limit=1", []uint64{3}},
		{"group=" + all.Groups[2].ID, []uint64{5, 6}},
		{"group=" + all.Groups[3].ID, []uint64{40, 41}},
		{"group=" + recv.ID + "&label=handler=batch", []uint64{4}},
		{"addr=" + chanA, []uint64{1, 2, 3, 4, 30}},
		{"addr=" + chanD, []uint64{30}},
		{"addr=" + semC, []uint64{10, 11, 12}},
		{"q=" + url.QueryEscape(chanB), []uint64{5, 6}},
		{"q=0xc", []uint64{}}, // too short to be an address: text only
		{"group=0123456789abcdef", []uint64{}},
	} {
		if got := ids(c.query); !slices.Equal(got, c.want) {
			t.Errorf("goroutines?%s: ids %v, want %v", c.query, got, c.want)
		}
	}

	for _, q := range []string{"sort=id", "group=xyz", "group=0123", "addr=" + url.QueryEscape("0x1 0x2"), "limit=-1"} {
		get(t, srv, procPath+"/goroutines/groups?"+q, http.StatusBadRequest)
	}
	get(t, srv, procPath+"/goroutines?group=nothex", http.StatusBadRequest)
}

// TestGroupsCut: past the bound on groups, later groups' goroutines are
// counted, not kept, and the answer says so.
func TestGroupsCut(t *testing.T) {
	s := snapGroups()
	p, err := groupStream(context.Background(), sliceNext(s.Goroutines), Filter{}, Narrow{}, "", "count", 0, 0, 2)
	if err != nil {
		t.Fatal(err)
	}
	// The first two groups read: recv/start (4) and recv/other (2).
	if !p.Cut || p.GroupsTotal != 2 || p.Matched != 12 || p.Ungrouped != 6 || !slices.Equal(sigs(p.Groups), []groupSig{{1, 4, 50}, {5, 2, 500}}) {
		t.Errorf("cut at 2: %+v", p)
	}
	// The whole of a large snapshot: 48 places, 3 of them with a running
	// goroutine among them, in the bounds.
	big := bigSnapshot(20000)
	g := GroupGoroutines(big, Filter{}, Narrow{}, "", "wait", 0, maxPageSize)
	n := 0
	for _, grp := range g.Groups {
		n += grp.Count
	}
	if g.Cut || n != 20000 || g.GroupsTotal != len(g.Groups) {
		t.Errorf("big snapshot: %d groups holding %d goroutines, cut %v", g.GroupsTotal, n, g.Cut)
	}
	for i := 1; i < len(g.Groups); i++ {
		if g.Groups[i].OldestWait > g.Groups[i-1].OldestWait {
			t.Fatalf("sort=wait: group %d waits %v, longer than the one before (%v)", i, g.Groups[i].OldestWait, g.Groups[i-1].OldestWait)
		}
	}
}

// TestGroupIDsStable: a group's id is the same whichever way the snapshot
// is read (held whole, or the stored binary form streamed).
func TestGroupIDsStable(t *testing.T) {
	s := snapGroups()
	whole := GroupGoroutines(s, Filter{}, Narrow{}, "", "", 0, 0)
	st, err := snapshot.NewBinaryReader(snapshotBinary(s))
	if err != nil {
		t.Fatal(err)
	}
	streamed, err := groupStream(context.Background(), st.Next, Filter{}, Narrow{}, "", "", 0, 0, maxGroups)
	if err != nil {
		t.Fatal(err)
	}
	for i := range whole.Groups {
		if whole.Groups[i].ID != streamed.Groups[i].ID {
			t.Errorf("group %d: id %s held whole, %s streamed", i, whole.Groups[i].ID, streamed.Groups[i].ID)
		}
	}
}
