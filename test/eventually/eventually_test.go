package eventually

import (
	"errors"
	"fmt"
	"runtime"
	"strings"
	"testing"
	"testing/synctest"
	"time"
)

func TestWait(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		start, calls := time.Now(), 0
		err := Wait(time.Second, func() error {
			if calls++; time.Since(start) < 300*time.Millisecond {
				return errors.New("not yet")
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		// 1+2+4+8+10+10+...: polled within one capped interval (10ms for
		// a 1s timeout) of the condition becoming true.
		if d := time.Since(start); d < 300*time.Millisecond || d > 310*time.Millisecond {
			t.Errorf("returned after %v, want within 10ms of 300ms", d)
		}
		if calls < 30 || calls > 40 {
			t.Errorf("%d calls, want about 34", calls)
		}
	})
}

func TestWaitTimesOut(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		start, n := time.Now(), 0
		err := Wait(time.Minute, func() error { n++; return fmt.Errorf("%d calls", n) })
		if d := time.Since(start); d != time.Minute {
			t.Errorf("gave up after %v, want exactly the timeout", d)
		}
		if want := fmt.Sprintf("not within 1m0s: %d calls", n); err == nil || err.Error() != want {
			t.Errorf("error %v, want %q (the last call's error)", err, want)
		}
		if n > 260 { // 60s at the 250ms cap, plus the first doublings
			t.Errorf("%d calls in a minute, want about 250", n)
		}
	})
}

func TestTrueFails(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		var ft fakeTB
		done := make(chan struct{})
		go func() { // Fatal ends the goroutine, as in a test
			defer close(done)
			True(&ft, time.Second, "the moon", func() bool { return false })
		}()
		<-done
		if !strings.Contains(ft.msg, "not within 1s: the moon") {
			t.Errorf("failed with %q", ft.msg)
		}
	})
}

type fakeTB struct {
	testing.TB
	msg string
}

func (f *fakeTB) Helper() {}

func (f *fakeTB) Fatal(args ...any) {
	f.msg = fmt.Sprint(args...)
	runtime.Goexit() // as FailNow does
}
