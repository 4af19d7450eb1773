package senderr

import (
	"fmt"
	"time"
)

// SendError is a failed send: the HTTP status (0 when no response came),
// whether the same request may succeed later, and how long the server asked
// the sender to wait (0 when it did not say).
//
// A wire client that sends one batch in several requests, or that drops
// invalid items and sends the rest, also says what of the batch is finished
// despite the error, so the queue neither sends delivered items again nor
// counts them as lost: Done items at the start of the batch are finished,
// Invalid of them were dropped by the client as invalid and the others were
// delivered. The remaining items (from Done on) failed as Status and
// Retryable say. Done == 0 means nothing of the batch was delivered. When
// a permanent failure concerns only some of the remaining items (the one
// request of a split batch that the server rejected), Failed says how many
// items after the done ones that request carried: only they are given up
// on and the rest is sent again. Failed == 0 means all the remaining items.
type SendError struct {
	Status     int
	Retryable  bool
	RetryAfter time.Duration
	Err        error
	Done       int
	Invalid    int
	Failed     int
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
	if e.Done > 0 {
		s += fmt.Sprintf(" after %d items were done (%d of them dropped as invalid)", e.Done, e.Invalid)
	}
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	return s
}

// Unwrap returns the underlying error.
func (e *SendError) Unwrap() error { return e.Err }
