package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime/pprof"
	"slices"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/goroscope/goroscope/collect/process"
	"github.com/goroscope/goroscope/collect/walk"

	"github.com/goroscope/goroscope/test/targettest"
)

// sample is one timed operation: wall time and this process's CPU time.
type sample struct {
	wall, user, sys time.Duration
	goroutines      int
}

func (s sample) cpu() time.Duration { return s.user + s.sys }

// rusage returns this process's user and system CPU time so far (every
// thread: the eBPF iterator runs in the kernel on our reading thread).
func rusage() (user, sys time.Duration) {
	var ru unix.Rusage
	if err := unix.Getrusage(unix.RUSAGE_SELF, &ru); err != nil {
		return 0, 0
	}
	return time.Duration(ru.Utime.Nano()), time.Duration(ru.Stime.Nano())
}

// timed runs f and measures it.
func timed(f func() (int, error)) (sample, error) {
	u0, s0 := rusage()
	start := time.Now()
	n, err := f()
	wall := time.Since(start)
	u1, s1 := rusage()
	return sample{wall: wall, user: u1 - u0, sys: s1 - s0, goroutines: n}, err
}

// snapRow is the snapshot cost of one walker on one target.
type snapRow struct {
	size    int
	walker  string
	attach  time.Duration
	cold    sample
	steady  []sample
	churned []sample
	err     string
}

// latRow is one window of the latency comparison.
type latRow struct {
	size     int
	mode     string
	ops      int
	opTimes  []time.Duration
	agentCPU time.Duration
	// otherCPU is CPU time used on the machine by neither the agent nor
	// the target during the windows: load from elsewhere.
	otherCPU time.Duration
	stats    probeStats
	err      string
}

// probeStats is the latency target's /latency answer.
type probeStats struct {
	Seconds   float64   `json:"seconds"`
	Samples   int       `json:"samples"`
	Dropped   int       `json:"dropped"`
	Skipped   int       `json:"skipped"`
	P50us     float64   `json:"p50_us"`
	P90us     float64   `json:"p90_us"`
	P99us     float64   `json:"p99_us"`
	P999us    float64   `json:"p999_us"`
	MaxUs     float64   `json:"max_us"`
	CPUUserMs float64   `json:"cpu_user_ms"`
	CPUSysMs  float64   `json:"cpu_sys_ms"`
	SamplesUs []float64 `json:"samples_us"`
}

// report is everything measured.
type report struct {
	cfg       config
	machine   machine
	started   time.Time
	took      time.Duration
	ebpfErr   string
	snaps     []snapRow
	lats      []latRow
	agents    []agentRow
	profiles  []string
	goVersion string
	// targetBin is the latency target's executable, for later scenarios.
	targetBin string
	// loadBefore and loadAfter are /proc/loadavg at the start and end.
	loadBefore, loadAfter string
}

func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "unknown"
	}
	return strings.Join(f[:3], " ")
}

// measure runs every selected measurement; it returns what it has even on
// error.
func measure(ctx context.Context, cfg config, procs *processes) (*report, error) {
	rep := &report{cfg: cfg, machine: readMachine(), started: time.Now(), loadBefore: loadAvg()}
	defer func() { rep.took, rep.loadAfter = time.Since(rep.started), loadAvg() }()
	dir, err := os.MkdirTemp("", "goroscope-bench-")
	if err != nil {
		return nil, fmt.Errorf("temp dir: %w", err)
	}
	defer os.RemoveAll(dir)
	fmt.Fprintln(os.Stderr, "bench: building test/targets/latency")
	bin, err := targettest.Compile("latency", targettest.BuildOpts{})
	if err != nil {
		return nil, err
	}
	rep.targetBin = bin
	if !cfg.only["snapshot"] {
		cfg.sizes = nil
	}
	if !cfg.only["latency"] {
		cfg.latSizes = nil
	}
	var errs []error
	if len(cfg.sizes)+len(cfg.latSizes) > 0 {
		if err := measureSnapshots(ctx, cfg, procs, rep, bin); err != nil {
			errs = append(errs, err)
		}
	}
	if cfg.only["agent"] && ctx.Err() == nil {
		var gv string
		var err error
		rep.agents, gv, err = agentScenario(ctx, cfg, procs, dir, bin)
		if gv != "" {
			rep.goVersion = gv
		}
		if err != nil {
			errs = append(errs, err)
		}
	}
	return rep, errors.Join(errs...)
}

// measureSnapshots runs the snapshot-cost and latency measurements on one
// target per size.
func measureSnapshots(ctx context.Context, cfg config, procs *processes, rep *report, bin string) error {
	walkers := []walk.Walker{walk.ProcMemWalker{}}
	if e, err := walk.NewEBPFWalker(); err != nil {
		rep.ebpfErr = err.Error()
		fmt.Fprintf(os.Stderr, "bench: eBPF walker not measured: %v\n", err)
	} else {
		defer e.Close()
		walkers = []walk.Walker{e, walk.ProcMemWalker{}}
	}
	sizes := append(slices.Clone(cfg.sizes), cfg.latSizes...)
	slices.Sort(sizes)
	sizes = slices.Compact(sizes)
	largest := 0
	if len(cfg.sizes) > 0 {
		largest = slices.Max(cfg.sizes)
	}
	for _, n := range sizes {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("stopped before the %d-goroutine target: %w", n, err)
		}
		fmt.Fprintf(os.Stderr, "bench: starting target with %d goroutines\n", n)
		t, err := startTarget(ctx, procs, bin, n)
		if err != nil {
			return err
		}
		rep.goVersion = t.GoVersion
		if slices.Contains(cfg.sizes, n) {
			for _, w := range walkers {
				prof := ""
				if cfg.profileDir != "" && n == largest {
					prof = filepath.Join(cfg.profileDir, fmt.Sprintf("snapshot-%d-%s", n, w.Name()))
				}
				row := snapshotCost(ctx, cfg, t, w, n, prof)
				rep.snaps = append(rep.snaps, row)
				if prof != "" && row.err == "" {
					rep.profiles = append(rep.profiles, prof+"-steady.pprof", prof+"-churn.pprof")
				}
			}
		}
		if slices.Contains(cfg.latSizes, n) {
			rep.lats = append(rep.lats, latencyComparison(ctx, cfg, t, walkers, n)...)
		}
		t.stop()
	}
	return ctx.Err()
}

