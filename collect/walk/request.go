package walk

import (
	"fmt"

	"github.com/goroscope/goroscope/bpf"
	"github.com/goroscope/goroscope/collect/process"
	"github.com/goroscope/goroscope/pkg/golayout"
)

// Walk limits.
const (
	// DefaultMaxFrames bounds each stack; the runtime's own tracebacks print
	// at most 100 frames; deeper stacks are kept whole for flame graphs.
	DefaultMaxFrames = 1024
	// DefaultMaxGoroutines bounds the allgs entries visited per walk.
	DefaultMaxGoroutines = 1 << 21
)

// newRequest is the request that walks t: its allgs, the g fields the
// walkers read, and only the prefix of each g that holds every field read.
func newRequest(t *process.Target) Request {
	g := t.Layout.G
	need := int64(0)
	for _, off := range []int64{g.StackLo, g.StackHi, g.SchedSP, g.SchedPC, g.SchedBP, g.SyscallSP, g.SyscallPC, g.SyscallBP,
		g.AtomicStatus, g.Goid, g.WaitSince, g.WaitReason, g.TrackingSeq, g.LockedM, g.ParentGoid, g.Gopc, g.Startpc, g.Waiting, g.Labels} {
		need = max(need, off+8)
	}
	return Request{
		Allgs:         t.Vars.Allgs + t.Bias,
		Allglen:       t.Vars.Allglen + t.Bias,
		GSize:         uint32(min(need, g.Size)),
		Off:           offsets(&g),
		MaxFrames:     DefaultMaxFrames,
		MaxGoroutines: DefaultMaxGoroutines,
	}
}

// offsets are the walkers' offsets of g's fields.
func offsets(g *golayout.GLayout) bpf.GOffsets {
	return bpf.GOffsets{
		StackLo: int32(g.StackLo), StackHi: int32(g.StackHi), AtomicStatus: int32(g.AtomicStatus),
		SchedSP: int32(g.SchedSP), SchedPC: int32(g.SchedPC), SchedBP: int32(g.SchedBP),
		SyscallSP: int32(g.SyscallSP), SyscallPC: int32(g.SyscallPC), SyscallBP: int32(g.SyscallBP),
		Goid: int32(g.Goid), WaitReason: int32(g.WaitReason), TrackingSeq: int32(g.TrackingSeq),
	}
}

// GoroutineCount counts the live goroutines of t, reading only each g's
// status.
func GoroutineCount(t *process.Target) (int, error) {
	req := newRequest(t)
	mem := t.Mem()
	gs, _, err := readAllgs(mem, req)
	if err != nil {
		return 0, fmt.Errorf("count goroutines of pid %d: %w", t.PID, err)
	}
	statuses := make([]uint32, len(gs))
	reads := make([]process.Read, 0, len(gs))
	for i, ga := range gs {
		if ga == 0 {
			continue
		}
		b := bytesOf32(statuses[i : i+1])
		reads = append(reads, process.Read{Addr: ga + uint64(req.Off.AtomicStatus), Buf: b})
	}
	if err := mem.ReadBatch(reads); err != nil {
		return 0, fmt.Errorf("count goroutines of pid %d: %w", t.PID, err)
	}
	n := 0
	for _, r := range reads {
		if r.Err != nil {
			continue
		}
		if _, ok := state(golayout.Status(golayout.Uint32(r.Buf, 0)).Strip()); ok {
			n++
		}
	}
	return n, nil
}
