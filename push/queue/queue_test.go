package queue

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/goroscope/goroscope/pkg/httpconf"
	"github.com/goroscope/goroscope/push/senderr"
	"github.com/goroscope/goroscope/test/eventually"
)

// The tests that depend on timing (batching deadlines, backoff,
// Retry-After, an endpoint down for a while) run in a synctest bubble: the
// queue's timers run on the bubble's clock, which advances only when every
// goroutine of the test waits, so the waits cost no real time and the
// timings are exact. TestRetryPolicy and faults_test.go use real sockets,
// which a bubble cannot wait for, and stay outside.

// fastConfig keeps every wait in milliseconds.
func fastConfig(spoolDir string) Config {
	return Config{
		MaxItemsPerBatch: 10, MaxDelay: 2 * time.Millisecond, Shards: 4, MemoryItems: 100,
		SpoolDir: spoolDir, SpoolNoSync: true,
		MinBackoff: time.Millisecond, MaxBackoff: 5 * time.Millisecond, MaxRetryAfter: time.Second,
		RequestTimeout: 20 * time.Millisecond, Ordered: true,
	}
}

func item(key, i int) []byte { return []byte(fmt.Sprintf("k%d-%06d", key, i)) }

type harness struct {
	t      *testing.T
	q      *Queue
	m      *Metrics
	c      *scriptClient
	cancel context.CancelFunc
	done   chan error
}

func start(t *testing.T, cfg Config, c *scriptClient) *harness {
	t.Helper()
	m, err := NewMetrics(nil)
	if err != nil {
		t.Fatal(err)
	}
	q, err := New(cfg, c, m, nil)
	if err != nil {
		t.Fatal(err)
	}
	return &harness{t: t, q: q, m: m, c: c}
}

func (h *harness) run() {
	ctx, cancel := context.WithCancel(context.Background())
	h.cancel, h.done = cancel, make(chan error, 1)
	go func() { h.done <- h.q.Run(ctx) }()
}

func (h *harness) stop() {
	h.t.Helper()
	h.cancel()
	select {
	case err := <-h.done:
		if err != nil {
			h.t.Fatalf("Run: %v", err)
		}
	case <-time.After(5 * time.Second):
		h.t.Fatal("Run did not return within 5s of cancel")
	}
}

func (h *harness) flush() {
	h.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := h.q.Flush(ctx); err != nil {
		h.t.Fatalf("Flush: %v", err)
	}
}

func (h *harness) enqueue(keys, perKey, from int) []string {
	h.t.Helper()
	var all []string
	for i := from; i < from+perKey; i++ {
		for k := 0; k < keys; k++ {
			if err := h.q.Enqueue(item(k, i), uint64(k)); err != nil {
				h.t.Fatalf("Enqueue: %v", err)
			}
			all = append(all, string(item(k, i)))
		}
	}
	return all
}

func (h *harness) dropped(reason string) int {
	return int(testutil.ToFloat64(h.m.DroppedItems.WithLabelValues("fake", reason)))
}

// checkExactlyOnce asserts every item in want was delivered exactly once,
// nothing else was, and each key's items arrived in order.
func checkExactlyOnce(t *testing.T, c *scriptClient, want []string, ordered bool) {
	t.Helper()
	got, order := c.snapshot()
	for _, w := range want {
		if got[w] != 1 {
			t.Fatalf("item %s delivered %d times, want 1", w, got[w])
		}
	}
	if len(got) != len(want) || len(order) != len(want) {
		t.Fatalf("delivered %d distinct / %d total, want %d", len(got), len(order), len(want))
	}
	if ordered {
		checkOrder(t, order)
	}
}

func checkOrder(t *testing.T, order []string) {
	t.Helper()
	last := map[string]int{}
	for _, it := range order {
		k, n, _ := strings.Cut(it, "-")
		i, _ := strconv.Atoi(n)
		if p, ok := last[k]; ok && i <= p {
			t.Fatalf("key %s: item %d delivered after %d", k, i, p)
		}
		last[k] = i
	}
}

