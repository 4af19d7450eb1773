package inproc

import (
	"fmt"
	"io"
	"math"
	"runtime"
	"runtime/metrics"
	"runtime/pprof"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/goroscope/goroscope/pkg/fold"
	"github.com/goroscope/goroscope/push/pyroscope"
	"github.com/goroscope/goroscope/test/eventually"
)

// park starts n goroutines blocked in channel receives, 64 per channel, in
// four distinct stacks (4, 8, 12 or 16 frames of recursion above the
// receive), like the agent benchmarks' latency target, and returns once all
// have reached the receive. The returned function releases them and waits
// until they are gone; it also runs when the test ends.
func park(tb testing.TB, n int) func() {
	tb.Helper()
	var wg sync.WaitGroup
	var ready atomic.Int64
	var chans []chan struct{}
	for i := 0; i < n; i++ {
		if i%64 == 0 {
			chans = append(chans, make(chan struct{}))
		}
		ch := chans[len(chans)-1]
		depth := 4 * (1 + i%4)
		wg.Go(func() { recurse(depth, ch, &ready) })
	}
	var once sync.Once
	release := func() {
		once.Do(func() {
			for _, ch := range chans {
				close(ch)
			}
			wg.Wait()
		})
	}
	tb.Cleanup(release)
	eventually.Succeeds(tb, 10*time.Second, func() error {
		if r := ready.Load(); r < int64(n) {
			return fmt.Errorf("%d of %d goroutines parked", r, n)
		}
		return nil
	})
	return release
}

//go:noinline
func recurse(depth int, ch chan struct{}, ready *atomic.Int64) {
	if depth > 0 {
		recurse(depth-1, ch, ready)
		return
	}
	ready.Add(1)
	<-ch
}

// pauseMetric is the runtime's histogram of non-GC stop-the-world pauses
// (from the request to stop until the world restarts).
const pauseMetric = "/sched/pauses/total/other:seconds"

// pauses reads the pause histogram.
func pauses() *metrics.Float64Histogram {
	s := []metrics.Sample{{Name: pauseMetric}}
	metrics.Read(s)
	return s[0].Value.Float64Histogram()
}

// pauseDelta summarises the pauses recorded between two readings: how many,
// their total (bucket midpoints) and the upper bound of the longest.
func pauseDelta(before, after *metrics.Float64Histogram) (n uint64, total, longest float64) {
	for i := range after.Counts {
		d := after.Counts[i] - before.Counts[i]
		if d == 0 {
			continue
		}
		lo, hi := after.Buckets[i], after.Buckets[i+1]
		if math.IsInf(hi, 1) {
			hi = lo
		}
		if math.IsInf(lo, -1) {
			lo = 0
		}
		n += d
		total += float64(d) * (lo + hi) / 2
		longest = max(longest, hi)
	}
	return n, total, longest
}

// BenchmarkCollect measures one goroutine collection of this process as the
// profiler does it: dump (stop-the-world), parse, fold into both profiles
// and encode them for the push. stw-ms/op is the runtime's own pause
// measure, dump-ms/op the time inside runtime.Stack.
func BenchmarkCollect(b *testing.B) {
	for _, n := range []int{1000, 10000} {
		b.Run(fmt.Sprintf("%dk", n/1000), func(b *testing.B) {
			release := park(b, n)
			defer release()
			c := newCollector(DefaultMaxDumpBytes)
			if _, _, err := c.collect(); err != nil { // size the buffer
				b.Fatal(err)
			}
			var dump time.Duration
			var bytes int
			before := pauses()
			b.ResetTimer()
			for b.Loop() {
				s, ds, err := c.collect()
				if err != nil {
					b.Fatal(err)
				}
				if _, err := pyroscope.EncodeProfile(fold.Goroutines(s)); err != nil {
					b.Fatal(err)
				}
				if _, err := pyroscope.EncodeProfile(fold.GoroutineWall(s, 10*time.Second)); err != nil {
					b.Fatal(err)
				}
				dump += ds.Pause
				bytes = ds.Bytes
				if len(s.Goroutines) < n {
					b.Fatalf("snapshot has %d goroutines, want at least %d", len(s.Goroutines), n)
				}
			}
			b.StopTimer()
			np, total, longest := pauseDelta(before, pauses())
			ops := float64(b.N)
			b.ReportMetric(float64(dump.Microseconds())/1e3/ops, "dump-ms/op")
			b.ReportMetric(total*1e3/ops, "stw-ms/op")
			b.ReportMetric(float64(np)/ops, "pauses/op")
			b.ReportMetric(longest*1e3, "max-pause-ms")
			b.ReportMetric(float64(bytes)/float64(n), "dump-bytes/goroutine")
		})
	}
}

