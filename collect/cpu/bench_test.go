package cpu_test

import (
	"context"
	"fmt"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/goroscope/goroscope/bpf"
	"github.com/goroscope/goroscope/collect/cpu"
	"github.com/goroscope/goroscope/collect/process"
	"github.com/goroscope/goroscope/test/targettest"
)

// Observers compared by BenchmarkOverhead.
const (
	obsNone  = "none"
	obsBPF   = "goroscope-99Hz"
	obsPprof = "runtime/pprof-100Hz"
)

// benchWindow is one measurement window; benchRounds interleave the
// observers so that drifts in machine load hit them all alike.
const (
	benchWindow = 2 * time.Second
	benchRounds = 6
)

// BenchmarkOverhead measures what CPU sampling costs the programs sampled,
// side by side in one run, with no observer, with goroscope's sampler at
// 99 Hz and with the target's own runtime/pprof CPU profiler (100 Hz, via
// /debug/pprof/profile):
//   - a CPU-bound target (cpuburn, two goroutines in main.burnCPU): its
//     throughput, and the loss against no observer;
//   - a latency-bound target (latency: a 1 ms probe of small work items
//     among 1000 parked goroutines): the probe's p50 and p99 latency;
//   - the sampler's own cost: the agent's CPU time (this process, which
//     drains and symbolises) per sampled process, and the BPF program's
//     kernel time per run and in total.
//
// Run it with: go test -run '^$' -bench Overhead -benchtime 1x ./collect/cpu
func BenchmarkOverhead(b *testing.B) {
	if testing.Short() {
		b.Skip("runs target programs for about 40 s")
	}
	// Fail (CI) or skip early when BPF cannot load.
	newSampler(b, cpu.Options{}).Close()
	stats, err := bpf.EnableRunStats()
	if err != nil {
		b.Logf("no BPF run-time statistics: %v", err)
	} else {
		defer stats.Close()
	}
	for i := 0; i < b.N; i++ {
		burn := startBurn(b, targettest.BuildOpts{}, "-burners", "2", "-labeled", "1")
		tput, eff := map[string][]float64{}, map[string][]float64{}
		var agent []benchAgent
		for r := 0; r < benchRounds; r++ {
			for _, obs := range []string{obsNone, obsBPF, obsPprof} {
				stop := startObserver(b, obs, burn.Target)
				cpu0, err := procCPU(burn.PID)
				if err != nil {
					b.Fatal(err)
				}
				before, err := burn.ops()
				if err != nil {
					b.Fatal(err)
				}
				start := time.Now()
				time.Sleep(benchWindow)
				after, err := burn.ops()
				if err != nil {
					b.Fatal(err)
				}
				cpu1, err := procCPU(burn.PID)
				if err != nil {
					b.Fatal(err)
				}
				tput[obs] = append(tput[obs], float64(after-before)/time.Since(start).Seconds())
				eff[obs] = append(eff[obs], float64(after-before)/(cpu1-cpu0).Seconds())
				a := stop()
				if obs == obsBPF {
					agent = append(agent, a)
				}
			}
		}
		steady := steadyAgentCost(b, burn.Target)
		burn.Stop()

		lat := targettest.Start(b, targettest.Build(b, "latency", targettest.BuildOpts{}), "-goroutines", "1000", "-probe-interval", "1ms")
		p50, p99 := map[string][]float64{}, map[string][]float64{}
		for r := 0; r < benchRounds; r++ {
			for _, obs := range []string{obsNone, obsBPF, obsPprof} {
				var st latencyStats
				stop := startObserver(b, obs, lat)
				if err := getJSON(lat.URL("/latency?reset=1"), &st); err != nil {
					b.Fatal(err)
				}
				time.Sleep(benchWindow)
				if err := getJSON(lat.URL("/latency"), &st); err != nil {
					b.Fatal(err)
				}
				stop()
				p50[obs] = append(p50[obs], st.P50us)
				p99[obs] = append(p99[obs], st.P99us)
			}
		}
		lat.Stop()
		report(b, tput, eff, p50, p99, agent, steady)
	}
}

// latencyStats is the part of the latency target's /latency answer used.
type latencyStats struct {
	Samples int     `json:"samples"`
	P50us   float64 `json:"p50_us"`
	P99us   float64 `json:"p99_us"`
}

