package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/goroscope/goroscope/test/memcg"
)

// agentSpec is one agent run: targets latency targets of goroutines each,
// or distinct different Go programs.
type agentSpec struct {
	targets, goroutines int
	// perChan is the targets' -perchan (goroutines parked per channel;
	// 0: the target's default).
	perChan int
	// distinct, when not 0, runs that many distinct Go programs of the
	// installed toolchains instead of latency targets.
	distinct int
	// memLimit, when not 0, runs the agent in a memory cgroup of its own
	// limited to that many bytes.
	memLimit int64
	// cycles, when not 0, ends the window once the agent has stored that
	// many further snapshots instead of after -agent-window: for a process
	// too large for the cycle budget, which the agent snapshots every few
	// intervals, as many as its last walk took budgets, so that the
	// window holds whole cycles.
	cycles int
	// firstWait bounds the wait for every process's first snapshot
	// (0: 45 s).
	firstWait time.Duration
	// goals is whether the CPU and RSS goals apply.
	goals bool
}

// agentSpecs are the agent runs: many small processes of one executable,
// as many distinct executables, one large process, and one of a million
// goroutines with the agent in the memory limit the deploy files ship
// (systemd's MemoryMax=256M, the DaemonSet's limits.memory: 256Mi).
var agentSpecs = []agentSpec{
	{targets: 20, goroutines: 1000, goals: true},
	{distinct: 20, goals: true},
	{targets: 1, goroutines: 100000},
	{targets: 1, goroutines: 1000000, perChan: 1000, memLimit: 256 << 20, cycles: 2, firstWait: 3 * time.Minute},
}

// processes is how many processes the agent watches in the run.
func (s agentSpec) processes() int {
	if s.distinct > 0 {
		return s.distinct
	}
	return s.targets
}

// agentKeys are the keys of agentSpecs, for -agent-runs.
func agentKeys() []string {
	var keys []string
	for _, s := range agentSpecs {
		keys = append(keys, s.key())
	}
	return keys
}

// key names the run's files and -agent-runs ("20x1000", "distinct20").
func (s agentSpec) key() string {
	if s.distinct > 0 {
		return fmt.Sprintf("distinct%d", s.distinct)
	}
	return fmt.Sprintf("%dx%d", s.targets, s.goroutines)
}

// agentRow is what one run of the goroscope agent cost.
type agentRow struct {
	spec   agentSpec
	walker string
	// window is the measured time, after every target's first snapshot
	// was taken and stored.
	window time.Duration
	// cpu is the agent's utime+stime over the window.
	cpu      time.Duration
	rss, hwm int64
	// snapshots, errors and skipped are the counters' growth in the window.
	snapshots, errors, skipped float64
	// snapMean is the mean snapshot duration in the window; firstMean the
	// mean of the first snapshot of each target (before the window).
	snapMean, firstMean time.Duration
	// storeBytes and diskBytes are the growth of goroscope_store_bytes and
	// of the data directory in the window.
	storeBytes, diskBytes int64
	storeEntries          float64
	// sampled is the growth of goroscope_snapshots_sampled_total in the
	// window: snapshots that kept one goroutine in k.
	sampled float64
	// goroutines is how many goroutines the watched processes ran, by
	// their newest snapshots (goroscope_goroutines; exact when sampled).
	goroutines float64
	// interval is the longest effective snapshot interval of a watched
	// process at the end (goroscope_snapshot_interval_seconds).
	interval time.Duration
	// programs are the distinct programs watched (spec.distinct).
	programs []distinctProgram
	// softLimit is the soft memory limit the agent logged it set (0:
	// none); cgroupPeak and oomKills are its memory cgroup's peak usage
	// and OOM kills (spec.memLimit).
	softLimit, cgroupPeak int64
	oomKills              int
	// healthReads and healthTime are the runtime health reads in the
	// window and their time (goroscope_runtime_health_*), walkTime the
	// walks' (goroscope_snapshot_duration_seconds_sum).
	healthReads          float64
	healthTime, walkTime time.Duration
	// profile is the agent's CPU profile of the window (with -profile).
	profile string
	err     string
}

