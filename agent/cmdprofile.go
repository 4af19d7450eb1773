package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"time"

	"github.com/goroscope/goroscope/agent/bpfload"
	"github.com/goroscope/goroscope/agent/daemon"
	"github.com/goroscope/goroscope/collect/cpu"
	"github.com/goroscope/goroscope/collect/process"
)

// maxProfileDuration bounds --duration.
const maxProfileDuration = time.Hour

// aliveEvery is how often a running profile checks that its process lives.
const aliveEvery = 250 * time.Millisecond

// cmdProfile takes one CPU profile of a process with the eBPF sampler:
//
//	goroscope profile --pid PID [--duration 10s] [--cpu-frequency 99] [--format folded|pprof|json] [--out FILE] [--kernel-frames]
//
// It stops early, and writes what it has, on SIGINT/SIGTERM or when the
// process exits.
func cmdProfile(ctx context.Context, args []string, stdout io.Writer, log *slog.Logger) error {
	return profileCmd{load: func(_ context.Context, o cpu.Options) (*cpu.Sampler, error) { return cpu.New(o) }}.run(ctx, args, stdout, log)
}

// profileCmd is the profile command; load loads the CPU sampler (tests
// inject others).
type profileCmd struct {
	load func(context.Context, cpu.Options) (*cpu.Sampler, error)
}

// run takes the profile. It needs the eBPF CPU sampler, so it waits for its
// load (or an interrupt); a rejection remembered in the BPF cache fails at
// once with the verifier's cause.
func (c profileCmd) run(ctx context.Context, args []string, stdout io.Writer, log *slog.Logger) error {
	fs := flag.NewFlagSet("profile", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	pid := fs.Int("pid", 0, "process to profile (required)")
	duration := durationFlag(fs, "duration", 10*time.Second, "how long to sample")
	freq := fs.Int("cpu-frequency", cpu.DefaultFrequency, fmt.Sprintf("samples per second of CPU time, %d..%d", cpu.MinFrequency, cpu.MaxFrequency))
	format := fs.String("format", "folded", "output format: folded (flame graph stacks), pprof or json")
	out := fs.String("out", "", "write to this file instead of standard output")
	kernel := fs.Bool("kernel-frames", false, "add kernel frames (from /proc/kallsyms) to samples taken in system calls")
	cache := fs.String("bpf-cache", bpfload.VerdictsPath(daemon.DefaultConfig().DataDir), "file remembering the BPF programs this kernel rejected ($"+bpfload.VerdictsEnv+")")
	if err := fs.Parse(args); err != nil {
		return parseError("profile", fs, err)
	}
	switch {
	case *pid <= 0:
		return usageError{"profile: --pid is required: the id of a running Go process (see goroscope ps)"}
	case *duration <= 0 || *duration > maxProfileDuration:
		return usageError{fmt.Sprintf("profile: --duration %v: want more than 0 and at most %v", *duration, maxProfileDuration)}
	case *freq < cpu.MinFrequency || *freq > cpu.MaxFrequency:
		return usageError{fmt.Sprintf("profile: --cpu-frequency %d: want %d..%d Hz", *freq, cpu.MinFrequency, cpu.MaxFrequency)}
	}
	write, err := profileWriter(*format)
	if err != nil {
		return err
	}
	t, err := process.Attach(*pid)
	if err != nil {
		return err
	}
	defer t.Close()
	obj := bpfload.CPUSamplerObject(bpfload.NewVerdicts(*cache, log), cpu.Options{Frequency: *freq, KernelFrames: *kernel}, c.load)
	if err := obj.Cached(); err != nil {
		return fmt.Errorf("profile pid %d: %w", *pid, err)
	}
	load := obj.Start(ctx)
	defer load.Drop()
	s, err := load.Wait(ctx)
	if errors.Is(err, bpfload.ErrNotLoaded) {
		return fmt.Errorf("profile pid %d: interrupted while the kernel verified the CPU sampler: %w", *pid, ctx.Err())
	}
	if err != nil {
		return fmt.Errorf("profile pid %d: %w", *pid, err)
	}
	defer s.Close()
	if err := s.KernelSymbolsError(); err != nil {
		log.Warn("kernel frames will be unnamed", "err", err)
	}
	if err := s.Add(t); err != nil {
		return err
	}
	if _, err := s.Drain(ctx); err != nil { // the window starts now
		return err
	}

	exited := waitProfile(ctx, t, *duration)
	iv, err := s.Drain(context.WithoutCancel(ctx))
	if err != nil {
		return err
	}
	p := iv.Processes[*pid]
	if p == nil {
		p = &cpu.Process{PID: *pid, Exe: t.Exe, GoVersion: t.Bin.GoVersion()}
		log.Warn("no CPU samples: the process did not run on a CPU", "pid", *pid, "window", iv.End.Sub(iv.Start).Round(time.Millisecond))
	}
	if exited != nil {
		log.Warn("the process exited; writing the samples taken before", "pid", *pid, "err", exited)
	}
	for _, e := range p.Errors {
		log.Warn("profile", "pid", *pid, "problem", e)
	}
	if iv.Dropped > 0 {
		log.Warn("samples dropped in the kernel (its maps were full)", "dropped", iv.Dropped)
	}
	log.Info("profiled", "pid", *pid, "samples", p.Total, "cpu", (time.Duration(p.Total) * iv.Period).Round(time.Millisecond),
		"window", iv.End.Sub(iv.Start).Round(time.Millisecond), "hz", iv.Frequency)

	w := stdout
	var f *os.File
	if *out != "" {
		if f, err = os.Create(*out); err != nil {
			return fmt.Errorf("--out: %w", err)
		}
		defer f.Close()
		w = f
	}
	if err := write(w, iv, p); err != nil {
		return fmt.Errorf("write profile of pid %d: %w", *pid, err)
	}
	if f != nil {
		return f.Close()
	}
	return nil
}

// waitProfile waits for d, for ctx to end or for the process to exit; it
// returns why the process is gone, if it is.
func waitProfile(ctx context.Context, t *process.Target, d time.Duration) error {
	done := time.NewTimer(d)
	defer done.Stop()
	tick := time.NewTicker(aliveEvery)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-done.C:
			return nil
		case <-tick.C:
			if err := t.Alive(); err != nil {
				return err
			}
		}
	}
}

