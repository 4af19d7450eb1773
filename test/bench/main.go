// Command bench measures goroscope's goroutine snapshots on this machine and
// writes the results as Markdown:
//
//	go run ./test/bench -out docs/benchmarks.md
//
// It builds test/targets/latency, starts it with 1k, 10k and 100k parked
// goroutines and measures, for the eBPF and the procmem walker: the cold and
// steady-state snapshot time and the agent's CPU time (user+sys of this
// process, getrusage RUSAGE_SELF); the cost of a snapshot when every
// goroutine stayed parked against one where every goroutine woke and parked
// again; and the target's own work-item latency while it is observed by
// nothing, by goroscope, by runtime.GoroutineProfile and by
// /debug/pprof/goroutine?debug=2 at the same cadence. Then it builds the
// goroscope binary and runs `goroscope agent` at its default cadence (10 s
// snapshots and discovery) over 20 targets of 1k goroutines, over 20
// distinct Go programs of the installed toolchains (pprof, trace, compile
// and go of Go 1.21 and later: different executables, not copies), over
// one target of 100k and over one of 1M goroutines with the agent in a
// 256 MiB memory cgroup (test/memcg), measuring the agent process's CPU
// (/proc/PID/stat) and resident memory (/proc/PID/status), its snapshot
// duration, the growth of its local store and, in the cgroup, the OOM
// kills and peak usage. -only runs some of the scenarios (-only agent: the
// agent alone; -agent-runs some of its runs). The push scenario (push.go)
// measures encoding, bytes on the wire and a 10-minute outage of the push
// endpoints. The findings scenario (findings.go; not in the default set, it
// runs -findings-duration, 30 minutes by default: -only findings) runs the
// agent at its defaults over test/targets/leaky in every mode and reports
// how long each leak, stuck group and deadlock took to become a finding,
// the findings on the healthy modes, and the cost of grouping a
// 100k-goroutine snapshot against its walk. The ui scenario (ui.go) opens
// the UI's page of a 100k-goroutine process in Chromium and times its first
// screen. The crashprobes scenario (crashprobes.go) measures the panic
// probe's and the exit tracer's cost to a target's throughput and to a
// host spawning processes, and their attach+detach time. Every process it
// starts is stopped by PID on exit; the whole run is bounded by -budget (extended by
// -findings-duration when the findings scenario runs and -budget is not
// given).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// config holds the harness flags.
type config struct {
	out        string
	sizes      []int
	latSizes   []int
	window     time.Duration
	cadence    time.Duration
	budget     time.Duration
	steadyMax  int
	churnMax   int
	profileDir string
	debug2     bool
	// only is the set of scenarios to run: snapshot, latency, agent.
	only        map[string]bool
	agentWindow time.Duration
	// agentWalker is the agent's --walker (auto by default).
	agentWalker string
	// agentRuns are the agent runs to do, by agentSpec.key (all when
	// empty).
	agentRuns []string
	// findingsDuration is how long the findings scenario watches the
	// leaky targets; findingsRates are the leak rates it runs each leak
	// mode at.
	findingsDuration time.Duration
	findingsRates    []float64
}

// scenarios are the parts of the run -only can select.
var scenarios = []string{"snapshot", "latency", "agent", "push", "cpu", "crashprobes", "startup", "ui", "findings"}

// optInScenarios are the scenarios that run only when -only names them:
// the findings scenario takes -findings-duration (30 min by default).
var optInScenarios = []string{"findings"}

// defaultScenarios are those an empty -only selects.
func defaultScenarios() []string {
	var out []string
	for _, sc := range scenarios {
		if !slices.Contains(optInScenarios, sc) {
			out = append(out, sc)
		}
	}
	return out
}

func main() {
	if err := run(); err != nil {
		fmt.Fprintf(os.Stderr, "bench: %v\n", err)
		os.Exit(1)
	}
}