func TestDeliveryThroughFailures(t *testing.T) {
	many := func(s step, n int) []step {
		out := make([]step, n)
		for i := range out {
			out[i] = s
		}
		return out
	}
	scripts := []struct {
		name   string
		script []step
		down   time.Duration
	}{
		{"healthy", nil, 0},
		{"500 x5", many(step{status: 500}, 5), 0},
		{"503 x5", many(step{status: 503}, 5), 0},
		{"429 retry-after", many(step{status: 429, retryAfter: 5 * time.Millisecond}, 3), 0},
		{"hang x3", many(step{hang: true}, 3), 0},
		{"down 150ms then up", nil, 150 * time.Millisecond},
	}
	for _, spooled := range []bool{false, true} {
		for _, sc := range scripts {
			t.Run(fmt.Sprintf("spool=%v/%s", spooled, sc.name), func(t *testing.T) {
				t.Parallel()
				synctest.Test(t, func(t *testing.T) {
					dir := ""
					if spooled {
						dir = t.TempDir()
					}
					c := newScriptClient(sc.script...)
					c.setDown(sc.down)
					cfg := fastConfig(dir)
					cfg.MemoryItems = 1000 // memory ring must hold everything: no drops expected here
					h := start(t, cfg, c)
					h.run()
					want := h.enqueue(8, 50, 0)
					h.flush()
					h.stop()
					checkExactlyOnce(t, c, want, true)
					if n := int(testutil.ToFloat64(h.m.SentItems.WithLabelValues("fake"))); n != len(want) {
						t.Fatalf("sent_items_total = %d, want %d", n, len(want))
					}
					if h.q.Len() != 0 || testutil.ToFloat64(h.m.QueueItems.WithLabelValues("fake")) != 0 {
						t.Fatalf("queue not empty after flush: Len %d", h.q.Len())
					}
					if enq, _, _ := checkAccounted(t, h); enq != len(want) {
						t.Fatalf("enqueued_items_total = %d, want %d", enq, len(want))
					}
					if f := testutil.CollectAndCount(h.m.DroppedItems); f != 0 {
						t.Fatalf("%d drop series, want none", f)
					}
					if sc.script != nil {
						fails := testutil.ToFloat64(h.m.Retries.WithLabelValues("fake"))
						if int(fails) != len(sc.script) {
							t.Fatalf("retries_total = %v, want %d", fails, len(sc.script))
						}
					}
					if err := h.q.Close(); err != nil {
						t.Fatal(err)
					}
				})
			})
		}
	}
}

func TestNonRetryable4xxDropsBatchOnly(t *testing.T) {
	for _, spooled := range []bool{false, true} {
		t.Run(fmt.Sprintf("spool=%v", spooled), func(t *testing.T) {
			t.Parallel()
			synctest.Test(t, func(t *testing.T) {
				dir := ""
				if spooled {
					dir = t.TempDir()
				}
				c := newScriptClient(step{status: http.StatusBadRequest})
				cfg := fastConfig(dir)
				cfg.Shards, cfg.MaxItemsPerBatch = 1, 10
				h := start(t, cfg, c)
				want := h.enqueue(1, 95, 0)
				h.run()
				h.flush()
				h.stop()
				// The rejected batch is whatever the first request carried (its
				// size depends on MaxDelay timing): exactly those are dropped.
				c.mu.Lock()
				rejected := append([]string(nil), c.rejected...)
				c.mu.Unlock()
				if len(rejected) == 0 || len(rejected) > 10 {
					t.Fatalf("first request carried %d items, want 1..10", len(rejected))
				}
				if n := h.dropped("non_retryable_4xx"); n != len(rejected) {
					t.Fatalf("dropped non_retryable_4xx = %d, want %d", n, len(rejected))
				}
				checkExactlyOnce(t, c, want[len(rejected):], true)
				for i, r := range rejected {
					if r != want[i] {
						t.Fatalf("rejected item %d = %s, want %s (the oldest)", i, r, want[i])
					}
				}
				if n := testutil.ToFloat64(h.m.FailedRequests.WithLabelValues("fake", "4xx")); n != 1 {
					t.Fatalf("failed_requests_total{4xx} = %v, want 1", n)
				}
			})
		})
	}
}

