//go:build linux

package bpf

import (
	"encoding/binary"
	"fmt"
)

// Record flags, set in GRecord.Flags.
const (
	// FlagTruncated: PCs is MaxFrames long and the frame chain went on.
	FlagTruncated uint32 = 1 << 0
	// FlagFault: reading a frame (or the post-walk re-read of g) failed; PCs holds what was read before.
	FlagFault uint32 = 1 << 1
	// FlagNeedsFP: a syscall goroutine in a runtime without g.syscallbp; PCs holds only syscallpc.
	FlagNeedsFP uint32 = 1 << 2
	// FlagTorn: the g's status or saved sp/pc changed while its stack was walked.
	FlagTorn uint32 = 1 << 3
	// FlagUnchanged: WalkRequest.SkipUnchanged found the goroutine as the
	// previous walk left it; its stack was not walked and PCs is empty.
	FlagUnchanged uint32 = 1 << 4
)

// recHdrSize is sizeof(struct rec_hdr) in goroutines.bpf.c.
const recHdrSize = 24

// GRecord is one live goroutine as seen by the BPF walker.
type GRecord struct {
	Index uint32   // index in allgs
	GAddr uint64   // address of the g
	G     []byte   // the first GSize bytes of the g (reused between calls; copy if kept)
	PCs   []uint64 // saved pc then frame return addresses (reused between calls)
	Flags uint32   // Flag* bits
}

// recHeader mirrors struct rec_hdr.
type recHeader struct {
	walkID  uint32
	index   uint32
	gaddr   uint64
	flags   uint32
	gsize   uint16
	nframes uint16
}

// parseRecord decodes a raw ring buffer record into r, reusing r.PCs.
// r.G aliases raw.
func parseRecord(raw []byte, r *GRecord) (walkID uint32, err error) {
	if len(raw) < recHdrSize {
		return 0, fmt.Errorf("goroutine record of %d bytes is shorter than its %d-byte header", len(raw), recHdrSize)
	}
	h := recHeader{
		walkID:  binary.LittleEndian.Uint32(raw[0:]),
		index:   binary.LittleEndian.Uint32(raw[4:]),
		gaddr:   binary.LittleEndian.Uint64(raw[8:]),
		flags:   binary.LittleEndian.Uint32(raw[16:]),
		gsize:   binary.LittleEndian.Uint16(raw[20:]),
		nframes: binary.LittleEndian.Uint16(raw[22:]),
	}
	want := recHdrSize + int(h.gsize) + 8*int(h.nframes)
	if len(raw) < want {
		return 0, fmt.Errorf("goroutine record %d: %d bytes, header says %d (g %d bytes, %d frames)",
			h.index, len(raw), want, h.gsize, h.nframes)
	}
	r.Index = h.index
	r.GAddr = h.gaddr
	r.Flags = h.flags
	r.G = raw[recHdrSize : recHdrSize+int(h.gsize)]
	r.PCs = r.PCs[:0]
	pcs := raw[recHdrSize+int(h.gsize) : want]
	for i := 0; i+8 <= len(pcs); i += 8 {
		r.PCs = append(r.PCs, binary.LittleEndian.Uint64(pcs[i:]))
	}
	return h.walkID, nil
}