func run() error {
	var cfg config
	var sizes, latSizes, only, agentRuns, findingsRates string
	flag.StringVar(&cfg.out, "out", "", "write the Markdown report to this file (stdout always gets it)")
	flag.StringVar(&sizes, "sizes", "1000,10000,100000", "goroutine counts for the snapshot-cost measurements")
	flag.StringVar(&latSizes, "latency-sizes", "10000,100000", "goroutine counts for the target-latency comparison")
	flag.DurationVar(&cfg.window, "window", 6*time.Second, "time each observer gets in the latency comparison")
	flag.DurationVar(&cfg.cadence, "cadence", 100*time.Millisecond, "observation cadence in the latency comparison")
	flag.DurationVar(&cfg.budget, "budget", 15*time.Minute, "hard bound on the whole run")
	flag.StringVar(&only, "only", "", "run only these scenarios, comma-separated: "+strings.Join(scenarios, ", ")+" (default all but "+strings.Join(optInScenarios, ", ")+")")
	flag.StringVar(&cfg.agentWalker, "agent-walker", "auto", "the agent's walker: auto, ebpf or procmem")
	flag.StringVar(&agentRuns, "agent-runs", "", "run only these agent runs, comma-separated: "+strings.Join(agentKeys(), ", ")+" (default all)")
	flag.DurationVar(&cfg.agentWindow, "agent-window", 60*time.Second, "measured time of each agent run (at least 20s; snapshots come every 10s)")
	flag.IntVar(&cfg.steadyMax, "steady", 15, "steady-state snapshots per target and walker (also bounded to 3 s)")
	flag.IntVar(&cfg.churnMax, "churn", 8, "changed-goroutine snapshots per target and walker (also bounded to 4 s)")
	flag.StringVar(&cfg.profileDir, "profile", "", "write CPU profiles of the steady-state snapshots of the largest target to this directory")
	flag.BoolVar(&cfg.debug2, "debug2", true, "include /debug/pprof/goroutine?debug=2 in the latency comparison")
	flag.DurationVar(&cfg.findingsDuration, "findings-duration", 30*time.Minute, "how long the findings scenario watches the leaky targets (at least 1m)")
	flag.StringVar(&findingsRates, "findings-rates", "0.2,1", "leak rates (goroutines a second) the findings scenario runs each leak mode at, comma-separated")
	flag.Parse()
	budgetSet := false
	flag.Visit(func(f *flag.Flag) { budgetSet = budgetSet || f.Name == "budget" })
	var err error
	if cfg.sizes, err = parseSizes(sizes); err != nil {
		return fmt.Errorf("-sizes: %w", err)
	}
	if cfg.latSizes, err = parseSizes(latSizes); err != nil {
		return fmt.Errorf("-latency-sizes: %w", err)
	}
	if cfg.only, err = parseOnly(only); err != nil {
		return fmt.Errorf("-only: %w", err)
	}
	if cfg.agentRuns, err = parseAgentRuns(agentRuns); err != nil {
		return fmt.Errorf("-agent-runs: %w", err)
	}
	if cfg.findingsRates, err = parseRates(findingsRates); err != nil {
		return fmt.Errorf("-findings-rates: %w", err)
	}
	if cfg.findingsDuration < time.Minute {
		return fmt.Errorf("bad flags: -findings-duration %v is under 1m", cfg.findingsDuration)
	}
	if cfg.only["findings"] && !budgetSet {
		// The grouping cost, the builds and the targets' start-up besides.
		cfg.budget += cfg.findingsDuration + 5*time.Minute
	}
	if cfg.agentWindow < 20*time.Second {
		return fmt.Errorf("bad flags: -agent-window %v is under 20s", cfg.agentWindow)
	}
	if cfg.window <= 0 || cfg.cadence <= 0 || cfg.budget <= 0 || cfg.steadyMax < 1 || cfg.churnMax < 1 {
		return fmt.Errorf("bad flags: -window, -cadence, -budget, -steady and -churn must be positive")
	}

	ctx, cancel := context.WithTimeout(context.Background(), cfg.budget)
	defer cancel()
	ctx, stop := signal.NotifyContext(ctx, syscall.SIGINT, syscall.SIGTERM)
	defer stop()

	procs := &processes{}
	defer procs.killAll()

	rep, err := measure(ctx, cfg, procs)
	if rep == nil {
		return err
	}
	var push *pushReport
	if cfg.only["push"] && ctx.Err() == nil {
		var perr error
		push, perr = measurePush(ctx, cfg, procs)
		err = errors.Join(err, perr)
	}
	var cpu *cpuReport
	if cfg.only["cpu"] && ctx.Err() == nil {
		var cerr error
		cpu, cerr = measureCPU(ctx)
		err = errors.Join(err, cerr)
	}
	var crash *crashReport
	if cfg.only["crashprobes"] && ctx.Err() == nil {
		var cerr error
		crash, cerr = measureCrashProbes(ctx, cfg, procs)
		err = errors.Join(err, cerr)
	}
	var startup *startupReport
	if cfg.only["startup"] && ctx.Err() == nil {
		var serr error
		startup, serr = measureStartup(ctx, procs, rep.targetBin)
		err = errors.Join(err, serr)
	}
	var uiRep *uiReport
	if cfg.only["ui"] && ctx.Err() == nil {
		var uerr error
		uiRep, uerr = measureUI(ctx, procs, rep.targetBin)
		err = errors.Join(err, uerr)
	}
	var fnd *findingsReport
	if cfg.only["findings"] && ctx.Err() == nil {
		var ferr error
		fnd, ferr = measureFindings(ctx, cfg, procs, rep.targetBin)
		err = errors.Join(err, ferr)
	}
	if fnd != nil {
		rep.took = time.Since(rep.started)
	}
	md := rep.markdown()
	if startup != nil {
		md = strings.Replace(md, "## How to reproduce", startup.markdown()+"## How to reproduce", 1)
	}
	if push != nil {
		md = strings.Replace(md, "## How to reproduce", push.markdown()+"## How to reproduce", 1)
	}
	if cpu != nil {
		md = strings.Replace(md, "## How to reproduce", cpu.markdown()+"## How to reproduce", 1)
	}
	if crash != nil {
		md = strings.Replace(md, "## How to reproduce", crash.markdown()+"## How to reproduce", 1)
	}
	if uiRep != nil {
		md = strings.Replace(md, "## How to reproduce", uiRep.markdown()+"## How to reproduce", 1)
	}
	if fnd != nil {
		md = strings.Replace(md, "## How to reproduce", fnd.markdown()+"## How to reproduce", 1)
	}
	fmt.Print(md)
	if cfg.out != "" {
		if werr := os.WriteFile(cfg.out, []byte(md), 0o644); werr != nil {
			return fmt.Errorf("write report %s: %w", cfg.out, werr)
		}
		fmt.Fprintf(os.Stderr, "bench: wrote %s\n", cfg.out)
	}
	return err
}

