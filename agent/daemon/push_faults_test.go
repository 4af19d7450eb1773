package daemon

import (
	"fmt"
	"regexp"
	"testing"
	"time"

	"github.com/goroscope/goroscope/pkg/httpconf"
	"github.com/goroscope/goroscope/push/endpoint"
	"github.com/goroscope/goroscope/test/eventually"
	"github.com/goroscope/goroscope/test/faults"
	"github.com/goroscope/goroscope/test/targettest"
)

// The fault-injection tests run the agent on a population target with
// both kinds of push endpoint pointed at a fault-injecting receiver
// (test/faults), and do exact accounting: every item the agent enqueued for
// an endpoint (goroscope_push_enqueued_items_total: a remote-write sample,
// or one profile) is received exactly once, or counted as dropped with a
// reason; the receiver decodes every request and records each sample by
// identity (series + timestamp), so losses and duplicates both show.

// faultQueue keeps every wait of the tests in milliseconds.
func faultQueue() QueueConfig {
	return QueueConfig{
		MaxItemsPerBatch: 100, MaxDelay: Duration(20 * time.Millisecond),
		MinBackoff: Duration(10 * time.Millisecond), MaxBackoff: Duration(100 * time.Millisecond),
	}
}

// pushSetup is a target and the two fault servers the agent pushes to.
type pushSetup struct {
	tgt    *targettest.Target
	rw, py *faults.Server
}

func newPushSetup(t *testing.T) *pushSetup {
	t.Helper()
	if testing.Short() {
		t.Skip("builds a target and runs the agent against fault-injecting receivers")
	}
	return &pushSetup{
		tgt: targettest.Start(t, buildTarget(t, "population", targettest.BuildOpts{}), "-spin", "0"),
		rw:  faults.Start(t),
		py:  faults.Start(t),
	}
}

// config points the agent at the fault servers with a short cadence and
// short timeouts; q[0] is the remote-write queue, q[1] (or q[0]) the
// Pyroscope one.
func (s *pushSetup) config(dataDir string, q ...QueueConfig) func(*Config) {
	return func(cfg *Config) {
		cfg.DataDir = dataDir
		cfg.SnapshotInterval = Duration(200 * time.Millisecond)
		// Two profiles per snapshot exactly: no process_cpu profiles, which
		// come only when the target was seen on CPU.
		cfg.CPUFrequency = 0
		timeout := 500 * time.Millisecond // hung requests end here; answers come in milliseconds
		cfg.RemoteWrite = []EndpointConfig{{Name: "rw", Config: endpoint.Config{URL: s.rw.WriteURL, HTTPClientConfig: httpconf.HTTPClientConfig{Timeout: timeout}}, Queue: q[0]}}
		cfg.Pyroscope = []EndpointConfig{{Name: "py", Config: endpoint.Config{URL: s.py.URL, HTTPClientConfig: httpconf.HTTPClientConfig{Timeout: timeout}}, Queue: q[len(q)-1]}}
	}
}

// setMode switches both servers.
func (s *pushSetup) setMode(t *testing.T, m faults.Mode) {
	t.Helper()
	for _, srv := range []*faults.Server{s.rw, s.py} {
		if err := srv.SetMode(m); err != nil {
			t.Fatal(err)
		}
	}
}

// books are one endpoint's push metrics.
type books struct {
	enqueued, sent, queued, retries int
	dropped, failed                 map[string]int // by reason, by class
}

func (b books) droppedTotal() int {
	n := 0
	for _, v := range b.dropped {
		n += v
	}
	return n
}

func (b books) String() string {
	return fmt.Sprintf("enqueued %d, sent %d, queued %d, dropped %v, failed %v, retries %d",
		b.enqueued, b.sent, b.queued, b.dropped, b.failed, b.retries)
}