func TestRetryAfterHonoured(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		const wait = 120 * time.Millisecond
		c := newScriptClient(step{status: 429, retryAfter: wait})
		cfg := fastConfig("")
		cfg.Shards = 1
		h := start(t, cfg, c)
		h.enqueue(1, 5, 0)
		h.run()
		h.flush()
		h.stop()
		c.mu.Lock()
		reqs := append([]time.Time(nil), c.requests...)
		c.mu.Unlock()
		if len(reqs) != 2 {
			t.Fatalf("%d requests, want 2 (429 then success)", len(reqs))
		}
		if gap := reqs[1].Sub(reqs[0]); gap != wait { // the bubble's clock: exact
			t.Fatalf("retried after %v, want the Retry-After of %v (the backoff is at most 5ms)", gap, wait)
		}
	})
}

// Stop in the middle (endpoint half up, out-of-order acks across shards),
// reopen the spool with a new Queue: everything arrives exactly once.
func TestRestartResumesWithoutLossOrDuplicates(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		dir := t.TempDir()
		var script []step
		for i := 0; i < 40; i++ { // alternate failures so shards finish out of order
			script = append(script, step{}, step{status: 503})
		}
		c := newScriptClient(script...)
		cfg := fastConfig(dir)
		cfg.MinBackoff, cfg.MaxBackoff = 3*time.Millisecond, 10*time.Millisecond
		h := start(t, cfg, c)
		want := h.enqueue(8, 60, 0)
		h.run()
		eventually.True(t, time.Second, "100 items delivered", func() bool {
			got, _ := c.snapshot()
			return len(got) >= 100
		})
		h.stop()
		got1, _ := c.snapshot()
		if len(got1) == 0 || len(got1) == len(want) {
			t.Fatalf("stopped after %d of %d: the test wants a stop in the middle", len(got1), len(want))
		}
		if err := h.q.Close(); err != nil {
			t.Fatal(err)
		}
		if err := h.q.Enqueue([]byte("x"), 0); err != ErrClosed {
			t.Fatalf("Enqueue after Close = %v, want ErrClosed", err)
		}

		h2 := start(t, cfg, c) // same client: delivered counts accumulate
		if left := h2.q.Len(); left != len(want)-len(got1) {
			t.Fatalf("reopened queue holds %d items, want %d", left, len(want)-len(got1))
		}
		more := h2.enqueue(8, 10, 60)
		h2.run()
		h2.flush()
		h2.stop()
		checkExactlyOnce(t, c, append(want, more...), true)
		if err := h2.q.Close(); err != nil {
			t.Fatal(err)
		}
	})
}

// Endpoint down, spool budget too small: the oldest unsent items are dropped
// and counted exactly; the newest survive and are delivered in order.
func TestSpoolBudgetDropsOldest(t *testing.T) {
	const perRecord = 8 + keyLen + 9 // record header + key + "k0-000123"
	for _, running := range []bool{false, true} {
		t.Run(fmt.Sprintf("running=%v", running), func(t *testing.T) {
			t.Parallel()
			synctest.Test(t, func(t *testing.T) {
				c := newScriptClient()
				c.setDown(time.Hour)
				cfg := fastConfig(t.TempDir())
				cfg.SpoolMaxBytes = 100 * perRecord
				cfg.MemoryItems = 20
				h := start(t, cfg, c)
				if running {
					h.run()
					synctest.Wait() // the dispatcher and shards are up, waiting for items
				}
				want := h.enqueue(1, 1000, 0)
				if !running {
					if n := h.dropped("spool_full"); n != 900 {
						t.Fatalf("dropped spool_full = %d, want 900", n)
					}
					h.run()
				}
				c.setDown(0)
				h.flush()
				h.stop()
				got, order := c.snapshot()
				dropped := h.dropped("spool_full")
				if len(got) != len(order) || len(got)+dropped != len(want) {
					t.Fatalf("delivered %d (%d distinct) + dropped %d != enqueued %d", len(order), len(got), dropped, len(want))
				}
				for _, w := range want[len(want)-100:] { // the newest always survive
					if got[w] != 1 {
						t.Fatalf("newest item %s delivered %d times", w, got[w])
					}
				}
				checkOrder(t, order)
				checkAccounted(t, h)
			})
		})
	}
}

