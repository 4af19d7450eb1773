package walk

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"slices"
	"time"
)

// inlineFrames is how many PCs per goroutine the walk's arena holds.
const inlineFrames = 64

// batchGs is how many goroutines the userspace walker handles per round of
// system calls; one process_vm_readv takes up to maxIOV ranges.
const batchGs = maxIOV

// ProcMemWalker walks goroutines from userspace with process_vm_readv. It
// needs only ptrace rights over the target, so it serves kernels without
// sleepable iterators and hosts where BPF is not permitted.
type ProcMemWalker struct{}

// Name implements Walker.
func (ProcMemWalker) Name() string { return "procmem" }

// Walk implements Walker.
func (w ProcMemWalker) Walk(ctx context.Context, pid int, req Request, fn func(*Record) error) (Stats, error) {
	start := time.Now()
	mem, err := NewProcMem(pid)
	if err != nil {
		return Stats{}, err
	}
	st, err := walkMem(ctx, mem, req, fn)
	st.Took = time.Since(start)
	return st, err
}

// readAllgs reads the allgs pointer array.
func readAllgs(mem *ProcMem, req Request) ([]uint64, uint32, error) {
	var hdr [24]byte
	if err := mem.ReadAt(hdr[:], req.Allgs); err != nil {
		return nil, 0, fmt.Errorf("read runtime.allgs at %#x: %w", req.Allgs, err)
	}
	ptr := binary.LittleEndian.Uint64(hdr[0:])
	n := binary.LittleEndian.Uint64(hdr[8:])
	r := reader{mem: mem}
	glen, err := r.u64(req.Allglen)
	if err != nil {
		return nil, 0, fmt.Errorf("read runtime.allglen at %#x: %w", req.Allglen, err)
	}
	if glen > maxAllglen || n > maxAllglen {
		return nil, 0, fmt.Errorf("runtime.allglen of pid %d is %d (allgs len %d): not a plausible goroutine count; the runtime variable addresses are wrong", mem.pid, glen, n)
	}
	n = min(n, glen, uint64(req.MaxGoroutines))
	gs := make([]uint64, n)
	if n > 0 {
		if err := mem.ReadAt(bytesOf(gs), ptr); err != nil {
			return nil, 0, fmt.Errorf("read %d allgs entries at %#x: %w", n, ptr, err)
		}
	}
	return gs, uint32(glen), nil
}

// walkMem is the userspace walk: the same rules as the eBPF iterator
// (bpf/goroutines.bpf.c), batched so that each step of every stack in a
// batch of goroutines costs one system call.
func walkMem(ctx context.Context, mem *ProcMem, req Request, fn func(*Record) error) (Stats, error) {
	gs, glen, err := readAllgs(mem, req)
	if err != nil {
		return Stats{}, err
	}
	st, err := walkGs(ctx, mem, req, gs, fn)
	st.AllgLen = glen
	return st, err
}

// walkOne walks the single goroutine at gaddr, allgs[index]; nil if it is
// dead. The record is the caller's to keep.
func walkOne(ctx context.Context, mem *ProcMem, req Request, index uint32, gaddr uint64) (*Record, error) {
	req.Unchanged = nil
	var out *Record
	_, err := walkGs(ctx, mem, req, []uint64{gaddr}, func(r *Record) error {
		c := *r
		c.Index = index
		c.G = bytes.Clone(r.G)
		c.PCs = slices.Clone(r.PCs)
		out = &c
		return nil
	})
	return out, err
}

