package findings_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/goroscope/goroscope/collect/process"
	"github.com/goroscope/goroscope/collect/walk"
	"github.com/goroscope/goroscope/pkg/findings"
	"github.com/goroscope/goroscope/pkg/snapshot"
	"github.com/goroscope/goroscope/test/targettest"
)

// The end-to-end tests run the leaky target (test/targets/leaky) in each of
// its modes, snapshot it from outside every second as the agent does, and
// judge the snapshots with a Tracker whose thresholds are the defaults
// scaled down to seconds: a leak must be found within leakBound of the
// first snapshot, with its evidence; a healthy program must give no
// finding in healthyRun.

const (
	// every is the time between two snapshots.
	every = time.Second
	// leakBound bounds the time to a leak, stuck or all-asleep finding.
	leakBound = 25 * time.Second
	// healthyRun is how long a healthy program is watched.
	healthyRun = 30 * time.Second
)

// e2eConfig is DefaultConfig scaled down so that a test takes seconds.
func e2eConfig() findings.Config {
	return findings.Config{
		Leak:      findings.LeakRule{MinGoroutines: 10, MinGrowth: 10, Window: 60 * time.Second, MinSpan: 8 * time.Second, MaxDeparted: 0.1},
		Stuck:     findings.StuckRule{MinGoroutines: 10, MinWait: 5 * time.Second},
		AllAsleep: findings.AsleepRule{MinWait: 5 * time.Second},
	}
}

// needsRoot skips the test under -short, and without root (reading another
// process's memory needs it) unless in CI, where that fails it.
func needsRoot(t *testing.T) {
	t.Helper()
	if testing.Short() {
		t.Skip("builds and runs the leaky target")
	}
	if os.Geteuid() != 0 {
		if os.Getenv("CI") == "true" {
			t.Fatal("reading the target's memory needs root, and CI must run this test")
		}
		t.Skip("reading the target's memory needs root")
	}
}

// observation is one snapshot judged.
type observation struct {
	elapsed  time.Duration // since the first snapshot
	snap     *snapshot.Snapshot
	groups   []*findings.Group
	findings []findings.Finding
}

// watch starts the leaky target with args, snapshots it every second and
// judges each snapshot, until stop returns true or limit has passed since
// the first snapshot. It returns the last observation.
func watch(t *testing.T, bin string, limit time.Duration, stop func(o observation) bool, args ...string) observation {
	t.Helper()
	tgt := targettest.Start(t, bin, args...)
	at, err := process.Attach(tgt.PID)
	if err != nil {
		t.Fatalf("attach to pid %d: %v", tgt.PID, err)
	}
	t.Cleanup(func() { at.Close() })
	sn := walk.NewSnapshotter(at, walk.ProcMemWalker{})
	tr := findings.NewTracker(e2eConfig())
	ctx, cancel := context.WithTimeout(context.Background(), limit+time.Minute)
	defer cancel()
	var first time.Time
	next := time.Now()
	for {
		s, err := sn.Snapshot(ctx)
		if err != nil {
			t.Fatalf("snapshot of %v: %v (stderr: %s)", args, err, tgt.Stderr())
		}
		if first.IsZero() {
			first = s.Time
		}
		groups, fs := tr.Observe(s)
		o := observation{elapsed: s.Time.Sub(first), snap: s, groups: groups, findings: fs}
		if stop(o) || o.elapsed >= limit {
			return o
		}
		next = next.Add(every)
		time.Sleep(time.Until(next))
	}
}

// groupsText lists the largest groups of o, for the log.
func groupsText(o observation, n int) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%d goroutines in %d groups at %s:", len(o.snap.Goroutines), len(o.groups), o.elapsed.Round(time.Second))
	for i, g := range o.groups {
		if i == n {
			fmt.Fprintf(&b, "\n  ... %d more", len(o.groups)-n)
			break
		}
		fmt.Fprintf(&b, "\n  %5d %-8s %-16q max wait %5.1fs, %d objects: %s", g.Goroutines, g.Site.State, g.Site.WaitReason, g.MaxWait, g.DistinctObjects, g.Site.Label())
	}
	return b.String()
}

// siteTrail follows the waiting goroutines blocked in one function from
// snapshot to snapshot, for the log when a finding is missed: how many
// there are, how many of the last snapshot's left for another state or
// site (moved), and how many ended (gone).
type siteTrail struct {
	fn   string
	prev map[uint64]bool
	rows []string
}

