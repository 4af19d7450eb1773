package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/goroscope/goroscope/bpf"
	"github.com/goroscope/goroscope/collect/exits"
	"github.com/goroscope/goroscope/collect/panics"
	"github.com/goroscope/goroscope/collect/process"
	"github.com/goroscope/goroscope/test/targettest"
)

// The crashprobes scenario measures what the crash forensics cost (issue
// 17): the panic probe (collect/panics: uprobes on runtime.fatalpanic,
// runtime.fatal and runtime.throw of a watched process's executable) and
// the exit tracer (collect/exits: a sched_process_exit program that runs
// for every thread exiting on the host, and oom:mark_victim).
//
//   - A target's throughput with no probes against the panic probe attached
//     to it and the exit tracer watching it, in alternating windows of one
//     run (nothing is loaded in the windows without probes), on cpuburn
//     (CPU-bound) and requestloop (allocation, GC, goroutines started and
//     panics recovered by the million: gopanic runs, fatalpanic never).
//   - The rate at which the host spawns short processes (/bin/true, and a
//     Go program that starts its threads and exits) with and without the
//     probes loaded: the exit tracer watching, and the panic probe attached
//     to, distinct Go programs of the installed toolchains.
//   - What attaching both to one process and detaching them costs the agent
//     (wall time until the kernel removed the uprobes, and CPU), per
//     executable.
const (
	// burnRounds and requestRounds windows of each mode for the targets,
	// crashWindow each, the modes' order swapped every round: requestloop's
	// windows vary more.
	burnRounds    = 6
	requestRounds = 14
	crashWindow   = time.Second
	// spawnRounds windows of each mode per spawned program, spawnWindow
	// each; spawnWorkers goroutines spawn at once (one per core here).
	spawnRounds  = 4
	spawnWindow  = time.Second
	spawnWorkers = 2
	// crashSettle is the pause before every window, after the probes were
	// set up or torn down (or not).
	crashSettle = 200 * time.Millisecond
	// attachCycles attach+detach cycles per executable.
	attachCycles = 3
	// crashPrograms distinct Go programs of the installed toolchains.
	crashPrograms = 4
)

// Window modes.
const (
	modeNone   = "none"
	modeProbes = "probes"
)

// crashReport is the crashprobes scenario's result.
type crashReport struct {
	command               string
	started               time.Time
	took                  time.Duration
	kernel                string
	loadBefore, loadAfter string
	targets               []tputRow
	spawns                []spawnRow
	attaches              []attachRow
	programs              []distinctProgram
	errs                  []string
}

// tputRow is one target's windows.
type tputRow struct {
	name, desc string
	// ops/s and ops per CPU-second of the target, by mode, window by window
	// (round r's windows of both modes are at index r).
	tput, eff map[string][]float64
	// extra describes the load per second (requestloop), median of windows.
	extra string
	// hits are the panic probe's records during the probe windows.
	hits uint64
	err  string
}

// spawnRow is one spawned program's windows.
type spawnRow struct {
	name string
	rate map[string][]float64
	// nsPerRun, runsPerSpawn: the exit tracer's program, from a window with
	// the kernel's BPF statistics on.
	nsPerRun, runsPerSpawn float64
	// hits are the panic probe's records during the probe windows.
	hits uint64
	err  string
}

// attachRow is the attach+detach cycles of one executable.
type attachRow struct {
	name string
	size int64
	// probe: the first Attach+Watch (the executable probed); detach:
	// Detach+Unwatch; again: Attach+Watch with the executable probed
	// already; remove: the tracer's Close (the uprobes removed, the program
	// unloaded); cpu: the harness's CPU over probe, detach and remove.
	probe, detach, again, remove, cpu []time.Duration
	uprobes                           int
	err                               string
}

