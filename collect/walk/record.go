// Package walk reads every goroutine of a live Go process without stopping
// it. Two walkers produce the same raw records (bpf.GRecord) — a sleepable
// eBPF task iterator and a process_vm_readv reader — and one decoder turns
// records into a snapshot.Snapshot, so both paths give the same answer on
// the same process. The process itself is reached through collect/process.
//
// Like all of collect/, it is internal to the goroscope binary, not meant
// for import outside this module.
package walk

import (
	"context"
	"time"

	"github.com/goroscope/goroscope/bpf"
)

// A walker's records are the eBPF walker's bpf.GRecord: the bytes of a g
// (the first Request.GSize) and the program counters of its stack, found by
// walking frame pointers, leaf first: PCs[0] is the saved pc (sched.pc, or
// syscallpc for a goroutine in a system call) and the rest are return
// addresses from the frame-pointer chain, empty for running goroutines.
// Walkers reuse G and PCs between callbacks: copy to keep. Flags are the
// bpf.Flag* bits, with the same meaning for both walkers; FlagUnchanged
// marks a record whose stack was not read because Request.Unchanged (or
// the kernel's own test) found the goroutine as it was.

// Request says what to walk in one process.
type Request struct {
	// Allgs and Allglen are the run-time addresses of runtime.allgs (a []*g)
	// and runtime.allglen.
	Allgs, Allglen uint64
	// GSize is how many bytes of each g to copy.
	GSize uint32
	// Off are the offsets inside runtime.g the walkers read; Goid,
	// WaitReason and TrackingSeq are what the eBPF walker compares, in the
	// kernel, to honour Unchanged.
	Off bpf.GOffsets
	// MaxFrames bounds each stack; MaxGoroutines bounds the allgs entries visited.
	MaxFrames, MaxGoroutines uint32
	// Unchanged, when set, is asked before a stack is read; returning true
	// skips the read and marks the record bpf.FlagUnchanged. The eBPF walker
	// does not call it: when it is set, the kernel skips the stacks of
	// goroutines (not running) whose goid, status, waitreason, saved sp/pc
	// and trackingSeq match its own previous walk, the test the
	// snapshotter's callback makes.
	Unchanged func(index uint32, gaddr uint64, g []byte) bool
}

// Stats describes one walk: the eBPF walker's counts (the userspace walker
// makes the same, with Passes 0) and the snapshotter's own.
type Stats struct {
	bpf.WalkStats
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
	Walk(ctx context.Context, pid int, req Request, fn func(*bpf.GRecord) error) (Stats, error)
}

// Bounds on what a live runtime holds.
const (
	maxGoid    = 1 << 48
	maxAllglen = 1 << 24
)