// walkGs walks the goroutines at the given g addresses.
func walkGs(ctx context.Context, mem *ProcMem, req Request, gs []uint64, fn func(*Record) error) (Stats, error) {
	var st Stats
	gsize := int(req.GSize)
	// Buffers for one batch, no larger than the process needs: zeroing
	// them for a full batch cost small processes more than their walk.
	nb := max(min(len(gs), batchGs), 1)
	gbuf := make([]byte, nb*gsize)
	reads := make([]Read, 0, nb)
	type walkState struct {
		rec         Record
		fp, lo, hi  uint64
		prevFP      uint64
		active      bool
		frame       [16]byte
		check       [16]byte
		status      [4]byte
		checkSP     int32
		checkStatus bool
	}
	states := make([]walkState, nb)
	// Each goroutine's PCs start in a shared arena of inlineFrames slots;
	// deeper stacks grow out of it on their own.
	pcbuf := make([]uint64, nb*inlineFrames)
	idx := make([]int, 0, nb)
	for base := 0; base < len(gs); base += batchGs {
		if err := ctx.Err(); err != nil {
			return st, err
		}
		batch := gs[base:min(base+batchGs, len(gs))]
		reads = reads[:0]
		for i, ga := range batch {
			var buf []byte
			if ga != 0 {
				buf = gbuf[i*gsize : (i+1)*gsize]
			}
			reads = append(reads, Read{Addr: ga, Buf: buf})
		}
		if err := mem.ReadBatch(reads); err != nil {
			return st, err
		}
		// Set up each goroutine's walk.
		live := 0
		for i, ga := range batch {
			s := &states[i]
			*s = walkState{}
			st.Visited++
			if ga == 0 || reads[i].Err != nil {
				st.Dead++
				continue
			}
			g := gbuf[i*gsize : (i+1)*gsize]
			status := le32(g, int64(req.Off.AtomicStatus)) &^ gScan
			if status == gIdle || status == gDead || status == gDeadextra {
				st.Dead++
				continue
			}
			s.rec = Record{Index: uint32(base + i), GAddr: ga, G: g, PCs: pcbuf[i*inlineFrames : i*inlineFrames : (i+1)*inlineFrames]}
			s.lo, s.hi = le64(g, int64(req.Off.StackLo)), le64(g, int64(req.Off.StackHi))
			s.checkStatus = true
			live++
			if status == gRunning || status == gCopystack {
				continue
			}
			if req.Unchanged != nil && req.Unchanged(uint32(base+i), ga, g) {
				s.rec.Flags |= FlagUnchanged
				continue
			}
			pcOff, bpOff, spOff := req.Off.SchedPC, req.Off.SchedBP, req.Off.SchedSP
			if status == gSyscall {
				pcOff, bpOff, spOff = req.Off.SyscallPC, req.Off.SyscallBP, req.Off.SyscallSP
			}
			s.checkSP = spOff
			pc := le64(g, int64(pcOff))
			if pc != 0 {
				s.rec.PCs = append(s.rec.PCs, pc)
			}
			if bpOff < 0 {
				s.rec.Flags |= FlagNeedsFP
				continue
			}
			s.fp = le64(g, int64(bpOff))
			s.active = true
		}
		// Walk all stacks of the batch one frame at a time.
		for depth := 1; depth < int(req.MaxFrames)+1; depth++ {
			reads, idx = reads[:0], idx[:0]
			for i := range batch {
				s := &states[i]
				if !s.active {
					continue
				}
				if s.fp == 0 || s.fp%8 != 0 || s.fp < s.lo || s.fp+16 > s.hi || s.fp <= s.prevFP {
					s.active = false
					continue
				}
				if len(s.rec.PCs) >= int(req.MaxFrames) {
					s.rec.Flags |= FlagTruncated
					s.active = false
					continue
				}
				reads = append(reads, Read{Addr: s.fp, Buf: s.frame[:]})
				idx = append(idx, i)
			}
			if len(reads) == 0 {
				break
			}
			if err := mem.ReadBatch(reads); err != nil {
				return st, err
			}
			for k, i := range idx {
				s := &states[i]
				if reads[k].Err != nil {
					s.rec.Flags |= FlagFault
					s.active = false
					continue
				}
				next := binary.LittleEndian.Uint64(s.frame[0:])
				ret := binary.LittleEndian.Uint64(s.frame[8:])
				if ret == 0 {
					s.active = false
					continue
				}
				s.rec.PCs = append(s.rec.PCs, ret)
				s.prevFP, s.fp = s.fp, next
			}
		}
		// Re-read status and the saved sp/pc: a change means a torn walk.
		reads, idx = reads[:0], idx[:0]
		for i, ga := range batch {
			s := &states[i]
			// Only stacks read after the g can be torn; an unchanged or
			// running goroutine's record is the g itself, read at once.
			if !s.checkStatus || s.rec.Flags&FlagUnchanged != 0 || len(s.rec.PCs) <= 1 {
				continue
			}
			reads = append(reads, Read{Addr: ga + uint64(req.Off.AtomicStatus), Buf: s.status[:]})
			idx = append(idx, i)
			if s.checkSP > 0 && s.rec.Flags&FlagUnchanged == 0 {
				reads = append(reads, Read{Addr: ga + uint64(s.checkSP), Buf: s.check[:]})
				idx = append(idx, i)
			}
		}
		if err := mem.ReadBatch(reads); err != nil {
			return st, err
		}
		for k, i := range idx {
			s := &states[i]
			g := s.rec.G
			if reads[k].Err != nil {
				s.rec.Flags |= FlagTorn
				continue
			}
			if len(reads[k].Buf) == 4 {
				if !bytes.Equal(s.status[:], g[req.Off.AtomicStatus:req.Off.AtomicStatus+4]) {
					s.rec.Flags |= FlagTorn
				}
				continue
			}
			// sched.sp and sched.pc (and syscallsp/pc) sit side by side.
			if !bytes.Equal(s.check[:], g[s.checkSP:s.checkSP+16]) {
				s.rec.Flags |= FlagTorn
			}
		}
		for i := range batch {
			s := &states[i]
			if !s.checkStatus {
				continue
			}
			if s.rec.Flags&FlagFault != 0 {
				st.Faults++
			}
			st.Emitted++
			if err := fn(&s.rec); err != nil {
				return st, err
			}
		}
	}
	return st, nil
}