// measureCrashProbes runs the scenario.
func measureCrashProbes(ctx context.Context, cfg config, procs *processes) (*crashReport, error) {
	cmd := strings.TrimSuffix((&report{cfg: cfg}).command(), " -out docs/benchmarks.md")
	r := &crashReport{command: cmd, started: time.Now(), kernel: readMachine().kernel, loadBefore: loadAvg()}
	defer func() { r.took, r.loadAfter = time.Since(r.started), loadAvg() }()
	// Fail early when the probes cannot load.
	pt, err := panics.New()
	if err != nil {
		return nil, fmt.Errorf("crash probes: %w", err)
	}
	if err := pt.Close(); err != nil {
		return nil, fmt.Errorf("crash probes: %w", err)
	}
	fmt.Fprintln(os.Stderr, "bench: crashprobes: building cpuburn, requestloop and exiter")
	bins := map[string]string{}
	for _, pkg := range []string{"cpuburn", "requestloop", "exiter"} {
		if bins[pkg], err = targettest.Compile(pkg, targettest.BuildOpts{}); err != nil {
			return nil, err
		}
	}
	dir, err := os.MkdirTemp("", "goroscope-bench-crash-")
	if err != nil {
		return nil, fmt.Errorf("temp dir: %w", err)
	}
	defer os.RemoveAll(dir)

	// Distinct Go programs, idle: the executables the agent attaches to and
	// the processes it watches while the host spawns processes.
	var progPIDs []int
	running, err := startPrograms(ctx, procs, dir, crashPrograms)
	if err != nil {
		r.errs = append(r.errs, "distinct programs: "+err.Error())
	} else {
		defer func() {
			for _, p := range running {
				p.stop()
			}
		}()
		r.programs = programsOf(running)
		for _, p := range running {
			progPIDs = append(progPIDs, p.pid)
			r.attaches = append(r.attaches, attachCost(ctx, p.pid, fmt.Sprintf("%s (%s)", p.prog.tool, p.prog.goVersion), p.prog.size))
		}
	}

	targets := []struct {
		pkg, desc string
		args      []string
		rounds    int
		ops       func(ctx context.Context, t *target) (loadCounters, error)
	}{
		{"cpuburn", "cpuburn -burners 2: CPU-bound, no allocation", []string{"-burners", "2", "-labeled", "0"}, burnRounds, burnOps},
		{"requestloop", "requestloop -workers 2: JSON, allocation, GC, 4 goroutines a request, 1 in 4 requests panics and recovers", []string{"-workers", "2"}, requestRounds, requestOps},
	}
	for _, tg := range targets {
		if ctx.Err() != nil {
			break
		}
		fmt.Fprintf(os.Stderr, "bench: crashprobes: %s\n", tg.pkg)
		tt, err := targettest.Launch(targettest.StartOpts{}, bins[tg.pkg], tg.args...)
		if err != nil {
			r.targets = append(r.targets, tputRow{name: tg.pkg, desc: tg.desc, err: err.Error()})
			continue
		}
		t := &target{tt}
		procs.add(t)
		r.attaches = append(r.attaches, attachCost(ctx, t.PID, tg.pkg+" (busy)", fileSize(bins[tg.pkg])))
		row := targetThroughput(ctx, t, tg.rounds, tg.ops)
		row.name, row.desc = tg.pkg, tg.desc
		r.targets = append(r.targets, row)
		t.stop()
	}

	// A process of exiter that stays, for its executable to be probed.
	held, err := holdExiter(procs, bins["exiter"])
	if err != nil {
		r.errs = append(r.errs, err.Error())
	}
	spawners := []struct {
		name    string
		argv    []string
		watched []int
	}{
		{"/bin/true", []string{"/bin/true"}, progPIDs},
		{"exiter -now (a Go program: starts its runtime's threads and exits)", []string{bins["exiter"], "-now", "-mode", "exit", "-code", "0"}, progPIDs},
	}
	if held != nil {
		defer held.stop()
		spawners = append(spawners, struct {
			name    string
			argv    []string
			watched []int
		}{"exiter -now, its executable probed (another exiter process attached)", []string{bins["exiter"], "-now", "-mode", "exit", "-code", "0"}, append(slices.Clone(progPIDs), held.pid)})
	}
	for _, sp := range spawners {
		if ctx.Err() != nil {
			break
		}
		fmt.Fprintf(os.Stderr, "bench: crashprobes: spawning %s\n", sp.name)
		r.spawns = append(r.spawns, spawnRate(ctx, sp.name, sp.argv, sp.watched))
	}
	return r, ctx.Err()
}

// heldProcess is a process that runs until its stdin closes.
type heldProcess struct {
	pid    int
	stdin  io.WriteCloser
	exited chan struct{}
	once   sync.Once
}

