//go:build linux

package exits

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/goroscope/goroscope/collect/process"
	"github.com/goroscope/goroscope/test/memcg"
	"github.com/goroscope/goroscope/test/targettest"
)

// exitTimeout bounds the wait for an Exit: a poll or the ring buffer
// delivers within milliseconds.
const exitTimeout = 15 * time.Second

// ci says whether a missing prerequisite must fail rather than skip.
func ci() bool { return os.Getenv("CI") == "true" }

// needRoot skips without root, except under CI, where it fails.
func needRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		if ci() {
			t.Fatal("CI=true but not root: the exit watcher's tests need BPF, pidfds of any process and memory cgroups")
		}
		t.Skip("needs root")
	}
}

// newWatcher starts a Watcher closed at the test's end; mode ModeBPF needs
// the exit tracer to load (or skips, failing under CI).
func newWatcher(t *testing.T, mode Mode, o Options) *Watcher {
	t.Helper()
	needRoot(t)
	o.NoBPF = mode == ModePoll
	w, err := New(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := w.Close(); err != nil {
			t.Errorf("close: %v", err)
		}
	})
	if w.Mode() != mode {
		if ci() {
			t.Fatalf("CI=true but the watcher runs in mode %s, not %s: %v", w.Mode(), mode, w.BPFError())
		}
		t.Skipf("mode %s unavailable: %v", mode, w.BPFError())
	}
	return w
}

// inBothModes runs f as a subtest for each Mode, with a Watcher of it
// polling every 20ms.
func inBothModes(t *testing.T, f func(t *testing.T, mode Mode, w *Watcher)) {
	for _, mode := range []Mode{ModeBPF, ModePoll} {
		t.Run(string(mode), func(t *testing.T) {
			f(t, mode, newWatcher(t, mode, Options{PollInterval: 20 * time.Millisecond}))
		})
	}
}

// exiter builds test/targets/exiter with toolchain ("" is the local one).
func exiter(t *testing.T, toolchain string) string {
	t.Helper()
	return targettest.Build(t, "exiter", targettest.BuildOpts{GoVersion: toolchain})
}

// child is a running exiter that printed its ready line.
type child struct {
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	stderr bytes.Buffer
	start  uint64
}

func startChild(t *testing.T, bin string, env []string, args ...string) *child {
	t.Helper()
	c := &child{cmd: exec.Command(bin, args...)}
	c.cmd.Env = append(os.Environ(), env...)
	c.cmd.Dir = t.TempDir() // where a core would go
	c.cmd.Stderr = &c.stderr
	var err error
	if c.stdin, err = c.cmd.StdinPipe(); err != nil {
		t.Fatal(err)
	}
	out, err := c.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := c.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if c.cmd.ProcessState == nil {
			_ = c.cmd.Process.Kill() // it may have exited unreaped
			_ = c.cmd.Wait()         // the status is of no interest now
		}
	})
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil || line != "ready\n" {
		t.Fatalf("exiter %v: %q, %v (stderr: %s)", args, line, err, c.stderr.String())
	}
	if c.start, err = process.StartTime(c.pid()); err != nil {
		t.Fatal(err)
	}
	return c
}

func (c *child) pid() int { return c.cmd.Process.Pid }

// goAhead tells the child to end.
func (c *child) goAhead(t *testing.T) {
	t.Helper()
	if _, err := io.WriteString(c.stdin, "go\n"); err != nil {
		t.Fatal(err)
	}
}

// reap waits for the child and returns its wait(2) status.
func (c *child) reap(t *testing.T) unix.WaitStatus {
	t.Helper()
	err := c.cmd.Wait()
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		t.Fatal(err)
	}
	return unix.WaitStatus(c.cmd.ProcessState.Sys().(syscall.WaitStatus))
}

