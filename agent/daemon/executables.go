package daemon

import (
	"fmt"
	"os"
	"syscall"

	"github.com/goroscope/goroscope/collect/process"
)

// ExeKey identifies an executable file whatever its path.
type ExeKey struct {
	dev, ino uint64
	size     int64
	mtime    int64
}

type sharedExe struct {
	x    *process.Executable
	refs int
}

// Executables shares what is learnt from one executable (symbols, inline
// tables, layout) among all the processes running it: twenty replicas of a
// service cost one parse. The zero value is not usable: make one with
// Executables{}. It is not safe for concurrent use: in the agent only the
// discovery and snapshot loops use it, under the agent's lock.
type Executables map[ExeKey]*sharedExe

// Acquire returns the executable of process pid, opening it on first use,
// and its key, to Release when the process is done with it.
func (e Executables) Acquire(pid int) (*process.Executable, ExeKey, error) {
	fi, err := os.Stat(fmt.Sprintf("/proc/%d/exe", pid))
	if err != nil {
		return nil, ExeKey{}, fmt.Errorf("pid %d: %w", pid, err)
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return nil, ExeKey{}, fmt.Errorf("pid %d: no inode for its executable", pid)
	}
	k := ExeKey{dev: st.Dev, ino: st.Ino, size: fi.Size(), mtime: fi.ModTime().UnixNano()}
	if s, ok := e[k]; ok {
		s.refs++
		return s.x, k, nil
	}
	x, err := process.OpenExecutable(pid)
	if err != nil {
		return nil, k, err
	}
	e[k] = &sharedExe{x: x, refs: 1}
	return x, k, nil
}

// Release drops one process's use of an executable, closing it after the
// last.
func (e Executables) Release(k ExeKey) {
	s, ok := e[k]
	if !ok {
		return
	}
	if s.refs--; s.refs <= 0 {
		s.x.Close()
		delete(e, k)
	}
}

// Close closes every executable, whoever still uses it.
func (e Executables) Close() {
	for k, s := range e {
		s.x.Close()
		delete(e, k)
	}
}
