package httpconf

import (
	"fmt"
	"time"
)

// SendError is a failed send: the HTTP status (0 when no response came),
// whether the same request may succeed later, and how long the server asked
// the sender to wait (0 when it did not say).
type SendError struct {
	Status     int
	Retryable  bool
	RetryAfter time.Duration
	Err        error
}

// Error describes the failure with its status and retry decision.
func (e *SendError) Error() string {
	kind := "permanent"
	if e.Retryable {
		kind = "retryable"
	}
	var s string
	if e.Status != 0 {
		s = fmt.Sprintf("%s failure: HTTP %d", kind, e.Status)
	} else {
		s = kind + " failure"
	}
	if e.RetryAfter > 0 {
		s += fmt.Sprintf(" (retry after %s)", e.RetryAfter)
	}
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	return s
}

// Unwrap returns the underlying error.
func (e *SendError) Unwrap() error { return e.Err }
