// Package exits tells how each watched process ended: a normal exit and
// its code, a signal and which, or an OOM kill.
//
// A Watcher is given processes by pid and start time (Watch) and delivers
// one Exit for each on its channel when it ends. It works one of two ways:
//
//   - BPF (ModeBPF): bpf.ExitTracer traces sched_process_exit, in the
//     kernel filtered to the watched processes, and reports each once, when
//     its last thread exits, with the status wait(2) gives its parent (so
//     for any process, not only the agent's children), and oom:mark_victim,
//     which marks the OOM killer's victims. Time is when the last thread
//     exited.
//   - Polling (ModePoll), where BPF cannot load: every PollInterval a
//     pidfd per process (poll(2), one call for all) or /proc/PID/stat says
//     which have ended. Their status is the kernel's when it is still
//     there: PIDFD_INFO_EXIT once the parent has reaped the process (Linux
//     >= 6.15), or the exit_code field of a zombie's /proc/PID/stat. Past
//     those, the reason is unknown. An OOM kill is told by the process's
//     memory cgroup counting one more OOM kill (v1 memory.oom_control, v2
//     memory.events) since the poll before: a guess when another process
//     of the cgroup was killed in that interval and the status is unknown.
//     Time is when the poll noticed.
//
// In BPF mode a slower sweep (SweepInterval) checks /proc for watched
// processes that ended without a record: those that ended just before
// Watch, or whose record the ring buffer lost.
//
// Exactly one Exit comes for each Watch of a process (a second Watch of
// the same pid and start time is the same watch), unless Unwatch or Close
// comes first. The kernel and the Watcher decide who reports a process by
// removing it from the kernel's map of watched pids, which succeeds once.
//
// A Go program that panics or dies of a fatal runtime error (a fault, a
// deadlock, a concurrent map write) exits with status 2 and is reported as
// ReasonExit, Code 2; a nil dereference is a panic (SIGSEGV caught by the
// runtime). With GOTRACEBACK=crash it is killed by SIGABRT instead (and
// dumps core where RLIMIT_CORE allows). Telling panics and fatal errors
// apart, with their messages, is for a uprobe on the runtime's fatal paths:
// an Exit is keyed by PID and StartTime so that such a probe's record can
// be joined to it.
//
// Like all of collect/, it is internal to the goroscope binary.
package exits
