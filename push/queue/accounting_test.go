package queue

import (
	"bytes"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"

	"github.com/goroscope/goroscope/test/eventually"
)

// waitEmpty waits until every item is delivered or dropped.
func (h *harness) waitEmpty() {
	h.t.Helper()
	eventually.Succeeds(h.t, 10*time.Second, func() error {
		if n := h.q.Len(); n > 0 {
			return fmt.Errorf("%d items still queued", n)
		}
		return nil
	})
}

// checkAccounted asserts the queue's books balance: every item offered to
// Enqueue is sent, dropped with a reason or still queued.
func checkAccounted(t *testing.T, h *harness) (enqueued, sent, dropped int) {
	t.Helper()
	enqueued = int(testutil.ToFloat64(h.m.EnqueuedItems.WithLabelValues("fake")))
	sent = int(testutil.ToFloat64(h.m.SentItems.WithLabelValues("fake")))
	ch := make(chan prometheus.Metric, 64)
	go func() { h.m.DroppedItems.Collect(ch); close(ch) }()
	for m := range ch { // every reason, without creating series
		var d dto.Metric
		if err := m.Write(&d); err != nil {
			t.Fatal(err)
		}
		dropped += int(d.GetCounter().GetValue())
	}
	if queued := h.q.Len(); enqueued != sent+dropped+queued {
		t.Fatalf("enqueued %d != sent %d + dropped %d + queued %d", enqueued, sent, dropped, queued)
	}
	return enqueued, sent, dropped
}

// A send that fails after part of its batch was delivered (a split batch
// whose later request failed) or after dropping invalid items: the done part
// is acknowledged and counted once, only the rest is retried.
func TestPartialDeliveryAcknowledgesDonePart(t *testing.T) {
	cases := []struct {
		name    string
		script  []step
		invalid int
	}{
		{"done 4 then 503", []step{{status: 503, done: 4}}, 0},
		{"done 4 (2 invalid) then 503", []step{{status: 503, done: 4, invalid: 2}}, 2},
		{"done 3 then 503, done 2 then 429", []step{{status: 503, done: 3}, {status: 429, done: 2, retryAfter: time.Millisecond}}, 0},
		{"all done, 3 invalid (permanent)", []step{{status: 400, done: 10, invalid: 3}}, 3},
		{"done 5 then 400: rest dropped", []step{{status: 400, done: 5}}, 0},
		{"done 2 then 400 for 3: rest sent", []step{{status: 400, done: 2, failed: 3}}, 0},
	}
	for _, spooled := range []bool{false, true} {
		for _, tc := range cases {
			t.Run(fmt.Sprintf("spool=%v/%s", spooled, tc.name), func(t *testing.T) {
				t.Parallel()
				synctest.Test(t, func(t *testing.T) {
					dir := ""
					if spooled {
						dir = t.TempDir()
					}
					c := newScriptClient(tc.script...)
					cfg := fastConfig(dir)
					cfg.Shards, cfg.MaxItemsPerBatch, cfg.MaxDelay = 1, 10, time.Second
					h := start(t, cfg, c)
					want := h.enqueue(1, 40, 0) // four full batches
					h.run()
					h.waitEmpty() // no Flush: it would send partial batches
					h.stop()
					c.mu.Lock()
					rejected := append([]string(nil), c.rejected...)
					c.mu.Unlock()
					rest := 0
					if last := tc.script[len(tc.script)-1]; last.status == 400 && last.done < 10 {
						rest = 10 - last.done // the undone part of a permanently failed batch
						if last.failed > 0 {
							rest = last.failed // or the part the failure concerned
						}
					}
					if len(rejected) != tc.invalid+rest {
						t.Fatalf("%d items rejected, want %d", len(rejected), tc.invalid+rest)
					}
					if n := h.dropped("invalid"); n != tc.invalid {
						t.Fatalf("dropped invalid = %d, want %d", n, tc.invalid)
					}
					if n := h.dropped("non_retryable_4xx"); n != rest {
						t.Fatalf("dropped non_retryable_4xx = %d, want %d", n, rest)
					}
					var delivered []string
					for _, w := range want {
						if !strings.Contains(strings.Join(rejected, " "), w) {
							delivered = append(delivered, w)
						}
					}
					checkExactlyOnce(t, c, delivered, true)
					enq, sent, dropped := checkAccounted(t, h)
					if enq != len(want) || sent != len(delivered) || dropped != len(rejected) {
						t.Fatalf("enqueued %d sent %d dropped %d; want %d %d %d", enq, sent, dropped, len(want), len(delivered), len(rejected))
					}
				})
			})
		}
	}
}