func TestCorruptSpoolSkippedAndCounted(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		dir := t.TempDir()
		c := newScriptClient()
		cfg := fastConfig(dir)
		h := start(t, cfg, c)
		want := h.enqueue(1, 50, 0)
		if err := h.q.Close(); err != nil {
			t.Fatal(err)
		}
		segs, _ := filepath.Glob(filepath.Join(dir, "*.seg"))
		b, err := os.ReadFile(segs[0])
		if err != nil {
			t.Fatal(err)
		}
		const rec = 8 + keyLen + 9
		b[8+20*rec+8+keyLen+3] ^= 0xff // a payload byte of item 20
		if err := os.WriteFile(segs[0], b, 0o600); err != nil {
			t.Fatal(err)
		}
		h2 := start(t, cfg, c)
		h2.run()
		h2.flush()
		h2.stop()
		checkExactlyOnce(t, c, append(append([]string(nil), want[:20]...), want[21:]...), true)
		if n := h2.dropped("corrupt_spool"); n != 1 {
			t.Fatalf("dropped corrupt_spool = %d, want 1", n)
		}
	})
}

func TestMemoryRingDropsOldestAndCountsShutdown(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		c := newScriptClient()
		cfg := fastConfig("")
		cfg.MemoryItems = 10
		h := start(t, cfg, c)
		want := h.enqueue(1, 25, 0)
		if n := h.dropped("queue_full"); n != 15 {
			t.Fatalf("dropped queue_full = %d, want 15", n)
		}
		h.run()
		h.flush()
		h.stop()
		checkExactlyOnce(t, c, want[15:], true)
		h.enqueue(1, 3, 100)
		if err := h.q.Close(); err != nil {
			t.Fatal(err)
		}
		if n := h.dropped("shutdown"); n != 3 {
			t.Fatalf("dropped shutdown = %d, want 3", n)
		}
		if enq, _, _ := checkAccounted(t, h); enq != 28 {
			t.Fatalf("enqueued_items_total = %d, want 28", enq)
		}
	})
}

