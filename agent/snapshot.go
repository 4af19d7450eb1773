package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"

	"github.com/goroscope/goroscope/collect/walk"
	"github.com/goroscope/goroscope/pkg/fold"
	"github.com/goroscope/goroscope/pkg/snapshot"
)

func cmdSnapshot(ctx context.Context, args []string, stdout io.Writer, log *slog.Logger) error {
	fs := flag.NewFlagSet("snapshot", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	pid := fs.Int("pid", 0, "process to snapshot (required)")
	format := fs.String("format", "json", "output format: json, text, folded or pprof")
	out := fs.String("out", "", "write to this file instead of standard output")
	all := fs.Bool("all", false, "text format: include system goroutines and runtime frames the runtime's own dumps hide")
	walker := fs.String("walker", "auto", "goroutine walker: auto (eBPF, else procmem), ebpf or procmem")
	if err := fs.Parse(args); err != nil {
		return usageError{fmt.Sprintf("snapshot: %v\nflags:\n%s", err, flagHelp(fs))}
	}
	if *pid <= 0 {
		return usageError{"snapshot: --pid is required: the id of a running Go process (see goroscope ps)"}
	}
	write, err := snapshotWriter(*format, *all)
	if err != nil {
		return err
	}
	ws, err := openWalkers(*walker, log)
	if err != nil {
		return err
	}
	defer ws.Close()
	t, err := walk.Attach(*pid)
	if err != nil {
		return err
	}
	defer t.Close()
	snap, err := walk.NewSnapshotter(t, ws.pick()).Snapshot(ctx)
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

func flagHelp(fs *flag.FlagSet) string {
	var s string
	fs.VisitAll(func(f *flag.Flag) {
		s += fmt.Sprintf("  --%s\t%s (default %q)\n", f.Name, f.Usage, f.DefValue)
	})
	return s
}
