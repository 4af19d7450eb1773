package kernels

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Result is what one run of bpf.test -test.v printed.
type Result struct {
	Kernel   string            // the guest's uname -r
	Exited   bool              // the guest reported an exit status
	Exit     int               // that status
	Tests    map[string]string // top-level test name -> PASS, FAIL or SKIP
	Programs []Program         // from TestVerifierBudget's log
	Errors   []string          // what the guest's /init reported as errors
}

// Program is the verifier's verdict on one BPF program.
type Program struct {
	Name  string
	Insns int           // instructions processed
	Load  time.Duration // time to load (verify) it
}

var (
	testLine    = regexp.MustCompile(`^--- (PASS|FAIL|SKIP): (\w+) \(`)
	programLine = regexp.MustCompile(`program (\w+): processed (\d+) insns\b.*\bload (\S+)`)
)

// Parse reads the output of bpf.test -test.v together with the guest's
// marker lines (GuestMarker).
func Parse(out []byte) Result {
	r := Result{Tests: make(map[string]string)}
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if m := testLine.FindStringSubmatch(line); m != nil {
			r.Tests[m[2]] = m[1]
			continue
		}
		if m := programLine.FindStringSubmatch(line); m != nil {
			insns, _ := strconv.Atoi(m[2])
			load, _ := time.ParseDuration(m[3])
			r.Programs = append(r.Programs, Program{Name: m[1], Insns: insns, Load: load})
			continue
		}
		rest, ok := strings.CutPrefix(line, GuestMarker+" ")
		if !ok {
			continue
		}
		switch verb, arg, _ := strings.Cut(rest, " "); verb {
		case "kernel":
			r.Kernel = arg
		case "exit":
			if _, err := fmt.Sscanf(arg, "%d", &r.Exit); err == nil {
				r.Exited = true
			}
		case "error:":
			r.Errors = append(r.Errors, arg)
		}
	}
	return r
}

// WalkerTests and SamplerTests are the bpf tests that must pass for the
// table to say "yes" for the goroutine walker and the CPU sampler.
func WalkerTests() []string {
	return []string{"TestWalk", "TestWalkSkipUnchanged", "TestWalkErrors"}
}

func SamplerTests() []string { return []string{"TestCPUSamplerSelf"} }

// ExitTests are the bpf tests of the exit tracer, which must pass for the
// table to say "yes" for it.
func ExitTests() []string {
	return []string{"TestExitTracer", "TestExitTracerUnwatched", "TestExitTracerOOM"}
}

// PanicTests are the bpf tests of the panic probe, which must pass for
// the table to say "yes" for it.
func PanicTests() []string { return []string{"TestPanicTracer"} }

// BudgetTest logs a line per program: "program NAME: processed N insns,
// ..., load DURATION ...".
const BudgetTest = "TestVerifierBudget"

// AllTests are the bpf tests the guests run, all of which must pass.
func AllTests() []string {
	return slices.Concat(WalkerTests(), SamplerTests(), ExitTests(), PanicTests(), []string{BudgetTest})
}

// Passed says "yes" when every test in names passed, else "no".
func (r Result) Passed(names []string) string {
	for _, n := range names {
		if r.Tests[n] != "PASS" {
			return "no"
		}
	}
	return "yes"
}

// Err says what went wrong in a run, or nil when every test passed.
func (r Result) Err() error {
	var errs []error
	for _, e := range r.Errors {
		errs = append(errs, fmt.Errorf("guest: %s", e))
	}
	if !r.Exited {
		errs = append(errs, errors.New("bpf.test reported no exit status"))
	} else if r.Exit != 0 {
		errs = append(errs, fmt.Errorf("bpf.test exited with status %d", r.Exit))
	}
	for _, n := range AllTests() {
		if r.Tests[n] != "PASS" {
			errs = append(errs, fmt.Errorf("%s: %s", n, or(r.Tests[n], "did not run")))
		}
	}
	return errors.Join(errs...)
}

func or(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// Row is one kernel of the table.
type Row struct {
	Kernel string // as shown: release and where it comes from
	Result Result
}

// Table renders rows as a markdown table.
func Table(rows []Row) string {
	var b strings.Builder
	b.WriteString("| kernel | eBPF walker | CPU sampler | exit tracer | panic probe | processed instructions | load time |\n")
	b.WriteString("| --- | --- | --- | --- | --- | --- | --- |\n")
	for _, row := range rows {
		insns, load := "—", "—"
		if len(row.Result.Programs) > 0 {
			var i, l []string
			for _, p := range row.Result.Programs {
				i = append(i, fmt.Sprintf("%s %d", p.Name, p.Insns))
				l = append(l, fmt.Sprintf("%s %s", p.Name, p.Load.Round(time.Millisecond)))
			}
			insns, load = strings.Join(i, ", "), strings.Join(l, ", ")
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %s | %s | %s | %s |\n", row.Kernel,
			row.Result.Passed(WalkerTests()), row.Result.Passed(SamplerTests()), row.Result.Passed(ExitTests()),
			row.Result.Passed(PanicTests()), insns, load)
	}
	return b.String()
}
