//go:build linux

package bpf

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/goroscope/goroscope/test/memcg"
)

// exitChildEnv makes the test binary a child that dies the way its value
// says (exitChild) instead of running tests.
const exitChildEnv = "GOROSCOPE_EXIT_CHILD"

func TestMain(m *testing.M) {
	if mode := os.Getenv(exitChildEnv); mode != "" {
		exitChild(mode)
		return // "return": main returns, the runtime exits 0
	}
	os.Exit(m.Run())
}

// nilInt is nil: dereferencing it faults at address 0.
var nilInt *int

// exitChild prints "ready", waits for a line on stdin and dies as mode says.
func exitChild(mode string) {
	if mode == "exit5-after-exec" {
		os.Exit(5)
	}
	if mode == "threads" || mode == "exec" {
		// Threads besides the main one, each locked by a parked goroutine.
		for i := 0; i < 8; i++ {
			go func() {
				runtime.LockOSThread()
				select {}
			}()
		}
		for !threadsAtLeast(9) {
			runtime.Gosched()
		}
	}
	fmt.Println("ready")
	if _, err := bufio.NewReader(os.Stdin).ReadString('\n'); err != nil {
		os.Exit(99)
	}
	switch mode {
	case "exit3":
		os.Exit(3)
	case "return":
		return
	case "panic":
		panic("x")
	case "nilderef":
		*nilInt = 1 // SIGSEGV at 0: the runtime panics
	case "fault":
		*(*int)(unsafe.Add(unsafe.Pointer(nil), 0xdead0000)) = 1 // SIGSEGV elsewhere: fatal error
	case "sleep":
		select {}
	case "threads":
		done := make(chan struct{})
		go func() {
			runtime.LockOSThread() // a thread of its own, not the main one
			os.Exit(7)
			close(done)
		}()
		<-done
	case "exec":
		exe, err := os.Executable()
		if err != nil {
			os.Exit(98)
		}
		env := []string{exitChildEnv + "=exit5-after-exec"}
		for _, kv := range os.Environ() {
			if !strings.HasPrefix(kv, exitChildEnv+"=") {
				env = append(env, kv)
			}
		}
		runtime.LockOSThread() // exec from a thread other than the leader, mostly
		err = syscall.Exec(exe, []string{exe}, env)
		fmt.Fprintln(os.Stderr, "exec:", err)
		os.Exit(97)
	case "oom":
		var last *chunk
		for {
			c := &chunk{prev: last}
			for i := 0; i < len(c.b); i += 4096 {
				c.b[i] = 1
			}
			last = c
		}
	}
	os.Exit(96)
}

// chunk is a MiB held on to, and all the chunks before it.
type chunk struct {
	prev *chunk
	b    [1 << 20]byte
}

// threadsAtLeast says whether this process has n threads or more.
func threadsAtLeast(n int) bool {
	ents, err := os.ReadDir("/proc/self/task")
	return err == nil && len(ents) >= n
}

// loadExitTracer loads the tracer or skips; under CI=true a failure fails.
func loadExitTracer(tb testing.TB) *ExitTracer {
	tb.Helper()
	tr, err := LoadExitTracer(ExitTracerOptions{})
	if err != nil {
		if os.Getenv("CI") == "true" {
			tb.Fatalf("CI=true but the exit tracer does not load: %v", err)
		}
		tb.Skipf("BPF exit tracer unavailable here: %v", err)
	}
	tb.Cleanup(func() {
		if err := tr.Close(); err != nil {
			tb.Errorf("close exit tracer: %v", err)
		}
	})
	return tr
}

// exitRecords reads the tracer's records into a channel until it is closed.
func exitRecords(tb testing.TB, tr *ExitTracer) <-chan ExitRecord {
	ch := make(chan ExitRecord, 64)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			r, err := tr.Read()
			if err == ErrExitTracerClosed {
				return
			}
			if err != nil {
				tb.Errorf("read exit record: %v", err)
				return
			}
			ch <- r
		}
	}()
	tb.Cleanup(func() {
		_ = tr.Close() // ends Read; loadExitTracer's cleanup reports errors
		<-done
	})
	return ch
}

