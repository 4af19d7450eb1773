package crash

import (
	"time"

	"github.com/goroscope/goroscope/pkg/findings"
)

// Record is what goroscope keeps of a watched process's death: how it
// ended, the runtime's message and its class, the panicking stack when a
// probe saw it, and the process's last snapshot, findings and runtime
// health before it.
type Record struct {
	PID         int    `json:"pid"`
	StartTime   uint64 `json:"start_time"`
	ServiceName string `json:"service_name"`
	Exe         string `json:"exe,omitempty"`
	GoVersion   string `json:"go_version,omitempty"`
	// Time is when the process's last thread exited.
	Time time.Time `json:"time"`
	// Reason is the exit's (collect/exits): exit, signal, oom_kill or
	// unknown; Code the exit status, Signal the terminating signal's name.
	Reason     string `json:"reason"`
	Code       int    `json:"code"`
	Signal     string `json:"signal,omitempty"`
	CoreDumped bool   `json:"core_dumped,omitempty"`
	// Message is the runtime's ("panic: ...", "fatal error: ..."), empty
	// when none was seen; Class classifies the death.
	Message string `json:"message,omitempty"`
	// GoID is the goroutine that panicked (0: unknown, or the runtime's).
	GoID uint64 `json:"goid,omitempty"`
	Class
	// Stack is the panicking goroutine's frames, leaf first, when seen.
	Stack []string `json:"stack,omitempty"`
	// SystemStack is the system stack's (g0's) when the runtime died on
	// it (a stack overflow, an out-of-memory), as under "runtime stack:".
	SystemStack []string `json:"system_stack,omitempty"`
	// LastSnapshot is the newest snapshot stored before the death (zero
	// when none was), LastSnapshotAge how long before it.
	LastSnapshot    time.Time `json:"last_snapshot"`
	LastSnapshotAge float64   `json:"last_snapshot_age_seconds"`
	// Findings are those holding at the last snapshot; Runtime the
	// newest runtime health read.
	Findings []findings.Finding      `json:"findings,omitempty"`
	Runtime  *findings.RuntimeHealth `json:"runtime,omitempty"`
}

// Crashed reports whether an end is a crash worth a record: an OOM kill;
// a signal other than the ones supervisors stop services with (SIGTERM,
// SIGINT, SIGHUP: a deploy or a shutdown, counted as exits but not
// recorded), SIGKILL included; or a non-zero exit status (2 is how a Go
// panic or fatal error ends, 1 how log.Fatal does; with
// GOTRACEBACK=crash a panic is SIGABRT, a signal). signal is the
// signal's name as syscall.Signal.String gives it.
func Crashed(reason string, code int, signal string) bool {
	switch reason {
	case "oom_kill":
		return true
	case "signal":
		return !stopSignals[signal]
	case "exit":
		return code != 0
	}
	return false
}

// stopSignals are the signals a supervisor stops a service with, by name.
var stopSignals = map[string]bool{"terminated": true, "interrupt": true, "hangup": true}

// ClassOf classifies an end: by the runtime's message when one was seen,
// else by how it ended.
func ClassOf(reason string, code int, signal, message string) Class {
	if message != "" {
		return Classify(message, false)
	}
	switch {
	case reason == "oom_kill":
		return Class{ClassOutOfMemory, "the kernel's OOM killer ended it at its cgroup's memory limit: set GOMEMLIMIT under the limit and look at the heap's growth"}
	case reason == "signal":
		return Class{ClassKilled, "ended by " + signal + " from outside: the sender is not recorded; look at supervisors, deploys and the node's OOM killer"}
	case reason == "exit" && code == 2:
		return Class{ClassExitStatus2, "status 2 is how a Go panic or fatal error ends: its message went to the process's stderr"}
	case reason == "exit" && code != 0:
		return Class{ClassExitStatus, "the program ended itself with a failure status (os.Exit, log.Fatal: 1): its last log lines say why"}
	}
	return Classify("", false)
}
