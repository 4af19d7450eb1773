//go:build linux

package panics

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/goroscope/goroscope/bpf"
	"github.com/goroscope/goroscope/test/eventually"
	"github.com/goroscope/goroscope/test/targettest"
)

func newTracer(t *testing.T) *Tracer {
	t.Helper()
	tr, err := New()
	if err != nil {
		var le *bpf.LoadError
		if os.Getenv("CI") != "true" && (errors.As(err, &le) || os.Geteuid() != 0) {
			t.Skipf("BPF unavailable here: %v", err)
		}
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := tr.Close(); err != nil {
			t.Errorf("close: %v", err)
		}
	})
	return tr
}

type death struct {
	mode string
	kind Kind
	// stack: the first frame of stderr's traceback is in the probe's stack
	// (not for a deadlock: the runtime prints goroutine 1, not the probed g0).
	stack bool
	// many: more than one goroutine may die at once (each calls fatal;
	// the runtime may print one message or more).
	many bool
}

var deaths = []death{
	{"string", KindPanic, true, false},
	{"multiline", KindPanic, true, false},
	{"error", KindPanic, true, false},
	{"index", KindPanic, true, false},
	{"nilmap", KindPanic, true, false},
	{"nilderef", KindPanic, true, false},
	{"int", KindPanic, true, false},
	{"mapwrites", KindFatal, true, true},
	// Another M may find the deadlock again (checkdead) while the first
	// dies: fatal is called twice, the runtime prints once.
	{"deadlock", KindFatal, false, true},
	{"unlock", KindFatal, true, false},
	{"throw", KindThrow, true, false},
	// Found by newstack on the system stack: the record holds the
	// goroutine the runtime prints (m.curg) after g0's frames.
	{"stackoverflow", KindThrow, true, false},
	{"fault", KindThrow, true, false},
	// Values printed with their type's name, read from the executable, or
	// in a format that depends on the Go version (value.go).
	{"namedint", KindPanic, true, false},
	{"namedstring", KindPanic, true, false},
	{"namedfloat", KindPanic, true, false},
	{"float", KindPanic, true, false},
	{"complex", KindPanic, true, false},
	{"struct", KindPanic, true, false},
	{"pointer", KindPanic, true, false},
	{"stringer", KindPanic, true, false},
	{"customerror", KindPanic, true, false},
	// Chains of panics (printpanics): the older ones' lines first.
	{"chain", KindPanic, true, false},
	{"recovered", KindPanic, true, false},
	{"repanic", KindPanic, true, false},
	{"goexit", KindPanic, true, false},
	{"samevalue", KindPanic, true, false},
	{"fataldefer", KindFatal, true, false},
}

// die runs the panicker with mode, watched by tr, and returns its stderr
// and the records of its pid.
func die(t *testing.T, tr *Tracer, bin, mode string) (string, []Panic) {
	t.Helper()
	cmd := exec.Command(bin, "-mode", mode)
	cmd.Env = append(os.Environ(), "GOTRACEBACK=single")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	if line, err := bufio.NewReader(out).ReadString('\n'); err != nil || line != "ready\n" {
		t.Fatalf("panicker -mode %s: %q, %v", mode, line, err)
	}
	pid := cmd.Process.Pid
	if err := tr.Attach(pid); err != nil {
		t.Fatal(err)
	}
	if _, err := io.WriteString(stdin, "\n"); err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, out)
	_ = cmd.Wait()
	// Detached at its exit, as the agent does: its records still come,
	// symbolised.
	tr.Detach(pid)
	var got []Panic
	timeout := time.After(5 * time.Second)
	for len(got) == 0 {
		select {
		case p := <-tr.Records():
			if p.PID == pid {
				got = append(got, p)
			}
		case <-timeout:
			t.Fatalf("panicker -mode %s: no record (stderr: %s)", mode, stderr.String())
		}
	}
	// Drain what else came for the pid (e.g. a throw after the panic).
	for {
		select {
		case p := <-tr.Records():
			if p.PID == pid {
				got = append(got, p)
			}
			continue
		case <-time.After(100 * time.Millisecond):
		}
		break
	}
	return stderr.String(), got
}

