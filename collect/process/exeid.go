package process

import (
	"errors"
	"fmt"
	"os"
	"syscall"
)

// ExeID identifies an executable file whatever its path: its device,
// inode, size and modification time. exec keeps a process's pid, start
// time and pidfd but changes its ExeID (unless it execs the same file).
type ExeID struct {
	Dev, Ino uint64
	Size     int64
	// Mtime is the modification time in nanoseconds since the epoch.
	Mtime int64
}

// IsZero reports whether the identity is unknown.
func (id ExeID) IsZero() bool { return id == ExeID{} }

func (id ExeID) String() string {
	return fmt.Sprintf("dev %d inode %d size %d mtime %d", id.Dev, id.Ino, id.Size, id.Mtime)
}

// ExeIDOf is the identity of the file fi describes; false when fi carries
// no inode.
func ExeIDOf(fi os.FileInfo) (ExeID, bool) {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return ExeID{}, false
	}
	return ExeID{Dev: st.Dev, Ino: st.Ino, Size: fi.Size(), Mtime: fi.ModTime().UnixNano()}, true
}

// ExeIdentity stats the executable of process pid through /proc/PID/exe,
// which reaches the file even when it was deleted or lives in another
// mount namespace.
func ExeIdentity(pid int) (ExeID, error) {
	fi, err := os.Stat(fmt.Sprintf("/proc/%d/exe", pid))
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return ExeID{}, fmt.Errorf("pid %d has no executable (exited, or a kernel thread): %w", pid, ErrProcessGone)
		}
		if errors.Is(err, os.ErrPermission) {
			return ExeID{}, fmt.Errorf("pid %d: stat its executable: %s: %w", pid, deniedWhy(), err)
		}
		return ExeID{}, fmt.Errorf("pid %d: stat its executable: %w", pid, err)
	}
	id, ok := ExeIDOf(fi)
	if !ok {
		return ExeID{}, fmt.Errorf("pid %d: no inode for its executable", pid)
	}
	return id, nil
}

// ErrExeced reports that the attached process replaced its program with
// exec: same pid, same start time, another executable. What was attached
// (symbols, layout, addresses) no longer describes it. It wraps
// ErrProcessGone: the program attached is gone.
var ErrExeced = fmt.Errorf("process exec'd another executable: %w", ErrProcessGone)

// execedError says which executable replaced which.
func execedError(pid int, was, now ExeID) error {
	return fmt.Errorf("pid %d: executable changed from %v to %v: %w", pid, was, now, ErrExeced)
}

// CheckExe compares the identity of the executable pid runs now with was:
// an error wrapping ErrExeced when it changed, ErrProcessGone when the
// process has no executable any more (it is exiting).
func CheckExe(pid int, was ExeID) error {
	now, err := ExeIdentity(pid)
	if err != nil {
		return err
	}
	if !was.IsZero() && now != was {
		return execedError(pid, was, now)
	}
	return nil
}

// deniedWhy says why reading another process's /proc entries was denied,
// and what to do: as root, capabilities are not what is missing.
func deniedWhy() string {
	if os.Geteuid() == 0 {
		return "permission denied although goroscope runs as root: the process is in a user namespace this one does not own (a container's or sandbox's init), or ptrace access is restricted (kernel.yama.ptrace_scope=3, a Linux security module); run goroscope in the process's own namespace, or on the host"
	}
	return "permission denied: another user's process needs root, or CAP_SYS_PTRACE (and CAP_DAC_READ_SEARCH for an execute-only file)"
}
