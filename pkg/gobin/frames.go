package gobin

import (
	"encoding/binary"
	"strings"
	"sync"
)

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
// when dst has capacity and pc was seen before. An unknown pc yields no frames.
// Wrapper frames (FuncID == FuncIDWrapper) are included; the runtime elides them in tracebacks.
func (b *Binary) Frames(pc uint64, dst []Frame) []Frame {
	if cached, ok := b.cache.get(pc); ok {
		return append(dst, cached...)
	}
	start := len(dst)
	dst = b.frames(pc, dst)
	b.cache.put(pc, dst[start:])
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
		file, line := t.fileLine(&f, upc)
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
// as many as its PCDATA_InlTreeIndex table can index), or nil.
func (b *Binary) inlineTree(f *funcRec) []byte {
	off, ok := f.funcdataOff(funcdataInlTree)
	if !ok {
		return nil
	}
	data, base, err := b.loadGofunc()
	if err != nil || b.gofunc < base {
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

// printName mirrors runtime.funcNameForPrint: the shape in a generic function name becomes "[...]".
func (b *Binary) printName(nameOff int32) string {
	name := b.tab.funcName(nameOff)
	i := strings.IndexByte(name, '[')
	if i < 0 {
		return name
	}
	j := strings.LastIndexByte(name, ']')
	if j <= i {
		return name
	}
	if s, ok := b.cache.name(nameOff); ok {
		return s
	}
	s := name[:i] + "[...]" + name[j+1:]
	b.cache.putName(nameOff, s)
	return s
}

// frameCache memoises Frames per pc and printed generic names per name offset.
type frameCache struct {
	mu     sync.RWMutex
	frames map[uint64][]Frame
	names  map[int32]string
}

// maxCachedPCs bounds the frame cache; it is reset when full.
const maxCachedPCs = 1 << 18

func (c *frameCache) init() {
	c.frames = make(map[uint64][]Frame)
	c.names = make(map[int32]string)
}

func (c *frameCache) get(pc uint64) ([]Frame, bool) {
	c.mu.RLock()
	fr, ok := c.frames[pc]
	c.mu.RUnlock()
	return fr, ok
}

func (c *frameCache) put(pc uint64, fr []Frame) {
	cp := make([]Frame, len(fr))
	copy(cp, fr)
	c.mu.Lock()
	if len(c.frames) >= maxCachedPCs {
		clear(c.frames)
	}
	c.frames[pc] = cp
	c.mu.Unlock()
}

func (c *frameCache) name(off int32) (string, bool) {
	c.mu.RLock()
	s, ok := c.names[off]
	c.mu.RUnlock()
	return s, ok
}

func (c *frameCache) putName(off int32, s string) {
	c.mu.Lock()
	c.names[off] = s
	c.mu.Unlock()
}