// stderrTopFunction is the function of the traceback's first frame.
func stderrTopFunction(stderr string) string {
	_, frames, ok := targettest.Traceback(stderr)
	if !ok || len(frames) == 0 {
		return ""
	}
	return frames[0].Function
}

func funcNames(p Panic) []string {
	var out []string
	for _, f := range p.Frames {
		out = append(out, f.Function)
	}
	return out
}

func checkDeaths(t *testing.T, tr *Tracer, bin string) {
	for _, d := range deaths {
		t.Run(d.mode, func(t *testing.T) {
			stderr, got := die(t, tr, bin, d.mode)
			want := targettest.RuntimeMessage(stderr)
			if want == "" {
				t.Fatalf("no panic or fatal error line in stderr:\n%s", stderr)
			}
			p := got[0]
			t.Logf("%s: %q (kind %s, goid %d, %d frames), stderr %q", d.mode, p.Message, p.Kind, p.GoID, len(p.Frames), want)
			if p.Kind != d.kind {
				t.Errorf("kind %s, want %s", p.Kind, d.kind)
			}
			if p.Message != want {
				t.Errorf("message %q, stderr says %q", p.Message, want)
			}
			// Value: that of the last panic printed.
			if d.kind == KindPanic && !strings.HasSuffix(want, "panic: "+p.Value) && !strings.HasSuffix(want, "panic: "+p.Value+" [recovered, repanicked]") {
				t.Errorf("value %q is not the last one stderr prints", p.Value)
			}
			if len(got) > 1 && !d.many {
				t.Errorf("%d records, want 1: %+v", len(got), got)
			}
			for _, q := range got[1:] {
				if q.Message != want {
					t.Errorf("another record's message %q, stderr says %q", q.Message, want)
				}
			}
			if !d.stack {
				return
			}
			top := stderrTopFunction(stderr)
			names := funcNames(p)
			found := false
			for _, n := range names {
				if n == top {
					found = true
					break
				}
				if !strings.HasPrefix(n, "runtime.") {
					break
				}
			}
			if !found {
				t.Errorf("stderr's first frame %q is not the first non-runtime frame of the probe's stack %q", top, names)
			}
			if !strings.Contains(stderr, fmt.Sprintf("goroutine %d ", p.GoID)) {
				t.Errorf("goid %d is not in stderr:\n%s", p.GoID, stderr)
			}
		})
	}
}

func TestDeaths(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the panicker with every toolchain")
	}
	tr := newTracer(t)
	type variant struct {
		name string
		o    targettest.BuildOpts
	}
	var variants []variant
	for _, v := range targettest.Toolchains() {
		variants = append(variants, variant{v, targettest.BuildOpts{GoVersion: v}})
	}
	variants = append(variants,
		variant{"go1.21.13-stripped", targettest.BuildOpts{GoVersion: "go1.21.13", Stripped: true}},
		variant{"local-stripped", targettest.BuildOpts{Stripped: true}},
		variant{"local-stripped-pie", targettest.BuildOpts{Stripped: true, PIE: true}},
	)
	for _, v := range variants {
		t.Run(v.name, func(t *testing.T) {
			bin := targettest.Build(t, "panicker", v.o)
			checkDeaths(t, tr, bin)
		})
	}
	st, err := tr.Stats()
	if err != nil {
		t.Fatal(err)
	}
	if st.Lost != 0 || st.Events == 0 {
		t.Errorf("stats %+v", st)
	}
}

