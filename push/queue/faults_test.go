package queue_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/pprof/profile"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/prometheus/prompb"

	"github.com/goroscope/goroscope/pkg/httpconf"
	"github.com/goroscope/goroscope/push/endpoint"
	"github.com/goroscope/goroscope/push/pyroscope"
	"github.com/goroscope/goroscope/push/queue"
	"github.com/goroscope/goroscope/push/remotewrite"
	"github.com/goroscope/goroscope/test/eventually"
	"github.com/goroscope/goroscope/test/faults"
)

// TestExactlyOnceThroughFaults drives a queue with a real wire client
// against the fault-injecting receiver through every kind of failure while
// items keep coming, then checks the books on both sides: every item
// enqueued arrived exactly once or was dropped with a reason (only the 400
// answers drop), and the failures the queue counted by class are exactly
// the requests the server failed.
func TestExactlyOnceThroughFaults(t *testing.T) {
	if testing.Short() {
		t.Skip("a few seconds of injected faults")
	}
	t.Parallel()
	protocols := []struct {
		name   string
		client func(t *testing.T, s *faults.Server) queue.Client
		item   func(t *testing.T, i int) []byte
		shards int
	}{
		{"remote-write", func(t *testing.T, s *faults.Server) queue.Client {
			c, err := remotewrite.New(remotewrite.Options{Name: "ep", HTTP: endpoint.Config{URL: s.WriteURL, HTTPClientConfig: httpconf.HTTPClientConfig{Timeout: 400 * time.Millisecond}}})
			if err != nil {
				t.Fatal(err)
			}
			return c
		}, rwItem, 3},
		// Requests of at most 2 KiB: a full batch is split over several
		// requests, so failures land in the middle of batches; one shard
		// makes the scripted mid-batch failures deterministic.
		{"pyroscope split", func(t *testing.T, s *faults.Server) queue.Client {
			c, err := pyroscope.New(pyroscope.Options{Name: "ep", HTTP: endpoint.Config{URL: s.URL, HTTPClientConfig: httpconf.HTTPClientConfig{Timeout: 400 * time.Millisecond}}, MaxRequestBytes: 2 << 10})
			if err != nil {
				t.Fatal(err)
			}
			return c
		}, pyItem, 1},
	}
	// After a phase down, the backlog goes out in full batches, each split
	// over requests (pyroscope) and scripted to fail in the middle.
	midBatch := []faults.Mode{faults.OK, faults.Status503, faults.OK, faults.Status500, faults.OK, faults.BadRequest, faults.OK, faults.Reset}
	phases := []faults.Mode{faults.OK, faults.Status500, faults.OK, faults.Status503, faults.TooMany, faults.OK, faults.Hang,
		faults.Reset, faults.OK, faults.BadRequest, faults.Down, faults.Status503, faults.OK, faults.Down, faults.OK}
	const perPhase = 30
	for _, p := range protocols {
		t.Run(p.name, func(t *testing.T) {
			t.Parallel() // a server each; the phases wait on backoff and timeouts more than on the CPU
			srv := faults.Start(t)
			reg := prometheus.NewRegistry()
			m, err := queue.NewMetrics(reg)
			if err != nil {
				t.Fatal(err)
			}
			q, err := queue.New(queue.Config{
				MaxItemsPerBatch: 8, MaxDelay: 5 * time.Millisecond, Shards: p.shards, Ordered: p.shards > 1,
				SpoolDir: t.TempDir(), SpoolNoSync: true,
				MinBackoff: 5 * time.Millisecond, MaxBackoff: 40 * time.Millisecond, MaxRetryAfter: 2 * time.Second,
				RequestTimeout: time.Second,
			}, p.client(t, srv), m, nil)
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan error, 1)
			go func() { done <- q.Run(ctx) }()
			started := time.Now()
			n := 0
			for i, mode := range phases {
				before := srv.Counts().Answered[mode]
				refusedBefore := metric(t, reg, "goroscope_push_failed_requests_total", "class", "error")
				if i > 0 && phases[i-1] == faults.Down && mode == faults.OK {
					srv.Script(midBatch...)
				}
				if err := srv.SetMode(mode); err != nil {
					t.Fatal(err)
				}
				for range perPhase {
					if err := q.Enqueue(p.item(t, n), uint64(n%5)); err != nil {
						t.Fatal(err)
					}
					n++
					time.Sleep(time.Millisecond) // the workload: items keep coming during the phase
				}
				if mode == faults.Down {
					// Each fault must be met by at least two requests:
					// here, two refused connections.
					eventually.True(t, 5*time.Second, "two refused connections", func() bool {
						return metric(t, reg, "goroscope_push_failed_requests_total", "class", "error") >= refusedBefore+2
					})
					if b := metric(t, reg, "goroscope_push_spool_bytes"); b == 0 {
						t.Errorf("spool_bytes = 0 with the endpoint down and items waiting")
					}
					continue
				}
				eventually.True(t, 5*time.Second, fmt.Sprintf("two requests answered %s", mode), func() bool {
					return srv.Counts().Answered[mode] >= before+2
				})
			}
			fctx, fcancel := context.WithTimeout(ctx, 15*time.Second)
			err = q.Flush(fctx)
			fcancel()
			cancel()
			if rerr := <-done; rerr != nil {
				t.Fatal(rerr)
			}
			if err != nil {
				t.Fatal(err)
			}
			if err := q.Close(); err != nil {
				t.Fatal(err)
			}

			c := srv.Counts()
			val := func(name string, labels ...string) int { return metric(t, reg, name, labels...) }
			enq, sent, left := val("goroscope_push_enqueued_items_total"), val("goroscope_push_sent_items_total"), val("goroscope_push_queue_items")
			rejected := val("goroscope_push_dropped_items_total", "reason", "non_retryable_4xx")
			dropped := val("goroscope_push_dropped_items_total")
			got := c.Samples + c.Profiles
			t.Logf("%s: enqueued %d, received %d once, dropped %d (400), answered %v, %d requests ingested",
				p.name, enq, got, dropped, c.Answered, c.Requests)
			if enq != n || left != 0 {
				t.Fatalf("enqueued_items_total %d (want %d), queue_items %d after flush", enq, n, left)
			}
			if dups := c.SampleDups + c.ProfileDups + c.IDDups + c.RejectedAgain; dups != 0 || len(c.Errors) != 0 {
				t.Fatalf("%d duplicates, decoding errors %v", dups, c.Errors)
			}
			if got != sent || got+dropped != enq || dropped != rejected || rejected != c.RejectedSamples+c.RejectedProfiles {
				t.Fatalf("received %d, sent %d, dropped %d (400: %d, server rejected %d), enqueued %d: the books do not balance",
					got, sent, dropped, rejected, c.RejectedSamples+c.RejectedProfiles, enq)
			}
			if rejected == 0 || got < enq/2 {
				t.Fatalf("received %d and rejected %d of %d: the 400 phase or the recovery did not happen", got, rejected, enq)
			}
			failed := func(class string) int { return val("goroscope_push_failed_requests_total", "class", class) }
			for _, f := range []struct {
				class string
				want  int
			}{
				{"5xx", c.Answered[faults.Status500] + c.Answered[faults.Status503]},
				{"429", c.Answered[faults.TooMany]},
				{"4xx", c.Answered[faults.BadRequest]},
				{"timeout", c.Answered[faults.Hang]},
			} {
				if got := failed(f.class); got != f.want || f.want == 0 {
					t.Errorf("failed_requests_total{class=%q} = %d; the server failed %d requests that way", f.class, got, f.want)
				}
			}
			if e := failed("error"); e < c.Answered[faults.Reset] || c.Answered[faults.Reset] == 0 {
				t.Errorf("failed_requests_total{class=\"error\"} = %d; the server reset %d requests (plus refused ones)", e, c.Answered[faults.Reset])
			}
			if r := val("goroscope_push_retries_total"); r != failed("5xx")+failed("429")+failed("timeout")+failed("error") {
				t.Errorf("retries_total = %d, want every retryable failure", r)
			}
			answered := 0
			for _, v := range c.Answered {
				answered += v
			}
			sends := val("goroscope_push_request_duration_seconds")
			if p.name == "remote-write" && sends != answered+val("goroscope_push_failed_requests_total", "class", "error")-c.Answered[faults.Reset] {
				t.Errorf("request_duration_seconds counts %d sends; the server answered %d and the rest were refused", sends, answered)
			}
			if last := time.Unix(int64(val("goroscope_push_last_success_timestamp_seconds")), 0); last.Before(started.Truncate(time.Second)) {
				t.Errorf("last_success_timestamp_seconds = %v, before the test started (%v)", last, started)
			}
			if b := val("goroscope_push_spool_bytes"); b != 0 {
				t.Errorf("spool_bytes = %d after everything was delivered", b)
			}
		})
	}
}

