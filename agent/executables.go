package main

import (
	"fmt"
	"os"
	"syscall"

	"github.com/goroscope/goroscope/collect/process"
)

// exeKey identifies an executable file whatever its path.
type exeKey struct {
	dev, ino uint64
	size     int64
	mtime    int64
}

type sharedExe struct {
	x    *process.Executable
	refs int
}

// executables shares what is learnt from one executable (symbols, inline
// tables, layout) among all the processes running it: twenty replicas of a
// service cost one parse. Only the discovery and snapshot loops use it,
// under the agent's lock.
type executables map[exeKey]*sharedExe

// acquire returns the executable of process pid, opening it on first use.
func (e executables) acquire(pid int) (*process.Executable, exeKey, error) {
	fi, err := os.Stat(fmt.Sprintf("/proc/%d/exe", pid))
	if err != nil {
		return nil, exeKey{}, fmt.Errorf("pid %d: %w", pid, err)
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return nil, exeKey{}, fmt.Errorf("pid %d: no inode for its executable", pid)
	}
	k := exeKey{dev: st.Dev, ino: st.Ino, size: fi.Size(), mtime: fi.ModTime().UnixNano()}
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

// release drops one process's use of an executable.
func (e executables) release(k exeKey) {
	s, ok := e[k]
	if !ok {
		return
	}
	if s.refs--; s.refs <= 0 {
		s.x.Close()
		delete(e, k)
	}
}
