package daemon

import (
	"time"

	"github.com/goroscope/goroscope/pkg/store"
)

// maxRefusedWait bounds the wait between two attempts to attach to a
// process that refused.
const maxRefusedWait = 10 * time.Minute

// refusals are the processes the agent tried and failed to attach to (an
// unsupported Go version, no permission): discovery tries each again
// after a wait that doubles from two discovery intervals up to
// maxRefusedWait, not at every scan, since the attempt parses the whole
// executable. A process that exec'd another executable is tried at once.
// Only the discovery loop uses them.
type refusals map[store.ProcessKey]*refusal

// refusal is one process's failed attempts.
type refusal struct {
	exe  ExeKey // the executable it ran then
	wait time.Duration
	next time.Time // the next attempt's time
}

// waiting reports whether process k, running exe, refused and is not due
// for another attempt at now.
func (r refusals) waiting(k store.ProcessKey, exe ExeKey, now time.Time) bool {
	f, ok := r[k]
	if !ok {
		return false
	}
	if f.exe != exe {
		delete(r, k) // a new program: a new process to the agent
		return false
	}
	return now.Before(f.next)
}

// add records a failed attempt at now on process k, running exe, given
// the discovery interval; it reports whether it is the first for the
// process and executable (which is the one to count and log).
func (r refusals) add(k store.ProcessKey, exe ExeKey, now time.Time, interval time.Duration) bool {
	f, ok := r[k]
	first := !ok || f.exe != exe
	if first {
		f = &refusal{exe: exe, wait: 2 * interval}
		r[k] = f
	} else {
		f.wait = min(2*f.wait, max(maxRefusedWait, 2*interval))
	}
	f.next = now.Add(f.wait)
	return first
}

// prune forgets the processes not present in the last scan.
func (r refusals) prune(present map[store.ProcessKey]bool) {
	for k := range r {
		if !present[k] {
			delete(r, k)
		}
	}
}