// TestRetryAfterOverTheWire: a 429's Retry-After (whole seconds on the
// wire) holds the next attempt back even when the backoff is milliseconds.
func TestRetryAfterOverTheWire(t *testing.T) {
	if testing.Short() {
		t.Skip("waits out two Retry-After seconds per client")
	}
	t.Parallel()
	for _, c := range []struct {
		name   string
		client func(*faults.Server) (queue.Client, error)
		item   func(*testing.T, int) []byte
	}{
		{"remote-write", func(srv *faults.Server) (queue.Client, error) {
			c, err := remotewrite.New(remotewrite.Options{Name: "ep", HTTP: endpoint.Config{URL: srv.WriteURL}})
			return c, err
		}, rwItem},
		{"pyroscope", func(srv *faults.Server) (queue.Client, error) {
			c, err := pyroscope.New(pyroscope.Options{Name: "ep", HTTP: endpoint.Config{URL: srv.URL}})
			return c, err
		}, pyItem},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel() // a server each; the test waits out Retry-After seconds
			srv := faults.Start(t)
			client, err := c.client(srv)
			if err != nil {
				t.Fatal(err)
			}
			// One batch of exactly three items, however slowly the shard
			// takes them (a short MaxDelay could send the first alone).
			q, err := queue.New(queue.Config{MaxItemsPerBatch: 3, MaxDelay: time.Minute, MinBackoff: time.Millisecond, MaxBackoff: 5 * time.Millisecond}, client, nil, nil)
			if err != nil {
				t.Fatal(err)
			}
			srv.Script(faults.TooMany, faults.TooMany)
			for i := range 3 {
				if err := q.Enqueue(c.item(t, 5000+i), 0); err != nil {
					t.Fatal(err)
				}
			}
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan error, 1)
			go func() { done <- q.Run(ctx) }()
			fctx, fcancel := context.WithTimeout(ctx, 10*time.Second)
			err = q.Flush(fctx)
			fcancel()
			cancel()
			if rerr := <-done; rerr != nil || err != nil {
				t.Fatal(rerr, err)
			}
			as := srv.Answers()
			if len(as) != 3 || as[0].Mode != faults.TooMany || as[1].Mode != faults.TooMany || as[2].Mode != faults.OK {
				t.Fatalf("answers %+v; want 429, 429, ok", as)
			}
			for i := 1; i < 3; i++ {
				if gap := as[i].At.Sub(as[i-1].At); gap < time.Second {
					t.Errorf("attempt %d came %v after a 429 with Retry-After: 1", i+1, gap)
				}
			}
		})
	}
}

