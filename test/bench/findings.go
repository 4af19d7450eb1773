package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/goroscope/goroscope/collect/process"
	"github.com/goroscope/goroscope/collect/walk"
	"github.com/goroscope/goroscope/pkg/findings"
	"github.com/goroscope/goroscope/pkg/snapshot"
	"github.com/goroscope/goroscope/test/targettest"
)

// The findings scenario: `goroscope agent` at its default cadence and
// thresholds watches test/targets/leaky in every mode — each leak at a
// slow rate and at 1/s, the deadlock, the healthy workloads — for
// -findings-duration, and the harness records when the first finding of
// the expected kind holds on each target (detection latency) and every
// finding on a healthy one (false positives). Before that, with nothing
// else running, it times the grouping (findings.Tracker.Observe) of real
// 100k-goroutine snapshots against their walk, and runs pkg/findings'
// BenchmarkGroups100k.

// findingsPoll is how often the scenario reads the agent's /metrics.
const findingsPoll = 5 * time.Second

// agentCycle is the agent's default snapshot and discovery interval.
const agentCycle = 10 * time.Second

// Goals of the findings (the issue): a leak found within 10 minutes of
// its start, within 2 minutes when it grows by at least 1 goroutine a
// second; all-asleep within its 5-minute wait and a cycle; no finding on
// a healthy target; grouping at most 10% of the walk.
const (
	leakGoalSlow    = 10 * time.Minute
	leakGoalFast    = 2 * time.Minute
	allAsleepGoal   = 5*time.Minute + agentCycle
	groupingGoalPct = 10.0
)

// leakyModes are the leak modes of test/targets/leaky with the finding
// each must give, and the share of its requests that leak a goroutine
// (send-after-timeout: only lookups slower than the 30 ms timeout, 10+id*37%50
// ms, leak; 29 ids in 50).
var leakyModes = []struct {
	mode, kind string
	leakShare  float64
}{
	{"send-after-timeout", findings.KindLeak, 29.0 / 50},
	{"range-unclosed", findings.KindLeak, 1},
	{"ctx-never-cancelled", findings.KindLeak, 1},
	{"mutex-holder-waits", findings.KindStuck, 1},
	{"ticker-per-request", findings.KindLeak, 1},
}

// healthyModes are leaky's workloads that must give no finding, run at
// their defaults.
var healthyModes = []string{"pool", "churn", "burst", "readers"}

// findingsReport is the findings scenario's result.
type findingsReport struct {
	// planned is -findings-duration; ran is how long the targets ran
	// after the last one started.
	planned, ran time.Duration
	targets      []*findingTarget
	// Agent over the detection run.
	walker                 string
	agentCPU, agentWindow  time.Duration
	agentRSS, agentHWM     int64
	snapshots, agentErrors float64
	polls, pollErrors      int
	loadBefore, loadAfter  string
	started                time.Time
	cost                   []groupCost
	bench                  benchGroups
	costTarget             int
	costErr, detectionErr  string
	leakyGoVersion         string
	// errorsBy are the agent's goroscope_errors_total over the run by
	// reason; logIssues its log's warnings and errors other than the
	// findings, by message (logIssueCount in all).
	errorsBy      map[string]float64
	logIssues     []string
	logIssueCount int
}

// findingTarget is one leaky target of the detection run.
type findingTarget struct {
	mode string
	// rate is its -rate (0: the mode's default).
	rate float64
	// expected is the finding kind it must give ("" for a healthy one).
	expected string
	// leakShare is the share of requests that leak a goroutine.
	leakShare float64
	goal      time.Duration
	pid       int
	started   time.Time
	// seen are the findings that held on it, in the order first seen.
	seen []*seenFinding
	// goroutines is how many goroutines it ran at the end (its last
	// snapshot).
	goroutines int
	// exited is set when it ended before the run did.
	exited bool
	err    string
}

// seenFinding is one finding (by id) that held on a target.
type seenFinding struct {
	id, kind, site, summary string
	goroutines              int
	// first and last are the times after the target's start of the first
	// snapshot judged to hold it and of the last poll that saw it.
	first, last time.Duration
	polls       int
}

// label names the target in the report.
func (t *findingTarget) label() string {
	if t.rate == 0 {
		return t.mode
	}
	return fmt.Sprintf("%s -rate %g", t.mode, t.rate)
}

// detected is the first finding of the expected kind, nil when none held.
func (t *findingTarget) detected() *seenFinding {
	return t.firstOf(t.expected)
}

// firstOf is the first finding of kind, nil when none held.
func (t *findingTarget) firstOf(kind string) *seenFinding {
	if kind == "" {
		return nil
	}
	var best *seenFinding
	for _, f := range t.seen {
		if f.kind == kind && (best == nil || f.first < best.first) {
			best = f
		}
	}
	return best
}

// leakedIn is how many goroutines the target leaks in d at its rate.
func (t *findingTarget) leakedIn(d time.Duration) float64 {
	return t.rate * t.leakShare * d.Seconds()
}

