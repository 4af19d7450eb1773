package gobin

import "encoding/binary"

// Frame is one logical (possibly inlined) frame, as runtime.CallersFrames reports it.
type Frame struct {
	Function string // name as printed by the runtime (generic shapes shown as "[...]")
	File     string
	Line     int
	Entry    uint64 // link-time entry of the physical function containing the pc
	Inlined  bool   // the frame was inlined into the physical function
	FuncID   uint8  // abi.FuncID of this (inlined or physical) function; 0 for normal functions
}

// maxInlineDepth bounds the inline unwinder against cyclic parentPc chains in corrupt tables.
const maxInlineDepth = 256

// Frames symbolises one program counter (a link-time address) with inlined calls expanded,
// innermost first, exactly as runtime.CallersFrames would report them (it follows
// runtime.inlineUnwinder in src/runtime/symtabinl.go). pc is the "symbol PC": callers pass
// retaddr-1 for return addresses. Frames appends to dst and returns it; it does not allocate
// when dst has capacity and pc was seen before. An unknown pc yields no frames, and so does any
// pc after Close or once the file has been truncated under the mapping.
// Wrapper frames (FuncID == FuncIDWrapper) are included; the runtime elides them in tracebacks.
// The strings of the frames are heap copies, shared between calls: they stay valid after Close.
func (b *Binary) Frames(pc uint64, dst []Frame) (out []Frame) {
	start := len(dst)
	old, open := b.enter()
	if !open {
		return dst
	}
	defer b.leave(old, func(any) { out = dst[:start] })
	if cached, ok := b.cache.getFrames(pc); ok {
		return append(dst, cached...)
	}
	dst = b.frames(pc, dst)
	b.cache.putFrames(pc, dst[start:])
	return dst
}

// frames is the uncached implementation of Frames.
func (b *Binary) frames(pc uint64, dst []Frame) []Frame {
	t := b.tab
	if pc < b.text {
		return dst
	}
	i := t.findFunc(pc - b.text)
	f, ok := t.funcAt(i)
	if !ok {
		return dst
	}
	entry := b.text + uint64(f.entryOff)
	tree := b.inlineTree(&f)
	upc := pc - b.text // text offset of the current frame's pc
	inlOff := f.pcdataOff(pcdataInlTreeIndex)
	for depth := 0; depth < maxInlineDepth; depth++ {
		idx := int32(-1)
		if tree != nil {
			if v, ok := t.pcvalue(&f, inlOff, upc); ok && v >= 0 && int(v) < len(tree)/inlinedCallSize {
				idx = v
			}
		}
		file, line := b.fileLine(&f, upc)
		if idx < 0 {
			return append(dst, Frame{
				Function: b.printName(f.nameOff),
				File:     file,
				Line:     line,
				Entry:    entry,
				FuncID:   f.funcID,
			})
		}
		call := tree[int(idx)*inlinedCallSize:]
		dst = append(dst, Frame{
			Function: b.printName(int32(binary.LittleEndian.Uint32(call[4:]))),
			File:     file,
			Line:     line,
			Entry:    entry,
			Inlined:  true,
			FuncID:   call[0],
		})
		parentPc := int32(binary.LittleEndian.Uint32(call[8:]))
		upc = uint64(int64(f.entryOff) + int64(parentPc))
	}
	return dst
}

// inlineTree returns the FUNCDATA_InlTree entries of f (a whole number of inlinedCall records,
// as many as its PCDATA_InlTreeIndex table can index), or nil. The result aliases the mapping.
func (b *Binary) inlineTree(f *funcRec) []byte {
	off, ok := f.funcdataOff(funcdataInlTree)
	if !ok {
		return nil
	}
	data, base := b.gofuncData, b.gofuncBase
	if data == nil || b.gofunc < base {
		return nil
	}
	start := b.gofunc - base + uint64(off)
	if start >= uint64(len(data)) {
		return nil
	}
	max := b.tab.maxPCValue(f, f.pcdataOff(pcdataInlTreeIndex))
	if max < 0 {
		return nil
	}
	n := uint64(max+1) * inlinedCallSize
	if n > uint64(len(data))-start {
		n = (uint64(len(data)) - start) / inlinedCallSize * inlinedCallSize
	}
	return data[start : start+n]
}
