package queue

import (
	"context"
	"errors"
	"math/rand/v2"
	"net"
	"net/http"
	"time"
)

// verdict is what the retry policy decides about one failed request.
type verdict struct {
	retry bool
	wait  time.Duration
	class string // failed_requests_total label: "429", "5xx", "4xx", "timeout", "error"
	drop  string // dropped_items_total reason when !retry
}

// retryPolicy is the whole retry behaviour as data.
type retryPolicy struct {
	minBackoff, maxBackoff, maxRetryAfter time.Duration
}

// backoff is the wait before retry number attempt (0-based): exponential
// from minBackoff, capped at maxBackoff, with "equal jitter" (half fixed,
// half random) so shards that failed together do not retry together.
func (p retryPolicy) backoff(attempt int) time.Duration {
	d := p.minBackoff
	for i := 0; i < attempt && d < p.maxBackoff; i++ {
		d *= 2
	}
	d = min(d, p.maxBackoff)
	if d <= 1 {
		return d
	}
	half := d / 2
	return half + rand.N(d-half)
}

// decide classifies err (non-nil) from attempt number attempt. A
// *SendError says whether to retry; any other error (network, timeout) is
// retried. A Retry-After is honoured as a lower bound on the wait, capped
// at maxRetryAfter.
func (p retryPolicy) decide(err error, attempt int) verdict {
	v := verdict{retry: true, wait: p.backoff(attempt), class: "error"}
	var ne net.Error
	if errors.Is(err, context.DeadlineExceeded) || errors.As(err, &ne) && ne.Timeout() {
		v.class = "timeout"
	}
	var se *SendError
	if !errors.As(err, &se) {
		return v
	}
	switch {
	case se.Status == http.StatusTooManyRequests:
		v.class = "429"
	case se.Status >= 500:
		v.class = "5xx"
	case se.Status >= 400:
		v.class = "4xx"
	}
	if !se.Retryable {
		v.retry, v.wait, v.drop = false, 0, "non_retryable"
		if se.Status >= 400 && se.Status < 500 {
			v.drop = "non_retryable_4xx"
		}
		return v
	}
	if ra := min(se.RetryAfter, p.maxRetryAfter); ra > v.wait {
		v.wait = ra
	}
	return v
}