// groupCost is the grouping of real snapshots against their walk, one
// walker.
type groupCost struct {
	walker                  string
	goroutines              int
	walks, observes         []sample
	firstObserve, coldWalk  sample
	groups, findingsHolding int
	err                     string
}

// benchGroups is pkg/findings' BenchmarkGroups100k.
type benchGroups struct {
	nsPerOp            []float64
	bytesPerOp, allocs float64
	output, err, cmd   string
	took               time.Duration
}

// measureFindings runs the findings scenario: the grouping cost first,
// with nothing else running, then the detection run.
func measureFindings(ctx context.Context, cfg config, procs *processes, latencyBin string) (*findingsReport, error) {
	rep := &findingsReport{planned: cfg.findingsDuration, started: time.Now(), costTarget: 100000}
	dir, err := os.MkdirTemp("", "goroscope-bench-findings-")
	if err != nil {
		return nil, fmt.Errorf("temp dir: %w", err)
	}
	defer os.RemoveAll(dir)
	var errs []error
	fmt.Fprintln(os.Stderr, "bench: findings: grouping cost at 100k goroutines")
	if err := measureGroupingCost(ctx, procs, latencyBin, rep); err != nil {
		rep.costErr = err.Error()
		errs = append(errs, fmt.Errorf("grouping cost: %w", err))
	}
	rep.bench = runGroupsBenchmark(ctx)
	if rep.bench.err != "" {
		errs = append(errs, errors.New(rep.bench.err))
	}
	if ctx.Err() == nil {
		if err := detectionRun(ctx, cfg, procs, dir, rep); err != nil {
			rep.detectionErr = err.Error()
			errs = append(errs, fmt.Errorf("detection run: %w", err))
		}
	}
	return rep, errors.Join(errs...)
}

// groupingSteady is how many steady snapshots (each then grouped) the
// grouping cost takes per walker, within groupingBound.
const (
	groupingSteady = 10
	groupingBound  = 20 * time.Second
)

// measureGroupingCost starts a latency target of rep.costTarget
// goroutines and, per walker, takes a cold snapshot and steady ones, each
// grouped and judged by one findings.Tracker at the default thresholds
// right after its walk: the walk and the Observe timed apart (wall and
// this process's CPU).
func measureGroupingCost(ctx context.Context, procs *processes, bin string, rep *findingsReport) error {
	walkers := []walk.Walker{walk.ProcMemWalker{}}
	if e, err := walk.NewEBPFWalker(); err != nil {
		fmt.Fprintf(os.Stderr, "bench: findings: eBPF walker not measured: %v\n", err)
		rep.cost = append(rep.cost, groupCost{walker: "ebpf", err: err.Error()})
	} else {
		defer e.Close()
		walkers = []walk.Walker{e, walk.ProcMemWalker{}}
	}
	t, err := startTarget(ctx, procs, bin, rep.costTarget)
	if err != nil {
		return err
	}
	defer t.stop()
	for _, w := range walkers {
		if err := ctx.Err(); err != nil {
			return err
		}
		c := groupingCost(ctx, t, w, rep.costTarget)
		if c.err != "" {
			fmt.Fprintf(os.Stderr, "bench: findings: grouping cost, %s: %s\n", w.Name(), c.err)
		} else {
			fmt.Fprintf(os.Stderr, "bench: findings: %d goroutines, %s: walk CPU %v, grouping CPU %v (%.1f%%), %d groups\n", c.goroutines, c.walker,
				median(cpus(c.walks)).Round(time.Microsecond), median(cpus(c.observes)).Round(time.Microsecond), c.percent(), c.groups)
		}
		rep.cost = append(rep.cost, c)
	}
	return nil
}

// groupingCost measures one walker on t: see measureGroupingCost.
func groupingCost(ctx context.Context, t *target, w walk.Walker, n int) groupCost {
	c := groupCost{walker: w.Name()}
	at, err := process.Attach(t.PID)
	if err != nil {
		c.err = err.Error()
		return c
	}
	defer at.Close()
	s := walk.NewSnapshotter(at, w)
	tr := findings.NewTracker(findings.Config{})
	var snap *snapshot.Snapshot
	walkOnce := func() (sample, error) {
		return timed(func() (int, error) {
			sctx, cancel := context.WithTimeout(ctx, 60*time.Second)
			defer cancel()
			var err error
			snap, err = s.Snapshot(sctx)
			if err != nil {
				return 0, err
			}
			return len(snap.Goroutines), nil
		})
	}
	observe := func() sample {
		x, _ := timed(func() (int, error) {
			groups, fs := tr.Observe(snap)
			c.groups, c.findingsHolding = len(groups), len(fs)
			return len(snap.Goroutines), nil
		})
		return x
	}
	if c.coldWalk, err = walkOnce(); err != nil {
		c.err = fmt.Sprintf("cold snapshot: %v", err)
		return c
	}
	if c.coldWalk.goroutines < n {
		c.err = fmt.Sprintf("snapshot saw %d goroutines, the target parked %d", c.coldWalk.goroutines, n)
		return c
	}
	c.goroutines = c.coldWalk.goroutines
	c.firstObserve = observe()
	deadline := time.Now().Add(groupingBound)
	for i := 0; i < groupingSteady && (i < 3 || time.Now().Before(deadline)); i++ {
		x, err := walkOnce()
		if err != nil {
			c.err = fmt.Sprintf("steady snapshot %d: %v", i, err)
			return c
		}
		c.walks = append(c.walks, x)
		c.observes = append(c.observes, observe())
		snap = nil
	}
	return c
}