// benchAgent is the sampler's own cost in one window.
type benchAgent struct {
	window   time.Duration
	agentCPU time.Duration // this process's user+sys time, drain included
	drain    time.Duration
	bpfTime  time.Duration // the program's kernel time, all CPUs
	bpfRuns  uint64
	samples  uint64 // of the target
}

// startObserver starts watching t with obs; the window is measured from
// its return until stop, which ends the observation (for the sampler:
// drains it) and reports the sampler's own cost. Loading the sampler and
// attaching the target happen before the window.
func startObserver(b *testing.B, obs string, t *targettest.Target) (stop func() benchAgent) {
	b.Helper()
	switch obs {
	case obsPprof:
		done := make(chan error, 1)
		go func() {
			_, err := fetchProfile(t.URL(fmt.Sprintf("/debug/pprof/profile?seconds=%d", int(benchWindow/time.Second))))
			done <- err
		}()
		return func() benchAgent {
			if err := <-done; err != nil {
				b.Fatal(err)
			}
			return benchAgent{}
		}
	case obsBPF:
		s, err := cpu.New(cpu.Options{})
		if err != nil {
			b.Fatal(err)
		}
		tgt, err := process.Attach(t.PID)
		if err != nil {
			b.Fatal(err)
		}
		if err := s.Add(tgt); err != nil {
			b.Fatal(err)
		}
		if _, err := s.Drain(context.Background()); err != nil {
			b.Fatal(err)
		}
		rt0, runs0, _ := s.ProgramStats()
		cpu0 := selfCPU()
		start := time.Now()
		return func() benchAgent {
			defer tgt.Close()
			defer s.Close()
			var a benchAgent
			d0 := time.Now()
			iv, err := s.Drain(context.Background())
			if err != nil {
				b.Fatal(err)
			}
			a.drain = time.Since(d0)
			a.window = time.Since(start)
			a.agentCPU = selfCPU() - cpu0
			rt1, runs1, _ := s.ProgramStats()
			a.bpfTime, a.bpfRuns = rt1-rt0, runs1-runs0
			if p := iv.Processes[t.PID]; p != nil {
				a.samples = p.Total
			}
			return a
		}
	}
	return func() benchAgent { return benchAgent{} }
}