// readBooks gathers the endpoint's push metrics and the snapshot count
// from the agent's registry (also after the agent stopped).
func readBooks(t *testing.T, a *Agent, endpoint string) (books, int) {
	t.Helper()
	fams, err := a.metrics.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	b := books{dropped: map[string]int{}, failed: map[string]int{}}
	snapshots := 0
	for _, f := range fams {
		for _, m := range f.Metric {
			l := map[string]string{}
			for _, p := range m.Label {
				l[p.GetName()] = p.GetValue()
			}
			v := int(m.GetCounter().GetValue() + m.GetGauge().GetValue())
			if f.GetName() == "goroscope_snapshots_total" {
				snapshots += v
				continue
			}
			if l["endpoint"] != endpoint {
				continue
			}
			switch f.GetName() {
			case "goroscope_push_enqueued_items_total":
				b.enqueued = v
			case "goroscope_push_sent_items_total":
				b.sent = v
			case "goroscope_push_queue_items":
				b.queued = v
			case "goroscope_push_retries_total":
				b.retries = v
			case "goroscope_push_dropped_items_total":
				b.dropped[l["reason"]] = v
			case "goroscope_push_failed_requests_total":
				b.failed[l["class"]] = v
			}
		}
	}
	return b, snapshots
}

// received is what a server ingested, by protocol.
func received(c faults.Counts) (unique, dups int) {
	return c.Samples + c.Profiles, c.SampleDups + c.ProfileDups + c.IDDups
}

// quiesce stops the target and waits until the agent has nothing left to
// send: no process watched, nothing queued for either endpoint, and the
// enqueued counts unchanged for 600ms (three snapshot intervals).
func quiesce(t *testing.T, s *pushSetup, a *Agent) {
	t.Helper()
	s.tgt.Stop()
	last, since := -1, time.Now()
	eventually.Succeeds(t, 30*time.Second, func() error {
		rw, _ := readBooks(t, a, "rw")
		py, _ := readBooks(t, a, "py")
		a.mu.Lock()
		watched := len(a.procs)
		a.mu.Unlock()
		if n := rw.enqueued + py.enqueued; watched != 0 || rw.queued != 0 || py.queued != 0 || n != last {
			last, since = n, time.Now()
		}
		if time.Since(since) < 600*time.Millisecond {
			return fmt.Errorf("agent did not drain: %d processes watched; rw %v; py %v", watched, rw, py)
		}
		return nil
	})
}

// checkBooks asserts one endpoint's exact accounting against its server:
// what the agents enqueued was received once, or dropped with a reason.
func checkBooks(t *testing.T, name string, srv *faults.Server, bs ...books) {
	t.Helper()
	var total books
	total.dropped = map[string]int{}
	for _, b := range bs {
		total.enqueued += b.enqueued
		total.sent += b.sent
		total.queued = b.queued // the last agent's
		for r, v := range b.dropped {
			total.dropped[r] += v
		}
	}
	c := srv.Counts()
	got, dups := received(c)
	t.Logf("%s over %d agent run(s): enqueued %d, sent %d, dropped %v; server: %d received once, %d duplicates, %d rejected, answered %v",
		name, len(bs), total.enqueued, total.sent, total.dropped, got, dups, c.RejectedSamples+c.RejectedProfiles, c.Answered)
	if len(c.Errors) > 0 {
		t.Errorf("%s: the server could not decode requests: %v", name, c.Errors)
	}
	if dups != 0 || c.RejectedAgain != 0 {
		t.Errorf("%s: %d duplicates, %d rejected items sent again", name, dups, c.RejectedAgain)
	}
	if total.queued != 0 {
		t.Errorf("%s: %d items still queued", name, total.queued)
	}
	if got != total.sent || got != total.enqueued-total.droppedTotal() {
		t.Errorf("%s: received %d, sent %d, enqueued %d - dropped %d = %d: the books do not balance",
			name, got, total.sent, total.enqueued, total.droppedTotal(), total.enqueued-total.droppedTotal())
	}
	if got == 0 {
		t.Errorf("%s: nothing received", name)
	}
}

