//go:build linux

package bpf

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"syscall"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
	"github.com/cilium/ebpf/ringbuf"
)

// Limits of a WalkRequest (they match goroutines.bpf.c).
const (
	MaxGSize         = 1024    // largest WalkRequest.GSize
	MaxFramesLimit   = 128     // largest WalkRequest.MaxFrames
	MaxGoroutinesCap = 1 << 23 // largest WalkRequest.MaxGoroutines (bpf_loop's limit)
	maxSpan          = 256     // largest torn-check span
)

// DefaultWalkTimeout bounds a Walk whose context has no deadline.
const DefaultWalkTimeout = 30 * time.Second

// passBudget is how long one iterator pass may run in the kernel before it
// yields back to userspace (which then checks ctx and starts the next pass).
// Kernels built without kernel preemption hold a CPU for the whole pass, so
// it is kept short: a long pass delays the target's own threads.
const passBudget = 20 * time.Millisecond

// pollInterval is how often the ring drain looks at ctx and the running pass.
const pollInterval = 20 * time.Millisecond

// GOffsets are byte offsets of runtime.g fields; -1 marks a field the runtime lacks.
type GOffsets struct {
	StackLo, StackHi          int32 // g.stack.lo, g.stack.hi
	AtomicStatus              int32 // g.atomicstatus (u32)
	SchedSP, SchedPC, SchedBP int32 // g.sched.sp, .pc, .bp
	SyscallSP, SyscallPC      int32 // g.syscallsp, g.syscallpc
	SyscallBP                 int32 // g.syscallbp (Go >= 1.23), else -1
	// Read only with WalkRequest.SkipUnchanged:
	Goid        int32 // g.goid (u64)
	WaitReason  int32 // g.waitreason (u8)
	TrackingSeq int32 // g.trackingSeq (u8)
}

// WalkRequest describes one target process and its runtime layout.
type WalkRequest struct {
	PID            uint32
	Allgs, Allglen uint64   // run-time addresses of runtime.allgs (slice header) and runtime.allglen
	GSize          uint32   // bytes of each g to copy, 1..MaxGSize
	Off            GOffsets // field offsets inside g
	MaxFrames      uint32   // PCs per goroutine, 1..MaxFramesLimit
	MaxGoroutines  uint32   // bound on allgs entries visited, 1..MaxGoroutinesCap
	// SkipUnchanged skips the stack of a goroutine (not running or in
	// copystack) whose status, goid, saved sp/pc, waitreason and trackingSeq
	// equal those of the last SkipUnchanged walk of that g in this process:
	// its record has FlagUnchanged and no PCs. It needs Off.Goid,
	// Off.WaitReason and Off.TrackingSeq.
	SkipUnchanged bool
}

// WalkStats summarizes a Walk.
type WalkStats struct {
	AllgLen uint32 // min(len(allgs), allglen) as last read
	Visited uint32 // allgs entries looked at
	Emitted uint32 // records passed to fn
	Dead    uint32 // idle or dead goroutines skipped
	Passes  int    // iterator runs (more than one if the ring filled or a pass ran out of time)
	Faults  uint32 // failed reads of allgs entries, gs or frames
}

