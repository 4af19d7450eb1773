package walk_test

import (
	"context"
	"fmt"
	"os"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/goroscope/goroscope/collect/process"
	"github.com/goroscope/goroscope/collect/walk"
	"github.com/goroscope/goroscope/test/targettest"
)

// benchLongEnv adds the 100k-goroutine cases to BenchmarkSnapshot; each
// target takes seconds to start and each snapshot about a second.
const benchLongEnv = "GOROSCOPE_BENCH_LONG"

// BenchmarkSnapshot measures steady-state snapshots of the latency target
// with N parked goroutines: one Snapshotter per case, the cold first
// snapshot outside the timer. Reported: ns/op, ns/goroutine (wall) and
// cpu-ns/goroutine (user+sys of this process, including the kernel time of
// the eBPF iterator). The ebpf cases skip, outside CI, when BPF cannot load.
func BenchmarkSnapshot(b *testing.B) {
	sizes := []int{1000, 10000}
	if os.Getenv(benchLongEnv) != "" {
		sizes = append(sizes, 100000)
	}
	bin := targettest.Build(b, "latency", targettest.BuildOpts{})
	// Targets belong to the top benchmark: sub-benchmarks run more than
	// once and their cleanups would stop a shared target.
	top := b
	targets := map[int]*targettest.Target{}
	target := func(n int) *targettest.Target {
		if t, ok := targets[n]; ok {
			return t
		}
		t := targettest.Start(top, bin, "-goroutines", fmt.Sprint(n), "-probe-interval", "0")
		targets[n] = t
		return t
	}
	for _, name := range []string{"procmem", "ebpf"} {
		b.Run(name, func(b *testing.B) {
			var w walk.Walker = walk.ProcMemWalker{}
			if name == "ebpf" {
				e, err := walk.NewEBPFWalker()
				if err != nil {
					if os.Getenv("CI") == "true" {
						b.Fatalf("eBPF walker must load in CI: %v", err)
					}
					b.Skipf("eBPF walker cannot load here: %v", err)
				}
				b.Cleanup(func() { e.Close() })
				w = e
			}
			for _, n := range sizes {
				b.Run(fmt.Sprintf("%dk", n/1000), func(b *testing.B) {
					benchSnapshot(b, target(n), w, n)
				})
			}
		})
	}
}

func benchSnapshot(b *testing.B, tgt *targettest.Target, w walk.Walker, n int) {
	at, err := process.Attach(tgt.PID)
	if err != nil {
		b.Fatalf("attach pid %d: %v", tgt.PID, err)
	}
	defer at.Close()
	s := walk.NewSnapshotter(at, w)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	snap := func() int {
		sn, err := s.Snapshot(ctx)
		if err != nil {
			b.Fatalf("snapshot with %s: %v", w.Name(), err)
		}
		return len(sn.Goroutines)
	}
	if got := snap(); got < n { // the cold snapshot
		b.Fatalf("cold snapshot saw %d goroutines, the target parked %d", got, n)
	}
	cpu0 := cpuTime()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if got := snap(); got < n {
			b.Fatalf("snapshot saw %d goroutines, the target parked %d", got, n)
		}
	}
	b.StopTimer()
	cpu := cpuTime() - cpu0
	perOp := float64(b.Elapsed().Nanoseconds()) / float64(b.N)
	b.ReportMetric(perOp/float64(n), "ns/goroutine")
	b.ReportMetric(float64(cpu.Nanoseconds())/float64(b.N)/float64(n), "cpu-ns/goroutine")
	b.ReportMetric(float64(n), "goroutines")
}

// cpuTime is this process's user+sys CPU time.
func cpuTime() time.Duration {
	var ru unix.Rusage
	if err := unix.Getrusage(unix.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