// percent is the median grouping CPU as a percentage of the median walk
// CPU.
func (c groupCost) percent() float64 {
	wc := median(cpus(c.walks))
	if wc <= 0 {
		return 0
	}
	return 100 * float64(median(cpus(c.observes))) / float64(wc)
}

// runGroupsBenchmark runs `go test -run '^$' -bench Groups100k` on
// pkg/findings: a synthetic 100k-goroutine snapshot in 8 sites, grouped
// and judged again and again.
func runGroupsBenchmark(ctx context.Context) benchGroups {
	var r benchGroups
	_, file, _, _ := runtime.Caller(0)
	root := filepath.Join(filepath.Dir(file), "..", "..")
	ctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	args := []string{"test", "-run", "^$", "-bench", "^BenchmarkGroups100k$", "-benchmem", "-count", "5", "./pkg/findings/"}
	r.cmd = "go " + strings.Join(args, " ")
	fmt.Fprintf(os.Stderr, "bench: findings: %s\n", r.cmd)
	start := time.Now()
	cmd := exec.CommandContext(ctx, "go", args...)
	cmd.Dir = root
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	r.took = time.Since(start)
	r.output = out.String()
	if err != nil {
		r.err = fmt.Sprintf("%s: %v: %s", r.cmd, err, oneLine(r.output))
		return r
	}
	// BenchmarkGroups100k-2   49   23370997 ns/op   9382544 B/op   15429 allocs/op
	re := regexp.MustCompile(`(?m)^BenchmarkGroups100k\S*\s+\d+\s+([\d.]+) ns/op(?:\s+([\d.]+) B/op\s+([\d.]+) allocs/op)?`)
	for _, m := range re.FindAllStringSubmatch(r.output, -1) {
		v, _ := strconv.ParseFloat(m[1], 64)
		r.nsPerOp = append(r.nsPerOp, v)
		r.bytesPerOp, _ = strconv.ParseFloat(m[2], 64)
		r.allocs, _ = strconv.ParseFloat(m[3], 64)
	}
	if len(r.nsPerOp) == 0 {
		r.err = fmt.Sprintf("%s printed no result: %s", r.cmd, oneLine(r.output))
	}
	return r
}

// median is the median ns/op of the benchmark's runs.
func (r benchGroups) median() time.Duration {
	ds := make([]time.Duration, len(r.nsPerOp))
	for i, v := range r.nsPerOp {
		ds[i] = time.Duration(v)
	}
	return median(ds)
}