// Walk streams one record per live goroutine (status not idle(0)/dead(6)) of
// process req.PID to fn, in allgs order.
//
// Per goroutine i < min(len(allgs), allglen, MaxGoroutines) with g = allgs[i] != 0:
// the first GSize bytes of g are copied; s = atomicstatus &^ 0x1000.
// s==2 (running) and s==8 (copystack) get no PCs. s==3 (syscall) starts from
// syscallpc/syscallbp, or, when Off.SyscallBP is -1, gets PCs=[syscallpc] and
// FlagNeedsFP. Others start from sched.pc/sched.bp. PCs[0] is the start pc when
// nonzero; then, while fp != 0, fp%8 == 0, stack.lo <= fp < stack.hi-8 and fp
// exceeds the previous fp: if len(PCs) == MaxFrames set FlagTruncated and stop;
// read next,ret at fp (failure: FlagFault, stop); stop if ret == 0; append
// ret; fp = next. Afterwards status and the saved sp/pc used are re-read and
// FlagTorn is set if they changed. An allgs slot or g that cannot be read is
// skipped (no record) and counted in Faults, as is each FlagFault.
//
// With req.SkipUnchanged the walker remembers, per process and g, what the
// last such walk of the g saw (a kernel LRU map of about a million entries
// shared by all processes; entries of exited processes age out), and
// goroutines that match are emitted with FlagUnchanged and no PCs, without
// stack walk or torn check. A walked goroutine updates its entry; a torn one
// drops it.
//
// fn is called on the calling goroutine; its GRecord is reused. An error from
// fn stops the walk and is returned. Walk honours ctx (checked at least every
// 200ms) and applies DefaultWalkTimeout if ctx has no deadline. If the process
// does not exist the error wraps os.ErrNotExist.
func (w *GoroutineWalker) Walk(ctx context.Context, req WalkRequest, fn func(*GRecord) error) (WalkStats, error) {
	var stats WalkStats
	if fn == nil {
		return stats, errors.New("walk goroutines: nil callback")
	}
	cfg, err := req.config()
	if err != nil {
		return stats, err
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, DefaultWalkTimeout)
		defer cancel()
	}

	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return stats, fmt.Errorf("walk goroutines of pid %d: walker is closed", req.PID)
	}
	if _, err := w.drain(ctx, 0, nil, nil); err != nil {
		return stats, fmt.Errorf("walk goroutines of pid %d: drain stale records: %w", req.PID, err)
	}
	it, _, err := attachTaskIter(w.objs.WalkGoroutines, req.PID)
	if err != nil {
		return stats, fmt.Errorf("walk goroutines of pid %d: %w", req.PID, err)
	}
	defer it.Close()

	w.walkID++
	cfg.WalkId = w.walkID
	start := uint32(0)
	for {
		if err := ctx.Err(); err != nil {
			return stats, fmt.Errorf("walk goroutines of pid %d: stopped at goroutine %d after %d passes: %w", req.PID, start, stats.Passes, err)
		}
		cfg.Start = start
		res, fnErr, err := w.pass(ctx, it, &cfg, fn)
		stats.Passes++
		stats.Visited += res.Visited
		stats.Emitted += res.Emitted
		stats.Dead += res.Dead
		stats.Faults += res.Faults
		if res.Found != 0 {
			stats.AllgLen = res.Allglen
		}
		if err != nil {
			return stats, fmt.Errorf("walk goroutines of pid %d: %w", req.PID, err)
		}
		if fnErr != nil {
			return stats, fnErr
		}
		if err := ctx.Err(); err != nil { // drain dropped records once ctx ended
			return stats, fmt.Errorf("walk goroutines of pid %d: stopped in pass %d: %w", req.PID, stats.Passes, err)
		}
		if res.Found == 0 {
			if stats.Passes == 1 {
				return stats, fmt.Errorf("walk goroutines of pid %d: no such process: %w", req.PID, os.ErrNotExist)
			}
			return stats, fmt.Errorf("walk goroutines of pid %d: process exited during the walk (after %d records): %w", req.PID, stats.Emitted, os.ErrNotExist)
		}
		switch res.State {
		case goroutinesWalkStateSTATE_DONE:
			return stats, nil
		case goroutinesWalkStateSTATE_RING_FULL, goroutinesWalkStateSTATE_BUDGET:
			if res.Next <= start && res.Visited == 0 {
				return stats, fmt.Errorf("walk goroutines of pid %d: pass %d made no progress at goroutine %d (state %d, err %d)", req.PID, stats.Passes, start, res.State, res.Err)
			}
			start = res.Next
		case goroutinesWalkStateSTATE_HEADER_FAULT:
			return stats, fmt.Errorf("walk goroutines of pid %d: read runtime.allgs at %#x / runtime.allglen at %#x: %w (are the addresses relocated for a PIE binary?)",
				req.PID, req.Allgs, req.Allglen, syscall.Errno(-res.Err))
		case goroutinesWalkStateSTATE_BAD_CONFIG:
			return stats, fmt.Errorf("walk goroutines of pid %d: the BPF program rejected the configuration %+v", req.PID, cfg)
		default:
			return stats, fmt.Errorf("walk goroutines of pid %d: iterator pass ended in unknown state %d", req.PID, res.State)
		}
	}
}