// label names the run in the report.
func (r agentRow) label() string {
	if r.spec.distinct > 0 {
		if len(r.programs) == 0 {
			return fmt.Sprintf("%d distinct Go programs", r.spec.distinct)
		}
		return describePrograms(r.programs)
	}
	l := fmt.Sprintf("%d × %s goroutines", r.spec.targets, count(r.spec.goroutines))
	if r.spec.memLimit > 0 {
		l += fmt.Sprintf(", agent in a %d MiB memory cgroup", r.spec.memLimit>>20)
	}
	return l
}

// addProblem adds msg to the row's error.
func (r *agentRow) addProblem(msg string) {
	if r.err != "" {
		r.err += "; "
	}
	r.err += msg
}

// perHour extrapolates a growth over the window to an hour.
func (r agentRow) perHour(v int64) float64 {
	if r.window <= 0 {
		return 0
	}
	return float64(v) * float64(time.Hour) / float64(r.window)
}

// corePercent is the agent's CPU as a percentage of one core.
func (r agentRow) corePercent() float64 {
	if r.window <= 0 {
		return 0
	}
	return 100 * float64(r.cpu) / float64(r.window)
}

// agentProc is a running goroscope agent.
type agentProc struct {
	pid    int
	addr   string
	log    string
	exited chan struct{}
	once   sync.Once
}

// stop sends SIGTERM, waits up to 10 s for the agent to flush and exit,
// then kills its PID.
func (a *agentProc) stop() {
	a.once.Do(func() {
		_ = syscall.Kill(a.pid, syscall.SIGTERM)
		select {
		case <-a.exited:
		case <-time.After(10 * time.Second):
			_ = syscall.Kill(a.pid, syscall.SIGKILL)
			<-a.exited
		}
	})
}

// wait waits d while the agent runs; it fails if the agent exits or ctx
// is done first.
func (a *agentProc) wait(ctx context.Context, d time.Duration) error {
	select {
	case <-a.exited:
		return fmt.Errorf("agent exited during the window: %s", a.logTail())
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(d):
		return nil
	}
}

// logTail is the end of the agent's log, for error messages.
func (a *agentProc) logTail() string {
	b, _ := os.ReadFile(a.log)
	s := strings.TrimSpace(string(b))
	if len(s) > 600 {
		s = "…" + s[len(s)-600:]
	}
	return s
}

// buildAgent builds the goroscope binary (./agent) into dir.
func buildAgent(ctx context.Context, dir string) (string, error) {
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		return "", fmt.Errorf("locate the repository: runtime.Caller failed")
	}
	root := filepath.Join(filepath.Dir(file), "..", "..")
	if _, err := os.Stat(filepath.Join(root, "agent", "main.go")); err != nil {
		return "", fmt.Errorf("locate ./agent above %s (run from a checkout): %w", file, err)
	}
	bin := filepath.Join(dir, "goroscope")
	ctx, cancel := context.WithTimeout(ctx, 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "go", "build", "-o", bin, "./agent")
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("build ./agent: %w\n%s", err, out)
	}
	return bin, nil
}

// agentScenario builds the agent and measures each of agentSpecs.
func agentScenario(ctx context.Context, cfg config, procs *processes, dir, targetBin string) ([]agentRow, string, error) {
	fmt.Fprintln(os.Stderr, "bench: building ./agent")
	bin, err := buildAgent(ctx, dir)
	if err != nil {
		return nil, "", err
	}
	var rows []agentRow
	var goVersion string
	for i, spec := range agentSpecs {
		if len(cfg.agentRuns) > 0 && !slices.Contains(cfg.agentRuns, spec.key()) {
			continue
		}
		if err := ctx.Err(); err != nil {
			return rows, goVersion, fmt.Errorf("stopped before agent run %d: %w", i, err)
		}
		row, gv := agentRun(ctx, cfg, procs, bin, targetBin, filepath.Join(dir, fmt.Sprintf("agent-%d", i)), spec)
		if gv != "" {
			goVersion = gv
		}
		rows = append(rows, row)
	}
	return rows, goVersion, ctx.Err()
}

// discoveryRule is one discovery.include entry of the agent's
// configuration: regular expressions on the executable path and, when not
// empty, the command line.
type discoveryRule struct{ exe, cmdline string }

