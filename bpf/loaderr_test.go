//go:build linux

package bpf

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cilium/ebpf"
	"golang.org/x/sys/unix"
)

// The fixtures are verifier logs of real rejections on Linux 6.18, at the
// statistics level the loaders ask for and, for comparison, at the branch
// level cilium/ebpf falls back to (trimmed to their last lines).
func TestVerifierCause(t *testing.T) {
	tests := []struct {
		name    string
		fixture string   // under testdata/verifier
		log     []string // instead of a fixture
		errno   error
		want    string
	}{
		{name: "too large, stats", fixture: "too-large-stats-6.18.log", errno: unix.E2BIG,
			want: "verifier: too complex, 1,000,001 instructions processed, limit 1,000,000"},
		{name: "too large, branch log", fixture: "too-large-branch-6.18.log", errno: unix.E2BIG,
			want: "verifier: too complex, 1,000,001 instructions processed, limit 1,000,000"},
		{name: "too large, message only", log: []string{"BPF program is too large. Processed 1000001 insn"}, errno: unix.E2BIG,
			want: "verifier: too complex, 1,000,001 instructions processed"},
		{name: "jump sequence", log: []string{"The sequence of 8193 jumps is too complex.", "verification time 12 usec", "stack depth 0",
			"processed 30000 insns (limit 1000000) max_states_per_insn 4 total_states 100 peak_states 100 mark_read 0"}, errno: unix.E2BIG,
			want: "verifier: too complex: The sequence of 8193 jumps is too complex."},
		{name: "E2BIG without log", errno: unix.E2BIG, want: "verifier: too complex (E2BIG, no log)"},
		{name: "invalid access, stats", fixture: "invalid-mem-stats-6.18.log", errno: unix.EACCES,
			want: "verifier: R2 invalid mem access 'scalar' (EACCES)"},
		{name: "invalid access, branch log", fixture: "invalid-mem-branch-6.18.log", errno: unix.EACCES,
			want: "verifier: R2 invalid mem access 'scalar' (EACCES)"},
		{name: "unknown helper", fixture: "unknown-func-stats-6.18.log", errno: unix.EINVAL,
			want: "verifier: invalid func unknown#9999 (EINVAL)"},
		{name: "uninitialised R0", fixture: "r0-not-init-stats-6.18.log", errno: unix.EACCES,
			want: "verifier: R0 !read_ok (EACCES)"},
		// Written after 5.15's message for a helper it lacks, not captured.
		{name: "old kernel helper", log: []string{"unknown func bpf_loop#181", "processed 12 insns (limit 1000000) max_states_per_insn 0 total_states 1 peak_states 1 mark_read 0"},
			errno: unix.EINVAL, want: "verifier: unknown func bpf_loop#181 (EINVAL)"},
		{name: "no log", errno: unix.EACCES, want: "verifier: rejected with EACCES (no log)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			log := tt.log
			if tt.fixture != "" {
				b, err := os.ReadFile(filepath.Join("testdata", "verifier", tt.fixture))
				if err != nil {
					t.Fatal(err)
				}
				log = strings.Split(strings.TrimRight(string(b), "\n"), "\n")
			}
			if got := VerifierCause(tt.errno, log); got != tt.want {
				t.Errorf("VerifierCause = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestLoadErrorMessage(t *testing.T) {
	tests := []struct {
		name     string
		err      *LoadError
		want     string
		rejected bool
	}{
		{
			name: "too complex",
			err: explainLoadError("goroutine walker", "sleepable task iterators",
				fmt.Errorf("program walk_goroutines: %w", verifierError(unix.E2BIG, "too-large-stats-6.18.log"))),
			want: "load goroutine walker: verifier: too complex, 1,000,001 instructions processed, limit 1,000,000 (program walk_goroutines, kernel " +
				kernelRelease() + ")",
			rejected: true,
		},
		{
			name:     "missing helper",
			err:      explainLoadError("CPU sampler", "bpf_loop", fmt.Errorf("program sample_cpu: %w", verifierError(unix.EINVAL, "unknown-func-stats-6.18.log"))),
			want:     "needs bpf_loop",
			rejected: true,
		},
		{
			name: "permission",
			err:  explainLoadError("CPU sampler", "bpf_loop", fmt.Errorf("map counts0: %w", unix.EPERM)),
			want: "load CPU sampler: permission denied: map counts0: operation not permitted; run as root or with CAP_BPF and CAP_PERFMON",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.err.Error(); !strings.Contains(got, tt.want) {
				t.Errorf("Error() = %q, want it to contain %q", got, tt.want)
			}
			if strings.Contains(tt.err.Error(), "\n") {
				t.Errorf("Error() spans lines: %q", tt.err.Error())
			}
			if tt.err.Rejected != tt.rejected {
				t.Errorf("Rejected = %v, want %v", tt.err.Rejected, tt.rejected)
			}
			var le *LoadError
			if !errors.As(fmt.Errorf("wrapped: %w", tt.err), &le) {
				t.Error("errors.As finds no *LoadError")
			}
		})
	}
}

// verifierError is a cilium/ebpf verifier error with a fixture's log.
func verifierError(errno unix.Errno, fixture string) error {
	b, err := os.ReadFile(filepath.Join("testdata", "verifier", fixture))
	if err != nil {
		panic(err)
	}
	return &ebpf.VerifierError{Cause: errno, Log: strings.Split(strings.TrimRight(string(b), "\n"), "\n")}
}

func TestKernelOlderThan(t *testing.T) {
	for _, tt := range []struct {
		release string
		want    bool
	}{
		{"5.15.0-91-generic", true},
		{"5.17.15", true},
		{"5.18.0", false},
		{"6.18.44-fc-v1252", false},
		{"4.19.325", true},
		{"10.1", false},
		{"garbage", false},
	} {
		if got := kernelOlderThan(tt.release, "5.18"); got != tt.want {
			t.Errorf("kernelOlderThan(%q, 5.18) = %v, want %v", tt.release, got, tt.want)
		}
	}
}

func TestThousands(t *testing.T) {
	for n, want := range map[int]string{0: "0", 999: "999", 1000: "1,000", 1000001: "1,000,001", 150000: "150,000"} {
		if got := thousands(n); got != want {
			t.Errorf("thousands(%d) = %q, want %q", n, got, want)
		}
	}
}

func TestObjectsDiffer(t *testing.T) {
	g, c := GoroutinesObject(), CPUObject()
	if g.Hash == c.Hash || len(g.Hash) != 64 || g != GoroutinesObject() {
		t.Errorf("objects %+v and %+v: want two stable, distinct SHA-256 hashes", g, c)
	}
	if KernelBuild() == "unknown" {
		t.Error("KernelBuild is unknown")
	}
}