// pass runs the iterator once from cfg.Start, feeding records to fn while the
// kernel produces them. fnErr is fn's error; err is a transport failure.
func (w *GoroutineWalker) pass(ctx context.Context, it *link.Iter, cfg *goroutinesWalkConfig, fn func(*GRecord) error) (res goroutinesWalkResult, fnErr, err error) {
	if err := w.objs.WalkCfg.Update(uint32(0), cfg, ebpf.UpdateAny); err != nil {
		return res, nil, fmt.Errorf("write walk config: %w", err)
	}
	if err := w.objs.WalkRes.Update(uint32(0), &res, ebpf.UpdateAny); err != nil {
		return res, nil, fmt.Errorf("reset walk result: %w", err)
	}
	rc, err := it.Open()
	if err != nil {
		return res, nil, fmt.Errorf("open task iterator: %w", err)
	}
	done := make(chan error, 1)
	go func() {
		_, err := io.Copy(io.Discard, rc)
		done <- errors.Join(err, rc.Close())
		_ = w.rd.Flush() // wake drain now; should it fail, drain sees the end at its next poll
	}()

	fnErr, err = w.drain(ctx, cfg.WalkId, fn, done)
	if err != nil {
		return res, fnErr, err
	}
	if err := w.objs.WalkRes.Lookup(uint32(0), &res); err != nil {
		return res, fnErr, fmt.Errorf("read walk result: %w", err)
	}
	return res, fnErr, nil
}

// drain reads the ring buffer. With done == nil it discards what is there
// (stale records of an aborted walk). Otherwise it passes records of walkID to
// fn until the pass reports on done and the ring is empty; after fn fails or
// ctx ends it keeps reading but discards, so the ring is empty on return.
func (w *GoroutineWalker) drain(ctx context.Context, walkID uint32, fn func(*GRecord) error, done <-chan error) (fnErr, err error) {
	running := done != nil
	var iterErr, parseErr error
	// The deadline only bounds waiting for records, not reading those
	// already in the ring: set it again only once it has expired.
	setDeadline := func() {
		if running {
			w.rd.SetDeadline(time.Now().Add(pollInterval))
		} else {
			w.rd.SetDeadline(time.Now())
		}
	}
	setDeadline()
	for {
		rerr := w.rd.ReadInto(&w.rec)
		if rerr == nil {
			if fn == nil || fnErr != nil || parseErr != nil || ctx.Err() != nil {
				continue
			}
			id, perr := parseRecord(w.rec.RawSample, &w.grec)
			if perr != nil {
				parseErr = perr
				continue
			}
			if id == walkID {
				fnErr = fn(&w.grec)
			}
			continue
		}
		if !errors.Is(rerr, os.ErrDeadlineExceeded) && !errors.Is(rerr, ringbuf.ErrFlushed) {
			var passErr error
			if running {
				passErr = <-done // the pass still writes to the maps; wait for it
			}
			return fnErr, errors.Join(fmt.Errorf("read ring buffer: %w", rerr), passErr)
		}
		if !running {
			if iterErr != nil {
				return fnErr, fmt.Errorf("read task iterator: %w", iterErr)
			}
			return fnErr, parseErr
		}
		select {
		case iterErr = <-done:
			running = false
		default:
		}
		setDeadline()
	}
}

