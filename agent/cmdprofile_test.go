package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/pprof/profile"

	"github.com/goroscope/goroscope/agent/bpfload"
	"github.com/goroscope/goroscope/bpf"
	"github.com/goroscope/goroscope/collect/cpu"
	"github.com/goroscope/goroscope/test/targettest"
)

// TestProfileCommand runs `goroscope profile` (cmdProfile) against cpuburn
// in every output format, and with bad flags.
func TestProfileCommand(t *testing.T) {
	t.Setenv(bpfload.VerdictsEnv, filepath.Join(t.TempDir(), bpfload.VerdictsFile))
	if testing.Short() {
		t.Skip("builds a target")
	}
	probe, err := bpf.LoadCPUSampler(bpf.CPUSamplerOptions{})
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("CI=true but the CPU sampler does not load: %v", err)
		}
		t.Skipf("CPU sampler unavailable here: %v", err)
	}
	probe.Close()
	bin := targettest.Build(t, "cpuburn", targettest.BuildOpts{})
	tgt := targettest.Start(t, bin, "-burners", "1", "-labeled", "1")
	pid := strconv.Itoa(tgt.PID)
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	dir := t.TempDir()

	for _, tc := range []struct {
		name   string
		args   []string
		usage  string // want a usage error containing this
		errHas string
		check  func(t *testing.T, out []byte)
	}{
		{name: "no pid", args: nil, usage: "--pid is required"},
		{name: "bad duration", args: []string{"--pid", pid, "--duration", "-1s"}, usage: "--duration"},
		{name: "bad frequency", args: []string{"--pid", pid, "--cpu-frequency", "1000"}, usage: "--cpu-frequency 1000"},
		{name: "bad format", args: []string{"--pid", pid, "--format", "svg"}, usage: `--format "svg"`},
		{name: "no such pid", args: []string{"--pid", "1073741824"}, errHas: "no such process"},
		{name: "folded", args: []string{"--pid", pid, "--duration", "1s"}, check: func(t *testing.T, out []byte) {
			// cpuburn runs nothing but main.burnCPU once ready; the
			// runtime (preemption, the scheduler, sysmon) takes the rest,
			// more of it on a loaded machine.
			var total, burn int
			var other []string
			for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
				i := strings.LastIndexByte(line, ' ')
				n, err := strconv.Atoi(line[i+1:])
				if i < 0 || err != nil {
					t.Fatalf("bad folded line %q", line)
				}
				total += n
				switch {
				case strings.Contains(line, ";main.burnCPU"):
					burn += n
				case !strings.Contains(line, "runtime."):
					other = append(other, line)
				}
			}
			if total < 20 || float64(burn) < 0.75*float64(total) || len(other) > 0 {
				t.Errorf("folded: %d samples, %d in main.burnCPU (want >= 20 and >= 75%%); outside the runtime: %q\n%s", total, burn, other, out)
			}
		}},
		{name: "json", args: []string{"--pid", pid, "--duration", "1s", "--format", "json", "--cpu-frequency", "199"}, check: func(t *testing.T, out []byte) {
			var v struct {
				PID       int    `json:"pid"`
				Frequency int    `json:"frequency_hz"`
				Total     uint64 `json:"total"`
				Samples   []struct {
					Goid   uint64            `json:"goid"`
					Labels map[string]string `json:"labels"`
					Count  uint64            `json:"count"`
					Frames []struct {
						Function string `json:"function"`
					} `json:"frames"`
				} `json:"samples"`
			}
			if err := json.Unmarshal(out, &v); err != nil {
				t.Fatal(err)
			}
			var labelled uint64
			for _, s := range v.Samples {
				if s.Labels["burner"] == "labeled" && s.Goid != 0 {
					labelled += s.Count
				}
			}
			if v.PID != tgt.PID || v.Frequency != 199 || v.Total < 40 || float64(labelled) < 0.9*float64(v.Total) {
				t.Errorf("json: pid %d at %d Hz, %d samples, %d labelled", v.PID, v.Frequency, v.Total, labelled)
			}
		}},
		{name: "pprof", args: []string{"--pid", pid, "--duration", "1s", "--format", "pprof", "--kernel-frames", "--out", filepath.Join(dir, "cpu.pb.gz")}, check: func(t *testing.T, _ []byte) {
			f, err := os.Open(filepath.Join(dir, "cpu.pb.gz"))
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			p, err := profile.Parse(f)
			if err != nil {
				t.Fatal(err)
			}
			var n int64
			for _, s := range p.Sample {
				n += s.Value[0]
			}
			if p.PeriodType.Type != "cpu" || p.Period != int64(1e9)/99 || n < 20 {
				t.Errorf("pprof: period %v %d, %d samples", p.PeriodType, p.Period, n)
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out bytes.Buffer
			err := cmdProfile(context.Background(), tc.args, &out, log)
			var u usageError
			switch {
			case tc.usage != "":
				if !errors.As(err, &u) || !strings.Contains(err.Error(), tc.usage) {
					t.Fatalf("error %v, want a usage error with %q", err, tc.usage)
				}
				return
			case tc.errHas != "":
				if err == nil || !strings.Contains(err.Error(), tc.errHas) {
					t.Fatalf("error %v, want one with %q", err, tc.errHas)
				}
				return
			case err != nil:
				t.Fatal(err)
			}
			tc.check(t, out.Bytes())
		})
	}
}

// TestProfileCachedRejection: profile needs the CPU sampler; a rejection
// remembered for this kernel fails at once with the verifier's cause.
func TestProfileCachedRejection(t *testing.T) {
	cache := filepath.Join(t.TempDir(), bpfload.VerdictsFile)
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	bpfload.NewVerdicts(cache, log).Remember(bpfload.Verdict{Object: "cpu", Hash: bpf.CPUObject().Hash, Kernel: bpf.KernelBuild(),
		Cause: "verifier: R2 invalid mem access 'scalar' (EACCES)", At: time.Now()})
	loads := 0
	start := time.Now()
	err := profileCmd{load: func(context.Context, cpu.Options) (*cpu.Sampler, error) {
		loads++
		return nil, errors.New("loaded")
	}}.run(context.Background(), []string{"--pid", strconv.Itoa(os.Getpid()), "--bpf-cache", cache}, io.Discard, log)
	if err == nil || !strings.Contains(err.Error(), "cached rejection: verifier: R2 invalid mem access") || !strings.Contains(err.Error(), "delete "+cache) ||
		loads != 0 || time.Since(start) > time.Second {
		t.Errorf("after %v and %d loads: %v", time.Since(start), loads, err)
	}
}