// holdExiter starts exiter, which waits for a line on stdin once it has
// printed "ready".
func holdExiter(procs *processes, bin string) (*heldProcess, error) {
	cmd := exec.Command(bin, "-mode", "exit", "-code", "0")
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", bin, err)
	}
	h := &heldProcess{pid: cmd.Process.Pid, stdin: stdin, exited: make(chan struct{})}
	procs.add(h)
	go func() {
		_ = cmd.Wait()
		close(h.exited)
	}()
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil || strings.TrimSpace(line) != "ready" {
		h.stop()
		return nil, fmt.Errorf("%s: no ready line (%q, %v)", bin, line, err)
	}
	return h, nil
}

// stop closes the process's stdin (it exits) and kills its PID if it
// lingers.
func (h *heldProcess) stop() {
	h.once.Do(func() {
		_ = h.stdin.Close()
		select {
		case <-h.exited:
		case <-time.After(5 * time.Second):
			_ = syscall.Kill(h.pid, syscall.SIGKILL)
			<-h.exited
		}
	})
}

func fileSize(path string) int64 {
	st, err := os.Stat(path)
	if err != nil {
		return 0
	}
	return st.Size()
}

// crashProbes are the probes on a set of processes: the panic probe
// attached to each, the exit tracer watching each.
type crashProbes struct {
	pt *panics.Tracer
	ew *exits.Watcher
}

// loadCrashProbes loads both probes and puts them on pids; the exit
// watcher uses tr when it is not nil.
func loadCrashProbes(ctx context.Context, pids []int, tr *bpf.ExitTracer) (*crashProbes, error) {
	pt, err := panics.New()
	if err != nil {
		if tr != nil {
			_ = tr.Close()
		}
		return nil, err
	}
	ew, err := exits.New(ctx, exits.Options{Tracer: tr})
	if err != nil {
		_ = pt.Close()
		if tr != nil {
			_ = tr.Close()
		}
		return nil, err
	}
	c := &crashProbes{pt: pt, ew: ew}
	if ew.Mode() != exits.ModeBPF {
		c.close()
		return nil, fmt.Errorf("exit watcher polls: %v", ew.BPFError())
	}
	for _, pid := range pids {
		start, err := process.StartTime(pid)
		if err == nil {
			err = pt.Attach(pid)
		}
		if err == nil {
			err = ew.Watch(pid, start)
		}
		if err != nil {
			c.close()
			return nil, err
		}
	}
	return c, nil
}

// close unloads both, waiting for the uprobes to be removed; it returns
// the panic probe's records since load.
func (c *crashProbes) close() uint64 {
	st, _ := c.pt.Stats()
	_ = c.pt.Close()
	_ = c.ew.Close()
	return st.Events
}

// loadCounters are a target's work counters.
type loadCounters struct {
	ops, panics, goroutines, gcs uint64
}

func burnOps(ctx context.Context, t *target) (loadCounters, error) {
	var st struct {
		Ops uint64 `json:"ops"`
	}
	_, err := t.get(ctx, "/burners", 1<<20, &st)
	return loadCounters{ops: st.Ops}, err
}

func requestOps(ctx context.Context, t *target) (loadCounters, error) {
	var st struct {
		Ops        uint64 `json:"ops"`
		Panics     uint64 `json:"panics_recovered"`
		Goroutines uint64 `json:"goroutines_started"`
		GCs        uint64 `json:"gc_cycles"`
	}
	_, err := t.get(ctx, "/ops", 1<<20, &st)
	return loadCounters{ops: st.Ops, panics: st.Panics, goroutines: st.Goroutines, gcs: st.GCs}, err
}

// alternateProbes runs window rounds times in each mode, modeNone and
// modeProbes, the order swapped every round, with the probes loaded on
// watched (and settled) around each modeProbes window; it returns the
// panic probe's records of those windows.
func alternateProbes(ctx context.Context, rounds int, watched []int, window func(mode string) error) (uint64, error) {
	var hits uint64
	for r := 0; r < rounds; r++ {
		modes := []string{modeNone, modeProbes}
		if r%2 == 1 {
			modes = []string{modeProbes, modeNone}
		}
		for _, mode := range modes {
			if err := ctx.Err(); err != nil {
				return hits, err
			}
			var probes *crashProbes
			if mode == modeProbes {
				var err error
				if probes, err = loadCrashProbes(ctx, watched, nil); err != nil {
					return hits, err
				}
			}
			time.Sleep(crashSettle)
			err := window(mode)
			if probes != nil {
				hits += probes.close()
			}
			if err != nil {
				return hits, err
			}
		}
	}
	return hits, nil
}