// startWatched starts the processes spec's agent watches, returning the
// discovery rules that select exactly them, the Go release of the latency
// targets ("" for distinct programs) and a function stopping them all.
func startWatched(ctx context.Context, procs *processes, targetBin, dir string, spec agentSpec, row *agentRow) ([]discoveryRule, string, func(), error) {
	if spec.distinct > 0 {
		running, err := startPrograms(ctx, procs, dir, spec.distinct)
		if err != nil {
			return nil, "", func() {}, err
		}
		stop := func() {
			for _, r := range running {
				r.stop()
			}
		}
		row.programs = programsOf(running)
		// Each program's command line names a file in dir: other runs of
		// these toolchains on the host (a build, a go test) are not
		// watched.
		var rules []discoveryRule
		for _, p := range row.programs {
			rules = append(rules, discoveryRule{exe: "^" + regexp.QuoteMeta(p.path) + "$", cmdline: regexp.QuoteMeta(dir + "/")})
		}
		return rules, "", stop, nil
	}
	var targets []*target
	stop := func() {
		for _, t := range targets {
			t.stop()
		}
	}
	extra := []string{"-probe-interval", "0"}
	if spec.perChan > 0 {
		extra = append(extra, "-perchan", fmt.Sprint(spec.perChan))
	}
	var goVersion string
	for range spec.targets {
		t, err := startTarget(ctx, procs, targetBin, spec.goroutines, extra...)
		if err != nil {
			return nil, goVersion, stop, err
		}
		targets = append(targets, t)
		goVersion = t.GoVersion
		if t.Goroutines < spec.goroutines {
			return nil, goVersion, stop, fmt.Errorf("target pid %d runs %d goroutines, want at least %d", t.PID, t.Goroutines, spec.goroutines)
		}
	}
	rules, err := exeRules(targetBin)
	return rules, goVersion, stop, err
}

// exeRules are the discovery rules selecting the processes of the
// executable bin, by its real path.
func exeRules(bin string) ([]discoveryRule, error) {
	exe, err := filepath.EvalSymlinks(bin)
	if err != nil {
		return nil, fmt.Errorf("resolve %s: %w", bin, err)
	}
	return []discoveryRule{{exe: "^" + regexp.QuoteMeta(exe) + "$"}}, nil
}