func (st *siteTrail) observe(o observation) {
	at, alive := map[uint64]bool{}, map[uint64]bool{}
	for i := range o.snap.Goroutines {
		g := &o.snap.Goroutines[i]
		alive[g.ID] = true
		if site := findings.SiteOf(g); site.State == snapshot.StateWaiting && strings.HasPrefix(site.Frame, st.fn+" ") {
			at[g.ID] = true
		}
	}
	moved, gone := 0, 0
	for id := range st.prev {
		switch {
		case at[id]:
		case alive[id]:
			moved++
		default:
			gone++
		}
	}
	st.rows = append(st.rows, fmt.Sprintf("%s %d/%d/%d", o.elapsed.Round(time.Second), len(at), moved, gone))
	st.prev = at
}

func (st *siteTrail) String() string {
	return fmt.Sprintf("waiting in %s / moved out of it since the snapshot before / ended, per snapshot: %s", st.fn, strings.Join(st.rows, ", "))
}

// leakCase is a mode of the leaky target that must give a finding.
type leakCase struct {
	name, mode string
	args       []string // besides -mode; nil: -rate 5
	// hold, if set, is how long to keep watching once found: the finding
	// must stay while the leak goes on.
	hold time.Duration
	// kind is the finding wanted, at the site blocked in fn (a function
	// name prefix: closures add ".func1") for reason; also are other kinds
	// of finding allowed there.
	kind, fn, reason string
	also             []string
	// object checks the facts of each object the finding lists.
	object func(o findings.Object) error
	// check checks more of the finding.
	check func(f findings.Finding) error
}

func chanFacts(wantCap uint64, senders, receivers int) func(o findings.Object) error {
	return func(o findings.Object) error {
		if o.Kind != snapshot.BlockedOnChan || o.Closed || o.Capacity != wantCap || o.Length != 0 || o.Senders != senders || o.Receivers != receivers {
			return fmt.Errorf("want an open chan, capacity %d, empty, %d senders and %d receivers", wantCap, senders, receivers)
		}
		return nil
	}
}

var leakCases = []leakCase{
	{mode: "send-after-timeout", kind: findings.KindLeak, fn: "main.handleWithTimeout.func1", reason: "chan send",
		object: chanFacts(0, 1, 0)},
	{mode: "range-unclosed", kind: findings.KindLeak, fn: "main.sumValues", reason: "chan receive",
		object: chanFacts(8, 0, 1)},
	{mode: "ctx-never-cancelled", kind: findings.KindLeak, fn: "main.watchRequest", reason: "chan receive",
		object: chanFacts(0, 0, 1)},
	{mode: "mutex-holder-waits", kind: findings.KindStuck, fn: "main.(*store).update", reason: "sync.Mutex.Lock", also: []string{findings.KindLeak},
		object: func(o findings.Object) error {
			if o.Kind != snapshot.BlockedOnSync || o.Address == "" {
				return fmt.Errorf("want a sync object")
			}
			return nil
		},
		check: func(f findings.Finding) error {
			if f.DistinctObjects != 1 {
				return fmt.Errorf("%d distinct objects, want the one mutex", f.DistinctObjects)
			}
			// The holder, main.(*store).flush, is parked as long, but
			// Related keeps three sites of the largest groups, ties
			// broken by site id: it may be left out for the accept
			// loop, main or the signal watcher (see the log).
			return nil
		}},
	{mode: "ticker-per-request", kind: findings.KindLeak, fn: "main.pollStatus", reason: "chan receive",
		object: tickerFacts},
	// The pollers take 1 ms of CPU a tick: at 20 new ones a second they
	// fill both cores of a test machine after about 10 s, as such a leak
	// does in production. The leak must stay reported while it grows.
	{name: "ticker-per-request-busy", mode: "ticker-per-request", args: []string{"-rate", "20", "-tick-work", "1ms"}, hold: 20 * time.Second,
		kind: findings.KindLeak, fn: "main.pollStatus", reason: "chan receive", object: tickerFacts},
}

// tickerFacts: a ticker's channel has one buffer slot, its poller the one
// receiver.
func tickerFacts(o findings.Object) error {
	if o.Kind != snapshot.BlockedOnChan || o.Closed || o.Receivers != 1 {
		return fmt.Errorf("want an open chan with its 1 receiver")
	}
	return nil
}

