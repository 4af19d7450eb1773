// Command goroscope is a host-level continuous profiler for Go: it sees every
// goroutine of every Go process on the host from outside, without stopping
// or changing them.
//
// Usage:
//
//	goroscope agent [--config FILE] [--listen ADDR] [--data-dir DIR] [--snapshot-interval 10s]
//	goroscope snapshot --pid PID [--format json|text|folded|pprof] [--out FILE] [--walker auto|ebpf|procmem] [--bpf-cache FILE]
//	goroscope ps
//	goroscope profile --pid PID [--duration 10s] [--cpu-frequency 99] [--format folded|pprof|json] [--out FILE] [--kernel-frames]
//	goroscope version
//
// The commands other than agent log at $GOROSCOPE_LOG_LEVEL (debug, info,
// warn or error; default info).
//
// This package is the binary: main.go dispatches, and each command has its
// file (cmdagent.go, cmdsnapshot.go, cmdps.go, cmdprofile.go,
// cmdversion.go). The daemon is agent/daemon, its web UI agent/ui; the BPF
// loads the daemon and the commands share are agent/bpfload.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	if err != nil {
		var h helpRequested
		if errors.As(err, &h) {
			fmt.Fprint(os.Stdout, h.text)
			os.Exit(0)
		}
		var u usageError
		if errors.As(err, &u) {
			fmt.Fprintln(os.Stderr, "goroscope:", err)
			os.Exit(2)
		}
		fmt.Fprintln(os.Stderr, "goroscope:", err)
		os.Exit(1)
	}
}

// usageError is a mistake in the command line.
type usageError struct{ msg string }

func (u usageError) Error() string { return u.msg }

const usage = `usage: goroscope <command> [flags]

commands:
  agent      the daemon: watch every Go process, store profiles, serve the web UI and /metrics
  snapshot   every goroutine of one Go process: goroscope snapshot --pid PID [--format json|text|folded|pprof] [--out FILE]
  ps         the Go processes on this host, and whether each can be walked
  profile    one CPU profile of one Go process (eBPF): goroscope profile --pid PID [--duration 10s] [--cpu-frequency 99] [--format folded|pprof|json] [--out FILE] [--kernel-frames]
  diagnose   watch one Go process and say what is wrong (leaks, stuck goroutines, deadlock): goroscope diagnose --pid PID [--for 60s] [--interval 2s] [--format text|json]
  crashes    the crashes a running agent recorded: goroscope crashes [--service S] [--format text|json] [--stacks] [--agent http://127.0.0.1:7070]
  version    print the version
Run "goroscope <command> -h" for a command's flags.`

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return usageError{usage}
	}
	level := slog.LevelInfo
	if v := os.Getenv("GOROSCOPE_LOG_LEVEL"); v != "" {
		if err := level.UnmarshalText([]byte(v)); err != nil {
			return usageError{fmt.Sprintf("GOROSCOPE_LOG_LEVEL=%q: want debug, info, warn or error", v)}
		}
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))
	switch args[0] {
	case "agent":
		return cmdAgent(ctx, args[1:], stderr)
	case "snapshot":
		return cmdSnapshot(ctx, args[1:], stdout, log)
	case "ps":
		return cmdPs(ctx, args[1:], stdout, log)
	case "profile":
		return cmdProfile(ctx, args[1:], stdout, log)
	case "diagnose":
		return cmdDiagnose(ctx, args[1:], stdout, log)
	case "crashes":
		return cmdCrashes(ctx, args[1:], stdout, log)
	case "version", "--version", "-version":
		return cmdVersion(stdout)
	case "help", "-h", "--help":
		fmt.Fprintln(stdout, usage)
		return nil
	}
	return usageError{fmt.Sprintf("unknown command %q\n%s", args[0], usage)}
}

// helpRequested is -h or --help on a command: its flags, for standard
// output and exit status 0.
type helpRequested struct{ text string }

func (h helpRequested) Error() string { return h.text }

// parseError turns a command's flag parsing error into a usage error that
// lists its flags, or, for -h, into the help it asked for.
func parseError(cmd string, fs *flag.FlagSet, err error) error {
	if errors.Is(err, flag.ErrHelp) {
		return helpRequested{fmt.Sprintf("goroscope %s flags:\n%s", cmd, flagHelp(fs))}
	}
	return usageError{fmt.Sprintf("%s: %v\nflags:\n%s", cmd, err, flagHelp(fs))}
}

// flagHelp lists a command's flags: each with its default, unless the
// usage says it already or the default is empty.
func flagHelp(fs *flag.FlagSet) string {
	var s strings.Builder
	fs.VisitAll(func(f *flag.Flag) {
		fmt.Fprintf(&s, "  --%s\t%s", f.Name, f.Usage)
		switch f.DefValue {
		case "", "0", "0s", "false", "[]":
		default:
			if !strings.Contains(f.Usage, "(default") {
				fmt.Fprintf(&s, " (default %s)", f.DefValue)
			}
		}
		s.WriteString("\n")
	})
	return s.String()
}

// durationValue is a duration flag whose error says how to write one:
// "5" is taken for nothing, and "5s" is suggested.
type durationValue time.Duration

// durationFlag defines a duration flag on fs.
func durationFlag(fs *flag.FlagSet, name string, def time.Duration, usage string) *time.Duration {
	p := new(time.Duration)
	*p = def
	fs.Var((*durationValue)(p), name, usage)
	return p
}

func (d *durationValue) String() string { return time.Duration(*d).String() }

func (d *durationValue) Set(s string) error {
	v, err := time.ParseDuration(s)
	if err != nil {
		if _, nerr := strconv.ParseFloat(s, 64); nerr == nil {
			return fmt.Errorf("%q has no unit: write %ss (or %sm, %sms)", s, s, s, s)
		}
		return fmt.Errorf("%q is not a duration (write e.g. 10s, 5m, 1h)", s)
	}
	*d = durationValue(v)
	return nil
}
