package findings

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/goroscope/goroscope/pkg/snapshot"
)

func TestSiteOf(t *testing.T) {
	park := []snapshot.Frame{{Function: "runtime.gopark", File: "proc.go", Line: 435}, {Function: "runtime.chansend1", File: "chan.go", Line: 161}}
	for _, tc := range []struct {
		name   string
		g      snapshot.Goroutine
		frame  string
		label  string
		leaked bool
	}{
		{name: "user frame after the runtime's",
			g:     snapshot.Goroutine{State: snapshot.StateWaiting, WaitReason: "chan send", Frames: append(park, snapshot.Frame{Function: "main.handle", File: "/src/main.go", Line: 40}), CreatedBy: &snapshot.Frame{Function: "main.serve", File: "/src/main.go", Line: 31}},
			frame: "main.handle /src/main.go:40", label: "main.handle:40 ← main.serve:31"},
		{name: "sync and internal packages skipped, net/http kept",
			g: snapshot.Goroutine{State: snapshot.StateWaiting, WaitReason: "sync.Mutex.Lock", Frames: []snapshot.Frame{
				{Function: "runtime.gopark"}, {Function: "sync.(*Mutex).lockSlow"}, {Function: "internal/sync.(*Mutex).Lock"},
				{Function: "net/http.(*conn).serve", File: "server.go", Line: 2000}}},
			frame: "net/http.(*conn).serve server.go:2000", label: "net/http.(*conn).serve:2000"},
		{name: "a module path with dots", g: snapshot.Goroutine{State: snapshot.StateWaiting, Frames: []snapshot.Frame{
			{Function: "runtime.gopark"}, {Function: "golang.org/x/net/http2.(*Framer).ReadFrame", File: "frame.go", Line: 7}}},
			frame: "golang.org/x/net/http2.(*Framer).ReadFrame frame.go:7", label: "golang.org/x/net/http2.(*Framer).ReadFrame:7"},
		{name: "running, no stack", g: snapshot.Goroutine{State: snapshot.StateRunning, Frames: []snapshot.Frame{}}, label: "running"},
		{name: "leaked counts as waiting", g: snapshot.Goroutine{State: snapshot.StateLeaked, WaitReason: "chan send", Frames: park}, label: "waiting", leaked: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := SiteOf(&tc.g)
			if s.Frame != tc.frame || s.Label() != tc.label {
				t.Errorf("SiteOf = %+v (label %q); want frame %q, label %q", s, s.Label(), tc.frame, tc.label)
			}
			if tc.leaked && s.State != snapshot.StateWaiting {
				t.Errorf("leaked goroutine's site state %q", s.State)
			}
			if id := s.ID(); len(id) != 12 || id != SiteOf(&tc.g).ID() {
				t.Errorf("ID %q not stable or not 12 hex digits", id)
			}
		})
	}
}

// BenchmarkGroups100k: grouping a walk of 100k goroutines in 8 stacks,
// shared as the walkers share them.
func BenchmarkGroups100k(b *testing.B) {
	s := &snapshot.Snapshot{Time: time.Now()}
	stacks := make([][]snapshot.Frame, 8)
	creators := make([]*snapshot.Frame, 8)
	for i := range stacks {
		stacks[i] = []snapshot.Frame{{Function: "runtime.gopark"}, {Function: fmt.Sprintf("main.f%d", i), File: "main.go", Line: i}}
		creators[i] = &snapshot.Frame{Function: "main.serve", File: "main.go", Line: 100 + i}
	}
	var chans []*snapshot.BlockedOn // one per channel, as the walkers share them
	for i := range 100_000 {
		if i%64 == 0 {
			chans = append(chans, &snapshot.BlockedOn{Kind: snapshot.BlockedOnChan, Address: fmt.Sprintf("%#x", 0xc000000000+i/64)})
		}
		s.Goroutines = append(s.Goroutines, snapshot.Goroutine{ID: uint64(i + 1), State: snapshot.StateWaiting, WaitReason: "chan receive",
			WaitingSeconds: float64(i % 100), Frames: stacks[i%8], CreatedBy: creators[i%8], BlockedOn: chans[i/64]})
	}
	tr := NewTracker(Config{})
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		s.Time = s.Time.Add(10 * time.Second)
		tr.Observe(s)
	}
}