// snapshotCost measures one walker on one target: attach, the cold first
// snapshot, steady snapshots of an unchanged population, and snapshots
// taken right after every goroutine woke and parked again.
func snapshotCost(ctx context.Context, cfg config, t *target, w walk.Walker, n int, prof string) snapRow {
	row := snapRow{size: n, walker: w.Name()}
	fail := func(err error) snapRow {
		row.err = err.Error()
		fmt.Fprintf(os.Stderr, "bench: %d goroutines, %s: %v\n", n, w.Name(), err)
		return row
	}
	start := time.Now()
	at, err := process.Attach(t.PID)
	if err != nil {
		return fail(err)
	}
	defer at.Close()
	row.attach = time.Since(start)
	s := walk.NewSnapshotter(at, w)
	snap := func() (int, error) {
		ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		sn, err := s.Snapshot(ctx)
		if err != nil {
			return 0, err
		}
		return len(sn.Goroutines), nil
	}
	check := func(x sample) error {
		if x.goroutines < n {
			return fmt.Errorf("snapshot saw %d goroutines, the target parked %d", x.goroutines, n)
		}
		return nil
	}
	// measure times a snapshot and checks it.
	measure := func() (sample, error) {
		x, err := timed(snap)
		if err == nil {
			err = check(x)
		}
		return x, err
	}
	if row.cold, err = timed(snap); err != nil {
		return fail(fmt.Errorf("cold snapshot: %w", err))
	}
	if err := check(row.cold); err != nil {
		return fail(err)
	}
	stopProf := startProfile(prof, "-steady.pprof")
	deadline := time.Now().Add(3 * time.Second)
	for i := 0; i < cfg.steadyMax && (i < 3 || time.Now().Before(deadline)); i++ {
		x, err := measure()
		if err != nil {
			stopProf()
			return fail(fmt.Errorf("steady snapshot %d: %w", i, err))
		}
		row.steady = append(row.steady, x)
	}
	stopProf()
	stopProf = func() {}
	deadline = time.Now().Add(4 * time.Second)
	for i := 0; i < cfg.churnMax && (i < 3 || time.Now().Before(deadline)); i++ {
		var ch struct {
			Error string `json:"error"`
		}
		if _, err := t.get(ctx, "/churn", 1<<20, &ch); err != nil || ch.Error != "" {
			return fail(fmt.Errorf("churn: %v %s", err, ch.Error))
		}
		if i == 0 {
			stopProf = startProfile(prof, "-churn.pprof")
		}
		x, err := measure()
		if err != nil {
			stopProf()
			return fail(fmt.Errorf("snapshot after churn %d: %w", i, err))
		}
		row.churned = append(row.churned, x)
	}
	stopProf()
	fmt.Fprintf(os.Stderr, "bench: %6d goroutines %-7s cold %v steady %v churned %v\n", n, w.Name(),
		row.cold.wall.Round(time.Microsecond), median(walls(row.steady)).Round(time.Microsecond), median(walls(row.churned)).Round(time.Microsecond))
	return row
}

// startProfile starts a CPU profile into prof+suffix unless prof is empty;
// the returned function stops it. Only the snapshot calls run while it is
// on (the churn requests are not in it).
func startProfile(prof, suffix string) func() {
	if prof == "" {
		return func() {}
	}
	if err := os.MkdirAll(filepath.Dir(prof), 0o755); err != nil {
		fmt.Fprintf(os.Stderr, "bench: profile dir: %v\n", err)
		return func() {}
	}
	f, err := os.Create(prof + suffix)
	if err != nil {
		fmt.Fprintf(os.Stderr, "bench: profile: %v\n", err)
		return func() {}
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		fmt.Fprintf(os.Stderr, "bench: profile: %v\n", err)
		return func() {}
	}
	return func() {
		pprof.StopCPUProfile()
		f.Close()
	}
}

func walls(xs []sample) []time.Duration {
	out := make([]time.Duration, len(xs))
	for i, x := range xs {
		out[i] = x.wall
	}
	return out
}

func syss(xs []sample) []time.Duration {
	out := make([]time.Duration, len(xs))
	for i, x := range xs {
		out[i] = x.sys
	}
	return out
}

func cpus(xs []sample) []time.Duration {
	out := make([]time.Duration, len(xs))
	for i, x := range xs {
		out[i] = x.cpu()
	}
	return out
}

// median and quantile of durations; zero for none.
func median(ds []time.Duration) time.Duration { return quantile(ds, 0.5) }

func quantile(ds []time.Duration, q float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[min(len(s)-1, int(q*float64(len(s))))]
}