// exitChildCmd is a child of mode, started and ready (it printed "ready").
type exitChildCmd struct {
	cmd    *exec.Cmd
	stdin  *os.File
	stderr bytes.Buffer
	start  uint64 // /proc/PID/stat start time, clock ticks
}

func startExitChild(t *testing.T, mode string, env ...string) *exitChildCmd {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	c := &exitChildCmd{cmd: exec.Command(exe)}
	c.cmd.Env = append(append(os.Environ(), exitChildEnv+"="+mode), env...)
	c.cmd.Dir = t.TempDir() // where a core file would go
	c.cmd.Stderr = &c.stderr
	pr, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	c.cmd.Stdin, c.stdin = pr, pw
	out, err := c.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := c.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	pr.Close()
	t.Cleanup(func() {
		pw.Close()
		if c.cmd.ProcessState == nil {
			_ = c.cmd.Process.Kill()
			_ = c.cmd.Wait()
		}
	})
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil || line != "ready\n" {
		t.Fatalf("child %s: %q, %v (stderr: %s)", mode, line, err, c.stderr.String())
	}
	if c.start, err = statStartTicks(c.cmd.Process.Pid); err != nil {
		t.Fatal(err)
	}
	return c
}

// goAhead tells the child to die.
func (c *exitChildCmd) goAhead(t *testing.T) {
	t.Helper()
	if _, err := c.stdin.WriteString("go\n"); err != nil {
		t.Fatal(err)
	}
}

// wait reaps the child and returns its wait status.
func (c *exitChildCmd) wait(t *testing.T) unix.WaitStatus {
	t.Helper()
	err := c.cmd.Wait()
	if _, ok := err.(*exec.ExitError); err != nil && !ok {
		t.Fatal(err)
	}
	return unix.WaitStatus(c.cmd.ProcessState.Sys().(syscall.WaitStatus))
}

// statStartTicks reads the start time (field 22) of /proc/PID/stat.
func statStartTicks(pid int) (uint64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	f := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+1:]))
	if len(f) < 20 {
		return 0, fmt.Errorf("/proc/%d/stat: %d fields", pid, len(f))
	}
	return strconv.ParseUint(f[19], 10, 64)
}

// nextExit waits for the record of pid; records of other pids fail the test.
func nextExit(t *testing.T, recs <-chan ExitRecord, pid int) ExitRecord {
	t.Helper()
	select {
	case r := <-recs:
		if int(r.PID) != pid {
			t.Fatalf("exit record of pid %d, want %d: %+v", r.PID, pid, r)
		}
		return r
	case <-time.After(10 * time.Second):
		t.Fatalf("no exit record of pid %d within 10s", pid)
	}
	panic("unreachable")
}

// coreWant is the status of a Go program crashing with GOTRACEBACK=crash
// and RLIMIT_CORE lifted: a core dumped when core_pattern names a file,
// else whatever the pipe helper makes of it.
func coreWant() string {
	if p, err := os.ReadFile("/proc/sys/kernel/core_pattern"); err == nil && !bytes.HasPrefix(p, []byte("|")) {
		return "signal 6 (aborted) core true"
	}
	return "signal 6 (aborted)"
}

func describeStatus(ws unix.WaitStatus) string {
	switch {
	case ws.Exited():
		return fmt.Sprintf("exit %d", ws.ExitStatus())
	case ws.Signaled():
		return fmt.Sprintf("signal %d (%v) core %v", int(ws.Signal()), ws.Signal(), ws.CoreDump())
	}
	return fmt.Sprintf("status %#x", uint32(ws))
}