// metric sums the values of the named metric's series whose labels include
// the given name/value pairs.
func metric(t *testing.T, reg *prometheus.Registry, name string, labels ...string) int {
	t.Helper()
	fams, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	sum := 0.0
	for _, f := range fams {
		if f.GetName() != name {
			continue
		}
		for _, m := range f.Metric {
			if !hasLabels(m, labels) {
				continue
			}
			switch {
			case m.Counter != nil:
				sum += m.Counter.GetValue()
			case m.Gauge != nil:
				sum += m.Gauge.GetValue()
			case m.Histogram != nil:
				sum += float64(m.Histogram.GetSampleCount())
			}
		}
	}
	return int(sum)
}

func hasLabels(m *dto.Metric, kv []string) bool {
	for i := 0; i+1 < len(kv); i += 2 {
		found := false
		for _, l := range m.Label {
			if l.GetName() == kv[i] && l.GetValue() == kv[i+1] {
				found = true
			}
		}
		if !found {
			return false
		}
	}
	return true
}

func rwItem(t *testing.T, i int) []byte {
	it, err := remotewrite.EncodeSeriesMap(map[string]string{"__name__": "fault_test", "key": fmt.Sprint(i % 5)},
		[]prompb.Sample{{Timestamp: int64(1000 + i), Value: float64(i)}})
	if err != nil {
		t.Fatal(err)
	}
	return it
}

// pyItem is one profile of ~400 bytes compressed (so 2 KiB requests hold a
// few), at time i.
func pyItem(t *testing.T, i int) []byte {
	p := &profile.Profile{SampleType: []*profile.ValueType{{Type: "goroutines", Unit: "count"}}, TimeNanos: int64(1 + i)}
	for j := range 20 {
		fn := &profile.Function{ID: uint64(j + 1), Name: fmt.Sprintf("example.com/pkg.F%d_%s", j, strings.Repeat("x", i%7))}
		loc := &profile.Location{ID: uint64(j + 1), Address: uint64(0x1000 + 16*j), Line: []profile.Line{{Function: fn, Line: int64(j)}}}
		p.Function, p.Location = append(p.Function, fn), append(p.Location, loc)
		p.Sample = append(p.Sample, &profile.Sample{Location: []*profile.Location{loc}, Value: []int64{int64(i + j)}})
	}
	gz, err := pyroscope.EncodeProfile(p)
	if err != nil {
		t.Fatal(err)
	}
	it, err := pyroscope.EncodeSeries(map[string]string{"service_name": "svc", "__name__": "goroutines", "key": fmt.Sprint(i % 5)}, gz)
	if err != nil {
		t.Fatal(err)
	}
	return it
}