// TestGroups: goroutines group by site, weighted by a sampled snapshot's
// stride, with their objects the most waited on first.
func TestGroups(t *testing.T) {
	stack := []snapshot.Frame{{Function: "runtime.gopark"}, {Function: "main.f", File: "main.go", Line: 3}}
	other := []snapshot.Frame{{Function: "runtime.gopark"}, {Function: "main.f", File: "main.go", Line: 3}, {Function: "main.g"}}
	ch := func(a string) *snapshot.BlockedOn {
		return &snapshot.BlockedOn{Kind: snapshot.BlockedOnChan, Address: a}
	}
	s := &snapshot.Snapshot{Stride: 2, Goroutines: []snapshot.Goroutine{
		{ID: 1, State: snapshot.StateWaiting, WaitReason: "chan receive", Frames: stack, BlockedOn: ch("0xb"), WaitingSeconds: 5},
		{ID: 2, State: snapshot.StateWaiting, WaitReason: "chan receive", Frames: other, BlockedOn: ch("0xa"), WaitingSeconds: 50, Labels: map[string]string{"k": "v"}},
		{ID: 3, State: snapshot.StateWaiting, WaitReason: "chan receive", Frames: stack, BlockedOn: ch("0xa"), WaitingSeconds: 700},
		{ID: 4, State: snapshot.StateRunnable, Frames: stack},
		{ID: 5, State: snapshot.StateWaiting, WaitReason: "GC worker (idle)", System: true, Frames: stack},
	}}
	gs := Groups(s)
	if len(gs) != 2 {
		t.Fatalf("%d groups, want 2 (same site below a differing stack; system goroutines left out): %+v", len(gs), gs)
	}
	g := gs[0]
	if g.Goroutines != 6 || g.DistinctObjects != 2 || g.Objects[0].Address != "0xa" || g.Objects[0].Goroutines != 4 || g.MaxWait != 700 {
		t.Errorf("group %+v; want 6 goroutines (3 x stride 2), 0xa first with 4", g)
	}
	if want := []int{0, 2, 2, 0, 2, 0}; fmt.Sprint(g.Waits) != fmt.Sprint(want) {
		t.Errorf("waits %v, want %v", g.Waits, want)
	}
	if fmt.Sprint(g.Labels) != "map[k:[v]]" {
		t.Errorf("labels %v", g.Labels)
	}
	if gs[1].Site.State != snapshot.StateRunnable || gs[1].Goroutines != 2 {
		t.Errorf("second group %+v", gs[1])
	}
}

// TestObjectJSON: an object's JSON has the snapshot's facts and its
// goroutine count, and reads back whole.
func TestObjectJSON(t *testing.T) {
	for _, o := range []Object{
		{BlockedOn: snapshot.BlockedOn{Kind: snapshot.BlockedOnChan, Address: "0xc0001", Capacity: 4, Length: 1, Senders: 2}, Goroutines: 1375},
		{BlockedOn: snapshot.BlockedOn{Kind: snapshot.BlockedOnSync, Address: "0xc0002"}, Goroutines: 3},
	} {
		b, err := json.Marshal(o)
		if err != nil {
			t.Fatal(err)
		}
		var back Object
		if err := json.Unmarshal(b, &back); err != nil || back.Goroutines != o.Goroutines || back.Address != o.Address || back.Capacity != o.Capacity {
			t.Errorf("%s read back as %+v (%v)", b, back, err)
		}
	}
}

// TestMergeLeaks: leaks of goroutines from one go statement are one
// finding, the largest standing for it, the others' sites related.
func TestMergeLeaks(t *testing.T) {
	site := func(frame, creator string) Site {
		return Site{Frame: frame, CreatedBy: creator, State: snapshot.StateWaiting}
	}
	got := mergeLeaks([]Finding{
		{Kind: KindLeak, Site: site("main.tick a.go:1", "main.serve a.go:9"), Goroutines: 300, Summary: "s"},
		{Kind: KindLeak, Site: site("main.other b.go:2", "main.start b.go:8"), Goroutines: 200},
		{Kind: KindLeak, Site: site("main.work a.go:5", "main.serve a.go:9"), Goroutines: 100},
		{Kind: KindLeak, Site: site("main.main m.go:1", ""), Goroutines: 50},
		{Kind: KindLeak, Site: site("main.init m.go:2", ""), Goroutines: 40},
	})
	if len(got) != 4 || got[0].Site.Frame != "main.tick a.go:1" || len(got[0].Related) != 1 || got[0].Related[0].Frame != "main.work a.go:5" ||
		!strings.Contains(got[0].Summary, "also 100 in main.work a.go:5") {
		t.Errorf("merged %+v", got)
	}
}
