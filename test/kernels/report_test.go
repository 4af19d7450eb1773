package kernels

import (
	"strings"
	"testing"
	"time"
)

const sampleOutput = `goroscope-guest: kernel 6.1.0-57-cloud-amd64
=== RUN   TestCPUSamplerSelf
--- PASS: TestCPUSamplerSelf (3.24s)
=== RUN   TestPanicTracer
=== RUN   TestPanicTracer/local/panic
--- PASS: TestPanicTracer (2.10s)
    --- PASS: TestPanicTracer/local/panic (0.21s)
=== RUN   TestVerifierBudget
    verifier_test.go:28: program walk_goroutines: processed 4682 insns, 311 states, verification 41.937ms, load 492ms wall 438ms CPU (kernel 6.1.0-57-cloud-amd64)
    verifier_test.go:28: program sample_cpu: processed 24657 insns, 1379 states, verification 0s, load 1.5s wall 1.4s CPU (kernel 6.1.0-57-cloud-amd64)
--- PASS: TestVerifierBudget (1.24s)
=== RUN   TestWalk
=== RUN   TestWalk/local
--- FAIL: TestWalk (3.51s)
    --- FAIL: TestWalk/local (1.43s)
--- PASS: TestWalkErrors (3.35s)
--- SKIP: TestWalkSkipUnchanged (0.00s)
FAIL
goroscope-guest: error: killed after the timeout 3m30s
goroscope-guest: exit 1 after 10.5s
`

func TestParse(t *testing.T) {
	r := Parse([]byte(sampleOutput))
	if r.Kernel != "6.1.0-57-cloud-amd64" || !r.Exited || r.Exit != 1 {
		t.Errorf("kernel %q exited %v with %d", r.Kernel, r.Exited, r.Exit)
	}
	want := map[string]string{
		"TestCPUSamplerSelf": "PASS", "TestVerifierBudget": "PASS", "TestWalk": "FAIL",
		"TestWalkErrors": "PASS", "TestWalkSkipUnchanged": "SKIP", "TestPanicTracer": "PASS",
	}
	if len(r.Tests) != len(want) {
		t.Errorf("tests %v, want %v", r.Tests, want)
	}
	for n, s := range want {
		if r.Tests[n] != s {
			t.Errorf("%s: %q, want %q", n, r.Tests[n], s)
		}
	}
	wantProgs := []Program{{"walk_goroutines", 4682, 492 * time.Millisecond}, {"sample_cpu", 24657, 1500 * time.Millisecond}}
	if len(r.Programs) != len(wantProgs) || r.Programs[0] != wantProgs[0] || r.Programs[1] != wantProgs[1] {
		t.Errorf("programs %+v, want %+v", r.Programs, wantProgs)
	}
	if len(r.Errors) != 1 || r.Errors[0] != "killed after the timeout 3m30s" {
		t.Errorf("errors %q", r.Errors)
	}
	if got := r.Passed(SamplerTests()); got != "yes" {
		t.Errorf("sampler %s, want yes", got)
	}
	if got := r.Passed(WalkerTests()); got != "no" {
		t.Errorf("walker %s, want no", got)
	}
	if got := r.Passed(PanicTests()); got != "yes" {
		t.Errorf("panic probe %s, want yes", got)
	}
	err := r.Err()
	for _, sub := range []string{"guest: killed", "status 1", "TestWalk: FAIL", "TestWalkSkipUnchanged: SKIP", "TestExitTracer: did not run"} {
		if err == nil || !strings.Contains(err.Error(), sub) {
			t.Errorf("Err() = %v, want it to mention %q", err, sub)
		}
	}
	if err != nil && strings.Contains(err.Error(), "TestPanicTracer") {
		t.Errorf("Err() = %v, mentions TestPanicTracer, which passed", err)
	}
	// A run where all passed but the panic probe's test: Err names it.
	all := Result{Exited: true, Tests: make(map[string]string)}
	for _, n := range AllTests() {
		all.Tests[n] = "PASS"
	}
	if err := all.Err(); err != nil {
		t.Errorf("Err() of a run where all passed = %v", err)
	}
	all.Tests["TestPanicTracer"] = "FAIL"
	if err := all.Err(); err == nil || !strings.Contains(err.Error(), "TestPanicTracer: FAIL") {
		t.Errorf("Err() with the panic probe failing = %v", err)
	}
	if got := all.Passed(PanicTests()); got != "no" {
		t.Errorf("panic probe %s, want no", got)
	}
	if err := Parse([]byte("goroscope-guest: kernel x\n")).Err(); err == nil || !strings.Contains(err.Error(), "no exit status") {
		t.Errorf("Err() of a run cut short = %v", err)
	}
}

func TestTable(t *testing.T) {
	rows := []Row{
		{"6.1.0-57-cloud-amd64 (Debian 6.1.192-3)", Parse([]byte(sampleOutput))},
		{"6.18.44 (host)", Result{}},
	}
	want := `| kernel | eBPF walker | CPU sampler | exit tracer | panic probe | processed instructions | load time |
| --- | --- | --- | --- | --- | --- | --- |
| 6.1.0-57-cloud-amd64 (Debian 6.1.192-3) | no | yes | no | yes | walk_goroutines 4682, sample_cpu 24657 | walk_goroutines 492ms, sample_cpu 1.5s |
| 6.18.44 (host) | no | no | no | no | — | — |
`
	if got := Table(rows); got != want {
		t.Errorf("table\n%s\nwant\n%s", got, want)
	}
}
