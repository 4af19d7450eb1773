package golayout

import "fmt"

// Status is a goroutine status, the runtime's _G* constants (g.atomicstatus).
// Callers strip the _Gscan bit (StatusScanBit) before looking names up.
type Status uint32

// Goroutine statuses. Values are stable across Go 1.21–1.26; StatusLeaked and
// StatusDeadExtra exist only from Go 1.26 on.
const (
	StatusIdle      Status = 0  // _Gidle: just allocated, not yet initialized
	StatusRunnable  Status = 1  // _Grunnable: on a run queue
	StatusRunning   Status = 2  // _Grunning: executing user code on an M
	StatusSyscall   Status = 3  // _Gsyscall: in a system call
	StatusWaiting   Status = 4  // _Gwaiting: blocked; g.waitreason says why
	StatusMoribund  Status = 5  // _Gmoribund_unused: unused
	StatusDead      Status = 6  // _Gdead: exited or on a free list
	StatusEnqueue   Status = 7  // _Genqueue_unused: unused
	StatusCopystack Status = 8  // _Gcopystack: its stack is being moved
	StatusPreempted Status = 9  // _Gpreempted: stopped for a suspendG preemption
	StatusLeaked    Status = 10 // _Gleaked (Go 1.26+): leaked goroutine caught by the GC
	StatusDeadExtra Status = 11 // _Gdeadextra (Go 1.26+): dead g attached to an extra M for cgo callbacks

	StatusScanBit Status = 0x1000 // _Gscan: GC is scanning the stack; OR-ed into the above
)

// Strip returns s without the _Gscan bit.
func (s Status) Strip() Status { return s &^ StatusScanBit }

// Enums holds the goroutine status and wait-reason names of one Go version.
type Enums struct {
	t *versionTable
}

// EnumsFor returns the status and wait-reason tables for a Go version
// ("go1.22.12" -> go1.22), or a clear error for unsupported versions.
func EnumsFor(goVersion string) (*Enums, error) {
	t, err := tableFor(goVersion)
	if err != nil {
		return nil, err
	}
	return &Enums{t: t}, nil
}

// GoVersion returns the "go1.N" version these tables belong to.
func (e *Enums) GoVersion() string { return e.t.layout.GoVersion }

// StatusName returns the runtime's gStatusStrings entry for s (scan bit
// ignored): "runnable", "running", "syscall", "waiting", "dead", ...
// Like the runtime, it returns "???" for values beyond the table and ""
// for the unused slots (5, 7).
func (e *Enums) StatusName(s Status) string {
	s = s.Strip()
	if int64(s) >= int64(len(e.t.statuses)) {
		return "???"
	}
	return e.t.statuses[s]
}

// WaitReason returns the runtime's string for a g.waitreason value, or
// "unknown wait reason" (as the runtime says) when it is out of range.
func (e *Enums) WaitReason(r uint8) string {
	if int(r) >= len(e.t.waitReasons) {
		return "unknown wait reason"
	}
	return e.t.waitReasons[r]
}

// WaitReasons returns a copy of the version's waitReasonStrings table.
func (e *Enums) WaitReasons() []string {
	return append([]string(nil), e.t.waitReasons...)
}

// Statuses returns a copy of the version's gStatusStrings table.
func (e *Enums) Statuses() []string {
	return append([]string(nil), e.t.statuses...)
}

// State returns what the runtime prints in a traceback header
// ("goroutine 7 [chan receive]:") for a goroutine with this status and wait
// reason: the wait reason for waiting (and, in 1.26+, leaked) goroutines with
// a non-zero reason, else the status name.
func (e *Enums) State(s Status, reason uint8) string {
	s = s.Strip()
	if (s == StatusWaiting || (s == StatusLeaked && e.t.minor >= 26)) && reason != 0 {
		return e.WaitReason(reason)
	}
	return e.StatusName(s)
}

// StatusName returns the runtime's gStatusStrings name for a status in the
// given Go version ("runnable", "waiting", "leaked", ...).
func StatusName(goVersion string, s Status) (string, error) {
	e, err := EnumsFor(goVersion)
	if err != nil {
		return "", fmt.Errorf("status name of %d: %w", s, err)
	}
	return e.StatusName(s), nil
}