// TestE2ELeaks: each leak of the leaky target is found within leakBound,
// at the site of the function that blocks, with its evidence.
func TestE2ELeaks(t *testing.T) {
	needsRoot(t)
	bin := targettest.Build(t, "leaky", targettest.BuildOpts{})
	cfg := e2eConfig()
	for _, c := range leakCases {
		name, args := c.name, c.args
		if name == "" {
			name = c.mode
		}
		if args == nil {
			args = []string{"-rate", "5"}
		}
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			var found *findings.Finding
			var at time.Duration
			var held []byte // after found: one letter a snapshot, F found, - not
			unexpected := map[string]findings.Finding{}
			trail := &siteTrail{fn: c.fn}
			last := watch(t, bin, max(leakBound, c.hold), func(o observation) bool {
				trail.observe(o)
				now := false
				for i, f := range o.findings {
					// One leak of goroutines from one go statement may
					// stand for several sites: the expected one may be
					// among its related ones.
					here := strings.HasPrefix(f.Site.Frame, c.fn+" ") ||
						slices.ContainsFunc(f.Related, func(s findings.Site) bool { return strings.HasPrefix(s.Frame, c.fn+" ") })
					if f.Kind == c.kind && here {
						now = true
						if found == nil {
							found, at = &o.findings[i], o.elapsed
						}
						continue
					}
					if !here || !slices.Contains(c.also, f.Kind) {
						unexpected[f.ID] = f
					}
				}
				if found == nil {
					return o.elapsed >= leakBound
				}
				if now {
					held = append(held, 'F')
				} else {
					if !bytes.Contains(held, []byte{'-'}) {
						t.Logf("first snapshot without the finding: %s", groupsText(o, 12))
					}
					held = append(held, '-')
				}
				return o.elapsed >= c.hold
			}, append([]string{"-mode", c.mode}, args...)...)
			for _, f := range unexpected {
				t.Errorf("unexpected %s finding at %s: %s", f.Kind, f.Site.Label(), f.Summary)
			}
			if found == nil {
				t.Fatalf("no %s finding at %s within %s\n%s\n%s", c.kind, c.fn, leakBound, trail, groupsText(last, 10))
			}
			f := *found
			t.Logf("%s found %s after the first snapshot (%.2f departed): %s", f.Kind, at.Round(time.Second), f.Departed, f.Summary)
			// A leak merged with others of its go statement may stand
			// under another of their sites: check the evidence of the
			// expected site where it is the one standing.
			primary := strings.HasPrefix(f.Site.Frame, c.fn+" ")
			if primary && (!strings.Contains(f.Site.Frame, "/test/targets/leaky/") || f.Site.WaitReason != c.reason) {
				t.Errorf("site %+v: want the frame in test/targets/leaky and wait reason %q", f.Site, c.reason)
			}
			if f.Summary == "" || f.Goroutines < cfg.Leak.MinGoroutines || len(f.Example) == 0 || f.SiteID != f.Site.ID() || f.FirstSeen.IsZero() {
				t.Errorf("finding lacks evidence: summary %q, %d goroutines (want >= %d), %d example frames, site id %q",
					f.Summary, f.Goroutines, cfg.Leak.MinGoroutines, len(f.Example), f.SiteID)
			}
			if primary && f.Kind == findings.KindLeak && (f.GrowthPerHour <= 0 || f.Departed > cfg.Leak.MaxDeparted || f.DistinctObjects < cfg.Leak.MinGoroutines) {
				t.Errorf("leak evidence: +%.0f/h, %.2f departed, %d distinct objects (want one per leaked goroutine)", f.GrowthPerHour, f.Departed, f.DistinctObjects)
			}
			if len(f.Objects) == 0 {
				t.Errorf("finding lists no object waited on")
			}
			for _, o := range f.Objects {
				if !primary {
					break
				}
				if err := c.object(o); err != nil {
					t.Errorf("object %+v: %v", o.BlockedOn, err)
				}
			}
			if c.check != nil {
				if err := c.check(f); err != nil {
					t.Error(err)
				}
			}
			if c.hold > 0 {
				// Found in the last snapshot, and in 80% of those since
				// the first time.
				n := strings.Count(string(held), "F")
				t.Logf("found in %d of %d snapshots since, to %s: %s", n, len(held), last.elapsed.Round(time.Second), held)
				if held[len(held)-1] != 'F' || n*5 < len(held)*4 {
					t.Errorf("the %s finding did not stay while the leak went on: found in %d of %d snapshots since it was first (%s)\n%s", c.kind, n, len(held), held, trail)
				}
			}
			if t.Failed() {
				t.Logf("%+v\n%s", f, groupsText(last, 10))
			}
		})
	}
}

