package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// uiRuns is how often the UI scenario opens the process page.
const uiRuns = 5

// uiStored is how many snapshots the UI scenario's store holds: as many
// as a range merges at most (ui's maxRangeEntries), more than the last
// hour at the default cadence holds.
const uiStored = 250

// uiGoroutines is the size of the process whose page the UI scenario opens.
const uiGoroutines = 100_000

// uiReport is the UI scenario: the agent at its defaults over one process
// of uiGoroutines goroutines, its page opened in Chromium
// (test/ui/firstscreen.mjs).
type uiReport struct {
	result firstScreen
	err    string
}

// firstScreen is what test/ui/firstscreen.mjs measured.
type firstScreen struct {
	PID        int `json:"pid"`
	Goroutines int `json:"goroutines"`
	Runs       []struct {
		FirstMS       int64 `json:"first_ms"`
		FirstBytes    int64 `json:"first_bytes"`
		FirstRequests int   `json:"first_requests"`
		FirstLargest  int64 `json:"first_largest"`
		TableMS       int64 `json:"table_ms"`
		TotalBytes    int64 `json:"total_bytes"`
		Largest       int64 `json:"largest"`
	} `json:"runs"`
}

// measureUI runs the UI scenario.
func measureUI(ctx context.Context, procs *processes, targetBin string) (*uiReport, error) {
	rep := &uiReport{}
	fail := func(err error) (*uiReport, error) {
		rep.err = err.Error()
		return rep, err
	}
	node, err := exec.LookPath("node")
	if err != nil {
		return fail(fmt.Errorf("ui: no node on PATH: %w", err))
	}
	script, err := filepath.Abs(filepath.Join("test", "ui", "firstscreen.mjs"))
	if err != nil {
		return fail(err)
	}
	dir, err := os.MkdirTemp("", "goroscope-ui-")
	if err != nil {
		return fail(fmt.Errorf("temp dir: %w", err))
	}
	defer os.RemoveAll(dir)
	bin, err := buildAgent(ctx, dir)
	if err != nil {
		return fail(err)
	}
	fmt.Fprintf(os.Stderr, "bench: ui: one target of %d goroutines\n", uiGoroutines)
	t, err := startTarget(ctx, procs, targetBin, uiGoroutines)
	if err != nil {
		return fail(err)
	}
	defer t.stop()
	rules, err := exeRules(targetBin)
	if err != nil {
		return fail(err)
	}
	if err := os.MkdirAll(filepath.Join(dir, "data"), 0o755); err != nil {
		return fail(err)
	}
	// A store as an hour of the default cadence leaves it: the agent
	// snapshots every second until it holds uiStored snapshots, so that
	// the first screen merges as many profiles as a range ever does.
	fill, err := startAgent(procs, bin, dir, "auto", rules, nil, "--snapshot-interval", "1s")
	if err != nil {
		return fail(err)
	}
	err = waitSnapshots(ctx, fill, "http://"+fill.addr+"/metrics", uiStored, 10*time.Minute)
	fill.stop()
	if err != nil {
		return fail(fmt.Errorf("ui: fill the store: %w", err))
	}
	a, err := startAgent(procs, bin, dir, "auto", rules, nil)
	if err != nil {
		return fail(err)
	}
	defer a.stop()
	if err := waitSnapshots(ctx, a, "http://"+a.addr+"/metrics", 1, 90*time.Second); err != nil {
		return fail(fmt.Errorf("ui: %w", err))
	}
	out := filepath.Join(dir, "firstscreen.json")
	cmd := exec.CommandContext(ctx, node, script)
	cmd.Dir = filepath.Dir(script)
	cmd.Env = append(os.Environ(), "BASE_URL=http://"+a.addr+"/", fmt.Sprintf("RUNS=%d", uiRuns), "OUT="+out,
		"ARTIFACT_DIR="+filepath.Join(filepath.Dir(script), "artifacts"))
	if b, err := cmd.CombinedOutput(); err != nil {
		return fail(fmt.Errorf("ui: %s: %w: %s", script, err, oneLine(string(b))))
	}
	b, err := os.ReadFile(out)
	if err != nil {
		return fail(err)
	}
	if err := json.Unmarshal(b, &rep.result); err != nil {
		return fail(fmt.Errorf("ui: read %s: %w", out, err))
	}
	if len(rep.result.Runs) == 0 {
		return fail(errors.New("ui: no runs measured"))
	}
	return rep, nil
}

func (r *uiReport) markdown() string {
	var b strings.Builder
	p := func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }
	p("## UI: first screen of a large process\n\n")
	p("Measured by `go run ./test/bench -only ui` on %s: the agent at its defaults over one process of %s goroutines,\n",
		time.Now().UTC().Format("2006-01-02 15:04 MST"), count(uiGoroutines))
	p("with %d stored snapshots of it (taken at a 1 s cadence first, so the default range merges the most profiles a range does),\n", uiStored)
	p("its page opened %d times in Debian's Chromium (headless, playwright-core; test/ui/firstscreen.mjs), each in a new page,\n", uiRuns)
	p("the first with nothing cached. *First screen* is from navigation until the header, the goroutine chart and the flame graph\n")
	p("are drawn; *table* from a click on the goroutine tab until its first rows show. Bytes are the response bodies the page\n")
	p("fetched for its first screen (no view loads a whole snapshot). Goal: first screen under 1 s.\n\n")
	if r.err != "" {
		p("Failed: %s\n\n", oneLine(r.err))
		return b.String()
	}
	p("| run | first screen | requests | bytes fetched | largest response | goroutine table | goal |\n|---:|---:|---:|---:|---:|---:|---|\n")
	var firsts []time.Duration
	for i, run := range r.result.Runs {
		first := time.Duration(run.FirstMS) * time.Millisecond
		firsts = append(firsts, first)
		verdict := "meets"
		if first >= time.Second {
			verdict = "misses"
		}
		label := fmt.Sprint(i + 1)
		if i == 0 {
			label += " (cold)"
		}
		p("| %s | %s | %d | %s | %s | %s | %s |\n", label, ms(first), run.FirstRequests, kb(run.FirstBytes), kb(run.FirstLargest),
			ms(time.Duration(run.TableMS)*time.Millisecond), verdict)
	}
	slices.Sort(firsts)
	p("\nMedian first screen %s, slowest %s, for pid %d of %s goroutines.\n\n", ms(firsts[len(firsts)/2]), ms(firsts[len(firsts)-1]),
		r.result.PID, count(r.result.Goroutines))
	return b.String()
}

// kb formats a byte count in kB.
func kb(n int64) string {
	return fmt.Sprintf("%.1f kB", float64(n)/1000)
}
