package walk

import (
	"context"
	"time"

	"github.com/goroscope/goroscope/bpf"
)

// ebpfMaxFrames is the deepest stack the BPF program walks.
const ebpfMaxFrames = 128

// EBPFWalker walks goroutines with goroscope's sleepable BPF task iterator,
// which copies each g and walks its frame pointers inside the kernel.
type EBPFWalker struct {
	w *bpf.GoroutineWalker
}

// NewEBPFWalker loads the BPF program. It fails on kernels without sleepable
// task iterators or without BPF privileges, and where the kernel's verifier
// rejects the program, with a *bpf.LoadError naming the cause in one line;
// callers then use ProcMemWalker. A load can take the kernel long (seconds
// of verification, which nothing interrupts): callers that must answer
// soon load it on another goroutine.
func NewEBPFWalker() (*EBPFWalker, error) {
	w, err := bpf.LoadGoroutineWalker()
	if err != nil {
		return nil, err
	}
	return &EBPFWalker{w: w}, nil
}

// Close unloads the program.
func (e *EBPFWalker) Close() error { return e.w.Close() }

// Name implements Walker.
func (e *EBPFWalker) Name() string { return "ebpf" }

// Walk implements Walker. A set Request.Unchanged is not called; it turns
// on the kernel's own test instead (bpf.WalkRequest.SkipUnchanged): a
// goroutine parked as the program's previous walk of the process saw it
// comes back FlagUnchanged without PCs.
func (e *EBPFWalker) Walk(ctx context.Context, pid int, req Request, fn func(*Record) error) (Stats, error) {
	start := time.Now()
	breq := bpf.WalkRequest{
		PID:   uint32(pid),
		Allgs: req.Allgs, Allglen: req.Allglen,
		GSize: req.GSize,
		Off: bpf.GOffsets{
			StackLo: req.Off.StackLo, StackHi: req.Off.StackHi, AtomicStatus: req.Off.AtomicStatus,
			SchedSP: req.Off.SchedSP, SchedPC: req.Off.SchedPC, SchedBP: req.Off.SchedBP,
			SyscallSP: req.Off.SyscallSP, SyscallPC: req.Off.SyscallPC, SyscallBP: req.Off.SyscallBP,
			Goid: req.Off.Goid, WaitReason: req.Off.WaitReason, TrackingSeq: req.Off.TrackingSeq,
		},
		// Deeper stacks come back FlagTruncated; the decoder finishes them
		// from userspace.
		MaxFrames:     min(req.MaxFrames, ebpfMaxFrames),
		MaxGoroutines: req.MaxGoroutines,
		SkipUnchanged: req.Unchanged != nil && canSkip(req),
	}
	var rec Record
	bst, err := e.w.Walk(ctx, breq, func(g *bpf.GRecord) error {
		rec = Record{Index: g.Index, GAddr: g.GAddr, G: g.G, PCs: g.PCs, Flags: convertFlags(g.Flags)}
		return fn(&rec)
	})
	st := Stats{
		AllgLen: bst.AllgLen, Visited: bst.Visited, Emitted: bst.Emitted, Dead: bst.Dead,
		Faults: bst.Faults, Passes: bst.Passes, Took: time.Since(start),
	}
	return st, err
}

func convertFlags(f uint32) uint32 {
	var out uint32
	for _, m := range [...]struct{ from, to uint32 }{
		{bpf.FlagTruncated, FlagTruncated},
		{bpf.FlagFault, FlagFault},
		{bpf.FlagNeedsFP, FlagNeedsFP},
		{bpf.FlagTorn, FlagTorn},
		{bpf.FlagUnchanged, FlagUnchanged},
	} {
		if f&m.from != 0 {
			out |= m.to
		}
	}
	return out
}

// canSkip reports whether the g fields the kernel compares to skip unchanged
// goroutines lie inside the copied bytes (a layout may lack one: -1).
func canSkip(req Request) bool {
	for _, f := range [...]struct{ off, size int32 }{
		{req.Off.Goid, 8}, {req.Off.WaitReason, 1}, {req.Off.TrackingSeq, 1},
	} {
		if f.off < 0 || int64(f.off)+int64(f.size) > int64(req.GSize) {
			return false
		}
	}
	return true
}