// detectionRun starts the agent, then every leaky target, polls the
// agent's /metrics every findingsPoll for cfg.findingsDuration, and
// records the findings on each target.
func detectionRun(ctx context.Context, cfg config, procs *processes, dir string, rep *findingsReport) error {
	fmt.Fprintln(os.Stderr, "bench: findings: building test/targets/leaky and ./agent")
	leaky, err := targettest.Compile("leaky", targettest.BuildOpts{})
	if err != nil {
		return err
	}
	agentBin, err := buildAgent(ctx, dir)
	if err != nil {
		return err
	}
	rules, err := exeRules(leaky)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Join(dir, "data"), 0o755); err != nil {
		return fmt.Errorf("agent data dir: %w", err)
	}
	rep.loadBefore = loadAvg()
	defer func() { rep.loadAfter = loadAvg() }()
	a, err := startAgent(procs, agentBin, dir, cfg.agentWalker, rules, nil)
	if err != nil {
		return err
	}
	defer a.stop()
	base := "http://" + a.addr
	if err := pollUntil(ctx, 30*time.Second, 100*time.Millisecond, a.exited, func() (bool, error) {
		_, err := scrape(ctx, base+"/metrics")
		return err == nil, err
	}); err != nil {
		return fmt.Errorf("agent not serving /metrics: %w (log: %s)", err, a.logTail())
	}
	m0, _ := scrape(ctx, base+"/metrics")
	cpu0, err := procCPU(a.pid)
	if err != nil {
		return err
	}
	agentStart := time.Now()

	// The targets: each leak at each rate, the deadlock, the healthy ones.
	var plan []*findingTarget
	for _, rate := range cfg.findingsRates {
		for _, m := range leakyModes {
			goal := leakGoalSlow
			if rate >= 1 {
				goal = leakGoalFast
			}
			plan = append(plan, &findingTarget{mode: m.mode, rate: rate, expected: m.kind, leakShare: m.leakShare, goal: goal})
		}
	}
	plan = append(plan, &findingTarget{mode: "deadlock", expected: findings.KindAllAsleep, goal: allAsleepGoal})
	for _, m := range healthyModes {
		plan = append(plan, &findingTarget{mode: m})
	}
	byPID := map[int]*findingTarget{}
	for _, ft := range plan {
		args := []string{"-mode", ft.mode}
		if ft.rate > 0 {
			args = append(args, "-rate", strconv.FormatFloat(ft.rate, 'g', -1, 64))
		}
		ft.started = time.Now()
		tt, err := targettest.Launch(targettest.StartOpts{}, leaky, args...)
		if err != nil {
			return fmt.Errorf("leaky %s: %w", strings.Join(args, " "), err)
		}
		t := &target{tt}
		procs.add(t)
		defer t.stop()
		ft.pid = t.PID
		rep.leakyGoVersion = t.GoVersion
		byPID[t.PID] = ft
		rep.targets = append(rep.targets, ft)
	}
	fmt.Fprintf(os.Stderr, "bench: findings: %d leaky targets running; watching for %v\n", len(plan), cfg.findingsDuration)
	runStart := time.Now()
	end := runStart.Add(cfg.findingsDuration)
	lastReport := runStart
	for {
		pollFindings(ctx, base, byPID, rep)
		for _, ft := range plan {
			if !ft.exited && syscall.Kill(ft.pid, 0) == syscall.ESRCH {
				ft.exited = true
				ft.err = fmt.Sprintf("exited %v after its start", time.Since(ft.started).Round(time.Second))
				fmt.Fprintf(os.Stderr, "bench: findings: %s (pid %d) %s\n", ft.label(), ft.pid, ft.err)
			}
		}
		now := time.Now()
		if now.Sub(lastReport) >= time.Minute {
			lastReport = now
			fmt.Fprintf(os.Stderr, "bench: findings: %v: %s\n", now.Sub(runStart).Round(time.Second), progress(plan))
		}
		if !now.Before(end) {
			break
		}
		select {
		case <-ctx.Done():
			rep.ran = time.Since(runStart)
			return ctx.Err()
		case <-a.exited:
			rep.ran = time.Since(runStart)
			return fmt.Errorf("the agent exited: %s", a.logTail())
		case <-time.After(min(findingsPoll, time.Until(end))):
		}
	}
	rep.ran = time.Since(runStart)
	cpu1, err := procCPU(a.pid)
	if err != nil {
		return err
	}
	rep.agentCPU, rep.agentWindow = cpu1-cpu0, time.Since(agentStart)
	if rep.agentRSS, rep.agentHWM, err = procMem(a.pid); err != nil {
		return err
	}
	if m1, err := scrape(ctx, base+"/metrics"); err == nil {
		rep.walker = m1.labelValues("goroscope_snapshots_total", "walker")
		rep.snapshots = m1.byName["goroscope_snapshots_total"] - m0.byName["goroscope_snapshots_total"]
		rep.agentErrors = m1.byName["goroscope_errors_total"] - m0.byName["goroscope_errors_total"]
		rep.errorsBy = map[string]float64{}
		for series, v := range m1.bySeries {
			if strings.HasPrefix(series, "goroscope_errors_total{") {
				if d := v - m0.bySeries[series]; d > 0 {
					rep.errorsBy[seriesLabels(series)["reason"]] += d
				}
			}
		}
	}
	rep.logIssueCount, rep.logIssues = logIssues(a.log)
	if rows, err := apiProcesses(ctx, base); err == nil {
		for _, r := range rows {
			if ft := byPID[r.PID]; ft != nil && r.Live {
				ft.goroutines = r.Total
			}
		}
	}
	fmt.Fprintf(os.Stderr, "bench: findings: done after %v: %s\n", rep.ran.Round(time.Second), progress(plan))
	return nil
}

// logIssues counts the agent log's warnings and errors other than the
// findings' own lines, and lists their messages, each once with how often
// and one example (at most 6).
func logIssues(path string) (int, []string) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, []string{err.Error()}
	}
	msgRe := regexp.MustCompile(`msg=("(?:[^"\\]|\\.)*"|\S+)`)
	var order []string
	byMsg := map[string]int{}
	example := map[string]string{}
	n := 0
	for _, line := range strings.Split(string(b), "\n") {
		if !strings.Contains(line, "level=WARN") && !strings.Contains(line, "level=ERROR") {
			continue
		}
		msg := ""
		if m := msgRe.FindStringSubmatch(line); m != nil {
			msg = strings.Trim(m[1], `"`)
		}
		if msg == "finding" || msg == "finding no longer holds" {
			continue
		}
		n++
		if byMsg[msg] == 0 {
			order = append(order, msg)
			example[msg] = line
		}
		byMsg[msg]++
	}
	var out []string
	for _, msg := range order[:min(len(order), 6)] {
		out = append(out, fmt.Sprintf("%d × %s", byMsg[msg], example[msg]))
	}
	return n, out
}