// BenchmarkPprofDebug2 is the same dump through
// pprof.Lookup("goroutine").WriteTo(w, 2), as /debug/pprof serves it: its
// buffer starts at 1 MiB and doubles, stopping the world each time.
func BenchmarkPprofDebug2(b *testing.B) {
	for _, n := range []int{1000, 10000} {
		b.Run(fmt.Sprintf("%dk", n/1000), func(b *testing.B) {
			release := park(b, n)
			defer release()
			before := pauses()
			for b.Loop() {
				if err := pprof.Lookup("goroutine").WriteTo(io.Discard, 2); err != nil {
					b.Fatal(err)
				}
			}
			np, total, longest := pauseDelta(before, pauses())
			ops := float64(b.N)
			b.ReportMetric(total*1e3/ops, "stw-ms/op")
			b.ReportMetric(float64(np)/ops, "pauses/op")
			b.ReportMetric(longest*1e3, "max-pause-ms")
		})
	}
}

// BenchmarkGoroutineProfile is runtime.GoroutineProfile, the stop-the-world
// part of pyroscope-go's own (state-less) goroutine profile, for comparison.
func BenchmarkGoroutineProfile(b *testing.B) {
	for _, n := range []int{1000, 10000} {
		b.Run(fmt.Sprintf("%dk", n/1000), func(b *testing.B) {
			release := park(b, n)
			defer release()
			recs := make([]runtime.StackRecord, n+1000)
			before := pauses()
			for b.Loop() {
				if _, ok := runtime.GoroutineProfile(recs); !ok {
					b.Fatal("record slice too small")
				}
			}
			np, total, longest := pauseDelta(before, pauses())
			ops := float64(b.N)
			b.ReportMetric(total*1e3/ops, "stw-ms/op")
			b.ReportMetric(float64(np)/ops, "pauses/op")
			b.ReportMetric(longest*1e3, "max-pause-ms")
		})
	}
}

// BenchmarkProbeLatency observes this process every 100ms, as the agent
// benchmarks' latency section does, while a probe goroutine sleeps 1ms in a
// loop and records how late it wakes: a stop-the-world delays every wake-up
// due during it. "off" runs the probe without collections, as the baseline.
// Run with -benchtime 50x or more: one op is one 100ms period.
func BenchmarkProbeLatency(b *testing.B) {
	for _, n := range []int{1000, 10000} {
		for _, observe := range []bool{false, true} {
			name := fmt.Sprintf("%dk/off", n/1000)
			if observe {
				name = fmt.Sprintf("%dk/inproc", n/1000)
			}
			b.Run(name, func(b *testing.B) {
				release := park(b, n)
				defer release()
				c := newCollector(DefaultMaxDumpBytes)
				if _, _, err := c.collect(); err != nil {
					b.Fatal(err)
				}
				stop := make(chan struct{})
				var late []time.Duration
				var wg sync.WaitGroup
				wg.Go(func() {
					for {
						select {
						case <-stop:
							return
						default:
						}
						t0 := time.Now()
						time.Sleep(time.Millisecond)
						late = append(late, time.Since(t0)-time.Millisecond)
					}
				})
				for b.Loop() {
					start := time.Now()
					if observe {
						s, _, err := c.collect()
						if err != nil {
							b.Fatal(err)
						}
						if _, err := pyroscope.EncodeProfile(fold.Goroutines(s)); err != nil {
							b.Fatal(err)
						}
						if _, err := pyroscope.EncodeProfile(fold.GoroutineWall(s, 100*time.Millisecond)); err != nil {
							b.Fatal(err)
						}
					}
					time.Sleep(100*time.Millisecond - time.Since(start))
				}
				close(stop)
				wg.Wait()
				slices.Sort(late)
				q := func(f float64) float64 { return float64(late[int(f*float64(len(late)-1))].Microseconds()) / 1e3 }
				b.ReportMetric(q(0.5), "p50-late-ms")
				b.ReportMetric(q(0.99), "p99-late-ms")
				b.ReportMetric(q(1), "max-late-ms")
			})
		}
	}
}