// agentRun starts spec's processes and an agent watching only them at the
// default cadence (in a memory cgroup of its own with spec.memLimit),
// waits until each process's first snapshot is stored, then measures the
// agent for the window (-agent-window, or spec.cycles snapshots).
func agentRun(ctx context.Context, cfg config, procs *processes, agentBin, targetBin, dir string, spec agentSpec) (row agentRow, goVersion string) {
	row = agentRow{spec: spec}
	fail := func(err error) (agentRow, string) {
		row.err = err.Error()
		fmt.Fprintf(os.Stderr, "bench: agent, %s: %v\n", row.label(), err)
		return row, goVersion
	}
	if err := os.MkdirAll(filepath.Join(dir, "data"), 0o755); err != nil {
		return fail(fmt.Errorf("agent data dir: %w", err))
	}
	fmt.Fprintf(os.Stderr, "bench: agent: starting %s\n", row.label())
	rules, goVersion, stopWatched, err := startWatched(ctx, procs, targetBin, dir, spec, &row)
	defer stopWatched()
	if err != nil {
		return fail(err)
	}
	var grp *memcg.Group
	if spec.memLimit > 0 {
		if grp, err = memcg.New(fmt.Sprintf("goroscope-bench-%d-%s", os.Getpid(), spec.key()), spec.memLimit); err != nil {
			return fail(err)
		}
		defer func() {
			if err := grp.Close(); err != nil {
				fmt.Fprintf(os.Stderr, "bench: %v\n", err)
			}
		}()
		// After the agent stopped (deferred below): what the kernel saw
		// over the whole run.
		defer func() { readCgroup(grp, &row) }()
	}
	a, err := startAgent(procs, agentBin, dir, cfg.agentWalker, rules, grp)
	if err != nil {
		return fail(err)
	}
	defer a.stop()
	url := "http://" + a.addr + "/metrics"

	firstWait := 45 * time.Second
	if spec.firstWait > 0 {
		firstWait = spec.firstWait
	}
	m0, err := waitFirstSnapshots(ctx, a, url, spec.processes(), firstWait)
	if err != nil {
		return fail(err)
	}
	row.softLimit = a.softLimit()
	if n := m0.byName["goroscope_snapshot_duration_seconds_count"]; n > 0 {
		row.firstMean = time.Duration(m0.byName["goroscope_snapshot_duration_seconds_sum"] / n * 1e9)
	}
	disk0 := dirBytes(filepath.Join(dir, "data"))
	cpu0, err := procCPU(a.pid)
	if err != nil {
		return fail(err)
	}
	start := time.Now()
	if spec.cycles > 0 {
		fmt.Fprintf(os.Stderr, "bench: agent: first snapshots stored (mean %v); measuring %d more\n", row.firstMean.Round(time.Millisecond), spec.cycles)
	} else {
		fmt.Fprintf(os.Stderr, "bench: agent: first snapshots stored (mean %v); measuring %v\n", row.firstMean.Round(time.Millisecond), cfg.agentWindow)
	}
	// Nothing touches the agent during the window but, with -profile, its
	// own CPU profiler (for -agent-window), and, with spec.cycles, a
	// /metrics scrape each second.
	profDone := make(chan error, 1)
	if cfg.profileDir != "" {
		row.profile = filepath.Join(cfg.profileDir, "agent-"+spec.key()+".pprof")
		go func() {
			profDone <- fetchProfile(ctx, "http://"+a.addr+"/debug/pprof/profile?seconds="+fmt.Sprint(int(cfg.agentWindow.Seconds())), row.profile)
		}()
	} else {
		profDone <- nil
	}
	if spec.cycles > 0 {
		err = waitSnapshots(ctx, a, url, m0.byName["goroscope_snapshots_total"]+float64(spec.cycles), maxWindow)
	} else {
		err = a.wait(ctx, cfg.agentWindow)
	}
	if err != nil {
		return fail(err)
	}
	cpu1, err := procCPU(a.pid)
	if err != nil {
		return fail(err)
	}
	row.window = time.Since(start)
	row.cpu = cpu1 - cpu0
	select {
	case err := <-profDone:
		if err != nil {
			fmt.Fprintf(os.Stderr, "bench: agent profile: %v\n", err)
			row.profile = ""
		}
	case <-time.After(15*time.Second + max(0, cfg.agentWindow-row.window)):
		fmt.Fprintln(os.Stderr, "bench: agent profile: not done 15 s after its end")
		row.profile = ""
	}
	if cfg.profileDir != "" {
		saveMemProfiles(ctx, a, filepath.Join(cfg.profileDir, "agent-"+spec.key()))
	}
	if row.rss, row.hwm, err = procMem(a.pid); err != nil {
		return fail(err)
	}
	m1, err := scrape(ctx, url)
	if err != nil {
		return fail(err)
	}
	row.diskBytes = dirBytes(filepath.Join(dir, "data")) - disk0
	fillCounters(&row, m0, m1)
	fmt.Fprintf(os.Stderr, "bench: agent %-24s CPU %v in %v (%.2f%% of a core), RSS %.1f MB (peak %.1f MB), %v snapshots (mean %v, %v sampled), store +%d B\n",
		row.label(), row.cpu, row.window.Round(time.Millisecond), row.corePercent(), float64(row.rss)/1e6, float64(row.hwm)/1e6,
		row.snapshots, row.snapMean.Round(time.Microsecond), row.sampled, row.storeBytes)
	if want := float64(spec.processes()) * (row.window.Seconds() / 10); spec.cycles == 0 && row.snapshots < want-float64(spec.processes()) {
		row.addProblem(fmt.Sprintf("only %v snapshots in the window, want about %.0f", row.snapshots, want))
	}
	if w := m1.byName["goroscope_processes_watched"]; w != float64(spec.processes()) {
		row.addProblem(fmt.Sprintf("the agent watched %v processes, not the %d started", w, spec.processes()))
	}
	return row, goVersion
}

// maxWindow bounds a window of spec.cycles snapshots.
const maxWindow = 3 * time.Minute

// waitSnapshots waits up to timeout until the agent has taken want
// snapshots in all and stored them, scraping its /metrics each second.
func waitSnapshots(ctx context.Context, a *agentProc, url string, want float64, timeout time.Duration) error {
	var last float64
	cond := func() (bool, error) {
		m, err := scrape(ctx, url)
		if err != nil {
			return false, err
		}
		last = m.byName["goroscope_snapshots_total"]
		return last >= want && m.byName["goroscope_store_entries"] >= 3*last, nil
	}
	if err := pollUntil(ctx, timeout, time.Second, a.exited, cond); err != nil {
		return fmt.Errorf("%v of %v snapshots stored: %w (agent log: %s)", last, want, err, a.logTail())
	}
	return nil
}

