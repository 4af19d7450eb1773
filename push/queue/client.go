package queue

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Client sends one batch of items as one request. Items are opaque records
// (e.g. a marshalled prompb.TimeSeries or one pprof series); the client
// builds the request body from them. Send must honour ctx (the queue sets a
// per-request deadline) and must not keep items after it returns.
type Client interface {
	// Name identifies the endpoint in metrics (label endpoint) and logs.
	Name() string
	// Send delivers items in one request. Return nil on success, a
	// *SendError to classify a failure; any other error is retried.
	Send(ctx context.Context, items [][]byte) error
}

// SendError classifies a failed request.
type SendError struct {
	Status     int           // HTTP status, 0 when there was no response
	Retryable  bool          // retry the same batch after backoff
	RetryAfter time.Duration // server-requested wait before the next attempt; 0 = none
	Err        error         // the cause, including the server's message
}

// Error describes the failure with status and cause.
func (e *SendError) Error() string {
	kind := "non-retryable"
	if e.Retryable {
		kind = "retryable"
	}
	if e.Status != 0 {
		return fmt.Sprintf("%s send error (HTTP %d): %v", kind, e.Status, e.Err)
	}
	return fmt.Sprintf("%s send error: %v", kind, e.Err)
}

// Unwrap returns the cause.
func (e *SendError) Unwrap() error { return e.Err }

// maxMessage bounds how much of a response body goes into an error.
const maxMessage = 512

// StatusError classifies an HTTP response that was not 2xx, so wire clients
// share one retry policy: 429, 408 and 5xx are retryable, other statuses are
// not. retryAfter is the raw Retry-After header (seconds or HTTP date) and
// body the (possibly truncated) response body, kept as the message.
func StatusError(status int, retryAfter string, body []byte, now time.Time) *SendError {
	msg := strings.TrimSpace(string(body))
	if len(msg) > maxMessage {
		msg = msg[:maxMessage] + "…"
	}
	if msg == "" {
		msg = http.StatusText(status)
	}
	return &SendError{
		Status:     status,
		Retryable:  status == http.StatusTooManyRequests || status == http.StatusRequestTimeout || status >= 500,
		RetryAfter: ParseRetryAfter(retryAfter, now),
		Err:        errors.New(msg),
	}
}

// ParseRetryAfter reads a Retry-After header: delay-seconds or an HTTP date
// relative to now. It returns 0 for an empty, malformed or past value.
func ParseRetryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	if secs, err := strconv.ParseInt(v, 10, 64); err == nil {
		if secs <= 0 || secs > int64(24*time.Hour/time.Second) {
			return 0
		}
		return time.Duration(secs) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil && t.After(now) {
		return t.Sub(now)
	}
	return 0
}
