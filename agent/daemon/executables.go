package daemon

import (
	"github.com/goroscope/goroscope/collect/process"
)

// ExeKey identifies an executable file whatever its path.
type ExeKey = process.ExeID

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
	k, err := process.ExeIdentity(pid)
	if err != nil {
		return nil, ExeKey{}, err
	}
	if s, ok := e[k]; ok {
		s.refs++
		return s.x, k, nil
	}
	x, err := process.OpenExecutable(pid)
	if err != nil {
		return nil, k, err
	}
	// The process exec'd between the stat and the open: x is the new
	// file. Key it by what it is.
	k = x.ID
	if s, ok := e[k]; ok {
		x.Close()
		s.refs++
		return s.x, k, nil
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
