package daemon

import (
	"context"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/goroscope/goroscope/collect/process"
	"github.com/goroscope/goroscope/collect/walk"
	"github.com/goroscope/goroscope/test/memcg"
	"github.com/goroscope/goroscope/test/targettest"
)

// BenchmarkHealthVsWalk compares, side by side on the same target, the
// read of its runtime health (its runtime's state, and its cgroup's limits
// and counters: the target runs in a cgroup of 2 cores and 1 GiB when the
// benchmark runs as root) with the walk of its goroutines, which the
// agent makes at each snapshot. Each iteration walks once and reads once.
// Reported: walk-ns/op, read-ns/op, read/walk-% (the cost of reading at
// every snapshot), budgeted-% (the cost under runtime_health's default
// budget of 5%: a read when the walks have earned it), reads-per-100 (how
// many snapshots in 100 read the health under it) and setup-ns (preparing
// the reads, once per process).
func BenchmarkHealthVsWalk(b *testing.B) {
	latency := targettest.Build(b, "latency", targettest.BuildOpts{})
	rtm := targettest.Build(b, "rtmetrics", targettest.BuildOpts{})
	var wrap []string
	if os.Geteuid() == 0 {
		g, err := memcg.NewWith(fmt.Sprintf("goroscope-bench-%d", os.Getpid()), memcg.Limits{MemoryBytes: 1 << 30, CPUCores: 2})
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { g.Close() })
		wrap = g.Wrapper()
	}
	cases := []struct {
		name string
		bin  string
		args []string
	}{
		{"rtmetrics", rtm, []string{"-churn", "0"}},
		{"latency-1k", latency, []string{"-goroutines", "1000", "-probe-interval", "0"}},
		{"latency-10k", latency, []string{"-goroutines", "10000", "-probe-interval", "0"}},
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			tgt := targettest.StartWith(b, targettest.StartOpts{Wrap: wrap}, c.bin, c.args...)
			at, err := process.Attach(tgt.PID)
			if err != nil {
				b.Fatal(err)
			}
			defer at.Close()
			s := walk.NewSnapshotter(at, walk.ProcMemWalker{})
			ctx := context.Background()
			snap := func() time.Duration {
				t0 := time.Now()
				if _, err := s.Snapshot(ctx); err != nil {
					b.Fatal(err)
				}
				return time.Since(t0)
			}
			snap() // the cold walk
			t0 := time.Now()
			hr := NewHealthReader(at, tgt.GoVersion, nil)
			setup := time.Since(t0)
			defer hr.Close()
			read := func() time.Duration {
				t0 := time.Now()
				h := hr.Read(t0)
				took := time.Since(t0)
				if h.Runtime == nil || h.Cgroup == nil || (wrap != nil && h.Cgroup.CPUQuotaCores != 2) {
					b.Fatalf("read %+v", h)
				}
				return took
			}
			hs := &health{cost: read()} // the first read, not charged
			var tWalk, tRead, tBudget time.Duration
			budgeted := 0
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				w := snap()
				r := read()
				tWalk += w
				tRead += r
				if hs.earn(w, DefaultHealthCostPercent) {
					hs.spend(r)
					tBudget += r
					budgeted++
				}
			}
			b.StopTimer()
			b.ReportMetric(float64(tWalk.Nanoseconds())/float64(b.N), "walk-ns/op")
			b.ReportMetric(float64(tRead.Nanoseconds())/float64(b.N), "read-ns/op")
			b.ReportMetric(100*float64(tRead)/float64(tWalk), "read/walk-%")
			b.ReportMetric(100*float64(tBudget)/float64(tWalk), "budgeted-%")
			b.ReportMetric(100*float64(budgeted)/float64(b.N), "reads-per-100")
			b.ReportMetric(float64(setup.Nanoseconds()), "setup-ns")
		})
	}
}