// TestExitTracer kills children in each way a Go program dies and checks
// that the tracer reports each exactly once, with the status the parent's
// wait(2) gets, the process's start time and pid.
func TestExitTracer(t *testing.T) {
	tr := loadExitTracer(t)
	recs := exitRecords(t, tr)
	if ok, err := tr.OOMHooked(); !ok {
		t.Errorf("oom:mark_victim not traced: %v", err)
	}
	for _, c := range []struct {
		name, mode string
		env        []string
		signal     syscall.Signal // sent instead of "go"
		want       string         // describeStatus of the status
		exitGroup  bool
		core       bool // lift the child's RLIMIT_CORE
	}{
		{name: "exit3", mode: "exit3", want: "exit 3", exitGroup: true},
		{name: "return", mode: "return", want: "exit 0", exitGroup: true},
		{name: "panic", mode: "panic", want: "exit 2", exitGroup: true},
		{name: "nil-deref", mode: "nilderef", want: "exit 2", exitGroup: true},
		{name: "fault", mode: "fault", want: "exit 2", exitGroup: true},
		{name: "sigkill", mode: "sleep", signal: syscall.SIGKILL, want: "signal 9 (killed) core false", exitGroup: true},
		{name: "sigterm", mode: "sleep", signal: syscall.SIGTERM, want: "signal 15 (terminated) core false", exitGroup: true},
		{name: "threads", mode: "threads", want: "exit 7", exitGroup: true},
		{name: "exec", mode: "exec", want: "exit 5", exitGroup: true},
		// GOTRACEBACK=crash: the runtime raises SIGABRT after the panic;
		// whether a core is dumped depends on RLIMIT_CORE and core_pattern,
		// so only the status's agreement with wait(2) is checked.
		{name: "crash", mode: "panic", env: []string{"GOTRACEBACK=crash"}, want: "signal 6 (aborted)", exitGroup: true},
		// The same with RLIMIT_CORE lifted: a core is dumped (into the
		// child's directory), unless core_pattern pipes it to a helper.
		{name: "core", mode: "panic", env: []string{"GOTRACEBACK=crash"}, want: coreWant(), exitGroup: true, core: true},
	} {
		t.Run(c.name, func(t *testing.T) {
			child := startExitChild(t, c.mode, c.env...)
			pid := child.cmd.Process.Pid
			if c.core {
				inf := &unix.Rlimit{Cur: unix.RLIM_INFINITY, Max: unix.RLIM_INFINITY}
				if err := unix.Prlimit(pid, unix.RLIMIT_CORE, inf, nil); err != nil {
					t.Fatal(err)
				}
			}
			if err := tr.Watch(uint32(pid)); err != nil {
				t.Fatal(err)
			}
			if c.signal != 0 {
				if err := child.cmd.Process.Signal(c.signal); err != nil {
					t.Fatal(err)
				}
			} else {
				child.goAhead(t)
			}
			ws := child.wait(t)
			r := nextExit(t, recs, pid)
			t.Logf("%s: wait(2) says %s; the tracer %s (status %#x, flags %d, tid %d of %d)",
				c.name, describeStatus(ws), describeStatus(r.Status), uint32(r.Status), r.Flags, r.TID, r.PID)
			if r.Status != ws {
				t.Errorf("status %#x (%s), wait(2) says %#x (%s)", uint32(r.Status), describeStatus(r.Status), uint32(ws), describeStatus(ws))
			}
			if got := describeStatus(ws); !strings.HasPrefix(got, c.want) {
				t.Errorf("the child ended with %s, want %s (stderr: %.500s)", got, c.want, child.stderr.String())
			}
			if r.StartTicks() != child.start {
				t.Errorf("start time %d ticks (%d ns since boot), /proc says %d", r.StartTicks(), r.StartBoottime, child.start)
			}
			if got := r.Flags&ExitGroup != 0; got != c.exitGroup {
				t.Errorf("ExitGroup %v, want %v", got, c.exitGroup)
			}
			if r.Flags&ExitOOMVictim != 0 {
				t.Error("ExitOOMVictim set")
			}
			if d := time.Since(r.Time); d < 0 || d > 10*time.Second {
				t.Errorf("exit time %v is %v from now", r.Time, d)
			}
			if still, err := tr.Unwatch(uint32(pid)); err != nil || still {
				t.Errorf("Unwatch after the exit = %v, %v; want false: the kernel took the pid out", still, err)
			}
		})
	}
	// Every record was read by its subtest: no duplicates are left.
	select {
	case r := <-recs:
		t.Errorf("a record no subtest expected: %+v", r)
	default:
	}
	st, err := tr.Stats()
	if err != nil {
		t.Fatal(err)
	}
	if st.Lost != 0 {
		t.Errorf("stats %+v: records lost", st)
	}
}