// progress is a one-line summary of the detection run so far.
func progress(plan []*findingTarget) string {
	want, got, fp := 0, 0, 0
	for _, ft := range plan {
		if ft.expected == "" {
			fp += len(ft.seen)
			continue
		}
		want++
		if ft.detected() != nil {
			got++
		}
	}
	return fmt.Sprintf("%d of %d expected findings held, %d findings on healthy targets", got, want, fp)
}

// apiProcess is what the scenario reads of a GET /api/processes row.
type apiProcess struct {
	PID      int                `json:"pid"`
	Live     bool               `json:"live"`
	Total    int                `json:"total"`
	Findings []findings.Finding `json:"findings"`
}

// apiProcesses fetches the agent's process list.
func apiProcesses(ctx context.Context, base string) ([]apiProcess, error) {
	ctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/api/processes", nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("GET /api/processes: %w", err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return nil, fmt.Errorf("read /api/processes: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET /api/processes: %s: %s", resp.Status, oneLine(string(b)))
	}
	var rows []apiProcess
	if err := json.Unmarshal(b, &rows); err != nil {
		return nil, fmt.Errorf("decode /api/processes: %w", err)
	}
	return rows, nil
}

// pollFindings scrapes goroscope_findings from /metrics; when a series
// of one of the targets is new, it reads /api/processes for the findings'
// ids, summaries and the snapshot judged.
func pollFindings(ctx context.Context, base string, byPID map[int]*findingTarget, rep *findingsReport) {
	rep.polls++
	now := time.Now()
	m, err := scrape(ctx, base+"/metrics")
	if err != nil {
		rep.pollErrors++
		return
	}
	type held struct {
		pid        int
		kind, site string
	}
	var holding []held
	for s := range m.bySeries {
		if !strings.HasPrefix(s, findingsMetric+"{") {
			continue
		}
		l := seriesLabels(s)
		pid, _ := strconv.Atoi(l["pid"])
		if byPID[pid] != nil {
			holding = append(holding, held{pid, l["kind"], l["site"]})
		}
	}
	fresh := false
	for _, h := range holding {
		ft := byPID[h.pid]
		i := slices.IndexFunc(ft.seen, func(f *seenFinding) bool { return f.kind == h.kind && f.site == h.site })
		if i < 0 {
			fresh = true
			continue
		}
		ft.seen[i].last = now.Sub(ft.started)
		ft.seen[i].polls++
	}
	if !fresh {
		return
	}
	rows, apiErr := apiProcesses(ctx, base)
	if apiErr != nil {
		rep.pollErrors++
	}
	for _, h := range holding {
		ft := byPID[h.pid]
		if slices.ContainsFunc(ft.seen, func(f *seenFinding) bool { return f.kind == h.kind && f.site == h.site }) {
			continue
		}
		sf := &seenFinding{kind: h.kind, site: h.site, first: now.Sub(ft.started), last: now.Sub(ft.started), polls: 1,
			summary: "(no longer held when /api/processes was read)"}
		if f := matchFinding(rows, h.pid, h.kind, h.site, ft.seen); f != nil {
			sf.id, sf.summary, sf.goroutines = f.ID, f.Summary, f.Goroutines
			// The snapshot judged: the first that held it, unless
			// another came between the scrape and this read.
			if !f.Time.IsZero() && f.Time.After(ft.started) && f.Time.Before(now.Add(time.Second)) {
				sf.first = f.Time.Sub(ft.started)
			}
		}
		if apiErr != nil {
			sf.summary = "(" + apiErr.Error() + ")"
		}
		ft.seen = append(ft.seen, sf)
		who := "expected"
		if ft.expected == "" {
			who = "FALSE POSITIVE"
		} else if h.kind != ft.expected {
			who = "other kind"
		}
		fmt.Fprintf(os.Stderr, "bench: findings: %s (pid %d): %s after %v (%s): %s\n", ft.label(), ft.pid, h.kind, sf.first.Round(time.Second), who, sf.summary)
	}
}

// matchFinding is the live finding of pid in rows that the series
// (kind, site) stands for: of that kind and site, else (a site label the
// agent shortened) of that kind and not seen yet.
func matchFinding(rows []apiProcess, pid int, kind, site string, seen []*seenFinding) *findings.Finding {
	var fallback *findings.Finding
	for _, r := range rows {
		if r.PID != pid || !r.Live {
			continue
		}
		for i := range r.Findings {
			f := &r.Findings[i]
			if f.Kind != kind {
				continue
			}
			if siteLabelOf(f.Site) == site {
				return f
			}
			if fallback == nil && !slices.ContainsFunc(seen, func(s *seenFinding) bool { return s.id == f.ID }) {
				fallback = f
			}
		}
	}
	return fallback
}

// findingsMetric is the agent's series of the findings holding now.
const findingsMetric = "goroscope_findings"

// siteLabelOf is a site as the agent's site label shows it (the agent
// bounds it to 256 printable bytes; the sites here are shorter).
func siteLabelOf(s findings.Site) string { return s.Label() }