// targetThroughput alternates windows without probes and with the probes
// on the target.
func targetThroughput(ctx context.Context, t *target, rounds int, read func(context.Context, *target) (loadCounters, error)) tputRow {
	row := tputRow{tput: map[string][]float64{}, eff: map[string][]float64{}}
	var panicsPS, goPS, gcPS []float64
	fail := func(err error) tputRow {
		row.err = err.Error()
		fmt.Fprintf(os.Stderr, "bench: crashprobes: pid %d: %v\n", t.PID, err)
		return row
	}
	var err error
	row.hits, err = alternateProbes(ctx, rounds, []int{t.PID}, func(mode string) error {
		c0, err := read(ctx, t)
		cpu0, err2 := taskCPU(t.PID)
		start := time.Now()
		if err == nil && err2 == nil {
			time.Sleep(crashWindow)
		}
		c1, err3 := read(ctx, t)
		cpu1, err4 := taskCPU(t.PID)
		wall := time.Since(start)
		if err := errors.Join(err, err2, err3, err4); err != nil {
			return err
		}
		row.tput[mode] = append(row.tput[mode], float64(c1.ops-c0.ops)/wall.Seconds())
		row.eff[mode] = append(row.eff[mode], float64(c1.ops-c0.ops)/(cpu1-cpu0).Seconds())
		panicsPS = append(panicsPS, float64(c1.panics-c0.panics)/wall.Seconds())
		goPS = append(goPS, float64(c1.goroutines-c0.goroutines)/wall.Seconds())
		gcPS = append(gcPS, float64(c1.gcs-c0.gcs)/wall.Seconds())
		return nil
	})
	if err != nil {
		return fail(err)
	}
	if medianF(goPS) > 0 {
		row.extra = fmt.Sprintf("%s recovered panics, %s goroutines started, %.0f GC cycles", si(medianF(panicsPS)), si(medianF(goPS)), medianF(gcPS))
	}
	fmt.Fprintf(os.Stderr, "bench: crashprobes: pid %d: ops/s none %.0f probes %.0f\n", t.PID, medianF(row.tput[modeNone]), medianF(row.tput[modeProbes]))
	return row
}

// spawnRate alternates windows of spawning argv without the probes and
// with them loaded (on watched), then spawns once more with the kernel's
// BPF statistics on to time the exit tracer's program.
func spawnRate(ctx context.Context, name string, argv []string, watched []int) spawnRow {
	row := spawnRow{name: name, rate: map[string][]float64{}}
	fail := func(err error) spawnRow {
		row.err = err.Error()
		fmt.Fprintf(os.Stderr, "bench: crashprobes: %s: %v\n", name, err)
		return row
	}
	var err error
	row.hits, err = alternateProbes(ctx, spawnRounds, watched, func(mode string) error {
		n, wall, err := spawnFor(ctx, argv, spawnWindow)
		if err != nil {
			return err
		}
		row.rate[mode] = append(row.rate[mode], float64(n)/wall.Seconds())
		return nil
	})
	if err != nil {
		return fail(err)
	}
	// The program's own cost: a window with run-time statistics on.
	stats, err := bpf.EnableRunStats()
	if err != nil {
		return fail(err)
	}
	defer stats.Close()
	tr, err := bpf.LoadExitTracer(bpf.ExitTracerOptions{})
	if err != nil {
		return fail(err)
	}
	probes, err := loadCrashProbes(ctx, watched, tr)
	if err != nil {
		return fail(err)
	}
	defer probes.close()
	time.Sleep(crashSettle)
	rt0, n0, err := tr.ProgramStats()
	if err != nil {
		return fail(err)
	}
	n, _, err := spawnFor(ctx, argv, spawnWindow)
	if err != nil {
		return fail(err)
	}
	rt1, n1, err := tr.ProgramStats()
	if err != nil {
		return fail(err)
	}
	if n1 > n0 && n > 0 {
		row.nsPerRun = float64(rt1-rt0) / float64(n1-n0)
		row.runsPerSpawn = float64(n1-n0) / float64(n)
	}
	fmt.Fprintf(os.Stderr, "bench: crashprobes: %s: spawns/s none %.0f probes %.0f; %.0f ns per run, %.1f runs per spawn\n",
		argv[0], medianF(row.rate[modeNone]), medianF(row.rate[modeProbes]), row.nsPerRun, row.runsPerSpawn)
	return row
}

