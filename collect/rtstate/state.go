// Package rtstate reads a Go process's runtime settings and health out of its memory, from
// outside, like the goroutine walk: GOMAXPROCS, GOGC and GOMEMLIMIT, the heap (live, goal, in
// use), the GC cycle count, the scheduler's run queues, idle Ps and Ms; plus the thread count
// from /proc/PID/stat and the GO* variables of the environment the process started with.
//
// A read costs two system calls whatever the process: one process_vm_readv for
// runtime.gomaxprocs, runtime.allp, runtime.sched, runtime.gcController, runtime.memstats,
// runtime.extraMInUse and runtime.extraMLength, the allp array and the run queues of every P (up to 339 Ps; the allp array and Ps at the
// addresses the last read found, used when allp has not changed since, else read again in
// two more), and one pread of /proc/PID/stat. The runtime's variables are found by gobin.StateVars (from the symbol table,
// or on stripped binaries from the runtime's code) and its structures' layouts come from
// golayout (the binary's DWARF, or the built-in per-version tables).
//
// What is read is checked against what the runtime guarantees (len(allp) == gomaxprocs, each P's
// id is its index, the counters within their bounds, ...): a read of a process whose layout
// does not match, or of a corrupt or hostile one, fails with an error wrapping ErrImplausible,
// never with wrong figures or a panic. A read that catches the runtime changing its state
// (GOMAXPROCS being changed, the heap counters being updated) is retried a few times.
//
// Like all of collect/, it is internal to the goroscope binary.
package rtstate

// State is what one read found. Counts are of the moment of the read; the fields named after a
// runtime/metrics metric equal it when read at the same quiescent moment.
type State struct {
	// GOMAXPROCS is runtime.gomaxprocs (/sched/gomaxprocs:threads).
	GOMAXPROCS int
	// GOGCPercent is the GC percent (GOGC, debug.SetGCPercent): -1 when the GC is off
	// (/gc/gogc:percent, which shows off as 2^64-1).
	GOGCPercent int
	// MemoryLimitBytes is the soft memory limit (GOMEMLIMIT, debug.SetMemoryLimit);
	// math.MaxInt64 when there is none (/gc/gomemlimit:bytes).
	MemoryLimitBytes int64
	// MaxThreads is the limit of debug.SetMaxThreads (10000 by default).
	MaxThreads int

	// HeapLiveBytes is the heap marked live by the last GC cycle (/gc/heap/live:bytes).
	HeapLiveBytes uint64
	// HeapGoalBytes is the heap size the current GC cycle aims to end at (/gc/heap/goal:bytes),
	// computed from the pacer's fields as the runtime's gcControllerState.heapGoal does: the
	// GOGC goal, or the GOMEMLIMIT goal when that is lower.
	HeapGoalBytes uint64
	// HeapPacedBytes is what the pacer counts as the heap now and compares with the goal: the
	// heap marked live plus what has been allocated since (gcControllerState.heapLive; it
	// counts spans cached for allocation as allocated).
	HeapPacedBytes uint64
	// HeapInUseBytes is the bytes of the heap spans in use, objects and their unused room
	// (runtime.MemStats.HeapInuse; /memory/classes/heap/objects:bytes +
	// /memory/classes/heap/unused:bytes).
	HeapInUseBytes uint64
	// GCCycles counts the completed GC cycles (/gc/cycles/total:gc-cycles); ForcedGCCycles
	// those forced by the program, runtime.GC and debug.FreeOSMemory
	// (/gc/cycles/forced:gc-cycles). Both are the runtime's uint32 counters.
	GCCycles, ForcedGCCycles uint32

	// GlobalRunQueue is the length of the scheduler's global run queue.
	GlobalRunQueue int
	// LocalRunQueues is the length of each P's local run queue, by P id: the goroutines in
	// its ring plus its runnext slot. LocalRunQueued is their sum.
	LocalRunQueues []int
	LocalRunQueued int
	// IdlePs counts the Ps on the idle list (sched.npidle).
	IdlePs int
	// Ms counts the runtime's Ms alive, mcount(): those created minus those that exited.
	// ExtraMs are those of them cgo keeps for threads created in C (in use or not); Ms -
	// ExtraMs are the threads the runtime created (/sched/threads/total:threads, Go 1.26+).
	// IdleMs are parked without work, SpinningMs looking for work.
	Ms, ExtraMs, IdleMs, SpinningMs int
	// Threads is the process's thread count (/proc/PID/stat num_threads, the Threads of
	// /proc/PID/status), or -1 when unreadable.
	Threads int

	// Env holds the GO* variables (GODEBUG, GOGC, GOMEMLIMIT, GOMAXPROCS, GOTRACEBACK, ...)
	// of the environment the process started with (/proc/PID/environ, read once per Reader;
	// a process's later os.Setenv does not show there), sorted by name. It is shared between
	// the reads of a Reader: do not modify it. EnvError says why it is empty when it could
	// not be read.
	Env      []EnvVar
	EnvError string
}
