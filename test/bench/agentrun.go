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
	"strings"
	"sync"
	"syscall"
	"time"
)

// agentSpec is one agent run: targets latency targets of goroutines each.
type agentSpec struct {
	targets, goroutines int
}

// agentSpecs are the agent runs: many small processes, one large one.
var agentSpecs = []agentSpec{{targets: 20, goroutines: 1000}, {targets: 1, goroutines: 100000}}

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
	// profile is the agent's CPU profile of the window (with -profile).
	profile string
	err     string
}

func (r agentRow) label() string {
	return fmt.Sprintf("%d × %s goroutines", r.spec.targets, count(r.spec.goroutines))
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

// agentRun starts spec's targets and an agent watching only them at the
// default cadence, waits until each target's first snapshot is stored,
// then measures the agent for cfg.agentWindow.
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
	var targets []*target
	defer func() {
		for _, t := range targets {
			t.stop()
		}
	}()
	for range spec.targets {
		t, err := startTarget(ctx, procs, targetBin, spec.goroutines, "-probe-interval", "0")
		if err != nil {
			return fail(err)
		}
		targets = append(targets, t)
		goVersion = t.GoVersion
		if t.Goroutines < spec.goroutines {
			return fail(fmt.Errorf("target pid %d runs %d goroutines, want at least %d", t.PID, t.Goroutines, spec.goroutines))
		}
	}

	a, err := startAgent(procs, agentBin, targetBin, dir, cfg.agentWalker)
	if err != nil {
		return fail(err)
	}
	defer a.stop()
	url := "http://" + a.addr + "/metrics"

	// Wait until every target's first snapshot is taken and its three
	// entries stored (goroscope_snapshots_total counts before the store
	// writes). The first snapshots are spread over one interval.
	var m0 metrics
	deadline := time.Now().Add(45 * time.Second)
	for {
		m, err := scrape(ctx, url)
		if err == nil && m.byName["goroscope_snapshots_total"] >= float64(spec.targets) &&
			m.byName["goroscope_store_entries"] >= 3*m.byName["goroscope_snapshots_total"] {
			m0 = m
			break
		}
		if time.Now().After(deadline) {
			return fail(fmt.Errorf("no snapshot of every target after 45 s (last scrape error: %v; agent log: %s)", err, a.logTail()))
		}
		select {
		case <-a.exited:
			return fail(fmt.Errorf("agent exited: %s", a.logTail()))
		case <-ctx.Done():
			return fail(ctx.Err())
		case <-time.After(250 * time.Millisecond):
		}
	}
	if n := m0.byName["goroscope_snapshot_duration_seconds_count"]; n > 0 {
		row.firstMean = time.Duration(m0.byName["goroscope_snapshot_duration_seconds_sum"] / n * 1e9)
	}
	disk0 := dirBytes(filepath.Join(dir, "data"))
	cpu0, err := procCPU(a.pid)
	if err != nil {
		return fail(err)
	}
	start := time.Now()
	fmt.Fprintf(os.Stderr, "bench: agent: first snapshots stored (mean %v); measuring %v\n", row.firstMean.Round(time.Millisecond), cfg.agentWindow)
	// Nothing touches the agent during the window but, with -profile, its
	// own CPU profiler.
	profDone := make(chan error, 1)
	if cfg.profileDir != "" {
		row.profile = filepath.Join(cfg.profileDir, fmt.Sprintf("agent-%dx%d.pprof", spec.targets, spec.goroutines))
		go func() {
			profDone <- fetchProfile(ctx, "http://"+a.addr+"/debug/pprof/profile?seconds="+fmt.Sprint(int(cfg.agentWindow.Seconds())), row.profile)
		}()
	} else {
		profDone <- nil
	}
	select {
	case <-a.exited:
		return fail(fmt.Errorf("agent exited during the window: %s", a.logTail()))
	case <-ctx.Done():
		return fail(ctx.Err())
	case <-time.After(cfg.agentWindow):
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
	case <-time.After(15 * time.Second):
		fmt.Fprintln(os.Stderr, "bench: agent profile: not done 15 s after the window")
		row.profile = ""
	}
	if cfg.profileDir != "" {
		heap := filepath.Join(cfg.profileDir, fmt.Sprintf("agent-%dx%d.heap.pprof", spec.targets, spec.goroutines))
		if err := fetchProfile(ctx, "http://"+a.addr+"/debug/pprof/heap", heap); err != nil {
			fmt.Fprintf(os.Stderr, "bench: agent heap profile: %v\n", err)
		}
		// Where the resident memory is, mapping by mapping.
		if smaps, err := os.ReadFile(fmt.Sprintf("/proc/%d/smaps", a.pid)); err == nil {
			_ = os.WriteFile(strings.TrimSuffix(heap, ".heap.pprof")+".smaps", smaps, 0o644)
		}
	}
	if row.rss, row.hwm, err = procMem(a.pid); err != nil {
		return fail(err)
	}
	m1, err := scrape(ctx, url)
	if err != nil {
		return fail(err)
	}
	row.diskBytes = dirBytes(filepath.Join(dir, "data")) - disk0
	d := func(name string) float64 { return m1.byName[name] - m0.byName[name] }
	row.walker = m1.labelValues("goroscope_snapshots_total", "walker")
	row.snapshots = d("goroscope_snapshots_total")
	row.errors = d("goroscope_errors_total")
	row.skipped = d("goroscope_snapshot_skipped_total")
	row.storeBytes = int64(d("goroscope_store_bytes"))
	row.storeEntries = d("goroscope_store_entries")
	if n := d("goroscope_snapshot_duration_seconds_count"); n > 0 {
		row.snapMean = time.Duration(d("goroscope_snapshot_duration_seconds_sum") / n * 1e9)
	}
	fmt.Fprintf(os.Stderr, "bench: agent %-24s CPU %v in %v (%.2f%% of a core), RSS %.1f MB (peak %.1f MB), %v snapshots (mean %v), store +%d B\n",
		row.label(), row.cpu, row.window.Round(time.Millisecond), row.corePercent(), float64(row.rss)/1e6, float64(row.hwm)/1e6,
		row.snapshots, row.snapMean.Round(time.Microsecond), row.storeBytes)
	if want := float64(spec.targets) * (cfg.agentWindow.Seconds() / 10); row.snapshots < want-float64(spec.targets) {
		row.err = fmt.Sprintf("only %v snapshots in the window, want about %v", row.snapshots, want)
	}
	return row, goVersion
}

// startAgent runs `goroscope agent` on a free 127.0.0.1 port with its
// data in dir/data, watching only the processes of targetBin, at the
// default cadence.
func startAgent(procs *processes, agentBin, targetBin, dir, walker string) (*agentProc, error) {
	exe, err := filepath.EvalSymlinks(targetBin)
	if err != nil {
		return nil, fmt.Errorf("resolve %s: %w", targetBin, err)
	}
	// The rule is a regular expression in a single-quoted YAML string.
	rule := strings.ReplaceAll("^"+regexp.QuoteMeta(exe)+"$", "'", "''")
	conf := filepath.Join(dir, "goroscope.yaml")
	yaml := fmt.Sprintf("# The defaults, watching only the benchmark's targets; /debug/pprof for -profile.\nwalker: %s\nhttp:\n  pprof: true\ndiscovery:\n  include:\n    - exe: '%s'\n", walker, rule)
	if err := os.WriteFile(conf, []byte(yaml), 0o644); err != nil {
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
	cmd := exec.Command(agentBin, "agent", "--listen", addr, "--data-dir", filepath.Join(dir, "data"), "--config", conf)
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