// spawnFor runs argv to its end over and over in spawnWorkers goroutines
// for d and counts the runs.
func spawnFor(ctx context.Context, argv []string, d time.Duration) (int64, time.Duration, error) {
	var n atomic.Int64
	var wg sync.WaitGroup
	errs := make([]error, spawnWorkers)
	start := time.Now()
	deadline := start.Add(d)
	for i := 0; i < spawnWorkers; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for time.Now().Before(deadline) && ctx.Err() == nil {
				if err := exec.Command(argv[0], argv[1:]...).Run(); err != nil {
					errs[i] = fmt.Errorf("%s: %w", strings.Join(argv, " "), err)
					return
				}
				n.Add(1)
			}
		}()
	}
	wg.Wait()
	return n.Load(), time.Since(start), errors.Join(errs...)
}

// attachCost measures, attachCycles times, what putting the probes on
// process pid and taking them off costs the agent: with the exit watcher
// loaded once and a new panic tracer each cycle (loaded untimed), the
// first Attach (the executable is probed: its pclntab read, three uprobes
// registered) with Watch, Detach with Unwatch, an Attach and Watch again
// (the executable keeps its probes after its last process for a while: a
// restarted service, or the next process of a build tool, costs no
// probing), Detach and Unwatch again, then the tracer's Close, which
// removes the uprobes (what the linger's end does) and unloads the program.
func attachCost(ctx context.Context, pid int, name string, size int64) attachRow {
	row := attachRow{name: name, size: size}
	fail := func(err error) attachRow {
		row.err = err.Error()
		fmt.Fprintf(os.Stderr, "bench: crashprobes: attach to %s: %v\n", name, err)
		return row
	}
	ew, err := exits.New(ctx, exits.Options{})
	if err != nil {
		return fail(err)
	}
	defer ew.Close()
	start, err := process.StartTime(pid)
	if err != nil {
		return fail(err)
	}
	base := perfEventFDs()
	for i := 0; i < attachCycles; i++ {
		pt, err := panics.New()
		if err != nil {
			return fail(err)
		}
		on := func() (time.Duration, error) {
			t0 := time.Now()
			if err := pt.Attach(pid); err != nil {
				return 0, err
			}
			err := ew.Watch(pid, start)
			return time.Since(t0), err
		}
		off := func() (time.Duration, error) {
			t0 := time.Now()
			pt.Detach(pid)
			err := ew.Unwatch(pid)
			return time.Since(t0), err
		}
		u0, s0 := rusage()
		probe, err := on()
		if err != nil {
			_ = pt.Close()
			return fail(err)
		}
		row.uprobes = perfEventFDs() - base
		detach, err := off()
		if err != nil {
			_ = pt.Close()
			return fail(err)
		}
		u1, s1 := rusage()
		again, err := on()
		if err == nil {
			_, err = off()
		}
		if err != nil {
			_ = pt.Close()
			return fail(err)
		}
		u2, s2 := rusage()
		t0 := time.Now()
		if err := pt.Close(); err != nil {
			return fail(err)
		}
		remove := time.Since(t0)
		u3, s3 := rusage()
		if n := perfEventFDs() - base; n != 0 {
			return fail(fmt.Errorf("%d uprobes left after Close", n))
		}
		row.probe = append(row.probe, probe)
		row.detach = append(row.detach, detach)
		row.again = append(row.again, again)
		row.remove = append(row.remove, remove)
		row.cpu = append(row.cpu, u1-u0+s1-s0+u3-u2+s3-s2)
	}
	return row
}

