package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"text/tabwriter"

	"github.com/goroscope/goroscope/collect/discovery"
	"github.com/goroscope/goroscope/collect/walk"
)

func cmdPs(ctx context.Context, args []string, stdout io.Writer, log *slog.Logger) error {
	fs := flag.NewFlagSet("ps", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	walker := fs.String("walker", "auto", "goroutine walker to check: auto, ebpf or procmem")
	if err := fs.Parse(args); err != nil {
		return usageError{fmt.Sprintf("ps: %v\nflags:\n%s", err, flagHelp(fs))}
	}
	ws, err := openWalkers(*walker, log)
	if err != nil {
		return err
	}
	defer ws.Close()
	procs, err := discovery.NewScanner().Scan()
	if err != nil {
		return err
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "PID\tGO\tGOROUTINES\tWALKER\tEXE")
	for _, p := range procs {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		count, served := "-", "none: "
		t, err := walk.Attach(p.PID)
		if err == nil {
			if n, err := t.GoroutineCount(); err == nil {
				count = fmt.Sprint(n)
				served = ws.pick().Name()
			} else {
				served += err.Error()
			}
			t.Close()
		} else {
			served += err.Error()
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\n", p.PID, p.GoVersion, count, served, p.Exe)
	}
	return tw.Flush()
}
