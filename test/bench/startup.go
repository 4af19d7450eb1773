package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/goroscope/goroscope/bpf"
)

// startupRounds is how often each startup figure is measured (medians).
const startupRounds = 5

// kernelMatrixDoc is where `make kernels` writes the kernel matrix.
const kernelMatrixDoc = "docs/kernel-matrix.md"

// startupReport is the startup scenario: what loading the BPF objects costs
// on this kernel, and how long the commands and the agent take to answer.
type startupReport struct {
	loads []programLoad
	// cli holds the one-shot commands' wall times, medians of startupRounds.
	cli []cliRow
	// firstSnapshot is the agent's time from start to its first stored
	// snapshot of a target already running, at the default cadence.
	firstSnapshot time.Duration
	walker        string // the walker serving when the first snapshot was taken
	matrix        string // the kernel matrix table from kernelMatrixDoc
	errs          []string
}

type programLoad struct {
	program, object string
	insns           int
	wall, cpu       []time.Duration
}

type cliRow struct {
	what  string
	walls []time.Duration
	err   string
}

// measureStartup runs the startup scenario against a latency target.
func measureStartup(ctx context.Context, procs *processes, targetBin string) (*startupReport, error) {
	rep := &startupReport{}
	var errs []error
	fail := func(err error) {
		errs = append(errs, err)
		rep.errs = append(rep.errs, err.Error())
	}

	fmt.Fprintln(os.Stderr, "bench: startup: BPF object loads")
	byProg := map[string]*programLoad{}
	for range startupRounds {
		loads, err := bpf.MeasureLoads()
		if err != nil {
			fail(err)
			break
		}
		for _, l := range loads {
			p := byProg[l.Program]
			if p == nil {
				p = &programLoad{program: l.Program, object: l.Object, insns: l.Insns}
				byProg[l.Program] = p
				rep.loads = append(rep.loads, *p)
			}
			p.wall = append(p.wall, l.Wall)
			p.cpu = append(p.cpu, l.CPU)
		}
	}
	for i := range rep.loads {
		rep.loads[i] = *byProg[rep.loads[i].program]
	}
	if b, err := os.ReadFile(kernelMatrixDoc); err == nil {
		rep.matrix = tableOf(string(b))
	}

	dir, err := os.MkdirTemp("", "goroscope-startup-")
	if err != nil {
		return rep, errors.Join(append(errs, fmt.Errorf("temp dir: %w", err))...)
	}
	defer os.RemoveAll(dir)
	bin, err := buildAgent(ctx, dir)
	if err != nil {
		return rep, errors.Join(append(errs, err)...)
	}
	t, err := startTarget(ctx, procs, targetBin, 1000, "-probe-interval", "0")
	if err != nil {
		return rep, errors.Join(append(errs, err)...)
	}
	defer t.stop()
	pid := fmt.Sprint(t.PID)
	cache := filepath.Join(dir, "bpf-verdicts.json")
	commands := []struct {
		what string
		args []string
	}{
		{"goroscope ps", []string{"ps"}},
		{"goroscope snapshot --pid P (1k goroutines)", []string{"snapshot", "--pid", pid, "--bpf-cache", cache, "--out", os.DevNull}},
		{"goroscope snapshot --pid P --walker procmem", []string{"snapshot", "--pid", pid, "--walker", "procmem", "--out", os.DevNull}},
		{"goroscope snapshot --pid (no such process)", []string{"snapshot", "--pid", "999999999", "--bpf-cache", cache, "--out", os.DevNull}},
	}
	for _, c := range commands {
		row := cliRow{what: c.what}
		for range startupRounds {
			start := time.Now()
			out, err := exec.CommandContext(ctx, bin, c.args...).CombinedOutput()
			took := time.Since(start)
			wantErr := strings.Contains(c.what, "no such process")
			if (err != nil) != wantErr {
				row.err = fmt.Sprintf("%v: %s", err, oneLine(string(out)))
				break
			}
			row.walls = append(row.walls, took)
		}
		rep.cli = append(rep.cli, row)
	}

	fmt.Fprintln(os.Stderr, "bench: startup: agent's first snapshot")
	adir := filepath.Join(dir, "agent")
	if err := os.MkdirAll(filepath.Join(adir, "data"), 0o755); err != nil {
		return rep, errors.Join(append(errs, err)...)
	}
	start := time.Now()
	rules, err := exeRules(targetBin)
	if err != nil {
		return rep, errors.Join(append(errs, err)...)
	}
	a, err := startAgent(procs, bin, adir, "auto", rules, nil)
	if err != nil {
		return rep, errors.Join(append(errs, err)...)
	}
	defer a.stop()
	url := "http://" + a.addr + "/metrics"
	deadline := start.Add(30 * time.Second)
	for {
		m, err := scrape(ctx, url)
		if err == nil && m.byName["goroscope_snapshots_total"] >= 1 {
			rep.firstSnapshot = time.Since(start)
			for k, v := range m.bySeries {
				if strings.HasPrefix(k, "goroscope_walker_info{") && v == 1 {
					rep.walker = k
				}
			}
			break
		}
		if time.Now().After(deadline) {
			fail(fmt.Errorf("agent: no snapshot 30 s after start (last scrape error: %v; log: %s)", err, a.logTail()))
			break
		}
		select {
		case <-ctx.Done():
			return rep, errors.Join(append(errs, ctx.Err())...)
		case <-time.After(50 * time.Millisecond):
		}
	}
	return rep, errors.Join(errs...)
}

