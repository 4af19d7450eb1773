package findings

import (
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/goroscope/goroscope/pkg/snapshot"
)

var t0 = time.Date(2026, 12, 4, 12, 0, 0, 0, time.UTC)

// shape is a kind of goroutine of a synthetic process.
type shape struct {
	fn, creator, reason string
	state               snapshot.State
	blocked             func(i int) *snapshot.BlockedOn
}

var (
	leakySend = shape{fn: "main.handle", creator: "main.serve", reason: "chan send", state: snapshot.StateWaiting,
		blocked: func(i int) *snapshot.BlockedOn {
			return &snapshot.BlockedOn{Kind: snapshot.BlockedOnChan, Address: "0xc0001" + itoa(i)}
		}}
	ticker = shape{fn: "main.tick", creator: "main.serve", reason: "chan receive", state: snapshot.StateWaiting,
		blocked: func(i int) *snapshot.BlockedOn {
			return &snapshot.BlockedOn{Kind: snapshot.BlockedOnChan, Address: "0xc0002" + itoa(i), Capacity: 1}
		}}
	worker = shape{fn: "main.worker", creator: "main.startPool", reason: "chan receive", state: snapshot.StateWaiting,
		blocked: func(int) *snapshot.BlockedOn {
			return &snapshot.BlockedOn{Kind: snapshot.BlockedOnChan, Address: "0xc0003000", Capacity: 100}
		}}
	locked = shape{fn: "main.update", creator: "main.serve", reason: "sync.Mutex.Lock", state: snapshot.StateWaiting,
		blocked: func(int) *snapshot.BlockedOn {
			return &snapshot.BlockedOn{Kind: snapshot.BlockedOnSync, Address: "0xc0004008"}
		}}
	holder = shape{fn: "main.flush", creator: "main.serve", reason: "chan receive", state: snapshot.StateWaiting,
		blocked: func(int) *snapshot.BlockedOn {
			return &snapshot.BlockedOn{Kind: snapshot.BlockedOnChan, Address: "0xc0005000"}
		}}
	tickerOnLock = shape{fn: "main.work", creator: "main.serve", reason: "sync.Mutex.Lock", state: snapshot.StateWaiting,
		blocked: func(int) *snapshot.BlockedOn {
			return &snapshot.BlockedOn{Kind: snapshot.BlockedOnSync, Address: "0xc0006000"}
		}}
	tickerAwake = shape{fn: "main.tick", creator: "main.serve", state: snapshot.StateRunnable}
	leakedSend  = shape{fn: "main.handle", creator: "main.serve", reason: "chan send", state: snapshot.StateLeaked}
	reader      = shape{fn: "net/http.(*conn).serve", creator: "net/http.(*Server).Serve", reason: "IO wait", state: snapshot.StateWaiting}
)

func itoa(i int) string { return strconv.Itoa(i) }

// member is one goroutine of a synthetic process: an id, a shape and when
// it started waiting.
type member struct {
	id    uint64
	shape *shape
	since time.Time
}

func snapshotOf(now time.Time, ms []member) *snapshot.Snapshot {
	s := &snapshot.Snapshot{PID: 1, Time: now}
	for _, m := range ms {
		g := snapshot.Goroutine{ID: m.id, State: m.shape.state, WaitReason: m.shape.reason,
			WaitingSeconds: now.Sub(m.since).Seconds(),
			CreatedBy:      &snapshot.Frame{Function: m.shape.creator, File: "main.go", Line: 10},
			Frames: []snapshot.Frame{{Function: "runtime.gopark", File: "proc.go", Line: 435},
				{Function: "sync.(*Mutex).Lock", File: "mutex.go", Line: 90},
				{Function: m.shape.fn, File: "main.go", Line: 40}}}
		if m.shape.blocked != nil {
			g.BlockedOn = m.shape.blocked(int(m.id))
		}
		s.Goroutines = append(s.Goroutines, g)
		s.Counts.Add(g.State)
	}
	return s
}

// scenario is a process over time: the goroutines it has at each step.
type scenario struct {
	name  string
	steps int
	every time.Duration
	// at returns the goroutines at step i, at time now.
	at func(i int, now time.Time) []member
	// want is the kind of finding wanted, "" for none ever; by is the
	// latest step at which it must show; confirmed that the runtime's
	// leak detector confirms it.
	want      string
	by        int
	confirmed bool
	// frame, if set, must be in every finding's site frame.
	frame string
}

