package walk

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"slices"
	"time"
	"unsafe"

	"github.com/goroscope/goroscope/bpf"
	"github.com/goroscope/goroscope/collect/process"
	"github.com/goroscope/goroscope/pkg/golayout"
)

// inlineFrames is how many PCs per goroutine the walk's arena holds.
const inlineFrames = 64

// batchGs is how many goroutines the userspace walker handles per round of
// system calls; one process_vm_readv takes up to process.MaxIOV ranges.
const batchGs = process.MaxIOV

// ProcMemWalker walks goroutines from userspace with process_vm_readv. It
// needs only ptrace rights over the target, so it serves kernels without
// sleepable iterators and hosts where BPF is not permitted.
type ProcMemWalker struct{}

// Name implements Walker.
func (ProcMemWalker) Name() string { return "procmem" }

// Walk implements Walker.
func (w ProcMemWalker) Walk(ctx context.Context, pid int, req Request, fn func(*bpf.GRecord) error) (Stats, error) {
	start := time.Now()
	mem, err := process.NewMem(pid)
	if err != nil {
		return Stats{}, err
	}
	st, err := walkMem(ctx, mem, req, fn)
	st.Took = time.Since(start)
	return st, err
}

// readAllgs reads the allgs pointer array.
func readAllgs(mem *process.Mem, req Request) ([]uint64, uint32, error) {
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
		return nil, 0, fmt.Errorf("runtime.allglen of pid %d is %d (allgs len %d): not a plausible goroutine count; the runtime variable addresses are wrong", mem.PID(), glen, n)
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
func walkMem(ctx context.Context, mem *process.Mem, req Request, fn func(*bpf.GRecord) error) (Stats, error) {
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
func walkOne(ctx context.Context, mem *process.Mem, req Request, index uint32, gaddr uint64) (*bpf.GRecord, error) {
	req.Unchanged = nil
	var out *bpf.GRecord
	_, err := walkGs(ctx, mem, req, []uint64{gaddr}, func(r *bpf.GRecord) error {
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
func walkGs(ctx context.Context, mem *process.Mem, req Request, gs []uint64, fn func(*bpf.GRecord) error) (Stats, error) {
	var st Stats
	gsize := int(req.GSize)
	// Buffers for one batch, no larger than the process needs: zeroing
	// them for a full batch cost small processes more than their walk.
	nb := max(min(len(gs), batchGs), 1)
	gbuf := make([]byte, nb*gsize)
	reads := make([]process.Read, 0, nb)
	type walkState struct {
		rec         bpf.GRecord
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
			reads = append(reads, process.Read{Addr: ga, Buf: buf})
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
			status := golayout.Status(golayout.Uint32(g, int64(req.Off.AtomicStatus))).Strip()
			if status == golayout.StatusIdle || status == golayout.StatusDead || status == golayout.StatusDeadExtra {
				st.Dead++
				continue
			}
			s.rec = bpf.GRecord{Index: uint32(base + i), GAddr: ga, G: g, PCs: pcbuf[i*inlineFrames : i*inlineFrames : (i+1)*inlineFrames]}
			s.lo, s.hi = golayout.Uint64(g, int64(req.Off.StackLo)), golayout.Uint64(g, int64(req.Off.StackHi))
			s.checkStatus = true
			live++
			if status == golayout.StatusRunning || status == golayout.StatusCopystack {
				continue
			}
			if req.Unchanged != nil && req.Unchanged(uint32(base+i), ga, g) {
				s.rec.Flags |= bpf.FlagUnchanged
				continue
			}
			pcOff, bpOff, spOff := req.Off.SchedPC, req.Off.SchedBP, req.Off.SchedSP
			if status == golayout.StatusSyscall {
				pcOff, bpOff, spOff = req.Off.SyscallPC, req.Off.SyscallBP, req.Off.SyscallSP
			}
			s.checkSP = spOff
			pc := golayout.Uint64(g, int64(pcOff))
			if pc != 0 {
				s.rec.PCs = append(s.rec.PCs, pc)
			}
			if bpOff < 0 {
				s.rec.Flags |= bpf.FlagNeedsFP
				continue
			}
			s.fp = golayout.Uint64(g, int64(bpOff))
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
					s.rec.Flags |= bpf.FlagTruncated
					s.active = false
					continue
				}
				reads = append(reads, process.Read{Addr: s.fp, Buf: s.frame[:]})
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
					s.rec.Flags |= bpf.FlagFault
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
			if !s.checkStatus || s.rec.Flags&bpf.FlagUnchanged != 0 || len(s.rec.PCs) <= 1 {
				continue
			}
			reads = append(reads, process.Read{Addr: ga + uint64(req.Off.AtomicStatus), Buf: s.status[:]})
			idx = append(idx, i)
			if s.checkSP > 0 && s.rec.Flags&bpf.FlagUnchanged == 0 {
				reads = append(reads, process.Read{Addr: ga + uint64(s.checkSP), Buf: s.check[:]})
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
				s.rec.Flags |= bpf.FlagTorn
				continue
			}
			if len(reads[k].Buf) == 4 {
				if !bytes.Equal(s.status[:], g[req.Off.AtomicStatus:req.Off.AtomicStatus+4]) {
					s.rec.Flags |= bpf.FlagTorn
				}
				continue
			}
			// sched.sp and sched.pc (and syscallsp/pc) sit side by side.
			if !bytes.Equal(s.check[:], g[s.checkSP:s.checkSP+16]) {
				s.rec.Flags |= bpf.FlagTorn
			}
		}
		for i := range batch {
			s := &states[i]
			if !s.checkStatus {
				continue
			}
			if s.rec.Flags&bpf.FlagFault != 0 {
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

// reader reads typed values out of a Memory.
type reader struct {
	mem process.Memory
	buf [8]byte
}

func (r *reader) u64(addr uint64) (uint64, error) {
	if err := r.mem.ReadAt(r.buf[:8], addr); err != nil {
		return 0, err
	}
	return binary.LittleEndian.Uint64(r.buf[:8]), nil
}

// bytesOf views a []uint64 as bytes without copying.
func bytesOf(s []uint64) []byte {
	if len(s) == 0 {
		return nil
	}
	return unsafe.Slice((*byte)(unsafe.Pointer(&s[0])), len(s)*8)
}

// bytesOf32 views a []uint32 as bytes without copying.
func bytesOf32(s []uint32) []byte {
	if len(s) == 0 {
		return nil
	}
	return unsafe.Slice((*byte)(unsafe.Pointer(&s[0])), len(s)*4)
}