// TestRetryPolicy classifies real failures of the wire layer: statuses
// through senderr.StatusError, a client timeout against a hanging server
// and a refused connection.
func TestRetryPolicy(t *testing.T) {
	now := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	status := func(code int, retryAfter string) error {
		h := http.Header{}
		if retryAfter != "" {
			h.Set("Retry-After", retryAfter)
		}
		return senderr.StatusError(code, h, "body", now)
	}
	hang := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		select {
		case <-r.Context().Done():
		case <-time.After(5 * time.Second):
		}
	}))
	defer hang.Close()
	hc, err := httpconf.NewClient(httpconf.HTTPClientConfig{Timeout: 50 * time.Millisecond}, httpconf.ClientOptions{})
	if err != nil {
		t.Fatal(err)
	}
	do := func(url string) error {
		resp, err := hc.Post(url, "text/plain", strings.NewReader("x"))
		return senderr.Classify(resp, err)
	}
	closed := httptest.NewServer(http.NotFoundHandler())
	closed.Close()

	p := retryPolicy{minBackoff: 10 * time.Millisecond, maxBackoff: 80 * time.Millisecond, maxRetryAfter: 10 * time.Second}
	cases := []struct {
		name    string
		err     error
		retry   bool
		class   string
		drop    string
		minWait time.Duration
	}{
		{"400", status(400, ""), false, "4xx", "non_retryable_4xx", 0},
		{"404", status(404, ""), false, "4xx", "non_retryable_4xx", 0},
		{"413", status(413, ""), false, "4xx", "non_retryable_4xx", 0},
		{"408", status(408, ""), true, "4xx", "", 5 * time.Millisecond},
		{"429 Retry-After 7", status(429, "7"), true, "429", "", 7 * time.Second},
		{"429 Retry-After date", status(429, "Wed, 01 Jan 2025 00:00:30 GMT"), true, "429", "", 10 * time.Second},
		{"429 Retry-After garbage", status(429, "soon"), true, "429", "", 5 * time.Millisecond},
		{"500", status(500, ""), true, "5xx", "", 5 * time.Millisecond},
		{"503 Retry-After 2", status(503, "2"), true, "5xx", "", 2 * time.Second},
		{"permanent without status", &SendError{Err: errors.New("bad item")}, false, "error", "non_retryable", 0},
		{"client timeout", do(hang.URL), true, "timeout", "", 5 * time.Millisecond},
		{"deadline", context.DeadlineExceeded, true, "timeout", "", 5 * time.Millisecond},
		{"connection refused", do(closed.URL), true, "error", "", 5 * time.Millisecond},
		{"plain error", errors.New("boom"), true, "error", "", 5 * time.Millisecond},
	}
	for _, tc := range cases {
		v := p.decide(tc.err, 0)
		if v.retry != tc.retry || v.class != tc.class || v.drop != tc.drop || v.wait < tc.minWait {
			t.Errorf("%s: decide(%v) = %+v; want retry=%v class=%s drop=%q wait>=%v", tc.name, tc.err, v, tc.retry, tc.class, tc.drop, tc.minWait)
		}
		if tc.retry && tc.minWait < time.Second && v.wait > 10*time.Millisecond {
			t.Errorf("%s: wait %v, want the first backoff (at most 10ms)", tc.name, v.wait)
		}
	}
	for attempt, max := range []time.Duration{10, 20, 40, 80, 80} {
		for range 20 {
			d := p.backoff(attempt)
			if d < max*time.Millisecond/2 || d > max*time.Millisecond {
				t.Fatalf("backoff(%d) = %v, want in [%v, %v]", attempt, d, max*time.Millisecond/2, max*time.Millisecond)
			}
		}
	}
	p.maxRetryAfter = time.Second
	if v := p.decide(status(429, "3600"), 0); v.wait != time.Second || v.class != "429" {
		t.Fatalf("Retry-After above MaxRetryAfter: %+v, want the 1s cap", v)
	}
}

func BenchmarkEnqueue(b *testing.B) {
	for _, mode := range []string{"memory", "spool", "spool+deliver"} {
		b.Run(mode, func(b *testing.B) {
			cfg := fastConfig("")
			cfg.MemoryItems, cfg.MaxItemsPerBatch = 1<<20, 500
			if mode != "memory" {
				cfg.SpoolDir, cfg.SpoolNoSync, cfg.SpoolMaxBytes = b.TempDir(), false, 1<<30
			}
			q, err := New(cfg, discard{}, nil, nil)
			if err != nil {
				b.Fatal(err)
			}
			var wg sync.WaitGroup
			ctx, cancel := context.WithCancel(context.Background())
			if mode == "spool+deliver" {
				wg.Go(func() { _ = q.Run(ctx) })
			}
			p := make([]byte, 200)
			b.SetBytes(int64(len(p)))
			i := uint64(0)
			for b.Loop() {
				i++
				if err := q.Enqueue(p, i); err != nil {
					b.Fatal(err)
				}
			}
			if mode == "spool+deliver" {
				fctx, fcancel := context.WithTimeout(ctx, time.Minute)
				if err := q.Flush(fctx); err != nil {
					b.Fatal(err)
				}
				fcancel()
			}
			cancel()
			wg.Wait()
			_ = q.Close()
		})
	}
}

type discard struct{}

func (discard) Name() string                         { return "discard" }
func (discard) Send(context.Context, [][]byte) error { return nil }