// waitFirstSnapshots waits up to timeout until the agent watches n
// processes, has taken a snapshot of each, and stored the three entries
// of every snapshot (goroscope_snapshots_total counts before the store
// writes); it returns the scrape where that held. The first snapshots are
// spread over one interval.
func waitFirstSnapshots(ctx context.Context, a *agentProc, url string, n int, timeout time.Duration) (metrics, error) {
	var m metrics
	var scrapeErr error
	cond := func() (bool, error) {
		m, scrapeErr = scrape(ctx, url)
		if scrapeErr != nil {
			return false, scrapeErr
		}
		snaps := m.byName["goroscope_snapshots_total"]
		return m.byName["goroscope_processes_watched"] >= float64(n) &&
			len(m.values("goroscope_process_info")) >= n &&
			snaps >= float64(n) && m.byName["goroscope_store_entries"] >= 3*snaps, nil
	}
	if err := pollUntil(ctx, timeout, 250*time.Millisecond, a.exited, cond); err != nil {
		return m, fmt.Errorf("no stored snapshot of each of the %d processes: %w (watched %v, snapshotted %d, snapshots %v; agent log: %s)", n, err,
			m.byName["goroscope_processes_watched"], len(m.values("goroscope_process_info")), m.byName["goroscope_snapshots_total"], a.logTail())
	}
	return m, nil
}

// fillCounters sets row's counters from their growth between the scrapes
// m0 and m1.
func fillCounters(row *agentRow, m0, m1 metrics) {
	d := func(name string) float64 { return m1.byName[name] - m0.byName[name] }
	row.walker = m1.labelValues("goroscope_snapshots_total", "walker")
	row.snapshots = d("goroscope_snapshots_total")
	row.errors = d("goroscope_errors_total")
	row.skipped = d("goroscope_snapshot_skipped_total")
	row.sampled = d("goroscope_snapshots_sampled_total")
	row.storeBytes = int64(d("goroscope_store_bytes"))
	row.storeEntries = d("goroscope_store_entries")
	row.goroutines = m1.byName["goroscope_goroutines"]
	if n := d("goroscope_snapshot_duration_seconds_count"); n > 0 {
		row.snapMean = time.Duration(d("goroscope_snapshot_duration_seconds_sum") / n * 1e9)
	}
	row.walkTime = time.Duration(d("goroscope_snapshot_duration_seconds_sum") * 1e9)
	row.healthReads = d("goroscope_runtime_health_reads_total")
	row.healthTime = time.Duration(d("goroscope_runtime_health_read_seconds_total") * 1e9)
	for _, iv := range m1.values("goroscope_snapshot_interval_seconds") {
		row.interval = max(row.interval, time.Duration(iv*float64(time.Second)))
	}
}

// saveMemProfiles saves the agent's heap profile to prefix.heap.pprof and
// its /proc/PID/smaps (where the resident memory is, mapping by mapping)
// to prefix.smaps.
func saveMemProfiles(ctx context.Context, a *agentProc, prefix string) {
	if err := fetchProfile(ctx, "http://"+a.addr+"/debug/pprof/heap", prefix+".heap.pprof"); err != nil {
		fmt.Fprintf(os.Stderr, "bench: agent heap profile: %v\n", err)
	}
	if smaps, err := os.ReadFile(fmt.Sprintf("/proc/%d/smaps", a.pid)); err == nil {
		_ = os.WriteFile(prefix+".smaps", smaps, 0o644)
	}
}

// readCgroup sets row's OOM kills and peak usage of the agent's memory
// cgroup; an OOM kill fails the row.
func readCgroup(grp *memcg.Group, row *agentRow) {
	var err error
	if row.oomKills, err = grp.OOMKills(); err != nil {
		row.addProblem(err.Error())
	}
	if row.cgroupPeak, err = grp.Peak(); err != nil {
		row.addProblem(err.Error())
	}
	if row.oomKills > 0 {
		row.addProblem(fmt.Sprintf("the OOM killer killed %d process(es) in the agent's %d MiB cgroup", row.oomKills, row.spec.memLimit>>20))
	}
	fmt.Fprintf(os.Stderr, "bench: agent %s: memory cgroup peak %.1f MiB of %d MiB, %d OOM kills\n",
		row.label(), float64(row.cgroupPeak)/(1<<20), row.spec.memLimit>>20, row.oomKills)
}