// TestAgentPushFaults runs the agent through every fault on both endpoints
// while it keeps snapshotting: 500, 503, 429 with Retry-After, hanging
// requests, reset connections, 400, and the endpoint down then back on the
// same port. Nothing is lost or duplicated; exactly the items of requests
// answered 400 are dropped (non_retryable_4xx), and the failures the agent
// counts by class are exactly the requests the servers failed.
func TestAgentPushFaults(t *testing.T) {
	s := newPushSetup(t)
	run := startAgent(t, s.config(t.TempDir(), faultQueue()))
	waitFor := func(what string, cond func() bool) {
		t.Helper()
		eventually.Succeeds(t, 15*time.Second, func() error {
			if cond() {
				return nil
			}
			return fmt.Errorf("%s (rw answered %v, py answered %v)", what, s.rw.Counts().Answered, s.py.Counts().Answered)
		})
	}
	waitFor("first deliveries", func() bool { return s.rw.Counts().Requests > 0 && s.py.Counts().Requests > 0 })
	for _, mode := range []faults.Mode{faults.Status500, faults.OK, faults.Status503, faults.TooMany, faults.OK, faults.Hang,
		faults.Reset, faults.OK, faults.BadRequest, faults.OK, faults.Down, faults.OK} {
		rwBefore, pyBefore := s.rw.Counts().Answered[mode], s.py.Counts().Answered[mode]
		if mode == faults.Down {
			_, snaps := readBooks(t, run.a, "rw")
			s.setMode(t, mode)
			waitFor("five snapshots' worth of data in the spools", func() bool {
				rw, now := readBooks(t, run.a, "rw")
				py, _ := readBooks(t, run.a, "py")
				return now >= snaps+5 && rw.queued > 0 && py.queued > 0
			})
			continue
		}
		s.setMode(t, mode)
		waitFor(fmt.Sprintf("two requests answered %s by each server", mode), func() bool {
			return s.rw.Counts().Answered[mode] >= rwBefore+2 && s.py.Counts().Answered[mode] >= pyBefore+2
		})
	}
	// Every per-endpoint self-metric is served.
	body := get(t, run.base+"/metrics")
	for _, ep := range []string{"rw", "py"} {
		for _, m := range []string{"enqueued_items_total", "sent_items_total", "sent_batches_total", "sent_bytes_total",
			"failed_requests_total", "retries_total", "dropped_items_total", "queue_items", "spool_bytes",
			"last_success_timestamp_seconds", "request_duration_seconds_bucket"} {
			if !regexp.MustCompile(`(?m)^goroscope_push_` + m + `\{[^}]*endpoint="` + ep + `"`).MatchString(body) {
				t.Errorf("/metrics lacks goroscope_push_%s for endpoint %s", m, ep)
			}
		}
	}
	quiesce(t, s, run.a)
	run.stop()

	for _, ep := range []struct {
		name string
		srv  *faults.Server
	}{{"rw", s.rw}, {"py", s.py}} {
		b, snapshots := readBooks(t, run.a, ep.name)
		t.Logf("%s: %v; %d snapshots", ep.name, b, snapshots)
		checkBooks(t, ep.name, ep.srv, b)
		c := ep.srv.Counts()
		if ep.name == "py" && b.enqueued != 2*snapshots {
			t.Errorf("py: enqueued %d profiles for %d snapshots; want two per snapshot", b.enqueued, snapshots)
		}
		rejected := c.RejectedSamples + c.RejectedProfiles
		if b.dropped["non_retryable_4xx"] != rejected || b.droppedTotal() != rejected || rejected == 0 {
			t.Errorf("%s: dropped %v; want exactly the %d items the server rejected, as non_retryable_4xx", ep.name, b.dropped, rejected)
		}
		for _, f := range []struct {
			class string
			want  int
		}{
			{"5xx", c.Answered[faults.Status500] + c.Answered[faults.Status503]},
			{"429", c.Answered[faults.TooMany]},
			{"4xx", c.Answered[faults.BadRequest]},
			{"timeout", c.Answered[faults.Hang]},
		} {
			if b.failed[f.class] != f.want || f.want == 0 {
				t.Errorf("%s: failed_requests_total{class=%q} = %d; the server failed %d requests that way", ep.name, f.class, b.failed[f.class], f.want)
			}
		}
		if b.failed["error"] < c.Answered[faults.Reset]+1 { // resets, plus at least one refused connection while down
			t.Errorf("%s: failed_requests_total{class=\"error\"} = %d; the server reset %d requests and was down", ep.name, b.failed["error"], c.Answered[faults.Reset])
		}
	}
}