// profileOutput is the JSON form: the interval and the process's samples.
type profileOutput struct {
	Start     time.Time `json:"start"`
	End       time.Time `json:"end"`
	Frequency int       `json:"frequency_hz"`
	PeriodNs  int64     `json:"period_ns"`
	Dropped   uint64    `json:"dropped,omitempty"`
	*cpu.Process
}

// profileWriter writes a CPU profile in format.
func profileWriter(format string) (func(io.Writer, *cpu.Interval, *cpu.Process) error, error) {
	switch format {
	case "folded":
		return func(w io.Writer, _ *cpu.Interval, p *cpu.Process) error { return cpu.WriteFolded(w, p) }, nil
	case "pprof":
		return func(w io.Writer, iv *cpu.Interval, p *cpu.Process) error {
			return cpu.BuildProfile(p, iv.Start, iv.End.Sub(iv.Start), iv.Frequency).Write(w)
		}, nil
	case "json":
		return func(w io.Writer, iv *cpu.Interval, p *cpu.Process) error {
			enc := json.NewEncoder(w)
			enc.SetIndent("", "  ")
			return enc.Encode(profileOutput{
				Start: iv.Start, End: iv.End, Frequency: iv.Frequency, PeriodNs: int64(iv.Period), Dropped: iv.Dropped, Process: p,
			})
		}, nil
	}
	return nil, usageError{fmt.Sprintf("--format %q: want folded, pprof or json", format)}
}
