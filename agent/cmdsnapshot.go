package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"time"

	"github.com/goroscope/goroscope/agent/bpfload"
	"github.com/goroscope/goroscope/agent/daemon"
	"github.com/goroscope/goroscope/collect/process"
	"github.com/goroscope/goroscope/collect/walk"
	"github.com/goroscope/goroscope/pkg/fold"
	"github.com/goroscope/goroscope/pkg/snapshot"
)

// oneShotWait is how long snapshot waits for the eBPF walker to load before
// it walks with procmem instead.
const oneShotWait = time.Second

// cmdSnapshot takes one snapshot of every goroutine of a process:
//
//	goroscope snapshot --pid PID [--format json|text|folded|pprof] [--out FILE] [--walker auto|ebpf|procmem] [--bpf-cache FILE]
func cmdSnapshot(ctx context.Context, args []string, stdout io.Writer, log *slog.Logger) error {
	return snapshotCmd{load: bpfload.LoadEBPFWalker}.run(ctx, args, stdout, log)
}

// snapshotCmd is the snapshot command; load loads the eBPF walker (tests
// inject slow ones).
type snapshotCmd struct {
	load func(context.Context) (bpfload.EBPFWalker, error)
}

// run takes one snapshot. With --walker auto it waits at most oneShotWait
// for the eBPF walker, then walks with procmem; a rejection remembered in
// the BPF cache skips the load altogether.
func (c snapshotCmd) run(ctx context.Context, args []string, stdout io.Writer, log *slog.Logger) error {
	fs := flag.NewFlagSet("snapshot", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	pid := fs.Int("pid", 0, "process to snapshot (required)")
	format := fs.String("format", "json", "output format: json, text, folded or pprof")
	out := fs.String("out", "", "write to this file instead of standard output")
	all := fs.Bool("all", false, "text format: include system goroutines and runtime frames the runtime's own dumps hide")
	walker := fs.String("walker", "auto", "goroutine walker: auto (eBPF if it loads within 1s, else procmem), ebpf or procmem")
	cache := fs.String("bpf-cache", bpfload.VerdictsPath(daemon.DefaultConfig().DataDir), "file remembering the BPF programs this kernel rejected ($"+bpfload.VerdictsEnv+")")
	if err := fs.Parse(args); err != nil {
		return parseError("snapshot", fs, err)
	}
	if *pid <= 0 {
		return usageError{"snapshot: --pid is required: the id of a running Go process (see goroscope ps)"}
	}
	write, err := snapshotWriter(*format, *all)
	if err != nil {
		return err
	}
	if err := bpfload.CheckWalkerMode(*walker); err != nil {
		return usageError{err.Error()}
	}
	// The load runs while the process is attached; it is dropped (and ends
	// with this process) when the snapshot is taken without it.
	loadStart := time.Now()
	ws, err := bpfload.StartWalkers(ctx, *walker, bpfload.WalkerObject(bpfload.NewVerdicts(*cache, log), c.load))
	if err != nil {
		return fmt.Errorf("snapshot pid %d with --walker ebpf: %w", *pid, err)
	}
	defer ws.Close()
	t, err := process.Attach(*pid)
	if err != nil {
		return err
	}
	defer t.Close()
	if err := c.awaitWalker(ctx, ws, *walker, loadStart, log); err != nil {
		return fmt.Errorf("snapshot pid %d: %w", *pid, err)
	}
	snap, err := walk.NewSnapshotter(t, ws.Pick()).Snapshot(ctx)
	if err != nil {
		return err
	}
	w := stdout
	if *out != "" {
		f, err := os.Create(*out)
		if err != nil {
			return fmt.Errorf("--out: %w", err)
		}
		defer f.Close()
		w = f
	}
	if err := write(w, snap); err != nil {
		return fmt.Errorf("write snapshot of pid %d: %w", *pid, err)
	}
	if f, ok := w.(*os.File); ok && *out != "" {
		return f.Close()
	}
	return nil
}

// awaitWalker waits for the eBPF walker: with "ebpf" until it loads, with
// "auto" until oneShotWait after loadStart, and says once why procmem
// walks instead. Only an "ebpf" failure is an error.
func (snapshotCmd) awaitWalker(ctx context.Context, ws *bpfload.Walkers, mode string, loadStart time.Time, log *slog.Logger) error {
	if mode == "ebpf" {
		return ws.Await(ctx)
	}
	wctx, cancel := context.WithDeadline(ctx, loadStart.Add(oneShotWait))
	defer cancel()
	err := ws.Await(wctx)
	switch {
	case err == nil || ctx.Err() != nil:
	case errors.Is(err, bpfload.ErrStillLoading):
		log.Info("the eBPF walker is not loaded yet (the kernel is still verifying it): walking with procmem", "waited", oneShotWait)
	default:
		bpfload.LogFailure(ctx, log, slog.LevelDebug, "eBPF walker unavailable: walking with procmem", err)
	}
	return nil
}

// snapshotWriter writes a snapshot in format (--all: the text format with
// the goroutines and frames the runtime's dumps hide).
func snapshotWriter(format string, all bool) (func(io.Writer, *snapshot.Snapshot) error, error) {
	switch format {
	case "json":
		return snapshot.WriteJSON, nil
	case "text":
		return func(w io.Writer, s *snapshot.Snapshot) error {
			return snapshot.WriteText(w, s, snapshot.TextOptions{All: all})
		}, nil
	case "folded":
		return snapshot.WriteFolded, nil
	case "pprof":
		return func(w io.Writer, s *snapshot.Snapshot) error { return fold.Goroutines(s).Write(w) }, nil
	}
	return nil, usageError{fmt.Sprintf("--format %q: want json, text, folded or pprof", format)}
}