// Rejections and budget drops are logged at most once a minute per reason,
// with the server's message, and every one is counted.
func TestDropsLoggedOncePerMinute(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		var buf bytes.Buffer
		log := slog.New(slog.NewTextHandler(&buf, nil))
		c := newScriptClient(step{status: 400}, step{status: 400}, step{status: 422})
		cfg := fastConfig(t.TempDir())
		cfg.Shards, cfg.MaxItemsPerBatch, cfg.MaxDelay = 1, 10, time.Second
		cfg.SpoolMaxBytes = 20 * (8 + keyLen + 9) // 20 records of item(k, i)
		m, err := NewMetrics(nil)
		if err != nil {
			t.Fatal(err)
		}
		q, err := New(cfg, c, m, log)
		if err != nil {
			t.Fatal(err)
		}
		h := &harness{t: t, q: q, m: m, c: c}
		h.enqueue(1, 50, 0) // 30 evicted unread, one at a time: one spool_full log line
		h.run()
		h.flush()
		h.enqueue(1, 20, 100) // a third rejection (422), then accepted
		h.flush()
		h.stop()
		if n := h.dropped("spool_full"); n != 30 {
			t.Fatalf("dropped spool_full = %d, want 30", n)
		}
		c.mu.Lock()
		rejected := len(c.rejected)
		c.mu.Unlock()
		if n := h.dropped("non_retryable_4xx"); n != rejected || n < 3 {
			t.Fatalf("dropped non_retryable_4xx = %d, want the %d items of the three rejected requests", n, rejected)
		}
		out := buf.String()
		lines := strings.Count(out, "\n")
		if got := strings.Count(out, "reason=non_retryable_4xx"); got != 1 || !strings.Contains(out, "scripted failure") || !strings.Contains(out, "HTTP 400") {
			t.Fatalf("4xx logged %d times (want 1, with the server's message):\n%s", got, out)
		}
		if got := strings.Count(out, "reason=spool_full"); got != 1 || !strings.Contains(out, "items=1 ") {
			t.Fatalf("spool_full logged %d times (want 1, for the first eviction):\n%s", got, out)
		}
		if lines != 2 {
			t.Fatalf("%d log lines, want 2:\n%s", lines, out)
		}
		if _, sent, dropped := checkAccounted(t, h); dropped != 30+rejected || sent != 40-rejected {
			t.Fatalf("dropped %d sent %d, want %d and %d", dropped, sent, 30+rejected, 40-rejected)
		}
	})
}

// While the endpoint is down, the read-ahead (what the senders hold in
// memory, beyond the memory ring when there is no spool) is bounded by
// MemoryBytes plus one item, however many items wait; on recovery every
// item arrives once.
func TestReadAheadBoundedByBytes(t *testing.T) {
	for _, spooled := range []bool{false, true} {
		t.Run(fmt.Sprintf("spool=%v", spooled), func(t *testing.T) {
			t.Parallel()
			synctest.Test(t, func(t *testing.T) {
				dir := ""
				if spooled {
					dir = t.TempDir()
				}
				c := newScriptClient()
				c.setDown(time.Hour)
				cfg := fastConfig(dir)
				cfg.MaxItemsPerBatch, cfg.MemoryItems, cfg.MemoryBytes = 50, 1000, 4<<10
				h := start(t, cfg, c)
				h.run()
				var want []string
				peak := int64(0)
				for i := range 300 {
					it := fmt.Sprintf("k%d-%06d-%s", i%8, i, strings.Repeat("x", 200))
					if err := h.q.Enqueue([]byte(it), uint64(i%8)); err != nil {
						t.Fatal(err)
					}
					want = append(want, it)
					if i%10 == 0 {
						time.Sleep(time.Millisecond) // the bubble's clock moves: shards retry between enqueues
					}
					peak = max(peak, h.q.inBytes.Load())
				}
				synctest.Wait() // the dispatcher has read ahead all it may
				peak = max(peak, h.q.inBytes.Load())
				if peak > cfg.MemoryBytes+int64(len(want[0])) || peak < cfg.MemoryBytes/2 {
					t.Fatalf("read-ahead peaked at %d bytes; want at most MemoryBytes %d plus one item (and to use it)", peak, cfg.MemoryBytes)
				}
				c.setDown(0)
				h.flush()
				h.stop()
				checkExactlyOnce(t, c, want, false)
				checkAccounted(t, h)
			})
		})
	}
}