// startAgent runs `goroscope agent` on a free 127.0.0.1 port with its
// data in dir/data, watching only the processes rules select, at the
// default cadence; in the memory cgroup grp unless it is nil.
func startAgent(procs *processes, agentBin, dir, walker string, rules []discoveryRule, grp *memcg.Group, extra ...string) (*agentProc, error) {
	// Each rule is a regular expression in a single-quoted YAML string.
	quote := func(re string) string { return "'" + strings.ReplaceAll(re, "'", "''") + "'" }
	var yaml strings.Builder
	fmt.Fprintf(&yaml, "# The defaults, watching only the benchmark's processes; /debug/pprof for -profile.\nwalker: %s\nhttp:\n  pprof: true\ndiscovery:\n  include:\n", walker)
	for _, r := range rules {
		fmt.Fprintf(&yaml, "    - exe: %s\n", quote(r.exe))
		if r.cmdline != "" {
			fmt.Fprintf(&yaml, "      cmdline: %s\n", quote(r.cmdline))
		}
	}
	conf := filepath.Join(dir, "goroscope.yaml")
	if err := os.WriteFile(conf, []byte(yaml.String()), 0o644); err != nil {
		return nil, fmt.Errorf("write agent config: %w", err)
	}
	addr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	logPath := filepath.Join(dir, "agent.log")
	logf, err := os.Create(logPath)
	if err != nil {
		return nil, fmt.Errorf("agent log: %w", err)
	}
	defer logf.Close()
	args := append([]string{"agent", "--listen", addr, "--data-dir", filepath.Join(dir, "data"), "--config", conf}, extra...)
	cmd := exec.Command(agentBin, args...)
	if grp != nil {
		// A shell moves itself into the group and executes the agent:
		// the agent keeps the shell's PID.
		cmd = grp.Command(context.Background(), agentBin, args...)
	}
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s agent: %w", agentBin, err)
	}
	a := &agentProc{pid: cmd.Process.Pid, addr: addr, log: logPath, exited: make(chan struct{})}
	procs.add(a)
	go func() {
		_ = cmd.Wait()
		close(a.exited)
	}()
	return a, nil
}

// softLimit is the soft memory limit the agent logged at start
// (soft_limit_bytes of its "memory limit" line); 0 for none or unknown.
func (a *agentProc) softLimit() int64 {
	b, _ := os.ReadFile(a.log)
	m := regexp.MustCompile(`"?soft_limit_bytes"?[=:](\d+)`).FindSubmatch(b)
	if m == nil {
		return 0
	}
	n, _ := strconv.ParseInt(string(m[1]), 10, 64)
	return n
}

// pollUntil checks cond every period until it holds, failing after
// timeout, when exited is closed or when ctx is done. The last error of
// cond is in the timeout's.
func pollUntil(ctx context.Context, timeout, period time.Duration, exited <-chan struct{}, cond func() (bool, error)) error {
	deadline := time.Now().Add(timeout)
	for {
		ok, err := cond()
		if ok {
			return nil
		}
		if time.Now().After(deadline) {
			if err != nil {
				return fmt.Errorf("not after %v (last: %w)", timeout, err)
			}
			return fmt.Errorf("not after %v", timeout)
		}
		select {
		case <-exited:
			return errors.New("it exited")
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(period):
		}
	}
}

// fetchProfile saves the CPU profile at url (which blocks for its
// duration) to path.
func fetchProfile(ctx context.Context, url, path string) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("profile dir: %w", err)
	}
	ctx, cancel := context.WithTimeout(ctx, 3*time.Minute)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("fetch %s: %w", url, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("fetch %s: %s", url, resp.Status)
	}
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("profile: %w", err)
	}
	if _, err := io.Copy(f, io.LimitReader(resp.Body, 64<<20)); err != nil {
		f.Close()
		return fmt.Errorf("save %s: %w", path, err)
	}
	return f.Close()
}

// freeAddr returns a 127.0.0.1 address with a port free just now.
func freeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", fmt.Errorf("find a free port on 127.0.0.1: %w", err)
	}
	addr := ln.Addr().String()
	if err := ln.Close(); err != nil {
		return "", errors.Join(fmt.Errorf("free port %s", addr), err)
	}
	return addr, nil
}
