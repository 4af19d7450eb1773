package queue

import (
	"context"
	"net/http"
	"sync"
	"time"

	"github.com/goroscope/goroscope/push/senderr"
)

// step is one scripted response of scriptClient.
type step struct {
	status     int           // 0: success
	retryAfter time.Duration // with 429
	hang       bool          // block until the request deadline
	// done > 0 with a failing status: the first done items are finished
	// despite the failure, the first invalid of them dropped as invalid
	// (recorded in rejected) and the others delivered. failed > 0: the
	// failure concerns only the failed items after them.
	done, invalid, failed int
}

// scriptClient is a programmable Client: it answers requests from script in
// order, then fails with 503 until downUntil, then succeeds. It records
// every delivered item and every request time.
type scriptClient struct {
	mu        sync.Mutex
	script    []step
	downUntil time.Time
	delivered map[string]int
	order     []string
	requests  []time.Time
	rejected  []string // items of requests answered with a non-retryable status
	batches   int
}

func newScriptClient(script ...step) *scriptClient {
	return &scriptClient{script: script, delivered: map[string]int{}}
}

func (c *scriptClient) Name() string { return "fake" }

func (c *scriptClient) Send(ctx context.Context, items [][]byte) error {
	c.mu.Lock()
	now := time.Now()
	c.requests = append(c.requests, now)
	var s step
	if len(c.script) > 0 {
		s, c.script = c.script[0], c.script[1:]
	} else if now.Before(c.downUntil) {
		s = step{status: http.StatusServiceUnavailable}
	}
	c.mu.Unlock()
	switch {
	case s.hang:
		<-ctx.Done()
		return ctx.Err()
	case s.status != 0:
		e := senderr.StatusError(s.status, nil, "scripted failure", now)
		if s.done > 0 {
			s.done, s.invalid = min(s.done, len(items)), min(s.invalid, s.done, len(items))
			s.failed = min(s.failed, len(items)-s.done)
			e.Done, e.Invalid, e.Failed = s.done, s.invalid, s.failed
			c.mu.Lock()
			for i, it := range items[:s.done] {
				if i < s.invalid {
					c.rejected = append(c.rejected, string(it))
					continue
				}
				c.delivered[string(it)]++
				c.order = append(c.order, string(it))
			}
			c.mu.Unlock()
			items = items[s.done:]
		}
		if s.failed > 0 {
			items = items[:s.failed]
		}
		if !e.Retryable {
			c.mu.Lock()
			for _, it := range items {
				c.rejected = append(c.rejected, string(it))
			}
			c.mu.Unlock()
		}
		e.RetryAfter = s.retryAfter // sub-second: the header only carries whole seconds
		return e
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.batches++
	for _, it := range items {
		c.delivered[string(it)]++
		c.order = append(c.order, string(it))
	}
	return nil
}

func (c *scriptClient) setDown(d time.Duration) {
	c.mu.Lock()
	c.downUntil = time.Now().Add(d)
	c.mu.Unlock()
}

func (c *scriptClient) snapshot() (map[string]int, []string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	m := make(map[string]int, len(c.delivered))
	for k, v := range c.delivered {
		m[k] = v
	}
	return m, append([]string(nil), c.order...)
}