// tableOf returns the first Markdown table in doc.
func tableOf(doc string) string {
	var b strings.Builder
	in := false
	for _, line := range strings.Split(doc, "\n") {
		if strings.HasPrefix(line, "|") {
			in = true
			b.WriteString(line + "\n")
		} else if in {
			break
		}
	}
	return b.String()
}

func (r *startupReport) markdown() string {
	var b strings.Builder
	p := func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }
	p("## BPF loads and start-up\n\n")
	p("Measured by `go run ./test/bench -only startup` on %s.\n\n", time.Now().UTC().Format("2006-01-02 15:04 MST"))
	p("Loading goroscope's BPF objects on this kernel, %d rounds (`bpf.MeasureLoads`: one load at the verifier's statistics level;\n", startupRounds)
	p("CPU is the loading thread's user+sys, which includes the verifier; wall and CPU cover the whole object, maps included). Goal: under 1 s of CPU.\n\n")
	p("| program | object | processed instructions (budget %d) | load wall p50 / max | load CPU p50 / max | goal |\n", bpf.VerifierBudget)
	p("|---|---|---:|---:|---:|---|\n")
	for _, l := range r.loads {
		verdict := "meets"
		if quantile(l.cpu, 1) >= time.Second {
			verdict = "misses"
		}
		p("| %s | %s | %d | %s / %s | %s / %s | %s |\n", l.program, l.object, l.insns,
			ms(quantile(l.wall, 0.5)), ms(quantile(l.wall, 1)), ms(quantile(l.cpu, 0.5)), ms(quantile(l.cpu, 1)), verdict)
	}
	if r.matrix != "" {
		p("\nPer kernel, from the kernel matrix (`make kernels`, %s; guests run under qemu TCG, so their load times are\n", kernelMatrixDoc)
		p("several times those of hardware):\n\n%s", r.matrix)
	}
	p("\nOne-shot commands, wall time of the whole command (median of %d, max), with a target of 1k goroutines running;\n", startupRounds)
	p("each `snapshot` starts with an empty BPF verdict cache. Goals: `ps` and `snapshot` 1 s.\n\n")
	p("| command | p50 | max |\n|---|---:|---:|\n")
	for _, c := range r.cli {
		if c.err != "" {
			p("| %s | failed: %s | |\n", c.what, oneLine(c.err))
			continue
		}
		p("| %s | %s | %s |\n", c.what, ms(quantile(c.walls, 0.5)), ms(quantile(c.walls, 1)))
	}
	if r.firstSnapshot > 0 {
		p("\nThe agent (`goroscope agent`, default cadence, one target running) took its first snapshot %s after it was started\n", ms(r.firstSnapshot))
		p("(goal 3 s; it serves `/metrics` and `/healthz` at once and walks with procmem until its BPF objects have loaded): `%s`.\n", r.walker)
	}
	for _, e := range r.errs {
		p("\n- failed: %s\n", oneLine(e))
	}
	p("\n")
	return b.String()
}
