//go:build linux

package bpf

import (
	"encoding/binary"
	"fmt"
	"unsafe"
)

// RecordFlags are the bits of GRecord.Flags: enum rec_flag of
// goroutines.bpf.c, as bpf2go generates it.
type RecordFlags = goroutinesRecFlag

// Record flags, set in GRecord.Flags.
const (
	// FlagTruncated: PCs is MaxFrames long and the frame chain went on.
	FlagTruncated = goroutinesRecFlagFLAG_TRUNCATED
	// FlagFault: reading a frame (or the post-walk re-read of g) failed; PCs holds what was read before.
	FlagFault = goroutinesRecFlagFLAG_FAULT
	// FlagNeedsFP: a syscall goroutine in a runtime without g.syscallbp; PCs holds only syscallpc.
	FlagNeedsFP = goroutinesRecFlagFLAG_NEEDS_FP
	// FlagTorn: the g's status or saved sp/pc changed while its stack was walked.
	FlagTorn = goroutinesRecFlagFLAG_TORN
	// FlagUnchanged: WalkRequest.SkipUnchanged found the goroutine as the
	// previous walk left it; its stack was not walked and PCs is empty.
	FlagUnchanged = goroutinesRecFlagFLAG_UNCHANGED
)

// recHdrSize is sizeof(struct rec_hdr) in goroutines.bpf.c.
const recHdrSize = int(unsafe.Sizeof(goroutinesRecHdr{}))

// GRecord is one live goroutine as seen by the BPF walker.
type GRecord struct {
	Index uint32      // index in allgs
	GAddr uint64      // address of the g
	G     []byte      // the first GSize bytes of the g (reused between calls; copy if kept)
	PCs   []uint64    // saved pc then frame return addresses (reused between calls)
	Flags RecordFlags // Flag* bits
}

// parseRecord decodes a raw ring buffer record into r, reusing r.PCs.
// r.G aliases raw.
func parseRecord(raw []byte, r *GRecord) (walkID uint32, err error) {
	if len(raw) < recHdrSize {
		return 0, fmt.Errorf("goroutine record of %d bytes is shorter than its %d-byte header", len(raw), recHdrSize)
	}
	// The generated type has the host's layout, and the bindings exist
	// only for little-endian hosts: the header's bytes are its memory.
	var h goroutinesRecHdr
	copy(unsafe.Slice((*byte)(unsafe.Pointer(&h)), recHdrSize), raw)
	want := recHdrSize + int(h.Gsize) + 8*int(h.Nframes)
	if len(raw) < want {
		return 0, fmt.Errorf("goroutine record %d: %d bytes, header says %d (g %d bytes, %d frames)",
			h.Index, len(raw), want, h.Gsize, h.Nframes)
	}
	r.Index = h.Index
	r.GAddr = h.Gaddr
	r.Flags = h.Flags
	r.G = raw[recHdrSize : recHdrSize+int(h.Gsize)]
	r.PCs = r.PCs[:0]
	pcs := raw[recHdrSize+int(h.Gsize) : want]
	for i := 0; i+8 <= len(pcs); i += 8 {
		r.PCs = append(r.PCs, binary.LittleEndian.Uint64(pcs[i:]))
	}
	return h.WalkId, nil
}
