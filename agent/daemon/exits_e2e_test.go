package daemon

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/goroscope/goroscope/pkg/crash"
	"github.com/goroscope/goroscope/pkg/store"
	"github.com/goroscope/goroscope/test/eventually"
	"github.com/goroscope/goroscope/test/memcg"
	"github.com/goroscope/goroscope/test/targettest"
)

// way is one way for a Go process to die, as test/targets/panicker does it.
type way struct {
	name string
	mode string // panicker's -mode
	// signal is sent to the process once it waits (-mode wait).
	signal syscall.Signal
	// oom runs it in a memory cgroup of 64 MiB.
	oom bool
	// What the agent must record: no record at all (none), else the
	// exit's reason, code and signal name and the crash's class.
	none           bool
	reason         string
	code           int
	signame, class string
	// message: the record's message must equal the runtime's on stderr,
	// and its stack the panicking goroutine's traceback there.
	message, stack bool
}

var ways = []way{
	{name: "nil map write", mode: "nilmap", reason: "exit", code: 2, class: crash.ClassNilMapWrite, message: true, stack: true},
	{name: "index out of range", mode: "index", reason: "exit", code: 2, class: crash.ClassIndexOutOfRange, message: true, stack: true},
	{name: "panic(err)", mode: "error", reason: "exit", code: 2, class: crash.ClassExplicitPanic, message: true, stack: true},
	{name: "panic(string)", mode: "string", reason: "exit", code: 2, class: crash.ClassExplicitPanic, message: true, stack: true},
	{name: "nil pointer", mode: "nilderef", reason: "exit", code: 2, class: crash.ClassNilPointer, message: true, stack: true},
	{name: "concurrent map writes", mode: "mapwrites", reason: "exit", code: 2, class: crash.ClassConcurrentMap, message: true, stack: true},
	// No goroutine panicked: the runtime found the deadlock on g0.
	{name: "deadlock", mode: "deadlock", reason: "exit", code: 2, class: crash.ClassDeadlock, message: true},
	{name: "stack overflow", mode: "stackoverflow", reason: "exit", code: 2, class: crash.ClassStackOverflow, message: true, stack: true},
	{name: "SIGSEGV through unsafe", mode: "fault", reason: "exit", code: 2, class: crash.ClassBadSignal, message: true, stack: true},
	{name: "os.Exit(3)", mode: "exit", reason: "exit", code: 3, class: crash.ClassExitStatus},
	{name: "SIGKILL", mode: "wait", signal: syscall.SIGKILL, reason: "signal", signame: "killed", class: crash.ClassKilled},
	{name: "SIGTERM", mode: "wait", signal: syscall.SIGTERM, none: true},
	{name: "OOM kill", mode: "oom", oom: true, reason: "oom_kill", signame: "killed", class: crash.ClassOutOfMemory},
}

// dying is one started process of a way and build.
type dying struct {
	way
	build string
	bin   string
	cmd   *exec.Cmd
	key   store.ProcessKey
	stdin io.WriteCloser
	// stderr holds what it printed there; read after it ended.
	stderr bytes.Buffer
	cg     *memcg.Group
}