func TestTracker(t *testing.T) {
	const every = 10 * time.Second
	for _, sc := range []scenario{
		{name: "leak of one goroutine a second", steps: 60, every: every, want: KindLeak, by: 11,
			at: func(i int, now time.Time) []member {
				var ms []member
				for j := range i * 10 {
					ms = append(ms, member{id: uint64(100 + j), shape: &leakySend, since: t0.Add(time.Duration(j) * time.Second)})
				}
				return ms
			}},
		{name: "slow leak, one every 20 s", steps: 60, every: every, want: KindLeak, by: 59,
			at: func(i int, now time.Time) []member {
				var ms []member
				for j := range i / 2 {
					ms = append(ms, member{id: uint64(100 + j), shape: &leakySend, since: t0.Add(time.Duration(j) * 20 * time.Second)})
				}
				return ms
			}},
		{name: "ticker per request, woken every second", steps: 60, every: every, want: KindLeak, by: 12,
			at: func(i int, now time.Time) []member {
				var ms []member
				for j := range i * 5 {
					ms = append(ms, member{id: uint64(100 + j), shape: &ticker, since: now.Add(-time.Second / 2)})
				}
				return ms
			}},
		{name: "leak the runtime proved", steps: 30, every: every, want: KindLeak, by: 11, confirmed: true,
			at: func(i int, now time.Time) []member {
				var ms []member
				for j := range i * 10 {
					ms = append(ms, member{id: uint64(100 + j), shape: &leakedSend, since: t0.Add(time.Duration(j) * time.Second)})
				}
				return ms
			}},
		{name: "ticker per request under load, caught awake", steps: 40, every: every, want: KindLeak, by: 12,
			at: func(i int, now time.Time) []member {
				var ms []member
				for j := range i * 5 {
					sh := &ticker
					if (j+i)%3 == 0 {
						sh = &tickerAwake // a third are runnable at any moment
					}
					ms = append(ms, member{id: uint64(100 + j), shape: sh, since: now})
				}
				return ms
			}},
		{name: "each goroutine passes one step through a wait, then leaks in another", steps: 40, every: every, want: KindLeak, by: 12, frame: "main.tick",
			at: func(i int, now time.Time) []member {
				var ms []member
				for j := range i * 5 {
					sh := &ticker // where they stay
					if j >= (i-1)*5 {
						sh = &leakySend // where the newest are, on their way
					}
					ms = append(ms, member{id: uint64(100 + j), shape: sh, since: now})
				}
				return ms
			}},
		{name: "ticker per request, each on a shared lock now and then", steps: 40, every: every, want: KindLeak, by: 12, frame: "main.tick",
			at: func(i int, now time.Time) []member {
				var ms []member
				for j := range i * 5 {
					sh := &ticker
					if (j*7+i)%5 == 0 {
						sh = &tickerOnLock // a fifth are on the lock at any moment
					}
					ms = append(ms, member{id: uint64(100 + j), shape: sh, since: now})
				}
				return ms
			}},
		{name: "idle worker pool, waiting for hours", steps: 60, every: every,
			at: func(i int, now time.Time) []member {
				var ms []member
				for j := range 500 {
					ms = append(ms, member{id: uint64(100 + j), shape: &worker, since: t0.Add(-3 * time.Hour)})
				}
				return append(ms, member{id: 1, shape: &reader, since: now})
			}},
		{name: "stable worker pool", steps: 200, every: every,
			at: func(i int, now time.Time) []member {
				var ms []member
				for j := range 2000 {
					ms = append(ms, member{id: uint64(100 + j), shape: &worker, since: now.Add(-time.Duration(j%7) * time.Second)})
				}
				return ms
			}},
		{name: "pool warming up", steps: 100, every: every,
			at: func(i int, now time.Time) []member {
				var ms []member
				for j := range min(i*100, 500) {
					ms = append(ms, member{id: uint64(100 + j), shape: &worker, since: now.Add(-time.Second)})
				}
				return ms
			}},
		{name: "churn of short goroutines, growing load", steps: 100, every: every,
			at: func(i int, now time.Time) []member {
				var ms []member
				for j := range 100 + i*5 {
					ms = append(ms, member{id: uint64(i*100_000 + j), shape: &leakySend, since: now.Add(-time.Second)})
				}
				return ms
			}},
		{name: "burst fan-out that drains", steps: 100, every: every,
			at: func(i int, now time.Time) []member {
				var ms []member
				if i%20 >= 2 && i%20 < 8 {
					for j := range 1000 {
						ms = append(ms, member{id: uint64(i/20*10_000 + j), shape: &leakySend, since: t0.Add(time.Duration(i/20*20+2) * every)})
					}
				}
				return ms
			}},
		{name: "long-lived connection readers", steps: 200, every: every,
			at: func(i int, now time.Time) []member {
				var ms []member
				for j := range 300 {
					ms = append(ms, member{id: uint64(100 + j), shape: &reader, since: now.Add(-time.Duration(j) * time.Second)})
				}
				return ms
			}},
		{name: "mutex held by a goroutine waiting on a channel", steps: 40, every: every, want: KindStuck, by: 31,
			at: func(i int, now time.Time) []member {
				ms := []member{{id: 7, shape: &holder, since: t0}, {id: 8, shape: &reader, since: now}}
				for j := range 50 {
					ms = append(ms, member{id: uint64(100 + j), shape: &locked, since: t0})
				}
				return ms
			}},
		{name: "everything asleep", steps: 40, every: every, want: KindAllAsleep, by: 31,
			at: func(i int, now time.Time) []member {
				return []member{{id: 1, shape: &holder, since: t0}, {id: 2, shape: &locked, since: t0}}
			}},
	} {
		t.Run(sc.name, func(t *testing.T) {
			tr := NewTracker(Config{})
			found := -1
			var first Finding
			for i := range sc.steps {
				now := t0.Add(time.Duration(i) * sc.every)
				_, fs := tr.Observe(snapshotOf(now, sc.at(i, now)))
				for _, f := range fs {
					if sc.want == "" || f.Kind != sc.want || !strings.Contains(f.Site.Frame, sc.frame) {
						t.Fatalf("step %d: unexpected %s finding: %s", i, f.Kind, f.Summary)
					}
					if found < 0 {
						found, first = i, f
					}
				}
			}
			if sc.want == "" {
				return
			}
			if found < 0 || found > sc.by {
				t.Fatalf("%s found at step %d, want by step %d", sc.want, found, sc.by)
			}
			t.Logf("step %d: %s %s", found, first.ID, first.Summary)
			if first.ConfirmedByRuntime != sc.confirmed || strings.Contains(first.Summary, "confirmed by the runtime") != sc.confirmed {
				t.Errorf("confirmed by the runtime: %v (%q), want %v", first.ConfirmedByRuntime, first.Summary, sc.confirmed)
			}
			if first.Summary == "" || first.Goroutines == 0 || len(first.Example) == 0 || first.SiteID != first.Site.ID() {
				t.Errorf("finding lacks evidence: %+v", first)
			}
		})
	}
}