// config validates r and converts it to the BPF walk_config.
func (r WalkRequest) config() (goroutinesWalkConfig, error) {
	var c goroutinesWalkConfig
	bad := func(format string, args ...any) error {
		return fmt.Errorf("walk goroutines of pid %d: invalid request: %s", r.PID, fmt.Sprintf(format, args...))
	}
	switch {
	case r.PID == 0:
		return c, bad("PID is 0")
	case r.Allgs == 0 || r.Allglen == 0:
		return c, bad("address of runtime.allgs (%#x) or runtime.allglen (%#x) is 0; look them up in the target's symbols", r.Allgs, r.Allglen)
	case r.GSize == 0 || r.GSize > MaxGSize:
		return c, bad("GSize %d is not in 1..%d", r.GSize, MaxGSize)
	case r.MaxFrames == 0 || r.MaxFrames > MaxFramesLimit:
		return c, bad("MaxFrames %d is not in 1..%d", r.MaxFrames, MaxFramesLimit)
	case r.MaxGoroutines == 0 || r.MaxGoroutines > MaxGoroutinesCap:
		return c, bad("MaxGoroutines %d is not in 1..%d", r.MaxGoroutines, MaxGoroutinesCap)
	}
	type field struct {
		name     string
		off      int32
		size     int32
		optional bool
	}
	fields := []field{
		{"StackLo", r.Off.StackLo, 8, false},
		{"StackHi", r.Off.StackHi, 8, false},
		{"AtomicStatus", r.Off.AtomicStatus, 4, false},
		{"SchedSP", r.Off.SchedSP, 8, false},
		{"SchedPC", r.Off.SchedPC, 8, false},
		{"SchedBP", r.Off.SchedBP, 8, false},
		{"SyscallSP", r.Off.SyscallSP, 8, false},
		{"SyscallPC", r.Off.SyscallPC, 8, false},
		{"SyscallBP", r.Off.SyscallBP, 8, true},
	}
	if r.SkipUnchanged {
		fields = append(fields, []field{
			{"Goid", r.Off.Goid, 8, false},
			{"WaitReason", r.Off.WaitReason, 1, false},
			{"TrackingSeq", r.Off.TrackingSeq, 1, false},
		}...)
	}
	for _, f := range fields {
		if f.optional && f.off == -1 {
			continue
		}
		if f.off < 0 || f.off+f.size > int32(r.GSize) {
			return c, bad("offset %s=%d of a %d-byte field is outside the %d copied bytes of g", f.name, f.off, f.size, r.GSize)
		}
	}
	schedOff, schedLen := span(r.Off.AtomicStatus, r.Off.SchedSP, r.Off.SchedPC)
	sysOff, sysLen := span(r.Off.AtomicStatus, r.Off.SyscallSP, r.Off.SyscallPC)
	if schedLen > maxSpan || sysLen > maxSpan {
		return c, bad("g.atomicstatus and the saved sp/pc are more than %d bytes apart", maxSpan)
	}
	c = goroutinesWalkConfig{
		Allgs:          r.Allgs,
		Allglen:        r.Allglen,
		BudgetNs:       uint64(passBudget),
		Pid:            r.PID,
		MaxGoroutines:  r.MaxGoroutines,
		Gsize:          r.GSize,
		MaxFrames:      r.MaxFrames,
		OffStackLo:     r.Off.StackLo,
		OffStackHi:     r.Off.StackHi,
		OffStatus:      r.Off.AtomicStatus,
		OffSchedSp:     r.Off.SchedSP,
		OffSchedPc:     r.Off.SchedPC,
		OffSchedBp:     r.Off.SchedBP,
		OffSyscallSp:   r.Off.SyscallSP,
		OffSyscallPc:   r.Off.SyscallPC,
		OffSyscallBp:   r.Off.SyscallBP,
		SpanSchedOff:   schedOff,
		SpanSchedLen:   schedLen,
		SpanSysOff:     sysOff,
		SpanSysLen:     sysLen,
		OffGoid:        -1,
		OffWaitreason:  -1,
		OffTrackingseq: -1,
	}
	if r.SkipUnchanged {
		c.OffGoid, c.OffWaitreason, c.OffTrackingseq = r.Off.Goid, r.Off.WaitReason, r.Off.TrackingSeq
		c.SkipUnchanged = 1
	}
	return c, nil
}

// span returns the byte range of g covering a u32 status and two u64 fields.
func span(status, a, b int32) (off, length uint32) {
	lo, hi := status, status+4
	for _, o := range []int32{a, b} {
		lo = min(lo, o)
		hi = max(hi, o+8)
	}
	return uint32(lo), uint32(hi - lo)
}