// TestCloseUnread closes a tracer whose records nobody reads.
func TestCloseUnread(t *testing.T) {
	tr, err := New()
	if err != nil {
		newTracer(t) // skips or fails as TestDeaths does
		t.Fatal(err)
	}
	bin := targettest.Build(t, "panicker", targettest.BuildOpts{})
	for i := 0; i < 3; i++ {
		cmd := exec.Command(bin, "-mode", "string")
		stdin, _ := cmd.StdinPipe()
		out, _ := cmd.StdoutPipe()
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		_, _ = bufio.NewReader(out).ReadString('\n')
		if err := tr.Attach(cmd.Process.Pid); err != nil {
			t.Fatal(err)
		}
		_, _ = io.WriteString(stdin, "\n")
		_, _ = io.Copy(io.Discard, out)
		_ = cmd.Wait()
	}
	time.Sleep(200 * time.Millisecond)
	done := make(chan error, 1)
	go func() { done <- tr.Close() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Close hangs with unread records")
	}
	if err := tr.Attach(os.Getpid()); err == nil {
		t.Error("Attach after Close succeeded")
	}
	if err := tr.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
}

// BenchmarkAttach measures watching a process (and unwatching it): the
// executable's pclntab lookups and three uprobes.
func BenchmarkAttach(b *testing.B) {
	tr, err := New()
	if err != nil {
		b.Skip(err)
	}
	defer tr.Close()
	bin := targettest.Build(b, "panicker", targettest.BuildOpts{})
	cmd := exec.Command(bin)
	if _, err := cmd.StdinPipe(); err != nil {
		b.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	pid := cmd.Process.Pid
	for i := 0; i < b.N; i++ {
		if err := tr.Attach(pid); err != nil {
			b.Fatal(err)
		}
		tr.Detach(pid)
	}
}

// TestSameExecutable: the probes are on the executable, so a process of
// it that was not attached gives a symbolised record too, and is attached
// without new probes; once no process of it is attached, the executable
// keeps its probes for the linger only.
func TestSameExecutable(t *testing.T) {
	tr := newTracer(t)
	tr.linger, tr.keep = 500*time.Millisecond, 500*time.Millisecond
	bin := targettest.Build(t, "panicker", targettest.BuildOpts{})
	start := func() (*exec.Cmd, io.WriteCloser, io.ReadCloser) {
		cmd := exec.Command(bin, "-mode", "string")
		stdin, _ := cmd.StdinPipe()
		out, _ := cmd.StdoutPipe()
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
		_, _ = bufio.NewReader(out).ReadString('\n')
		return cmd, stdin, out
	}
	watched, _, _ := start()
	other, stdin, out := start()
	third, _, _ := start()
	if ok, err := tr.AttachIfProbed(watched.Process.Pid); ok || err != nil {
		t.Fatalf("AttachIfProbed before any probe: %v, %v; want false", ok, err)
	}
	if err := tr.Attach(watched.Process.Pid); err != nil {
		t.Fatal(err)
	}
	if ok, err := tr.AttachIfProbed(third.Process.Pid); !ok || err != nil {
		t.Fatalf("AttachIfProbed of a probed executable: %v, %v; want true", ok, err)
	}
	if n := tr.Probed(); n != 1 {
		t.Fatalf("%d executables probed, want 1", n)
	}
	_, _ = io.WriteString(stdin, "\n")
	_, _ = io.Copy(io.Discard, out)
	_ = other.Wait()
	select {
	case p := <-tr.Records():
		if p.PID != other.Process.Pid || p.Message != "panic: panicker: boom" || p.TopFunction() != "main.dieString" {
			t.Fatalf("record %+v; want pid %d's panic from main.dieString", p, other.Process.Pid)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no record of the process not attached")
	}
	tr.Detach(watched.Process.Pid)
	tr.Detach(third.Process.Pid)
	// Known for closeDelay, then the linger: the probes go.
	eventually.Succeeds(t, 10*time.Second, func() error {
		if n := tr.Probed(); n != 0 {
			return fmt.Errorf("%d executables probed", n)
		}
		return nil
	})
}