// TestCrashRecords: for every way to die, on Go 1.21, the local Go and a
// stripped build, the agent counts the exit by reason and keeps a crash
// record (none for a SIGTERM, how services are stopped) with the right
// reason and class; for panics and fatal errors the message equals the
// one the process printed on stderr and the stack its traceback there;
// the record's last snapshot is at most one interval older than the
// death.
func TestCrashRecords(t *testing.T) {
	if testing.Short() {
		t.Skip("starts targets and the agent")
	}
	builds := []struct {
		name string
		o    targettest.BuildOpts
	}{
		{"go1.21.13", targettest.BuildOpts{GoVersion: "go1.21.13"}},
		{"local", targettest.BuildOpts{}},
		{"local-stripped", targettest.BuildOpts{Stripped: true}},
	}
	const interval = 2 * time.Second
	run := startAgentWith(t, func(cfg *Config) { cfg.SnapshotInterval = Duration(interval) },
		func(a *Agent) { a.panicProbeAfter = 0 })
	a, base := run.a, run.base

	var all []*dying
	for _, b := range builds {
		bin := buildTarget(t, "panicker", b.o)
		for _, w := range ways {
			d := &dying{way: w, build: b.name, bin: bin}
			if w.oom {
				g, err := memcg.New(fmt.Sprintf("goroscope-crashes-%d-%s", os.Getpid(), b.name), 64<<20)
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { _ = g.Close() })
				d.cg = g
				d.cmd = g.Command(context.Background(), bin, "-mode", w.mode)
			} else {
				d.cmd = exec.Command(bin, "-mode", w.mode)
			}
			d.cmd.Env = append(os.Environ(), "GOTRACEBACK=single")
			d.cmd.Stderr = &d.stderr
			startPanicker(t, d)
			all = append(all, d)
		}
	}

	// Every process watched, probed and snapshotted before it dies.
	eventually.Succeeds(t, 60*time.Second, func() error {
		for _, d := range all {
			if len(storeEntries(t, a, d.cmd.Process.Pid, store.KindSnapshot)) == 0 {
				return fmt.Errorf("%s (%s) not yet snapshotted", d.name, d.build)
			}
		}
		a.mu.Lock()
		defer a.mu.Unlock()
		for _, d := range all {
			if s, ok := a.exitSubjects[d.key]; !ok || !s.probed {
				return fmt.Errorf("%s (%s) not yet followed and probed", d.name, d.build)
			}
		}
		return nil
	})
	for _, d := range all {
		if _, err := fmt.Fprintln(d.stdin, "go"); err != nil {
			t.Fatal(err)
		}
		if d.signal != 0 {
			// It reads the line, then waits for the next: kill it there.
			if err := d.cmd.Process.Signal(d.signal); err != nil {
				t.Fatal(err)
			}
		}
	}
	for _, d := range all {
		_ = d.cmd.Wait()
	}

	// Counted by service and reason.
	want := map[string]int{}
	for _, d := range all {
		reason := d.reason
		if d.none {
			reason = "signal"
		}
		want[fmt.Sprintf(`goroscope_process_exits_total{reason=%q,service_name=%q}`, reason, filepath.Base(d.bin))]++
	}
	eventually.Succeeds(t, 30*time.Second, func() error {
		m := get(t, base+"/metrics")
		for series, n := range want {
			if !strings.Contains(m, fmt.Sprintf("%s %d\n", series, n)) {
				return fmt.Errorf("no %s %d in /metrics", series, n)
			}
		}
		return nil
	})

	for _, d := range all {
		t.Run(d.build+"/"+d.name, func(t *testing.T) {
			ms, err := a.store.List(store.Query{Process: d.key, Kind: store.KindCrash})
			if err != nil {
				t.Fatal(err)
			}
			if d.none {
				if len(ms) != 0 {
					t.Errorf("%d crash records, want none", len(ms))
				}
				return
			}
			if len(ms) != 1 {
				t.Fatalf("%d crash records, want 1; stderr:\n%s", len(ms), d.stderr.String())
			}
			b, err := a.store.Read(ms[0].ID)
			if err != nil {
				t.Fatal(err)
			}
			var rec crash.Record
			if err := json.Unmarshal(b, &rec); err != nil {
				t.Fatal(err)
			}
			t.Logf("%s: class %s, message %q, goid %d, %d frames, last snapshot %.2f s before", rec.Reason, rec.Name, rec.Message, rec.GoID, len(rec.Stack), rec.LastSnapshotAge)
			if rec.Reason != d.reason || rec.Code != d.code || rec.Signal != d.signame || rec.Name != d.class || rec.PID != d.cmd.Process.Pid {
				t.Errorf("record %s %d %q class %s of pid %d; want %s %d %q class %s of pid %d", rec.Reason, rec.Code, rec.Signal, rec.Name, rec.PID,
					d.reason, d.code, d.signame, d.class, d.cmd.Process.Pid)
			}
			if rec.LastSnapshot.IsZero() || rec.LastSnapshotAge < 0 || rec.LastSnapshotAge > interval.Seconds() {
				t.Errorf("last snapshot at %v, %.2f s before the death; want at most one interval (%v)", rec.LastSnapshot, rec.LastSnapshotAge, interval)
			}
			if rec.Runtime == nil {
				t.Errorf("no runtime health in the record")
			}
			stderr := d.stderr.String()
			if !d.message {
				if rec.Message != "" || len(rec.Stack) != 0 {
					t.Errorf("message %q and %d frames; want none", rec.Message, len(rec.Stack))
				}
				return
			}
			if want := targettest.RuntimeMessage(stderr); rec.Message != want || want == "" {
				t.Errorf("message %q; stderr says %q", rec.Message, want)
			}
			if d.stack {
				checkCrashStack(t, rec, stderr)
			}
		})
	}
}

