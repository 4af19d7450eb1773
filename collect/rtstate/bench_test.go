package rtstate_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/goroscope/goroscope/collect/process"
	"github.com/goroscope/goroscope/collect/rtstate"
	"github.com/goroscope/goroscope/collect/walk"
	"github.com/goroscope/goroscope/test/targettest"
)

// BenchmarkReadVsSnapshot compares, side by side on the same target, a read of the runtime
// state with a steady-state snapshot (the userspace walk of every goroutine), the cost the
// read adds to each snapshot: the latency target with 1k and 10k parked goroutines, and the
// rtmetrics target (a dozen goroutines: the cheapest walk). Each iteration takes one snapshot
// and one read; reported are read-ns/op, snapshot-ns/op and read/snapshot-% (the budget: 5%).
func BenchmarkReadVsSnapshot(b *testing.B) {
	latency := targettest.Build(b, "latency", targettest.BuildOpts{})
	rtm := targettest.Build(b, targetName, targettest.BuildOpts{})
	cases := []struct {
		name string
		bin  string
		args []string
	}{
		{"latency-1k", latency, []string{"-goroutines", "1000", "-probe-interval", "0"}},
		{"latency-10k", latency, []string{"-goroutines", "10000", "-probe-interval", "0"}},
		{"rtmetrics", rtm, []string{"-churn", "0"}},
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			tgt := targettest.Start(b, c.bin, c.args...)
			at, err := process.Attach(tgt.PID)
			if err != nil {
				b.Fatal(err)
			}
			defer at.Close()
			r, err := rtstate.NewReader(at)
			if err != nil {
				b.Fatal(err)
			}
			defer r.Close()
			s := walk.NewSnapshotter(at, walk.ProcMemWalker{})
			ctx := context.Background()
			snap := func() {
				if _, err := s.Snapshot(ctx); err != nil {
					b.Fatal(err)
				}
			}
			read := func() {
				if _, err := r.Read(); err != nil {
					b.Fatal(err)
				}
			}
			snap() // the cold snapshot
			read()
			var tSnap, tRead time.Duration
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				t0 := time.Now()
				snap()
				t1 := time.Now()
				read()
				tSnap += t1.Sub(t0)
				tRead += time.Since(t1)
			}
			b.StopTimer()
			b.ReportMetric(float64(tRead.Nanoseconds())/float64(b.N), "read-ns/op")
			b.ReportMetric(float64(tSnap.Nanoseconds())/float64(b.N), "snapshot-ns/op")
			b.ReportMetric(100*float64(tRead)/float64(tSnap), "read/snapshot-%")
		})
	}
}

// ExampleReader is not run: it shows the use.
func ExampleReader() {
	at, err := process.Attach(12345)
	if err != nil {
		return
	}
	defer at.Close()
	r, err := rtstate.NewReader(at)
	if err != nil {
		return
	}
	defer r.Close()
	st, err := r.Read()
	if err != nil {
		return
	}
	fmt.Println(st.GOMAXPROCS, st.GOGCPercent, st.HeapGoalBytes)
}