// TestExitTracerUnwatched: a process not watched, or no longer, is not
// reported; Unwatch of a watched live process says it was still watched.
func TestExitTracerUnwatched(t *testing.T) {
	tr := loadExitTracer(t)
	recs := exitRecords(t, tr)
	a := startExitChild(t, "exit3")
	b := startExitChild(t, "exit3")
	if err := tr.Watch(uint32(b.cmd.Process.Pid)); err != nil {
		t.Fatal(err)
	}
	if still, err := tr.Unwatch(uint32(b.cmd.Process.Pid)); err != nil || !still {
		t.Fatalf("Unwatch of a live watched process = %v, %v; want true", still, err)
	}
	a.goAhead(t)
	b.goAhead(t)
	a.wait(t)
	b.wait(t)
	// A third, watched, child's record comes after theirs would have.
	c := startExitChild(t, "exit3")
	if err := tr.Watch(uint32(c.cmd.Process.Pid)); err != nil {
		t.Fatal(err)
	}
	c.goAhead(t)
	c.wait(t)
	nextExit(t, recs, c.cmd.Process.Pid)
}

// TestExitTracerOOM runs a child in a memory cgroup of 64 MiB that
// allocates until the kernel's OOM killer kills it: the record says
// SIGKILL and ExitOOMVictim.
func TestExitTracerOOM(t *testing.T) {
	tr := loadExitTracer(t)
	recs := exitRecords(t, tr)
	g, err := memcg.New(fmt.Sprintf("goroscope-exit-oom-%d", os.Getpid()), 64<<20)
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("CI=true but no memory cgroup: %v", err)
		}
		t.Skipf("no memory cgroup: %v", err)
	}
	t.Cleanup(func() {
		if err := g.Close(); err != nil {
			t.Error(err)
		}
	})
	child := startExitChild(t, "oom")
	pid := child.cmd.Process.Pid
	if err := os.WriteFile(filepath.Join(g.Path(), "cgroup.procs"), []byte(strconv.Itoa(pid)), 0o644); err != nil {
		t.Fatalf("move the child into %s: %v", g.Path(), err)
	}
	if err := tr.Watch(uint32(pid)); err != nil {
		t.Fatal(err)
	}
	child.goAhead(t)
	ws := child.wait(t)
	r := nextExit(t, recs, pid)
	kills, err := g.OOMKills()
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("oom: wait(2) says %s; the tracer %s, flags %d; the cgroup counts %d OOM kills", describeStatus(ws), describeStatus(r.Status), r.Flags, kills)
	if r.Status != ws || !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
		t.Errorf("status %s, wait(2) %s; want SIGKILL for both", describeStatus(r.Status), describeStatus(ws))
	}
	if r.Flags&ExitOOMVictim == 0 {
		t.Error("ExitOOMVictim not set")
	}
	if kills != 1 {
		t.Errorf("the cgroup counts %d OOM kills, want 1", kills)
	}
	st, err := tr.Stats()
	if err != nil {
		t.Fatal(err)
	}
	// The kernel may mark a victim twice: a thread of the dying process
	// that allocates meanwhile is marked again (out_of_memory's
	// task_will_free_mem shortcut).
	if st.OOMMarks < 1 || st.Exits != 1 {
		t.Errorf("stats %+v, want one exit and an OOM mark or more", st)
	}
}

func TestDecodeExitEvent(t *testing.T) {
	if s := unsafe.Sizeof(exitsExitEvent{}); s != exitEventSize {
		t.Fatalf("struct exit_event is %d bytes, decodeExitEvent reads %d", s, exitEventSize)
	}
	b := make([]byte, exitEventSize)
	b[0], b[8], b[16], b[20], b[24], b[25], b[28] = 1, 2, 3, 4, 0x86, 0, 3
	ev, err := decodeExitEvent(b)
	if err != nil || ev.Ktime != 1 || ev.StartBoottime != 2 || ev.Pid != 3 || ev.Tid != 4 || ev.Status != 0x86 || ev.Flags != 3 {
		t.Errorf("decodeExitEvent = %+v, %v", ev, err)
	}
	if _, err := decodeExitEvent(b[:31]); err == nil {
		t.Error("a short record decoded")
	}
	r := ExitRecord{StartBoottime: 123_456_789_012}
	if r.StartTicks() != 12345 {
		t.Errorf("StartTicks = %d, want 12345", r.StartTicks())
	}
}
