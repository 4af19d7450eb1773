package walk

import (
	"context"
	"time"

	"github.com/goroscope/goroscope/bpf"
)

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
// comes back bpf.FlagUnchanged without PCs.
func (e *EBPFWalker) Walk(ctx context.Context, pid int, req Request, fn func(*bpf.GRecord) error) (Stats, error) {
	start := time.Now()
	breq := bpf.WalkRequest{
		PID:   uint32(pid),
		Allgs: req.Allgs, Allglen: req.Allglen,
		GSize: req.GSize,
		Off:   req.Off,
		// Deeper stacks come back FlagTruncated; the decoder finishes them
		// from userspace.
		MaxFrames:     min(req.MaxFrames, bpf.MaxFramesLimit),
		MaxGoroutines: req.MaxGoroutines,
		SkipUnchanged: req.Unchanged != nil && canSkip(req),
	}
	bst, err := e.w.Walk(ctx, breq, fn)
	return Stats{WalkStats: bst, Took: time.Since(start)}, err
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