// checkCrashStack compares a crash record's stack with the panicking
// goroutine's traceback on stderr: the same goroutine and, leaving out
// the runtime's frames (which GOTRACEBACK=single hides in part), the same
// functions at the same lines, as far as the shorter goes (the probe
// copies 64 frames, the runtime prints 100 of a deep stack).
func checkCrashStack(t *testing.T, rec crash.Record, stderr string) {
	t.Helper()
	goid, frames, ok := targettest.Traceback(stderr)
	if !ok {
		t.Fatalf("no traceback on stderr:\n%s", stderr)
	}
	var want, got []string
	for _, f := range frames {
		if f.Function != "panic" && !strings.HasPrefix(f.Function, "runtime.") {
			want = append(want, fmt.Sprintf("%s %s:%d", f.Function, f.File, f.Line))
		}
	}
	for _, f := range rec.Stack {
		if !strings.HasPrefix(f, "runtime.") {
			got = append(got, f)
		}
	}
	n := min(len(want), len(got))
	if n == 0 || !slices.Equal(got[:n], want[:n]) || (len(got) < len(want) && len(rec.Stack) < 60) {
		t.Errorf("stack (non-runtime frames):\n\t%s\nstderr's goroutine %d:\n\t%s", strings.Join(got, "\n\t"), goid, strings.Join(want, "\n\t"))
	}
	if rec.GoID != goid && rec.Name != crash.ClassConcurrentMap { // either writer may be the one printed
		t.Errorf("goroutine %d; stderr's traceback is goroutine %d's", rec.GoID, goid)
	}
}

// startPanicker starts d's process and waits for its ready line.
func startPanicker(t *testing.T, d *dying) {
	t.Helper()
	stdin, err := d.cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := d.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := d.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = d.cmd.Process.Kill(); _ = d.cmd.Wait() })
	r := bufio.NewReader(stdout)
	if line, err := r.ReadString('\n'); err != nil || strings.TrimSpace(line) != "ready" {
		t.Fatalf("panicker -mode %s: %q, %v; want its ready line", d.mode, line, err)
	}
	go func() { _, _ = io.Copy(io.Discard, r) }()
	d.stdin = stdin
	d.key = store.ProcessKey{PID: d.cmd.Process.Pid, StartTime: processStart(t, d.cmd.Process.Pid)}
}

// TestCrashLoop: a process that crashes young, before the fatal-path
// probe goes on it, leaves a record without a message; the next process
// of the same executable is probed at once, and its crash has the
// message.
func TestCrashLoop(t *testing.T) {
	if testing.Short() {
		t.Skip("starts targets and the agent")
	}
	bin := buildTarget(t, "panicker", targettest.BuildOpts{})
	run := startAgentWith(t, func(cfg *Config) { cfg.SnapshotInterval = Duration(500 * time.Millisecond) }, nil)
	a := run.a
	for i, wantMessage := range []string{"", "panic: panicker: boom"} {
		d := &dying{way: way{mode: "string"}, bin: bin, cmd: exec.Command(bin, "-mode", "string")}
		d.cmd.Stderr = &d.stderr
		startPanicker(t, d)
		eventually.Succeeds(t, 30*time.Second, func() error {
			a.mu.Lock()
			defer a.mu.Unlock()
			s, ok := a.exitSubjects[d.key]
			switch {
			case !ok:
				return fmt.Errorf("process %d not yet followed", i)
			case s.probed != (wantMessage != ""):
				return fmt.Errorf("process %d probed: %v", i, s.probed)
			}
			return nil
		})
		if _, err := fmt.Fprintln(d.stdin, "go"); err != nil {
			t.Fatal(err)
		}
		_ = d.cmd.Wait()
		var rec crash.Record
		eventually.Succeeds(t, 30*time.Second, func() error {
			ms, err := a.store.List(store.Query{Process: d.key, Kind: store.KindCrash})
			if err != nil || len(ms) != 1 {
				return fmt.Errorf("%d crash records of process %d (%v)", len(ms), i, err)
			}
			b, err := a.store.Read(ms[0].ID)
			if err != nil {
				return err
			}
			return json.Unmarshal(b, &rec)
		})
		if rec.Message != wantMessage {
			t.Errorf("process %d: message %q, want %q", i, rec.Message, wantMessage)
		}
	}
}
