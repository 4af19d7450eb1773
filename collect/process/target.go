package process

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/goroscope/goroscope/pkg/gobin"
	"github.com/goroscope/goroscope/pkg/golayout"
)

// maxGSize bounds the size of runtime.g a layout may give: a larger one is
// a wrong layout.
const maxGSize = 1024

// Target is one attached Go process: its identity (pid and start time),
// its executable, the layout of its runtime structures, the run-time
// addresses of its runtime variables, and a reader of its memory.
type Target struct {
	PID int
	// StartTime is the process start time in clock ticks since boot
	// (/proc/PID/stat field 22); with PID it identifies the process across
	// PID reuse.
	StartTime uint64
	Exe       string
	// ExeID is the identity of the executable attached: exec keeps the
	// pid, start time and pidfd, and changes only this (Intact checks it).
	ExeID  ExeID
	Bin    *gobin.Binary
	Layout *golayout.Layout
	// Vars are link-time addresses; Bias turns them into run-time ones.
	Vars gobin.RuntimeVars
	Bias uint64

	mem         *Mem
	waitReasons []string
	ownsExe     bool
	// pidfd pins the process (Linux >= 5.3): it turns readable when the
	// process exits, which makes Alive a poll instead of a /proc read.
	pidfd    int
	hasPidfd bool
}

// Executable is what goroscope learns once per Go executable: the binary,
// the layout of its runtime structures, its runtime variables and wait
// reasons. Processes running the same file share one.
type Executable struct {
	// ID is the identity of the file read.
	ID          ExeID
	Bin         *gobin.Binary
	Layout      *golayout.Layout
	Vars        gobin.RuntimeVars
	waitReasons []string
}

// OpenExecutable reads the executable of process pid through /proc (so
// replaced or deleted files and other mount namespaces work) and finds its
// layout and runtime variables. Errors name the pid and what is missing.
func OpenExecutable(pid int) (*Executable, error) {
	id, err := ExeIdentity(pid)
	if err != nil {
		return nil, err
	}
	bin, err := gobin.OpenProcess(pid)
	if err != nil {
		return nil, fmt.Errorf("pid %d: %w", pid, err)
	}
	// An exec between the stat and the open would pair one file's
	// identity with another's contents.
	if err := CheckExe(pid, id); err != nil {
		bin.Close()
		return nil, err
	}
	x, err := newExecutable(bin)
	if err != nil {
		bin.Close()
		exe, _ := os.Readlink(fmt.Sprintf("/proc/%d/exe", pid))
		return nil, fmt.Errorf("pid %d (%s, %s): %w", pid, exe, bin.GoVersion(), err)
	}
	x.ID = id
	return x, nil
}

func newExecutable(bin *gobin.Binary) (*Executable, error) {
	ver := bin.GoVersion()
	layout, err := layoutFor(bin)
	if err != nil {
		return nil, err
	}
	if g := layout.G; g.Size <= 0 || g.Size > maxGSize {
		return nil, fmt.Errorf("runtime.g is %d bytes, outside 1..%d: the layout is wrong", g.Size, maxGSize)
	}
	if g := layout.G; g.SchedPC != g.SchedSP+8 || g.SyscallPC != g.SyscallSP+8 {
		return nil, fmt.Errorf("saved sp and pc are not adjacent in runtime.g (sched.sp %d, sched.pc %d, syscallsp %d, syscallpc %d): unsupported layout", g.SchedSP, g.SchedPC, g.SyscallSP, g.SyscallPC)
	}
	reasons, err := golayout.WaitReasons(ver)
	if err != nil {
		return nil, err
	}
	vars, err := bin.RuntimeVars()
	if err != nil {
		return nil, err
	}
	return &Executable{Bin: bin, Layout: layout, Vars: vars, waitReasons: reasons}, nil
}

// Close releases the executable.
func (x *Executable) Close() error { return x.Bin.Close() }

// Attach attaches to process pid, with an executable of its own that
// Target.Close releases.
func Attach(pid int) (*Target, error) {
	x, err := OpenExecutable(pid)
	if err != nil {
		if _, serr := StartTime(pid); serr != nil {
			return nil, serr
		}
		return nil, err
	}
	t, err := AttachExecutable(pid, x)
	if err != nil {
		x.Close()
		return nil, err
	}
	t.ownsExe = true
	return t, nil
}

// AttachExecutable attaches to process pid, which runs x. x stays the
// caller's: Target.Close does not close it.
func AttachExecutable(pid int, x *Executable) (*Target, error) {
	start, err := StartTime(pid)
	if err != nil {
		return nil, err
	}
	exe, _ := os.Readlink(fmt.Sprintf("/proc/%d/exe", pid))
	t := &Target{PID: pid, StartTime: start, Exe: exe, ExeID: x.ID, Bin: x.Bin, Layout: x.Layout, Vars: x.Vars, waitReasons: x.waitReasons}
	if t.Bias, err = x.Bin.LoadBias(pid); err != nil {
		return nil, fmt.Errorf("pid %d (%s): %w", pid, exe, err)
	}
	if t.mem, err = NewMem(pid); err != nil {
		return nil, err
	}
	t.openPidfd()
	// The process must still run x: it may have exec'd since x was read.
	if err := CheckExe(pid, x.ID); err != nil {
		t.Close()
		return nil, err
	}
	return t, nil
}