// parseOnly reads -only; empty selects every scenario.
func parseOnly(s string) (map[string]bool, error) {
	out := map[string]bool{}
	for _, f := range strings.Split(s, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		if !slices.Contains(scenarios, f) {
			return nil, fmt.Errorf("%q is not a scenario (%s)", f, strings.Join(scenarios, ", "))
		}
		out[f] = true
	}
	if len(out) == 0 {
		for _, sc := range defaultScenarios() {
			out[sc] = true
		}
	}
	return out, nil
}

// parseRates reads -findings-rates: positive goroutines a second.
func parseRates(s string) ([]float64, error) {
	var out []float64
	for _, f := range strings.Split(s, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		v, err := strconv.ParseFloat(f, 64)
		if err != nil || v <= 0 || v > 1000 {
			return nil, fmt.Errorf("%q is not a rate in (0, 1000]", f)
		}
		if !slices.Contains(out, v) {
			out = append(out, v)
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no rates")
	}
	return out, nil
}

// parseAgentRuns reads -agent-runs: keys of agentSpecs.
func parseAgentRuns(s string) ([]string, error) {
	var out []string
	for _, f := range strings.Split(s, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		if !slices.Contains(agentKeys(), f) {
			return nil, fmt.Errorf("%q is not an agent run (%s)", f, strings.Join(agentKeys(), ", "))
		}
		out = append(out, f)
	}
	return out, nil
}

func parseSizes(s string) ([]int, error) {
	var out []int
	for _, f := range strings.Split(s, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		var n int
		if _, err := fmt.Sscanf(f, "%d", &n); err != nil || n < 1 || n > 1<<20 {
			return nil, fmt.Errorf("%q is not a goroutine count in 1..%d", f, 1<<20)
		}
		out = append(out, n)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no sizes")
	}
	return out, nil
}