// seriesLabels parses the labels of a series key as parseMetrics keeps
// it: name{a="x",b="y"}, values escaped as the text format escapes them.
func seriesLabels(series string) map[string]string {
	out := map[string]string{}
	i := strings.IndexByte(series, '{')
	if i < 0 {
		return out
	}
	s := series[i+1:]
	for {
		s = strings.TrimLeft(s, ", ")
		eq := strings.Index(s, `="`)
		if eq < 0 {
			return out
		}
		name := s[:eq]
		s = s[eq+2:]
		var v strings.Builder
		j := 0
		for ; j < len(s) && s[j] != '"'; j++ {
			if s[j] == '\\' && j+1 < len(s) {
				j++
				switch s[j] {
				case 'n':
					v.WriteByte('\n')
				default:
					v.WriteByte(s[j])
				}
				continue
			}
			v.WriteByte(s[j])
		}
		out[name] = v.String()
		if j >= len(s) {
			return out
		}
		s = s[j+1:]
	}
}

// markdown renders the findings section.
func (r *findingsReport) markdown() string {
	var b strings.Builder
	p := func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }
	p("## Findings: detection latency, false positives and the cost of grouping\n\n")
	p("Measured %s (load average at start / end of the detection run: %s / %s).\n\n", r.started.UTC().Format("2006-01-02 15:04 MST"), r.loadBefore, r.loadAfter)
	r.costSection(p)
	r.detectionSection(p)
	p("To reproduce, as root from the repository root: `go run ./test/bench -only findings -out FILE` (about %v;\n", (r.planned + 4*time.Minute).Round(time.Minute))
	p("`-findings-duration`, `-findings-rates` change the plan). The default run leaves this scenario out, and `-only findings\n")
	p("-out docs/benchmarks.md` would write this section alone: paste it into docs/benchmarks.md instead.\n\n")
	return b.String()
}

// costSection renders the grouping cost.
func (r *findingsReport) costSection(p func(string, ...any)) {
	p("### Grouping cost at 100k goroutines\n\n")
	p("The agent groups and judges every snapshot (`findings.Tracker.Observe`: the groups by site, their histories, the leak,\n")
	p("stuck and all-asleep rules). Measured before the detection run, with nothing else of the benchmark running: one\n")
	p("`test/targets/latency -goroutines %d` (parked in channel receives, 64 per channel, 4 stacks); per walker a\n", r.costTarget)
	p("`walk.Snapshotter` takes a cold snapshot, then steady ones of the unchanged population, and each snapshot is\n")
	p("handed, right after its walk, to one `findings.NewTracker` at the default thresholds. *Walk* and *grouping* are\n")
	p("medians of the steady snapshots (p90 in parentheses), CPU being user+sys of the benchmark process (getrusage\n")
	p("RUSAGE_SELF; for eBPF the BPF iterator's kernel time included; for grouping the GC it causes included).\n")
	p("*First grouping* is the tracker's first snapshot (every site and member new). Goal: grouping at most %.0f%% of the walk.\n\n", groupingGoalPct)
	if r.costErr != "" {
		p("Not measured: %s\n\n", oneLine(r.costErr))
	}
	if len(r.cost) > 0 {
		p("| goroutines | walker | walk wall | walk CPU | grouping wall | grouping CPU | grouping ÷ walk (CPU) | first grouping CPU | groups | snapshots |\n")
		p("|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|\n")
		for _, c := range r.cost {
			if c.err != "" {
				p("| %s | %s | failed: %s | | | | | | | |\n", count(r.costTarget), c.walker, oneLine(c.err))
				continue
			}
			p("| %d | %s | %s (%s) | %s (%s) | %s (%s) | %s (%s) | **%.1f%%** | %s | %d | %d |\n", c.goroutines, c.walker,
				ms(median(walls(c.walks))), ms(quantile(walls(c.walks), 0.9)), ms(median(cpus(c.walks))), ms(quantile(cpus(c.walks), 0.9)),
				ms(median(walls(c.observes))), ms(quantile(walls(c.observes), 0.9)), ms(median(cpus(c.observes))), ms(quantile(cpus(c.observes), 0.9)),
				c.percent(), ms(c.firstObserve.cpu()), c.groups, len(c.walks))
		}
		p("\n")
	}
	bm := r.bench
	p("`%s` (run by the harness in the same run, %v): a synthetic snapshot of 100k goroutines in 8 sites, on\n", bm.cmd, bm.took.Round(time.Second))
	if bm.err != "" {
		p("failed: %s\n\n", oneLine(bm.err))
	} else {
		ns := make([]string, len(bm.nsPerOp))
		for i, v := range bm.nsPerOp {
			ns[i] = ms(time.Duration(v))
		}
		p("1,563 channels, each snapshot grouped and judged by one tracker: **%s per snapshot** (median of %d runs: %s), %s and\n", ms(bm.median()), len(bm.nsPerOp), strings.Join(ns, ", "), mb(bm.bytesPerOp))
		p("%.0f allocations per snapshot.", bm.allocs)
		for _, c := range r.cost {
			if c.err == "" && len(c.walks) > 0 {
				p(" Against the %s walk's CPU above: %.1f%%.", c.walker, 100*float64(bm.median())/float64(median(cpus(c.walks))))
			}
		}
		p("\n\n")
	}
	for _, c := range r.cost {
		if c.err != "" || len(c.walks) == 0 {
			continue
		}
		verdict := "meets"
		if c.percent() > groupingGoalPct {
			verdict = "misses"
		}
		p("- %s, %d goroutines: grouping %s CPU against a walk of %s, %.1f%%: %s the %.0f%% goal.\n", c.walker, c.goroutines,
			ms(median(cpus(c.observes))), ms(median(cpus(c.walks))), c.percent(), verdict, groupingGoalPct)
	}
	p("\n")
}