// steadyAgentCost runs one sampler over t for three intervals and returns
// the cost of the last: the agent's steady state, symbol caches warm.
func steadyAgentCost(b *testing.B, t *targettest.Target) benchAgent {
	s, err := cpu.New(cpu.Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	tgt := attach(b, t.PID)
	if err := s.Add(tgt); err != nil {
		b.Fatal(err)
	}
	var a benchAgent
	for i := 0; i < 3; i++ {
		cpu0, start := selfCPU(), time.Now()
		time.Sleep(benchWindow)
		d0 := time.Now()
		iv, err := s.Drain(context.Background())
		if err != nil {
			b.Fatal(err)
		}
		a = benchAgent{window: time.Since(start), drain: time.Since(d0), agentCPU: selfCPU() - cpu0}
		if p := iv.Processes[t.PID]; p != nil {
			a.samples = p.Total
		}
	}
	return a
}

// procCPU is the CPU time of every thread of pid, from the scheduler's
// nanosecond accounting (/proc/PID/task/TID/schedstat).
func procCPU(pid int) (time.Duration, error) {
	tasks, err := os.ReadDir(fmt.Sprintf("/proc/%d/task", pid))
	if err != nil {
		return 0, err
	}
	var sum time.Duration
	for _, task := range tasks {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%s/schedstat", pid, task.Name()))
		if err != nil {
			continue // the thread exited
		}
		f := strings.Fields(string(b))
		if len(f) == 0 {
			continue
		}
		ns, err := strconv.ParseInt(f[0], 10, 64)
		if err != nil {
			return 0, fmt.Errorf("schedstat of pid %d: %w", pid, err)
		}
		sum += time.Duration(ns)
	}
	return sum, nil
}

func selfCPU() time.Duration {
	var ru unix.Rusage
	if err := unix.Getrusage(unix.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func median(xs []float64) float64 {
	s := slices.Clone(xs)
	slices.Sort(s)
	if len(s) == 0 {
		return 0
	}
	return s[len(s)/2]
}

func report(b *testing.B, tput, eff, p50, p99 map[string][]float64, agent []benchAgent, steady benchAgent) {
	var sb strings.Builder
	base, baseEff := median(tput[obsNone]), median(eff[obsNone])
	fmt.Fprintf(&sb, "CPU-bound target (cpuburn, 2 goroutines), median of %d interleaved %v windows:\n", benchRounds, benchWindow)
	fmt.Fprintf(&sb, "  (ops/s is wall throughput, which other load on the machine moves; ops per CPU-second\n"+
		"  of the target is its efficiency, which an observer's work in the target lowers)\n")
	for _, obs := range []string{obsNone, obsBPF, obsPprof} {
		m, e := median(tput[obs]), median(eff[obs])
		loss, effLoss := 100*(1-m/base), 100*(1-e/baseEff)
		fmt.Fprintf(&sb, "  %-20s %8.1f ops/s (loss %+6.2f%%)  %8.1f ops/CPU-s (loss %+6.2f%%)  windows ops/s %v, ops/CPU-s %v\n",
			obs, m, loss, e, effLoss, fmtFloats(tput[obs]), fmtFloats(eff[obs]))
		b.ReportMetric(m, "ops/s-"+metricName(obs))
		b.ReportMetric(e, "ops/cpu-s-"+metricName(obs))
		if obs != obsNone {
			b.ReportMetric(loss, "loss%-"+metricName(obs))
			b.ReportMetric(effLoss, "cpu-loss%-"+metricName(obs))
		}
	}
	fmt.Fprintf(&sb, "Latency-bound target (1 ms probe, 1000 parked goroutines):\n")
	for _, obs := range []string{obsNone, obsBPF, obsPprof} {
		fmt.Fprintf(&sb, "  %-20s p50 %7.1f µs  p99 %7.1f µs  (p99 windows %v)\n", obs, median(p50[obs]), median(p99[obs]), fmtFloats(p99[obs]))
		b.ReportMetric(median(p50[obs]), "p50-µs-"+metricName(obs))
		b.ReportMetric(median(p99[obs]), "p99-µs-"+metricName(obs))
	}
	var win, agentCPU, drain, bpfTime time.Duration
	var runs, samples uint64
	for _, a := range agent {
		win += a.window
		agentCPU += a.agentCPU
		drain += a.drain
		bpfTime += a.bpfTime
		runs += a.bpfRuns
		samples += a.samples
	}
	if win > 0 && len(agent) > 0 {
		fmt.Fprintf(&sb, "Sampler cost (1 sampled process, %d windows of %v):\n", len(agent), benchWindow)
		fmt.Fprintf(&sb, "  agent CPU with a new sampler per window (load excluded, cold symbol caches): %.3f%% of a core (drain %v per interval, %d samples per interval)\n",
			100*agentCPU.Seconds()/win.Seconds(), drain/time.Duration(len(agent)), samples/uint64(len(agent)))
		if steady.window > 0 {
			fmt.Fprintf(&sb, "  agent CPU in steady state (one sampler, %v intervals): %.3f%% of a core per sampled process (drain %v, %v CPU, %d samples per interval)\n",
				benchWindow, 100*steady.agentCPU.Seconds()/steady.window.Seconds(), steady.drain, steady.agentCPU, steady.samples)
			b.ReportMetric(100*steady.agentCPU.Seconds()/steady.window.Seconds(), "agent-cpu%")
		}
		if runs > 0 {
			fmt.Fprintf(&sb, "  BPF program: %d runs on %d CPUs, %v per run, %.4f%% of the machine's CPU time\n",
				runs, runtime.NumCPU(), bpfTime/time.Duration(runs), 100*bpfTime.Seconds()/win.Seconds()/float64(runtime.NumCPU()))
			b.ReportMetric(100*bpfTime.Seconds()/win.Seconds()/float64(runtime.NumCPU()), "bpf-cpu%")
			b.ReportMetric(float64(bpfTime.Nanoseconds())/float64(runs), "bpf-ns/run")
		}
	}
	b.Log("\n" + sb.String())
}

func metricName(obs string) string {
	return strings.NewReplacer("/", "-", " ", "-").Replace(obs)
}

func fmtFloats(xs []float64) string {
	parts := make([]string, len(xs))
	for i, x := range xs {
		parts[i] = fmt.Sprintf("%.0f", x)
	}
	return "[" + strings.Join(parts, " ") + "]"
}
