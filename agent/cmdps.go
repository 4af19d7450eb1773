package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"text/tabwriter"

	"github.com/goroscope/goroscope/agent/daemon"
	"github.com/goroscope/goroscope/collect/discovery"
	"github.com/goroscope/goroscope/collect/process"
	"github.com/goroscope/goroscope/collect/walk"
)

// cmdPs lists the Go processes of the host and whether goroscope can walk
// each (it reads the goroutine count as a walk would). It loads no BPF
// program: the kernel may take long to verify one, and the processes, not
// the walker, decide what can be read.
func cmdPs(ctx context.Context, args []string, stdout io.Writer, _ *slog.Logger) error {
	fs := flag.NewFlagSet("ps", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	if err := fs.Parse(args); err != nil {
		return parseError("ps", fs, err)
	}
	if fs.NArg() > 0 {
		return usageError{fmt.Sprintf("ps: unexpected arguments %q", fs.Args())}
	}
	procs, err := discovery.NewScanner().Scan()
	if err != nil {
		return err
	}
	// Processes running the same executable share its parse.
	exes := daemon.Executables{}
	defer exes.Close()
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "PID\tGO\tGOROUTINES\tWALKABLE\tEXE")
	for _, p := range procs {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		count, walkable := "-", "yes"
		var t *process.Target
		x, _, err := exes.Acquire(p.PID)
		if err == nil {
			t, err = process.AttachExecutable(p.PID, x)
		}
		if err == nil {
			var n int
			if n, err = walk.GoroutineCount(t); err == nil {
				count = fmt.Sprint(n)
			}
			t.Close()
		}
		if err != nil {
			walkable = "no: " + err.Error()
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\n", p.PID, p.GoVersion, count, walkable, p.Exe)
	}
	return tw.Flush()
}