// detectionSection renders the detection run.
func (r *findingsReport) detectionSection(p func(string, ...any)) {
	p("### Detection latency and false positives\n\n")
	p("`goroscope agent` (built from `./agent`) at its default cadence and thresholds (snapshots and discovery every 10 s;\n")
	p("`findings:` unset: leak 20 goroutines, +15 over a 10 min window, judged after 90 s; stuck 10 goroutines on one object\n")
	p("for 5 min; all-asleep 5 min), watching only `test/targets/leaky` (a discovery rule on its executable), started\n")
	p("before the targets. Then, one after the other, one target per leak mode at each of -rate %s goroutines (requests) a\n", rateList(r.targets))
	p("second, `-mode deadlock` and every healthy mode at its defaults (`pool`: 2,000 workers on one channel fed 5 jobs a\n")
	p("second; `churn`: 5 short goroutines a second; `burst`: 1,000 goroutines for 5 s every 20 s; `readers`: 200 loopback\n")
	p("connections, each read by a goroutine). The harness reads the agent's `/metrics` every %v for %v; when a\n", findingsPoll, r.planned)
	p("`goroscope_findings{pid, kind, site}` series of a target is new it reads `/api/processes` for the finding's summary\n")
	p("and the snapshot judged. *Detected after* is the time from the target's start to that snapshot (discovery of the\n")
	p("new process included; up to one 10 s cycle). Goals: a leak within %v of its start, within %v when it grows by at\n", leakGoalSlow, leakGoalFast)
	p("least 1 goroutine a second; all-asleep within its 5 min wait and a cycle (%v); no finding on a healthy target.\n", allAsleepGoal)
	p("*Leaked in 10 min* is what the target's rate leaks in 10 minutes (send-after-timeout leaks only the lookups slower\n")
	p("than its 30 ms timeout, 29 in 50); the leak rule needs 20.\n\n")
	if r.detectionErr != "" {
		p("The detection run did not finish: %s\n\n", oneLine(r.detectionErr))
	}
	if len(r.targets) == 0 {
		return
	}
	p("Targets ran %v after the last one started (%d polls, %d failed); leaky built with %s. The agent (%s walker) took\n",
		r.ran.Round(time.Second), r.polls, r.pollErrors, r.leakyGoVersion, r.walker)
	if r.agentWindow > 0 {
		p("%.0f snapshots with %.0f errors and used %s CPU in %v (%.2f%% of one core), RSS %s (peak %s).\n\n", r.snapshots, r.agentErrors,
			ms(r.agentCPU), r.agentWindow.Round(time.Second), 100*float64(r.agentCPU)/float64(r.agentWindow), mb(float64(r.agentRSS)), mb(float64(r.agentHWM)))
	} else {
		p("(agent figures not read: the run ended early).\n\n")
	}
	if len(r.errorsBy) > 0 {
		var parts []string
		for _, k := range slices.Sorted(maps.Keys(r.errorsBy)) {
			parts = append(parts, fmt.Sprintf("%s %.0f", orDash(k), r.errorsBy[k]))
		}
		p("Agent errors by reason (`goroscope_errors_total`): %s.", strings.Join(parts, ", "))
		if r.logIssueCount > 0 {
			p(" ")
		}
	}
	if r.logIssueCount > 0 {
		p("The agent logged %d warnings or errors besides the findings:\n\n", r.logIssueCount)
		for _, l := range r.logIssues {
			p("- `%s`\n", strings.ReplaceAll(oneLineLong(l), "`", "'"))
		}
		p("\n")
	} else if len(r.errorsBy) > 0 {
		p("\n\n")
	}
	p("| target (pid) | mode | rate | expected | detected after | goroutines then | goal | verdict | other findings | goroutines at end | leaked in 10 min |\n")
	p("|---:|---|---:|---|---:|---:|---:|---|---|---:|---:|\n")
	for _, t := range r.targets {
		if t.expected == "" {
			continue
		}
		rate, leaked := "default", "–"
		if t.rate > 0 {
			rate = fmt.Sprintf("%g/s", t.rate)
			leaked = fmt.Sprintf("%.0f", t.leakedIn(10*time.Minute))
		}
		det, then, verdict := fmt.Sprintf("not within %v", r.ran.Round(time.Second)), "", "**fail**"
		if d := t.detected(); d != nil {
			det, then = fmtDur(d.first), fmt.Sprint(d.goroutines)
			if d.first <= t.goal {
				verdict = "pass"
			}
		}
		var other []string
		for _, f := range t.seen {
			if f.kind != t.expected {
				other = append(other, fmt.Sprintf("%s after %s", f.kind, fmtDur(f.first)))
			}
		}
		if t.err != "" {
			other = append(other, t.err)
		}
		p("| %d | %s | %s | %s | %s | %s | %v | %s | %s | %s | %s |\n", t.pid, t.mode, rate, t.expected, det, then, fmtDur(t.goal), verdict,
			orDash(strings.Join(other, "; ")), orDash(countOrEmpty(t.goroutines)), leaked)
	}
	p("\n")
	p("False positives: every finding that held on a healthy target over the run (goal: none).\n\n")
	p("| target (pid) | mode | findings | first after | held (polls) | kind: summary |\n")
	p("|---:|---|---:|---|---:|---|\n")
	for _, t := range r.targets {
		if t.expected != "" {
			continue
		}
		if len(t.seen) == 0 {
			note := "–"
			if t.err != "" {
				note = t.err
			}
			p("| %d | %s | 0 | – | – | %s |\n", t.pid, t.mode, note)
			continue
		}
		for i, f := range t.seen {
			n := ""
			if i == 0 {
				n = fmt.Sprint(len(t.seen))
			}
			p("| %d | %s | %s | %s | %d | %s: %s |\n", t.pid, t.mode, n, fmtDur(f.first), f.polls, f.kind, oneLineLong(f.summary))
		}
	}
	p("\n")
	// Summaries of the expected findings, for the record.
	p("What the agent said of each target when the finding first held:\n\n")
	for _, t := range r.targets {
		for _, f := range t.seen {
			if f.kind == t.expected {
				p("- %s (%s after %s): %s\n", t.label(), f.kind, fmtDur(f.first), oneLineLong(f.summary))
			}
		}
	}
	p("\n")
	var verdicts []string
	for _, t := range r.targets {
		switch d := t.detected(); {
		case t.expected == "" && len(t.seen) > 0:
			verdicts = append(verdicts, fmt.Sprintf("%s: %d finding(s) on a healthy target, misses the goal of none", t.label(), len(t.seen)))
		case t.expected == "":
		case d == nil:
			v := fmt.Sprintf("%s: no %s finding within %v, misses the %v goal", t.label(), t.expected, r.ran.Round(time.Second), fmtDur(t.goal))
			if o := otherKinds(t); o != "" {
				v += "; " + o
			}
			verdicts = append(verdicts, v)
		case d.first > t.goal:
			v := fmt.Sprintf("%s: %s after %s, misses the %s goal by %s", t.label(), t.expected, fmtDur(d.first), fmtDur(t.goal), fmtDur(d.first-t.goal))
			if t.expected == findings.KindStuck {
				v += " (the stuck rule needs 10 goroutines to have waited 5 min each)"
			}
			if o := otherKinds(t); o != "" {
				v += "; " + o
			}
			verdicts = append(verdicts, v)
		}
	}
	if len(verdicts) == 0 {
		p("- Every target meets its goal: each expected finding held within its goal, none on the healthy targets.\n\n")
	} else {
		for _, v := range verdicts {
			p("- %s.\n", v)
		}
		p("\n")
	}
}