// layoutFor prefers the binary's own DWARF and falls back to the built-in
// table for its Go version.
func layoutFor(bin *gobin.Binary) (*golayout.Layout, error) {
	ver := bin.GoVersion()
	var dwarfErr error
	if f := bin.ELF(); f != nil && !bin.Stripped() {
		if d, err := f.DWARF(); err == nil {
			l, err := golayout.FromDWARF(d, ver)
			if err == nil {
				return l, nil
			}
			dwarfErr = err
		}
	}
	l, err := golayout.ForVersion(ver)
	if err != nil {
		if dwarfErr != nil {
			return nil, fmt.Errorf("%w (and DWARF: %v)", err, dwarfErr)
		}
		return nil, err
	}
	return l, nil
}

// openPidfd opens a pidfd for the target and checks that it names the
// process attached (the pid may have been reused in between); without
// one, Alive reads /proc.
func (t *Target) openPidfd() {
	fd, err := unix.PidfdOpen(t.PID, 0)
	if err != nil {
		return
	}
	if st, _, err := procStat(t.PID); err != nil || st != t.StartTime {
		unix.Close(fd)
		return
	}
	t.pidfd, t.hasPidfd = fd, true
}

func closeFd(fd int) { _ = unix.Close(fd) }

// Close releases the target's pidfd, and its executable if the target owns it.
func (t *Target) Close() error {
	if t.hasPidfd {
		closeFd(t.pidfd)
		t.hasPidfd = false
	}
	if t.ownsExe {
		return t.Bin.Close()
	}
	return nil
}

// Mem reads the process's memory.
func (t *Target) Mem() *Mem { return t.mem }

// WaitReason names a value of g.waitreason in the process's Go version.
func (t *Target) WaitReason(r uint8) string {
	if int(r) < len(t.waitReasons) {
		return t.waitReasons[r]
	}
	return fmt.Sprintf("waitReason(%d)", r)
}

// Alive reports whether the process is still the one attached: same pid and
// same start time (a recycled pid has another).
func (t *Target) Alive() error { return t.AliveWithin(0) }

// Intact is Alive, and also checks that the process still has its address
// space and still runs the executable attached. A process being killed
// loses its address space (and its exe link) before its pidfd reports the
// exit, so what was read of it just before may be partial; one that
// exec'd keeps its pid, start time and pidfd but runs another program,
// which the attached symbols and layout do not describe (the error then
// wraps ErrExeced). It costs a poll and one stat.
func (t *Target) Intact() error {
	if err := t.Alive(); err != nil {
		return err
	}
	fi, err := os.Stat(fmt.Sprintf("/proc/%d/exe", t.PID))
	if errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("pid %d is exiting: %w", t.PID, ErrProcessGone)
	}
	if err != nil || t.ExeID.IsZero() {
		return nil // cannot tell: as before, trust the pidfd
	}
	if now, ok := ExeIDOf(fi); ok && now != t.ExeID {
		return execedError(t.PID, t.ExeID, now)
	}
	return nil
}

// AliveWithin is Alive, waiting up to wait for a pending exit to show: a
// process loses its memory before its pidfd reports the exit.
func (t *Target) AliveWithin(wait time.Duration) error {
	if t.hasPidfd {
		fds := []unix.PollFd{{Fd: int32(t.pidfd), Events: unix.POLLIN}}
		n, err := unix.Poll(fds, int(wait/time.Millisecond))
		if err == nil {
			if n > 0 {
				return fmt.Errorf("pid %d exited: %w", t.PID, ErrProcessGone)
			}
			return nil
		}
	}
	st, state, err := procStat(t.PID)
	if err != nil {
		return err
	}
	if state == 'Z' || state == 'X' {
		return fmt.Errorf("pid %d exited: %w", t.PID, ErrProcessGone)
	}
	if st != t.StartTime {
		return fmt.Errorf("pid %d was reused by another process (start time %d, attached %d): %w", t.PID, st, t.StartTime, ErrProcessGone)
	}
	return nil
}

// ErrProcessGone reports that the attached process exited (or its pid now
// names another process).
var ErrProcessGone = errors.New("process gone")

// StartTime returns the start time of process pid in clock ticks after
// boot, from /proc/PID/stat.
func StartTime(pid int) (uint64, error) {
	st, _, err := procStat(pid)
	return st, err
}

// procStat reads the start time and the state letter of process pid.
func procStat(pid int) (uint64, byte, error) {
	if pid <= 0 {
		return 0, 0, fmt.Errorf("pid %d: not a process id", pid)
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return 0, 0, fmt.Errorf("pid %d: no such process: %w", pid, ErrProcessGone)
		}
		return 0, 0, fmt.Errorf("pid %d: %w", pid, err)
	}
	// The command name (field 2) may hold spaces and parentheses: fields
	// start after the last ')'.
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0, 0, fmt.Errorf("pid %d: malformed /proc/%d/stat", pid, pid)
	}
	fields := strings.Fields(s[i+1:])
	// fields[0] is field 3 (state); starttime is field 22.
	if len(fields) < 20 || len(fields[0]) != 1 {
		return 0, 0, fmt.Errorf("pid %d: malformed /proc/%d/stat", pid, pid)
	}
	v, err := strconv.ParseUint(fields[19], 10, 64)
	if err != nil {
		return 0, 0, fmt.Errorf("pid %d: start time in /proc/%d/stat: %w", pid, pid, err)
	}
	return v, fields[0][0], nil
}