// TestAgentPushRestartMidOutage stops the agent (as SIGTERM does) while
// both endpoints are down, starts a new agent on the same data directory
// and brings the endpoints back: what the first agent spooled arrives
// exactly once, with everything the second produced.
func TestAgentPushRestartMidOutage(t *testing.T) {
	s := newPushSetup(t)
	dataDir := t.TempDir()
	s.setMode(t, faults.Down)
	first := startAgent(t, s.config(dataDir, faultQueue()))
	eventually.Succeeds(t, 20*time.Second, func() error {
		if py, snaps := readBooks(t, first.a, "py"); snaps < 4 || py.failed["error"] == 0 {
			return fmt.Errorf("first agent: %d snapshots, py %v; want 4 snapshots and failed sends", snaps, py)
		}
		return nil
	})
	first.stop()
	rw1, _ := readBooks(t, first.a, "rw")
	py1, _ := readBooks(t, first.a, "py")
	t.Logf("first agent stopped with rw %v; py %v", rw1, py1)
	if rw1.sent+py1.sent != 0 || rw1.queued != rw1.enqueued || py1.queued != py1.enqueued || rw1.enqueued == 0 {
		t.Fatalf("first agent while down: rw %v; py %v; want everything queued", rw1, py1)
	}

	second := startAgent(t, s.config(dataDir, faultQueue()))
	rw2, _ := readBooks(t, second.a, "rw")
	py2, _ := readBooks(t, second.a, "py")
	if rw2.queued < rw1.queued || py2.queued < py1.queued {
		t.Fatalf("second agent resumed %d and %d queued items; the first left %d and %d", rw2.queued, py2.queued, rw1.queued, py1.queued)
	}
	s.setMode(t, faults.OK)
	// The second agent delivers what both spooled, with what it snapshots.
	eventually.Succeeds(t, 20*time.Second, func() error {
		rw, _ := readBooks(t, second.a, "rw")
		py, _ := readBooks(t, second.a, "py")
		if rw.sent < rw1.queued || py.sent < py1.queued {
			return fmt.Errorf("second agent sent rw %d, py %d; the first left %d and %d queued", rw.sent, py.sent, rw1.queued, py1.queued)
		}
		return nil
	})
	quiesce(t, s, second.a)
	second.stop()
	rw2, _ = readBooks(t, second.a, "rw")
	py2, _ = readBooks(t, second.a, "py")
	checkBooks(t, "rw", s.rw, rw1, rw2)
	checkBooks(t, "py", s.py, py1, py2)
	for _, b := range []books{rw1, rw2, py1, py2} {
		if b.droppedTotal() != 0 {
			t.Errorf("dropped %v; nothing may be dropped across a restart", b.dropped)
		}
	}
}

// TestAgentPushSpoolBudget keeps the endpoints down past a tiny spool
// budget: the oldest items are dropped (spool_full), and the dropped count
// is exactly what did not arrive.
func TestAgentPushSpoolBudget(t *testing.T) {
	s := newPushSetup(t)
	rwq, pyq := faultQueue(), faultQueue()
	rwq.SpoolMaxBytes = 16 << 10 // about two snapshots
	// A few profiles; small batches keep few more in the sender's hands.
	pyq.SpoolMaxBytes, pyq.MaxItemsPerBatch = 8<<10, 4
	s.setMode(t, faults.Down)
	run := startAgent(t, s.config(t.TempDir(), rwq, pyq))
	eventually.Succeeds(t, 20*time.Second, func() error {
		rw, _ := readBooks(t, run.a, "rw")
		py, _ := readBooks(t, run.a, "py")
		if rw.dropped["spool_full"] < 300 || py.dropped["spool_full"] < 6 { // a few snapshots past the budget
			return fmt.Errorf("too few spool_full drops with the endpoints down: rw %v; py %v", rw, py)
		}
		return nil
	})
	s.setMode(t, faults.OK)
	quiesce(t, s, run.a)
	run.stop()
	for _, ep := range []struct {
		name string
		srv  *faults.Server
	}{{"rw", s.rw}, {"py", s.py}} {
		b, _ := readBooks(t, run.a, ep.name)
		checkBooks(t, ep.name, ep.srv, b)
		got, _ := received(ep.srv.Counts())
		if b.dropped["spool_full"] != b.enqueued-got || b.droppedTotal() != b.dropped["spool_full"] {
			t.Errorf("%s: dropped %v; want spool_full = enqueued %d - received %d = %d", ep.name, b.dropped, b.enqueued, got, b.enqueued-got)
		}
	}
}