// otherKinds lists the findings of other kinds than expected on t.
func otherKinds(t *findingTarget) string {
	var out []string
	for _, f := range t.seen {
		if f.kind != t.expected {
			out = append(out, fmt.Sprintf("%s held after %s", f.kind, fmtDur(f.first)))
		}
	}
	return strings.Join(out, ", ")
}

// rateList is the leak rates of the targets: "0.2 and 1".
func rateList(ts []*findingTarget) string {
	var rs []string
	for _, t := range ts {
		if t.rate > 0 {
			s := strconv.FormatFloat(t.rate, 'g', -1, 64)
			if !slices.Contains(rs, s) {
				rs = append(rs, s)
			}
		}
	}
	return strings.Join(rs, " and ")
}

// fmtDur writes a latency as "1m42s".
func fmtDur(d time.Duration) string { return d.Round(time.Second).String() }

func orDash(s string) string {
	if s == "" {
		return "–"
	}
	return s
}

func countOrEmpty(n int) string {
	if n == 0 {
		return ""
	}
	return fmt.Sprint(n)
}

// oneLineLong is oneLine with room for a finding's summary.
func oneLineLong(s string) string {
	s = strings.ReplaceAll(s, "\n", " ")
	s = strings.ReplaceAll(s, "|", "/")
	if len(s) > 400 {
		s = s[:400] + "…"
	}
	return s
}