// TestE2EAllAsleep: a program whose goroutines are all parked on mutexes,
// a wait group and a channel, which the runtime does not report because a
// timer is pending, is found all asleep.
func TestE2EAllAsleep(t *testing.T) {
	needsRoot(t)
	t.Parallel()
	bin := targettest.Build(t, "leaky", targettest.BuildOpts{})
	var found *findings.Finding
	var at time.Duration
	var others []string
	last := watch(t, bin, leakBound, func(o observation) bool {
		for i, f := range o.findings {
			if f.Kind == findings.KindAllAsleep {
				found, at = &o.findings[i], o.elapsed
			} else {
				others = append(others, f.Kind+": "+f.Summary)
			}
		}
		return found != nil
	}, "-mode", "deadlock")
	if len(others) > 0 {
		t.Errorf("other findings: %s", strings.Join(others, "\n"))
	}
	if found == nil {
		t.Fatalf("no all-asleep finding within %s\n%s", leakBound, groupsText(last, 10))
	}
	f := *found
	t.Logf("all-asleep found %s after the first snapshot: %s", at.Round(time.Second), f.Summary)
	// main, the two transfers and the reporter.
	if f.Goroutines != 4 || f.Summary == "" || f.OldestSeconds < e2eConfig().AllAsleep.MinWait.Seconds() {
		t.Errorf("finding %d goroutines asleep for %.1fs (want 4, >= 5s): %s", f.Goroutines, f.OldestSeconds, f.Summary)
	}
	sites := []string{f.Site.Frame}
	for _, r := range f.Related {
		sites = append(sites, r.Frame)
	}
	for _, fn := range []string{"main.transfer ", "main.deadlock ", "main.reportTransfers "} {
		ok := false
		for _, s := range sites {
			ok = ok || strings.HasPrefix(s, fn)
		}
		if !ok {
			t.Errorf("sites %q lack %s", sites, fn)
		}
	}
}

// TestE2EHealthy: the healthy modes of the leaky target give no finding
// in healthyRun.
func TestE2EHealthy(t *testing.T) {
	needsRoot(t)
	bin := targettest.Build(t, "leaky", targettest.BuildOpts{})
	for _, c := range []struct {
		name, mode string
		args       []string
		// least is the most goroutines a snapshot must have shown at
		// least: the workload ran.
		least int
	}{
		// 2000 workers on one channel, a job every ms: each worker waits
		// about 2 s for its next job (the receive queue is FIFO).
		{"pool", "pool", []string{"-workers", "2000", "-rate", "1000"}, 2000},
		// The same pool fed 100 jobs a second: each worker waits about
		// 20 s for its turn, longer than Stuck.MinWait, while the queue
		// moves (100 leave it a second). It fails while the stuck rule
		// takes idle workers for stuck ones; with the default thresholds
		// (5 min) that is a 2000-worker pool fed under 6.7 jobs a second,
		// or any pool of 10 workers idle for 5 min.
		{"pool-slow", "pool", []string{"-workers", "2000", "-rate", "100"}, 2000},
		{"churn", "churn", []string{"-rate", "3000"}, 40},
		{"burst", "burst", []string{"-fanout", "1000", "-every", "20s", "-park", "5s"}, 1000},
		{"readers", "readers", []string{"-conns", "200"}, 200},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			seen := map[string]findings.Finding{}
			var order []string
			most := 0
			var firstAt time.Duration
			last := watch(t, bin, healthyRun, func(o observation) bool {
				most = max(most, len(o.snap.Goroutines))
				for _, f := range o.findings {
					if _, ok := seen[f.ID]; !ok {
						order = append(order, f.ID)
						t.Logf("%s: %s finding: %s", o.elapsed.Round(time.Second), f.Kind, f.Summary)
					}
					seen[f.ID] = f
				}
				if len(order) > 0 && firstAt == 0 {
					firstAt = max(o.elapsed, time.Nanosecond)
				}
				// Once wrong, a few more seconds show what else goes wrong.
				return firstAt > 0 && o.elapsed >= firstAt+5*time.Second
			}, append([]string{"-mode", c.mode}, c.args...)...)
			t.Logf("at most %d goroutines in a snapshot; %s", most, groupsText(last, 6))
			if most < c.least {
				t.Errorf("at most %d goroutines in a snapshot, want at least %d: the workload did not run", most, c.least)
			}
			for _, id := range order {
				f := seen[id]
				t.Errorf("healthy %s (%s) gave a %s finding at %s: %s", c.mode, strings.Join(c.args, " "), f.Kind, f.Site.Label(), f.Summary)
			}
		})
	}
}
