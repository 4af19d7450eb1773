// Package eventually waits, in tests, for a condition that becomes true
// on its own: a target snapshotted, a request answered, a queue drained.
// It replaces hand-written deadline loops and fixed sleeps.
//
// The condition is polled at once, then at growing intervals: from a
// millisecond, doubling, up to a hundredth of the timeout (at least 10ms,
// at most 250ms), so a quick condition is seen quickly and a slow one is
// not polled in a busy loop. Inside a testing/synctest bubble the waits are
// on the bubble's fake clock.
//
// The functions taking a testing.TB call its Fatal, so they must be called
// from the test's goroutine; from another goroutine use Wait and report
// its error.
package eventually

import (
	"errors"
	"fmt"
	"testing"
	"time"
)

// True polls cond until it returns true, and fails tb after timeout,
// saying what it waited for.
func True(tb testing.TB, timeout time.Duration, what string, cond func() bool) {
	tb.Helper()
	if err := Wait(timeout, func() error {
		if cond() {
			return nil
		}
		return errors.New(what)
	}); err != nil {
		tb.Fatal(err)
	}
}

// Succeeds polls f until it returns nil, and fails tb after timeout with
// f's last error, which should say what is missing ("3 of 4 targets
// snapshotted").
func Succeeds(tb testing.TB, timeout time.Duration, f func() error) {
	tb.Helper()
	if err := Wait(timeout, f); err != nil {
		tb.Fatal(err)
	}
}

// Wait polls f until it returns nil, and returns f's last error after
// timeout, as "not within TIMEOUT: ERROR". f is called at least once.
func Wait(timeout time.Duration, f func() error) error {
	deadline := time.Now().Add(timeout)
	interval, maxInterval := time.Millisecond, min(max(timeout/100, 10*time.Millisecond), 250*time.Millisecond)
	for {
		err := f()
		if err == nil {
			return nil
		}
		left := time.Until(deadline)
		if left <= 0 {
			return fmt.Errorf("not within %v: %w", timeout, err)
		}
		time.Sleep(min(interval, left))
		interval = min(2*interval, maxInterval)
	}
}