// taskCPU is the CPU time of process pid's threads so far, to the
// nanosecond (the first field of /proc/PID/task/TID/schedstat; threads
// that exited are not counted: the targets keep theirs), or from
// /proc/PID/stat's ticks without schedstat.
func taskCPU(pid int) (time.Duration, error) {
	if _, err := os.Stat(fmt.Sprintf("/proc/%d/schedstat", pid)); err != nil {
		return procCPU(pid)
	}
	tasks, err := os.ReadDir(fmt.Sprintf("/proc/%d/task", pid))
	if err != nil {
		return 0, fmt.Errorf("threads of pid %d: %w", pid, err)
	}
	var sum time.Duration
	for _, tk := range tasks {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%s/schedstat", pid, tk.Name()))
		if err != nil {
			continue // the thread exited meanwhile
		}
		var ns int64
		if _, err := fmt.Sscan(string(b), &ns); err != nil {
			return 0, fmt.Errorf("schedstat of pid %d thread %s: %w", pid, tk.Name(), err)
		}
		sum += time.Duration(ns)
	}
	return sum, nil
}

// perfEventFDs counts this process's perf event descriptors: a uprobe
// link holds one until the kernel has removed the probe.
func perfEventFDs() int {
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return 0
	}
	n := 0
	for _, e := range ents {
		if l, err := os.Readlink(filepath.Join("/proc/self/fd", e.Name())); err == nil && l == "anon_inode:[perf_event]" {
			n++
		}
	}
	return n
}

