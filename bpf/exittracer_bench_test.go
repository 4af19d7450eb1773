//go:build linux

package bpf

import (
	"os"
	"os/exec"
	"runtime"
	"testing"
	"time"
)

// BenchmarkExitTracer measures what the exit tracer costs the host: its
// sched_process_exit program runs for every thread that exits, anywhere.
// Each operation is one exit:
//
//   - spawn: fork, exec and exit of /bin/true, waited for (a short process);
//   - thread: a thread of this process exits (a goroutine that ends locked
//     to its thread takes the thread with it) and a new one is made.
//
// against the tracer:
//
//   - detached: not loaded;
//   - attached: loaded, 10,000 other pids watched (the filter's one hash
//     lookup, which fails);
//   - watched: loaded, and this process watched too (its threads pass the
//     filter and read the thread group's live count).
//
// The bpf-ns/exit metric is the program's own run time per run, from the
// kernel's BPF statistics (turned on for the benchmark: they add a clock
// read to each run); other exits on the host count too.
func BenchmarkExitTracer(b *testing.B) {
	if err := checkCaps(); err != nil {
		b.Skipf("BPF unavailable here: %v", err)
	}
	if _, err := os.Stat("/bin/true"); err != nil {
		b.Skipf("no /bin/true: %v", err)
	}
	ops := []struct {
		name string
		op   func(b *testing.B)
	}{
		{"spawn", func(b *testing.B) {
			if err := exec.Command("/bin/true").Run(); err != nil {
				b.Fatal(err)
			}
		}},
		{"thread", func(b *testing.B) {
			done := make(chan struct{})
			go func() {
				runtime.LockOSThread()
				close(done) // returns locked: the runtime ends the thread
			}()
			<-done
		}},
	}
	for _, o := range ops {
		for _, setup := range []string{"detached", "attached", "watched"} {
			b.Run(o.name+"/"+setup, func(b *testing.B) {
				var tr *ExitTracer
				if setup != "detached" {
					tr = loadExitTracer(b)
					// pids above the largest pid_max (2^22): never a process.
					for i := 0; i < 10000; i++ {
						if err := tr.Watch(uint32(1<<22 + 1 + i)); err != nil {
							b.Fatal(err)
						}
					}
					if setup == "watched" {
						if err := tr.Watch(uint32(os.Getpid())); err != nil {
							b.Fatal(err)
						}
					}
					stats, err := EnableRunStats()
					if err != nil {
						b.Fatal(err)
					}
					b.Cleanup(func() { _ = stats.Close() }) // measurement only
				}
				var rt0 time.Duration
				var n0 uint64
				if tr != nil {
					var err error
					if rt0, n0, err = tr.ProgramStats(); err != nil {
						b.Fatal(err)
					}
				}
				b.ResetTimer()
				for i := 0; i < b.N; i++ {
					o.op(b)
				}
				b.StopTimer()
				if tr != nil {
					rt, n, err := tr.ProgramStats()
					if err != nil {
						b.Fatal(err)
					}
					if n > n0 {
						b.ReportMetric(float64(rt-rt0)/float64(n-n0), "bpf-ns/exit")
						b.ReportMetric(float64(n-n0)/float64(b.N), "runs/op")
					}
				}
			})
		}
	}
}