// awaitZombie waits until the child has exited (unreaped): its pidfd is
// readable, as the kernel's own notification.
func (c *child) awaitZombie(t *testing.T) {
	t.Helper()
	fd, err := unix.PidfdOpen(c.pid(), 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	fds := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
	if n, err := unix.Poll(fds, int(exitTimeout/time.Millisecond)); n != 1 || err != nil {
		t.Fatalf("pid %d did not exit within %v: %v", c.pid(), exitTimeout, err)
	}
}

// nextExit waits for the Exit of pid; one of another pid fails the test.
func nextExit(t *testing.T, w *Watcher, pid int) Exit {
	t.Helper()
	select {
	case e, ok := <-w.Exits():
		if !ok {
			t.Fatal("Exits closed")
		}
		if e.PID != pid {
			t.Fatalf("an exit of pid %d, want %d: %+v", e.PID, pid, e)
		}
		return e
	case <-time.After(exitTimeout):
		t.Fatalf("no exit of pid %d within %v", pid, exitTimeout)
	}
	panic("unreachable")
}

// checkStatus fails unless e says what the wait(2) status ws does.
func checkStatus(t *testing.T, e Exit, ws unix.WaitStatus) {
	t.Helper()
	var want Exit
	setStatus(&want, ws)
	if e.Reason != want.Reason || e.Code != want.Code || e.Signal != want.Signal || e.CoreDumped != want.CoreDumped {
		t.Errorf("exit %s code %d signal %d core %v; wait(2) says %s code %d signal %d core %v",
			e.Reason, e.Code, e.Signal, e.CoreDumped, want.Reason, want.Code, want.Signal, want.CoreDumped)
	}
}

func describe(e Exit) string {
	switch e.Reason {
	case ReasonExit:
		return fmt.Sprintf("exit %d (%s)", e.Code, e.Source)
	case ReasonSignal, ReasonOOMKill:
		return fmt.Sprintf("%s %d (%v) core %v (%s)", e.Reason, int(e.Signal), e.Signal, e.CoreDumped, e.Source)
	}
	return fmt.Sprintf("%s (%s)", e.Reason, e.Source)
}

// deathCase is one way for the exiter to end.
type deathCase struct {
	name   string
	args   []string
	env    []string
	signal syscall.Signal // sent instead of the go-ahead line
	want   string         // describe's prefix, without the source
}

func deathCases() []deathCase {
	return []deathCase{
		{name: "exit3", args: []string{"-mode", "exit", "-code", "3"}, want: "exit 3"},
		{name: "return", args: []string{"-mode", "return"}, want: "exit 0"},
		{name: "panic", args: []string{"-mode", "panic"}, want: "exit 2"},
		{name: "nil-deref", args: []string{"-mode", "nilderef"}, want: "exit 2"},
		{name: "fault", args: []string{"-mode", "fault"}, want: "exit 2"},
		{name: "deadlock", args: []string{"-mode", "deadlock"}, want: "exit 2"},
		{name: "threads", args: []string{"-mode", "threads", "-code", "7"}, want: "exit 7"},
		{name: "exec", args: []string{"-mode", "exec", "-code", "5"}, want: "exit 5"},
		{name: "sigkill", args: []string{"-mode", "exit"}, signal: syscall.SIGKILL, want: "signal 9 (killed) core false"},
		{name: "sigterm", args: []string{"-mode", "exit"}, signal: syscall.SIGTERM, want: "signal 15 (terminated) core false"},
		{name: "crash", args: []string{"-mode", "panic"}, env: []string{"GOTRACEBACK=crash"}, want: "signal 6 (aborted)"},
	}
}

// die starts the exiter of c, watches it and makes it end.
func die(t *testing.T, w *Watcher, bin string, c deathCase) *child {
	t.Helper()
	ch := startChild(t, bin, c.env, c.args...)
	if err := w.Watch(ch.pid(), ch.start); err != nil {
		t.Fatal(err)
	}
	if c.signal != 0 {
		if err := ch.cmd.Process.Signal(c.signal); err != nil {
			t.Fatal(err)
		}
	} else {
		ch.goAhead(t)
	}
	return ch
}

// checkExit checks e against the child and the case.
func checkExit(t *testing.T, e Exit, ch *child, ws unix.WaitStatus, c deathCase, began time.Time, src Source) {
	t.Helper()
	t.Logf("%s: %s", c.name, describe(e))
	checkStatus(t, e, ws)
	if !strings.HasPrefix(describe(e), c.want) {
		t.Errorf("%s, want %s (stderr: %.300s)", describe(e), c.want, ch.stderr.String())
	}
	if e.Source != src {
		t.Errorf("source %s, want %s", e.Source, src)
	}
	if e.StartTime != ch.start {
		t.Errorf("start time %d, want %d", e.StartTime, ch.start)
	}
	if e.Time.Before(began.Add(-time.Millisecond)) || e.Time.After(time.Now()) {
		t.Errorf("time %v is not between %v and now", e.Time, began)
	}
}

// TestWatcherBPF: every way to die, with the local toolchain and Go 1.21,
// as the exit tracer reports it.
func TestWatcherBPF(t *testing.T) {
	w := newWatcher(t, ModeBPF, Options{})
	toolchains := []string{""}
	if !testing.Short() {
		toolchains = append(toolchains, "go1.21.13")
	}
	for _, tc := range toolchains {
		bin := exiter(t, tc)
		for _, c := range deathCases() {
			t.Run(strings.TrimPrefix(tc+"/", "/")+c.name, func(t *testing.T) {
				began := time.Now()
				ch := die(t, w, bin, c)
				ws := ch.reap(t)
				checkExit(t, nextExit(t, w, ch.pid()), ch, ws, c, began, SourceBPF)
			})
		}
	}
	if n := w.Watching(); n != 0 {
		t.Errorf("still watching %d processes", n)
	}
}

// TestWatcherPoll: every way to die, polled. A zombie's status is read
// from /proc; once reaped, from PIDFD_INFO_EXIT (Linux >= 6.15), else it
// is unknown.
func TestWatcherPoll(t *testing.T) {
	w := newWatcher(t, ModePoll, Options{PollInterval: 20 * time.Millisecond})
	bin := exiter(t, "")
	for _, c := range deathCases() {
		t.Run("zombie/"+c.name, func(t *testing.T) {
			began := time.Now()
			ch := die(t, w, bin, c)
			e := nextExit(t, w, ch.pid()) // the child is not reaped yet
			checkExit(t, e, ch, ch.reap(t), c, began, SourceProc)
		})
	}
	reapedSource := SourceGone
	if kernelAtLeast(6, 15) {
		reapedSource = SourcePidfd
	}
	for _, c := range deathCases()[:2] {
		t.Run("reaped/"+c.name, func(t *testing.T) {
			began := time.Now()
			ch := die(t, w, bin, c)
			ws := ch.reap(t)
			e := nextExit(t, w, ch.pid())
			if reapedSource == SourceGone {
				if e.Reason != ReasonUnknown || e.Source != SourceGone {
					t.Errorf("%s, want unknown (gone)", describe(e))
				}
				return
			}
			checkExit(t, e, ch, ws, c, began, reapedSource)
		})
	}
}

// kernelAtLeast says whether the running kernel is major.minor or newer.
func kernelAtLeast(major, minor int) bool {
	var u unix.Utsname
	if err := unix.Uname(&u); err != nil {
		return false
	}
	var a, b int
	if _, err := fmt.Sscanf(unix.ByteSliceToString(u.Release[:]), "%d.%d", &a, &b); err != nil {
		return false
	}
	return a > major || (a == major && b >= minor)
}

// TestWatcherOOM: a process the OOM killer kills in a memory cgroup of
// 64 MiB is an oom_kill: from oom:mark_victim (BPF), from the cgroup's OOM
// counter (polling).
func TestWatcherOOM(t *testing.T) {
	inBothModes(t, func(t *testing.T, mode Mode, w *Watcher) {
		g, err := memcg.New(fmt.Sprintf("goroscope-exits-oom-%d-%s", os.Getpid(), mode), 64<<20)
		if err != nil {
			if ci() {
				t.Fatalf("CI=true but no memory cgroup: %v", err)
			}
			t.Skipf("no memory cgroup: %v", err)
		}
		t.Cleanup(func() {
			if err := g.Close(); err != nil {
				t.Error(err)
			}
		})
		ch := startChild(t, exiter(t, ""), nil, "-mode", "oom")
		if err := os.WriteFile(filepath.Join(g.Path(), "cgroup.procs"), []byte(strconv.Itoa(ch.pid())), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := w.Watch(ch.pid(), ch.start); err != nil {
			t.Fatal(err)
		}
		ch.goAhead(t)
		e := nextExit(t, w, ch.pid()) // a zombie in poll mode: reaped below
		ws := ch.reap(t)
		kills, err := g.OOMKills()
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("%s: %s; wait(2): signaled %v signal %v; the cgroup counts %d OOM kills", mode, describe(e), ws.Signaled(), ws.Signal(), kills)
		if e.Reason != ReasonOOMKill || e.Signal != syscall.SIGKILL || !ws.Signaled() || ws.Signal() != syscall.SIGKILL || kills != 1 {
			t.Errorf("%s, want oom_kill by SIGKILL", describe(e))
		}
	})
}

// TestWatchEnded: a process that ended before Watch is reported at once:
// with its status while it is a zombie, as unknown once reaped.
func TestWatchEnded(t *testing.T) {
	inBothModes(t, func(t *testing.T, mode Mode, w *Watcher) {
		bin := exiter(t, "")

		zombie := startChild(t, bin, nil, "-mode", "exit", "-code", "4")
		zombie.goAhead(t)
		zombie.awaitZombie(t)
		if err := w.Watch(zombie.pid(), zombie.start); err != nil {
			t.Fatal(err)
		}
		e := nextExit(t, w, zombie.pid())
		if e.Reason != ReasonExit || e.Code != 4 || e.Source != SourceProc {
			t.Errorf("a zombie watched: %s, want exit 4 (proc)", describe(e))
		}
		zombie.reap(t)

		gone := startChild(t, bin, nil, "-mode", "exit", "-code", "4")
		gone.goAhead(t)
		gone.reap(t)
		if err := w.Watch(gone.pid(), gone.start); err != nil {
			t.Fatal(err)
		}
		if e := nextExit(t, w, gone.pid()); e.Reason != ReasonUnknown || e.Source != SourceGone {
			t.Errorf("a reaped process watched: %s, want unknown (gone)", describe(e))
		}

		// The pid of a live process with another start time: the
		// process given is over, the live one is not watched.
		live := startChild(t, bin, nil, "-mode", "exit", "-code", "4")
		if err := w.Watch(live.pid(), live.start-1); err != nil {
			t.Fatal(err)
		}
		if e := nextExit(t, w, live.pid()); e.Reason != ReasonUnknown || e.StartTime != live.start-1 {
			t.Errorf("a reused pid watched: %s start %d, want unknown, start %d", describe(e), e.StartTime, live.start-1)
		}
		// Watched, then watched with a later start time, as if the pid
		// had been reused unseen: the first watch ends at once.
		if err := w.Watch(live.pid(), live.start); err != nil {
			t.Fatal(err)
		}
		if err := w.Watch(live.pid(), live.start+1); err != nil {
			t.Fatal(err)
		}
		for _, start := range []uint64{live.start, live.start + 1} {
			if e := nextExit(t, w, live.pid()); e.Reason != ReasonUnknown || e.StartTime != start {
				t.Errorf("pid %d watched again: %s start %d, want unknown, start %d", live.pid(), describe(e), e.StartTime, start)
			}
		}
		if n := w.Watching(); n != 0 {
			t.Errorf("watching %d processes, want none", n)
		}
	})
}

// TestUnwatch: an unwatched process's exit is not reported, a process
// watched twice is reported once; after Close, Exits is closed and Watch
// fails.
func TestUnwatch(t *testing.T) {
	inBothModes(t, func(t *testing.T, mode Mode, w *Watcher) {
		bin := exiter(t, "")
		a := startChild(t, bin, nil, "-mode", "exit", "-code", "1")
		b := startChild(t, bin, nil, "-mode", "exit", "-code", "2")
		for _, c := range []*child{a, b, b} {
			if err := w.Watch(c.pid(), c.start); err != nil {
				t.Fatal(err)
			}
		}
		if n := w.Watching(); n != 2 {
			t.Errorf("watching %d processes, want 2", n)
		}
		if err := w.Unwatch(a.pid()); err != nil {
			t.Fatal(err)
		}
		// a ends first; b's exit, reported after a's would have been,
		// is the only one.
		a.goAhead(t)
		a.reap(t)
		b.goAhead(t)
		b.reap(t)
		if e := nextExit(t, w, b.pid()); e.Reason != ReasonExit || e.Code != 2 {
			t.Errorf("b: %s, want exit 2", describe(e))
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		for e := range w.Exits() {
			t.Errorf("after b's: %+v", e)
		}
		if err := w.Watch(a.pid(), a.start); !errors.Is(err, ErrClosed) {
			t.Errorf("Watch after Close: %v, want ErrClosed", err)
		}
	})
}

func TestReadStat(t *testing.T) {
	st, err := readStat(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	start, err := process.StartTime(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if st.start != start || st.ended() || !st.haveCode || st.code != 0 {
		t.Errorf("readStat(self) = %+v, start time %d", st, start)
	}
	if _, err := readStat(1 << 30); err == nil {
		t.Error("readStat of a pid that cannot exist succeeded")
	}
}

func TestSetStatus(t *testing.T) {
	for _, c := range []struct {
		ws   unix.WaitStatus
		want Exit
	}{
		{0, Exit{Reason: ReasonExit}},
		{3 << 8, Exit{Reason: ReasonExit, Code: 3}},
		{9, Exit{Reason: ReasonSignal, Signal: syscall.SIGKILL}},
		{0x86, Exit{Reason: ReasonSignal, Signal: syscall.SIGABRT, CoreDumped: true}},
		{0x7f, Exit{Reason: ReasonUnknown}}, // stopped: not an end
	} {
		var e Exit
		setStatus(&e, c.ws)
		if e != c.want {
			t.Errorf("setStatus(%#x) = %+v, want %+v", uint32(c.ws), e, c.want)
		}
	}
}

func TestNewOptions(t *testing.T) {
	if _, err := New(context.Background(), Options{PollInterval: -1}); err == nil {
		t.Error("a negative poll interval was accepted")
	}
	ctx, cancel := context.WithCancel(context.Background())
	w, err := New(ctx, Options{NoBPF: true})
	if err != nil {
		t.Fatal(err)
	}
	if w.Mode() != ModePoll || w.BPFError() == nil {
		t.Errorf("NoBPF: mode %s, BPF error %v", w.Mode(), w.BPFError())
	}
	if err := w.Watch(0, 1); err == nil {
		t.Error("pid 0 was watched")
	}
	cancel() // the context's end stops it, as Close does
	for range w.Exits() {
		t.Error("an exit with nothing watched")
	}
	if err := w.Close(); err != nil {
		t.Error(err)
	}
}
