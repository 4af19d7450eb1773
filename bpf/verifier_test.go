//go:build linux

package bpf

import (
	"os"
	"testing"
	"time"
)

// TestVerifierBudget loads every program with the verifier's statistics and
// fails when one needs more than VerifierBudget processed instructions. The
// load time is only logged: it is a benchmark's target (make bench), not a
// unit test's, and emulated kernels take far longer. The kernel matrix (test/kernels) runs
// it on each kernel, so the log lines are its table's source.
func TestVerifierBudget(t *testing.T) {
	if err := checkCaps(); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("CI=true but BPF programs cannot be loaded: %v", err)
		}
		t.Skipf("BPF unavailable here: %v", err)
	}
	loads, err := MeasureLoads()
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]bool{"walk_goroutines": false, "sample_cpu": false, "trace_exit": false, "trace_oom_victim": false, "probe_panic": false}
	for _, l := range loads {
		t.Logf("program %s: processed %d insns, %d states, verification %v, load %v wall %v CPU (kernel %s)",
			l.Program, l.Insns, l.States, l.Verification, l.Wall.Round(time.Millisecond), l.CPU.Round(time.Millisecond), kernelRelease())
		if _, ok := want[l.Program]; ok {
			want[l.Program] = true
		}
		if l.Insns > VerifierBudget {
			t.Errorf("program %s: the verifier processed %d instructions, over the budget of %d", l.Program, l.Insns, VerifierBudget)
		}
	}
	for p, seen := range want {
		if !seen {
			t.Errorf("program %s was not loaded", p)
		}
	}
}

func TestParseVerifierStats(t *testing.T) {
	tests := []struct {
		name    string
		log     []string
		want    ProgramLoad
		wantErr bool
	}{
		{
			name: "6.18",
			log: []string{
				"verification time 152649 usec",
				"stack depth 400+16",
				"processed 37517 insns (limit 1000000) max_states_per_insn 22 total_states 2394 peak_states 1961 mark_read 0",
			},
			want: ProgramLoad{Insns: 37517, States: 2394, Verification: 152649 * time.Microsecond},
		},
		{
			name: "6.1",
			log: []string{
				"processed 14707 insns (limit 1000000) max_states_per_insn 16 total_states 989 peak_states 1603 mark_read 12",
			},
			want: ProgramLoad{Insns: 14707, States: 989},
		},
		{name: "no stats", log: []string{"func#0 @0"}, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got ProgramLoad
			err := parseVerifierStats(tt.log, &got)
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, want error %v", err, tt.wantErr)
			}
			if got != tt.want {
				t.Errorf("got %+v, want %+v", got, tt.want)
			}
		})
	}
}