func medianF(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// pairedRatios are a/b window by window (the same round).
func pairedRatios(a, b []float64) []float64 {
	var out []float64
	for i := 0; i < len(a) && i < len(b); i++ {
		if b[i] > 0 {
			out = append(out, a[i]/b[i])
		}
	}
	return out
}

// si formats a rate with k or M.
func si(v float64) string {
	switch {
	case v >= 1e6:
		return fmt.Sprintf("%.2fM", v/1e6)
	case v >= 1e4:
		return fmt.Sprintf("%.0fk", v/1e3)
	case v >= 1e3:
		return fmt.Sprintf("%.1fk", v/1e3)
	}
	return fmt.Sprintf("%.0f", v)
}

// medRange is "median (min–max)".
func medRange(xs []float64) string {
	if len(xs) == 0 {
		return "–"
	}
	return fmt.Sprintf("%s (%s–%s)", si(medianF(xs)), si(slices.Min(xs)), si(slices.Max(xs)))
}

// ratioRange is the paired ratios as "median (min–max)".
func ratioRange(xs []float64) string {
	if len(xs) == 0 {
		return "–"
	}
	return fmt.Sprintf("%.3f (%.3f–%.3f)", medianF(xs), slices.Min(xs), slices.Max(xs))
}

// costVerdict judges the paired ratios (probes ÷ none of one round) by a
// two-sided sign test: a cost is measurable when the probes' window was the
// slower one in so many rounds that chance explains it with probability
// under 5%.
func costVerdict(ratios []float64) string {
	if len(ratios) == 0 {
		return "not measured"
	}
	slower := 0
	for _, x := range ratios {
		if x < 1 {
			slower++
		}
	}
	pv := signTest(slower, len(ratios))
	loss := (1 - medianF(ratios)) * 100
	verdict := "no measurable cost"
	switch {
	case pv < 0.05 && loss > 0:
		verdict = "a measurable cost"
	case pv < 0.05:
		verdict = "measurably faster with the probes (drift on the host)"
	}
	return fmt.Sprintf("%+.1f%% (median paired ratio %.3f, middle half %.3f–%.3f), slower with the probes in %d of %d rounds (sign test p = %.2f): %s",
		-loss, medianF(ratios), quantileF(ratios, 0.25), quantileF(ratios, 0.75), slower, len(ratios), pv, verdict)
}

// quantileF is the q quantile of xs, interpolated.
func quantileF(xs []float64, q float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	pos := q * float64(len(s)-1)
	i := int(pos)
	if i+1 >= len(s) {
		return s[len(s)-1]
	}
	return s[i] + (pos-float64(i))*(s[i+1]-s[i])
}

// signTest is the two-sided p-value of k successes in n fair coin flips.
func signTest(k, n int) float64 {
	if k > n-k {
		k = n - k
	}
	// P(X <= k) for X ~ Binomial(n, 1/2), doubled.
	sum, c := 0.0, 1.0
	for i := 0; i <= k; i++ {
		if i > 0 {
			c = c * float64(n-i+1) / float64(i)
		}
		sum += c
	}
	return min(1, 2*sum/math.Pow(2, float64(n)))
}

func (r *crashReport) markdown() string {
	var b strings.Builder
	p := func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }
	p("## Crash probes: what they cost the target\n\n")
	p("Measured by `%s` on %s on %s, in %v (load average at start / end: %s / %s).\n\n",
		r.command, r.started.UTC().Format("2006-01-02 15:04 MST"), r.kernel, r.took.Round(time.Second), r.loadBefore, r.loadAfter)
	p("The crash forensics put two probes on a watched process: the panic probe (`collect/panics`: uprobes at the entry of\n")
	p("`runtime.fatalpanic`, `runtime.fatal` and `runtime.throw` of its executable file, so in every process running it, kept\n")
	p("for a while after its last watched process) and the exit tracer (`collect/exits`: a `sched_process_exit` program that\n")
	p("runs for every thread exiting on the host and looks the thread's process up in its watch map, and `oom:mark_victim`).\n")
	p("Neither runs in a process's steady state: a recovered panic runs `gopanic` and the recovery, not `fatalpanic`; `throw`\n")
	p("and `fatal` come only as the process dies.\n\n")
	p("**Target throughput.** Windows of %v with no probes loaded at all, and with both loaded, the panic probe attached to the\n", crashWindow)
	p("target and the exit tracer watching it (`panics.New`, `Tracer.Attach`, `exits.New`, `Watcher.Watch`; set up before\n")
	p("the window, unloaded after it), %d of each for cpuburn and %d for requestloop, alternating in one run (the order swapped\n", burnRounds, requestRounds)
	p("every round) on a target process running alone. *ops/s* is the target's work done in the window over wall time, *ops\n")
	p("per CPU-second* over its own time on the CPU (its threads' `/proc/PID/task/TID/schedstat`); medians with the windows'\n")
	p("range; the paired ratio is probes ÷ none of the two windows of one round, and a sign test over the rounds tells a cost\n")
	p("from the host's noise (the middle half of the paired ratios shows the resolution).\n\n")
	p("| target | load per second | ops/s, no probes | ops/s, probes | probes ÷ none (paired) | ops per CPU-second, no probes | with probes | probes ÷ none (paired) | panic probe records |\n")
	p("|---|---|---:|---:|---:|---:|---:|---:|---:|\n")
	for _, t := range r.targets {
		if t.err != "" && len(t.tput[modeNone]) == 0 {
			p("| %s | failed: %s | | | | | | | |\n", t.desc, oneLine(t.err))
			continue
		}
		extra := t.extra
		if extra == "" {
			extra = "–"
		}
		p("| %s | %s | %s | %s | %s | %s | %s | %s | %d |\n", t.desc, extra,
			medRange(t.tput[modeNone]), medRange(t.tput[modeProbes]), ratioRange(pairedRatios(t.tput[modeProbes], t.tput[modeNone])),
			medRange(t.eff[modeNone]), medRange(t.eff[modeProbes]), ratioRange(pairedRatios(t.eff[modeProbes], t.eff[modeNone])), t.hits)
	}
	p("\n")
	for _, t := range r.targets {
		if len(t.tput[modeNone]) == 0 {
			continue
		}
		p("- %s: ops/s %s; ops per CPU-second %s.\n", t.name, costVerdict(pairedRatios(t.tput[modeProbes], t.tput[modeNone])), costVerdict(pairedRatios(t.eff[modeProbes], t.eff[modeNone])))
	}
	p("\n")

	p("**A host that spawns processes.** The exit tracer's program runs for every thread that exits on the host, watched or\n")
	p("not. %d goroutines of the harness spawn a program and wait for it, over and over, for windows of %v with no probes\n", spawnWorkers, spawnWindow)
	p("loaded, and with both loaded on %d idle distinct Go programs (the exit tracer watching them, the panic probe attached to\n", len(r.programs))
	p("them: once uprobes exist, each executable mapping of a file the kernel makes looks its file's uprobes up), %d of each,\n", spawnRounds)
	p("alternating. In the last row the spawned program's own executable is probed too (another process of it is attached):\n")
	p("each new process of it gets the three breakpoints written into its copy of the text as it execs, the way the next\n")
	p("run of a probed build tool does. *BPF program* is the exit tracer's program's own run time per run and its runs per\n")
	p("spawned process, from one more window with the kernel's BPF statistics on (which add a clock read to each run); *of*\n")
	p("the wall time of one spawn (workers ÷ rate).\n\n")
	p("| spawned program | spawns/s, no probes | spawns/s, probes loaded | probes ÷ none (paired) | BPF program: per run, runs per spawn | its time per spawn | panic probe records |\n")
	p("|---|---:|---:|---:|---:|---:|---:|\n")
	for _, s := range r.spawns {
		if s.err != "" && len(s.rate[modeNone]) == 0 {
			p("| %s | failed: %s | | | | | |\n", s.name, oneLine(s.err))
			continue
		}
		prog, per := "–", "–"
		if s.runsPerSpawn > 0 {
			prog = fmt.Sprintf("%.0f ns, %.1f", s.nsPerRun, s.runsPerSpawn)
			perSpawn := s.nsPerRun * s.runsPerSpawn
			per = fmt.Sprintf("%.2f µs", perSpawn/1e3)
			if m := medianF(s.rate[modeNone]); m > 0 {
				// A spawn takes spawnWorkers/rate seconds of wall time.
				per += fmt.Sprintf(" of %.0f µs", float64(spawnWorkers)/m*1e6)
			}
		}
		p("| %s | %s | %s | %s | %s | %s | %d |\n", s.name, medRange(s.rate[modeNone]), medRange(s.rate[modeProbes]),
			ratioRange(pairedRatios(s.rate[modeProbes], s.rate[modeNone])), prog, per, s.hits)
		if s.err != "" {
			p("| | %s | | | | | |\n", oneLine(s.err))
		}
	}
	p("\n")
	for _, s := range r.spawns {
		if len(s.rate[modeNone]) == 0 {
			continue
		}
		p("- %s: spawns/s %s.\n", s.name, costVerdict(pairedRatios(s.rate[modeProbes], s.rate[modeNone])))
	}
	if len(r.programs) > 0 {
		p("\nThe watched programs: %s.\n", listPrograms(r.programs))
	}
	p("\n")

	p("**Attaching and detaching.** What the agent spends per process it watches, %d cycles per executable, with the exit\n", attachCycles)
	p("watcher loaded once and the panic probe's program loaded before each cycle (once per agent, untimed): *probe* is\n")
	p("`Tracer.Attach` of the process's executable's first process (read its pclntab, find the three functions, register\n")
	p("the uprobes on the file) with `Watcher.Watch` (one map update); *detach* `Tracer.Detach` and `Watcher.Unwatch`; *again*\n")
	p("the next process of the executable (a restarted service, the next run of a build tool), whose probes are still\n")
	p("there (an executable keeps them for a while after its last process); *remove* the tracer's `Close`, which waits for\n")
	p("the kernel to remove the uprobes (what the end of the linger does) and unloads the program. CPU is the harness's\n")
	p("user+sys over probe, detach and remove. Medians, max in parentheses; the first cycle reads the executable from the\n")
	p("page cache like the others (the programs were started before).\n\n")
	p("| executable | size | uprobes | probe + watch | detach + unwatch | again: attach + watch | remove (Close) | CPU per probe, detach, remove |\n")
	p("|---|---:|---:|---:|---:|---:|---:|---:|\n")
	for _, a := range r.attaches {
		if a.err != "" && len(a.probe) == 0 {
			p("| %s | %s | failed: %s | | | | | |\n", a.name, mb(float64(a.size)), oneLine(a.err))
			continue
		}
		mm := func(ds []time.Duration) string { return ms(median(ds)) + " (" + ms(quantile(ds, 1)) + ")" }
		p("| %s | %s | %d | %s | %s | %s | %s | %s |\n", a.name, mb(float64(a.size)), a.uprobes,
			mm(a.probe), mm(a.detach), mm(a.again), mm(a.remove), mm(a.cpu))
	}
	p("\n")
	for _, e := range r.errs {
		p("- %s\n", oneLine(e))
	}
	if len(r.errs) > 0 {
		p("\n")
	}
	return b.String()
}
