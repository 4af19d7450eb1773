// Package walk reads every goroutine of a live Go process without stopping
// it. Two walkers produce the same raw records — a sleepable eBPF task
// iterator and a process_vm_readv reader — and one decoder turns records into
// a snapshot.Snapshot, so both paths give the same answer on the same process.
package walk

import (
	"context"
	"time"
)

// Record is one goroutine as copied out of the target: the bytes of its g and
// the program counters of its stack, found by walking frame pointers.
type Record struct {
	// Index is the goroutine's position in runtime.allgs.
	Index uint32
	// GAddr is the run-time address of the g.
	GAddr uint64
	// G holds the first Request.GSize bytes of the g. Walkers reuse it
	// between callbacks: copy to keep.
	G []byte
	// PCs are leaf first: PCs[0] is the saved pc (sched.pc, or syscallpc for
	// a goroutine in a system call) and the rest are return addresses from
	// the frame-pointer chain. Empty for running goroutines. Reused like G.
	PCs   []uint64
	Flags uint32
}

// Record flags.
const (
	// FlagTruncated: the stack was deeper than Request.MaxFrames.
	FlagTruncated uint32 = 1 << iota
	// FlagFault: a read failed part way through the stack.
	FlagFault
	// FlagNeedsFP: a goroutine in a system call in a Go version without
	// g.syscallbp; PCs holds only syscallpc and the decoder unwinds the rest.
	FlagNeedsFP
	// FlagTorn: the g changed while its stack was walked.
	FlagTorn
	// FlagUnchanged: Request.Unchanged said the goroutine is as it was in
	// the previous walk; the stack was not read and PCs is empty.
	FlagUnchanged
)

// Offsets are the byte offsets inside runtime.g the walkers need; -1 marks a
// field absent in the target's Go version.
type Offsets struct {
	StackLo, StackHi, AtomicStatus  int32
	SchedSP, SchedPC, SchedBP       int32
	SyscallSP, SyscallPC, SyscallBP int32
	// Goid (u64), WaitReason (u8) and TrackingSeq (u8) are what the eBPF
	// walker compares, in the kernel, to honour Request.Unchanged.
	Goid, WaitReason, TrackingSeq int32
}

// Request says what to walk in one process.
type Request struct {
	// Allgs and Allglen are the run-time addresses of runtime.allgs (a []*g)
	// and runtime.allglen.
	Allgs, Allglen uint64
	// GSize is how many bytes of each g to copy.
	GSize uint32
	Off   Offsets
	// MaxFrames bounds each stack; MaxGoroutines bounds the allgs entries visited.
	MaxFrames, MaxGoroutines uint32
	// Unchanged, when set, is asked before a stack is read; returning true
	// skips the read and marks the record FlagUnchanged. The eBPF walker
	// does not call it: when it is set, the kernel skips the stacks of
	// goroutines (not running) whose goid, status, waitreason, saved sp/pc
	// and trackingSeq match its own previous walk, the test the
	// snapshotter's callback makes.
	Unchanged func(index uint32, gaddr uint64, g []byte) bool
}

// Stats describes one walk.
type Stats struct {
	// AllgLen is the runtime's allglen when the walk started.
	AllgLen uint32
	// Visited counts allgs entries looked at; Emitted the records produced;
	// Dead the idle or dead goroutines skipped.
	Visited, Emitted, Dead uint32
	// Faults counts records whose stack read failed part way.
	Faults uint32
	// Passes is how many iterator runs the eBPF walker needed.
	Passes int
	// BlockedRereads counts waiting goroutines read again because they
	// woke or parked anew while what they wait on was being resolved
	// (their g or sudogs changed after the walk read them);
	// BlockedUnresolved those left without BlockedOn, still moving after
	// maxBlockedRetries re-reads or gone. The Snapshotter counts both
	// (LastStats); walkers leave them zero.
	BlockedRereads, BlockedUnresolved uint32
	// Took is the wall time of the walk.
	Took time.Duration
}

// Walker copies goroutine records out of one process.
type Walker interface {
	// Name is "ebpf" or "procmem".
	Name() string
	// Walk calls fn for each live goroutine of process pid, in allgs order.
	Walk(ctx context.Context, pid int, req Request, fn func(*Record) error) (Stats, error)
}

// Goroutine statuses, as runtime2.go numbers them (stable across 1.21–1.26).
const (
	gIdle      = 0
	gRunnable  = 1
	gRunning   = 2
	gSyscall   = 3
	gWaiting   = 4
	gDead      = 6
	gCopystack = 8
	gPreempted = 9
	gLeaked    = 10 // Go 1.26
	gDeadextra = 11 // Go 1.26
	gScan      = 0x1000
	maxGoid    = 1 << 48
	maxAllglen = 1 << 24
)
