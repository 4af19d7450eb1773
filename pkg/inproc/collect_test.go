package inproc

import (
	"os"
	"runtime"
	"testing"

	"github.com/goroscope/goroscope/pkg/snapshot"
)

// TestCollectMatchesNumGoroutine: a snapshot of this process holds exactly
// runtime.NumGoroutine goroutines (both leave system goroutines out), and
// only the collector runs.
func TestCollectMatchesNumGoroutine(t *testing.T) {
	c := newCollector(DefaultMaxDumpBytes)
	for try := 0; ; try++ {
		before := runtime.NumGoroutine()
		s, ds, err := c.collect()
		after := runtime.NumGoroutine()
		if err != nil {
			t.Fatal(err)
		}
		if before != after {
			if try == 20 {
				t.Fatalf("goroutine count never stable: %d then %d", before, after)
			}
			continue
		}
		if len(s.Goroutines) != before || s.Counts.Total() != before || s.Counts.Running != 1 || s.Dropped != 0 {
			t.Fatalf("snapshot: %d goroutines, counts %+v, dropped %d; runtime.NumGoroutine %d", len(s.Goroutines), s.Counts, s.Dropped, before)
		}
		if ds.Attempts < 1 || ds.Truncated || ds.Bytes == 0 || ds.Pause <= 0 {
			t.Errorf("dump stats %+v", ds)
		}
		if s.PID != os.Getpid() || s.Walker != WalkerName || s.GoVersion != runtime.Version() || s.Time.IsZero() || s.Duration < ds.Pause {
			t.Errorf("snapshot header %+v", s)
		}
		return
	}
}

// TestCollectSizesBuffer: after the first dump the buffer fits the
// population, so the next dump stops the world once, even after the
// population grew tenfold.
func TestCollectSizesBuffer(t *testing.T) {
	c := newCollector(DefaultMaxDumpBytes)
	release := park(t, 200)
	if _, _, err := c.collect(); err != nil {
		t.Fatal(err)
	}
	_, ds, err := c.collect()
	if err != nil || ds.Attempts != 1 {
		t.Fatalf("second dump: %+v, %v; want one attempt", ds, err)
	}
	release2 := park(t, 2000)
	s, ds, err := c.collect()
	if err != nil || ds.Attempts != 1 || len(s.Goroutines) < 2200 {
		t.Errorf("dump after growth: %+v, %d goroutines, %v; want one attempt (sized from NumGoroutine)", ds, len(s.Goroutines), err)
	}
	release2()
	release()
}

// TestCollectTruncated: a dump larger than MaxDumpBytes keeps whole
// goroutines only and counts the rest as dropped.
func TestCollectTruncated(t *testing.T) {
	release := park(t, 1000)
	defer release()
	c := newCollector(64 << 10)
	s, ds, err := c.collect()
	if err != nil {
		t.Fatalf("truncated dump must still parse: %v", err)
	}
	n := runtime.NumGoroutine()
	if !ds.Truncated || len(s.Goroutines) == 0 || len(s.Goroutines) >= n || s.Dropped == 0 || len(s.Goroutines)+s.Dropped < n-10 || len(s.Goroutines)+s.Dropped > n+10 {
		t.Fatalf("truncated: %+v; %d goroutines + %d dropped, NumGoroutine %d", ds, len(s.Goroutines), s.Dropped, n)
	}
	for _, g := range s.Goroutines {
		if g.State != snapshot.StateRunning && len(g.Frames) == 0 {
			t.Errorf("goroutine %d kept without frames", g.ID)
		}
	}
}

func TestDecodeIngest(t *testing.T) {
	item := encodeIngest("name=app%7B%7D&format=pprof", "multipart/form-data; boundary=x", []byte("body"))
	q, ct, body, err := decodeIngest(item)
	if err != nil || q != "name=app%7B%7D&format=pprof" || ct != "multipart/form-data; boundary=x" || string(body) != "body" {
		t.Fatalf("round trip: %q %q %q %v", q, ct, body, err)
	}
	for _, bad := range [][]byte{nil, {0x05, 'a'}, {0x00, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, {0x01, 'a', 0x09}} {
		if _, _, _, err := decodeIngest(bad); err == nil {
			t.Errorf("decodeIngest(%x) accepted", bad)
		}
	}
}

func FuzzDecodeIngest(f *testing.F) {
	f.Add(encodeIngest("a=b", "c", []byte("d")))
	f.Add([]byte{0x80})
	f.Fuzz(func(t *testing.T, item []byte) {
		q, ct, body, err := decodeIngest(item)
		if err == nil && len(q)+len(ct)+len(body) > len(item) {
			t.Fatalf("decoded more than the item holds")
		}
	})
}
