package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"time"

	"github.com/goroscope/goroscope/agent/daemon"
	"github.com/goroscope/goroscope/collect/process"
	"github.com/goroscope/goroscope/collect/walk"
	"github.com/goroscope/goroscope/pkg/findings"
)

// cmdDiagnose watches one process for a while and prints its findings:
//
//	goroscope diagnose --pid PID [--for 60s] [--interval 2s] [--format text|json]
//
// Leaks need the group's growth over time, so the leak window is the
// watch itself: a leak shows when its group grew through all of it. The
// process's runtime health (its settings against its cgroup's limits) is
// read at each snapshot and judged too.
func cmdDiagnose(ctx context.Context, args []string, stdout io.Writer, log *slog.Logger) error {
	fs := flag.NewFlagSet("diagnose", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	pid := fs.Int("pid", 0, "process to diagnose (required)")
	watch := durationFlag(fs, "for", time.Minute, "how long to watch the process (e.g. 60s, 5m)")
	interval := durationFlag(fs, "interval", 2*time.Second, "time between snapshots")
	format := fs.String("format", "text", "output format: text or json")
	if err := fs.Parse(args); err != nil {
		return parseError("diagnose", fs, err)
	}
	switch {
	case *pid <= 0:
		return usageError{"diagnose: --pid is required: the id of a running Go process (see goroscope ps)"}
	case *interval < 100*time.Millisecond:
		return usageError{fmt.Sprintf("diagnose: --interval %s is too short (at least 100ms)", *interval)}
	case *watch < 3**interval:
		return usageError{fmt.Sprintf("diagnose: --for %s is too short for --interval %s: at least three snapshots are needed (e.g. --for %s)", *watch, *interval, 10**interval)}
	case *format != "text" && *format != "json":
		return usageError{fmt.Sprintf("diagnose: --format %q: want text or json", *format)}
	}
	t, err := process.Attach(*pid)
	if err != nil {
		return err
	}
	defer t.Close()
	cfg := findings.DefaultConfig()
	cfg.Leak.Window = *watch
	cfg.Leak.MinSpan = min(cfg.Leak.MinSpan, *watch*2/3)
	tr := findings.NewTracker(cfg)
	rtr := findings.NewRuntimeTracker(cfg)
	hr := daemon.NewHealthReader(t, t.Bin.GoVersion(), nil)
	defer hr.Close()
	sn := walk.NewSnapshotter(t, walk.ProcMemWalker{})
	log.Info("watching", "pid", *pid, "for", watch.String(), "interval", interval.String())
	var last []findings.Finding
	var groups int
	deadline := time.Now().Add(*watch)
	tick := time.NewTicker(*interval)
	defer tick.Stop()
	for n := 0; ; n++ {
		s, err := sn.Snapshot(ctx)
		if err != nil {
			return fmt.Errorf("diagnose pid %d: %w", *pid, err)
		}
		gs, fs := tr.Observe(s)
		h := hr.Read(s.Time)
		last, groups = findings.Merge(fs, rtr.Observe(&h)), len(gs)
		if !time.Now().Before(deadline) {
			break
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
		}
	}
	if *format == "json" {
		if last == nil {
			last = []findings.Finding{}
		}
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(last)
	}
	return writeFindingsText(stdout, *pid, *watch, groups, last)
}

// writeFindingsText prints findings for a person: the summary, then the
// evidence.
func writeFindingsText(w io.Writer, pid int, watched time.Duration, groups int, fs []findings.Finding) error {
	var b strings.Builder
	if len(fs) == 0 {
		fmt.Fprintf(&b, "pid %d: no finding after %s (%d groups of goroutines)\n", pid, watched, groups)
	}
	for i, f := range fs {
		if i > 0 {
			b.WriteString("\n")
		}
		fmt.Fprintf(&b, "%s %s\n  %s\n", strings.ToUpper(f.Kind), f.ID, f.Summary)
		if f.Site.Frame != "" {
			fmt.Fprintf(&b, "  blocks in:  %s\n", f.Site.Frame)
		}
		if f.Site.CreatedBy != "" {
			fmt.Fprintf(&b, "  created by: %s\n", f.Site.CreatedBy)
		}
		for _, o := range f.Objects {
			fmt.Fprintf(&b, "  on %s %s: %d goroutines\n", o.Kind, o.Address, o.Goroutines)
		}
		for _, r := range f.Related {
			fmt.Fprintf(&b, "  parked as long: %s\n", r.Label())
		}
		if f.ConfirmedByRuntime {
			b.WriteString("  confirmed by the runtime's goroutine leak detector\n")
		}
		if len(f.Example) > 0 {
			b.WriteString("  example stack:\n")
			for _, fr := range f.Example {
				fmt.Fprintf(&b, "    %s\n        %s:%d\n", fr.Function, fr.File, fr.Line)
			}
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}
