package gobin

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
)

// pclntab magics (internal/abi.PCLnTabMagic).
const (
	magicGo12  = 0xfffffffb
	magicGo116 = 0xfffffffa
	magicGo118 = 0xfffffff0
	magicGo120 = 0xfffffff1
)

// pcHeader field offsets for the Go 1.20+ format on 64-bit targets
// (runtime.pcHeader in src/runtime/symtab.go).
const (
	hdrNfunc          = 8
	hdrNfiles         = 16
	hdrTextStart      = 24 // zero since Go 1.26
	hdrFuncnameOffset = 32
	hdrCuOffset       = 40
	hdrFiletabOffset  = 48
	hdrPctabOffset    = 56
	hdrPclnOffset     = 64
	hdrSize           = 72
)

// _func field offsets (runtime._func in src/runtime/runtime2.go, identical in Go 1.21–1.26).
const (
	funcEntryOff  = 0
	funcNameOff   = 4
	funcPcsp      = 16
	funcPcfile    = 20
	funcPcln      = 24
	funcNpcdata   = 28
	funcCuOffset  = 32
	funcStartLine = 36
	funcFuncID    = 40
	funcNfuncdata = 43
	funcSize      = 44
)

// PCDATA and FUNCDATA table indexes (internal/abi/symtab.go).
const (
	pcdataInlTreeIndex = 2
	funcdataInlTree    = 3
)

// inlinedCallSize is the size of runtime.inlinedCall (src/runtime/symtabinl.go).
const inlinedCallSize = 16

// errPCLNTab reports a malformed .gopclntab.
var errPCLNTab = errors.New("malformed .gopclntab")

// pclntab is a parsed Go 1.20+ pclntab (the .gopclntab section, or runtime.pclntab to
// runtime.epclntab). All slices alias data, which aliases the mapping of the executable: nothing
// read from them may leave the package without a copy.
type pclntab struct {
	data        []byte
	nfunc       int
	nfiles      int
	hdrText     uint64 // pcHeader.textStart; 0 on Go 1.26+
	funcnametab []byte
	cutab       []byte
	filetab     []byte
	pctab       []byte
	pclntable   []byte
	functab     []byte // (nfunc+1) pairs of {entryOff, funcOff uint32}
}

// magicVersion names the Go releases that wrote a given pclntab magic.
func magicVersion(m uint32) string {
	switch m {
	case magicGo12:
		return "Go 1.2–1.15"
	case magicGo116:
		return "Go 1.16–1.17"
	case magicGo118:
		return "Go 1.18–1.19"
	case magicGo120:
		return "Go 1.20+"
	}
	return ""
}

// parsePCLNTab validates the header of a pclntab and slices its tables.
// Every offset and count is bounded by len(data).
func parsePCLNTab(data []byte) (*pclntab, error) {
	if len(data) < hdrSize {
		return nil, fmt.Errorf("%w: %d bytes is shorter than the %d-byte header", errPCLNTab, len(data), hdrSize)
	}
	le := binary.LittleEndian
	magic := le.Uint32(data)
	if magic != magicGo120 {
		if v := magicVersion(magic); v != "" {
			return nil, fmt.Errorf("pclntab format of %s (magic %#x) is not supported: goroscope supports Go 1.21 and later", v, magic)
		}
		if v := magicVersion(binary.BigEndian.Uint32(data)); v != "" {
			return nil, fmt.Errorf("big-endian pclntab (%s) is not supported: goroscope supports little-endian amd64", v)
		}
		return nil, fmt.Errorf("%w: unknown magic %#x", errPCLNTab, magic)
	}
	if data[4] != 0 || data[5] != 0 {
		return nil, fmt.Errorf("%w: nonzero header padding", errPCLNTab)
	}
	if data[6] != 1 || data[7] != 8 {
		return nil, fmt.Errorf("pclntab for instruction size %d and pointer size %d is not supported: goroscope supports amd64 (1, 8)", data[6], data[7])
	}
	n := uint64(len(data))
	nfunc := le.Uint64(data[hdrNfunc:])
	nfiles := le.Uint64(data[hdrNfiles:])
	var offs [5]uint64
	for i, at := range []int{hdrFuncnameOffset, hdrCuOffset, hdrFiletabOffset, hdrPctabOffset, hdrPclnOffset} {
		offs[i] = le.Uint64(data[at:])
		if offs[i] < hdrSize || offs[i] > n || (i > 0 && offs[i] < offs[i-1]) {
			return nil, fmt.Errorf("%w: table offset %#x out of order or outside the %d-byte section", errPCLNTab, offs[i], n)
		}
	}
	t := &pclntab{
		data:        data,
		hdrText:     le.Uint64(data[hdrTextStart:]),
		funcnametab: data[offs[0]:offs[1]],
		cutab:       data[offs[1]:offs[2]],
		filetab:     data[offs[2]:offs[3]],
		pctab:       data[offs[3]:offs[4]],
		pclntable:   data[offs[4]:],
	}
	if nfunc == 0 || nfunc > uint64(len(t.pclntable))/8 {
		return nil, fmt.Errorf("%w: %d functions do not fit the function table", errPCLNTab, nfunc)
	}
	if nfiles > uint64(len(t.cutab))/4+1 {
		return nil, fmt.Errorf("%w: %d files do not fit the CU table", errPCLNTab, nfiles)
	}
	t.nfunc = int(nfunc)
	t.nfiles = int(nfiles)
	ftLen := (t.nfunc + 1) * 8
	if ftLen > len(t.pclntable) {
		return nil, fmt.Errorf("%w: function table of %d entries exceeds the section", errPCLNTab, nfunc)
	}
	t.functab = t.pclntable[:ftLen]
	return t, nil
}

// trim cuts the table after n bytes of pclntable (moduledata.pclntable's length), dropping what
// follows it when it was found without a section's bounds. Out-of-range n is ignored.
func (t *pclntab) trim(n uint64) {
	if n < uint64(len(t.functab)) || n >= uint64(len(t.pclntable)) {
		return
	}
	cut := len(t.pclntable) - int(n)
	t.pclntable = t.pclntable[:n]
	t.data = t.data[:len(t.data)-cut]
}

// entryOff returns functab[i].entryoff (i may be nfunc for the end sentinel).
func (t *pclntab) entryOff(i int) uint32 {
	return binary.LittleEndian.Uint32(t.functab[i*8:])
}

// funcOff returns functab[i].funcoff, the offset of the _func record in pclntable.
func (t *pclntab) funcOff(i int) uint32 {
	return binary.LittleEndian.Uint32(t.functab[i*8+4:])
}

// findFunc returns the index of the function containing text offset off, or -1.
func (t *pclntab) findFunc(off uint64) int {
	if off < uint64(t.entryOff(0)) || off >= uint64(t.entryOff(t.nfunc)) {
		return -1
	}
	lo, hi := 0, t.nfunc // invariant: entryOff(lo) <= off < entryOff(hi)
	for hi-lo > 1 {
		mid := int(uint(lo+hi) >> 1)
		if uint64(t.entryOff(mid)) <= off {
			lo = mid
		} else {
			hi = mid
		}
	}
	return lo
}

// funcRec is a decoded _func record.
type funcRec struct {
	rec       []byte // _func followed by pcdata and funcdata arrays
	index     int    // index in functab
	entryOff  uint32
	endOff    uint32
	nameOff   int32
	pcsp      uint32
	pcfile    uint32
	pcln      uint32
	npcdata   uint32
	cuOffset  uint32
	startLine int32
	funcID    uint8
	nfuncdata uint8
}

// funcAt decodes the _func record of function i. ok is false when the record is out of bounds.
func (t *pclntab) funcAt(i int) (f funcRec, ok bool) {
	if i < 0 || i >= t.nfunc {
		return f, false
	}
	off := uint64(t.funcOff(i))
	if off+funcSize > uint64(len(t.pclntable)) {
		return f, false
	}
	r := t.pclntable[off:]
	le := binary.LittleEndian
	f = funcRec{
		index:     i,
		entryOff:  le.Uint32(r[funcEntryOff:]),
		endOff:    t.entryOff(i + 1),
		nameOff:   int32(le.Uint32(r[funcNameOff:])),
		pcsp:      le.Uint32(r[funcPcsp:]),
		pcfile:    le.Uint32(r[funcPcfile:]),
		pcln:      le.Uint32(r[funcPcln:]),
		npcdata:   le.Uint32(r[funcNpcdata:]),
		cuOffset:  le.Uint32(r[funcCuOffset:]),
		startLine: int32(le.Uint32(r[funcStartLine:])),
		funcID:    r[funcFuncID],
		nfuncdata: r[funcNfuncdata],
	}
	extra := uint64(f.npcdata)*4 + uint64(f.nfuncdata)*4
	if extra > uint64(len(r))-funcSize {
		return f, false
	}
	f.rec = r[:funcSize+extra]
	return f, true
}

// pcdataOff returns the pctab offset of PCDATA table idx, 0 when absent.
func (f *funcRec) pcdataOff(idx uint32) uint32 {
	if idx >= f.npcdata {
		return 0
	}
	return binary.LittleEndian.Uint32(f.rec[funcSize+4*idx:])
}

// funcdataOff returns the gofunc-relative offset of FUNCDATA idx, ok false when absent.
func (f *funcRec) funcdataOff(idx uint32) (uint32, bool) {
	if idx >= uint32(f.nfuncdata) {
		return 0, false
	}
	off := binary.LittleEndian.Uint32(f.rec[funcSize+4*f.npcdata+4*idx:])
	return off, off != ^uint32(0)
}

// cstring returns the NUL-terminated string at off in tab, without its NUL (or up to the end of
// tab when unterminated). The result aliases tab: copy it before it leaves the package (see
// Binary.funcName). ok is false when off is out of range.
func cstring(tab []byte, off uint64) ([]byte, bool) {
	if off >= uint64(len(tab)) {
		return nil, false
	}
	s := tab[off:]
	if n := bytes.IndexByte(s, 0); n >= 0 {
		s = s[:n]
	}
	return s[:len(s):len(s)], true
}

// fileOff mirrors runtime.funcfile: cutab[cuOffset+fileno] is the offset in filetab of the name
// of file fileno of f's compilation unit. ok is false when out of range.
func (t *pclntab) fileOff(f *funcRec, fileno int32) (uint32, bool) {
	if fileno < 0 || int(fileno) >= len(t.filetab) {
		return 0, false
	}
	i := uint64(f.cuOffset) + uint64(fileno)
	if i*4+4 > uint64(len(t.cutab)) {
		return 0, false
	}
	fileoff := binary.LittleEndian.Uint32(t.cutab[i*4:])
	if fileoff == ^uint32(0) || uint64(fileoff) >= uint64(len(t.filetab)) {
		return 0, false
	}
	return fileoff, true
}

// readVarint decodes an unsigned LEB128 value of at most 32 bits, returning the bytes used (0 on error).
func readVarint(p []byte) (n int, v uint32) {
	var shift uint
	for n < len(p) && n < 5 {
		b := p[n]
		n++
		v |= uint32(b&0x7f) << (shift & 31)
		if b&0x80 == 0 {
			return n, v
		}
		shift += 7
	}
	return 0, 0
}

// pcStep decodes the next step of a pcvalue table, as runtime.step does:
// a zig-zag value delta and a pc delta, both varints. A zero value delta
// ends the table except at its start. ok is false at the end or on
// malformed data.
func pcStep(p []byte, atStart bool) (dv int32, dpc uint32, rest []byte, ok bool) {
	if len(p) == 0 {
		return 0, 0, nil, false
	}
	uv, n := uint32(p[0]), 1
	if uv == 0 && !atStart {
		return 0, 0, nil, false
	}
	if uv&0x80 != 0 {
		if n, uv = readVarint(p); n == 0 {
			return 0, 0, nil, false
		}
	}
	p = p[n:]
	if len(p) == 0 {
		return 0, 0, nil, false
	}
	dpc, n = uint32(p[0]), 1
	if dpc&0x80 != 0 {
		if n, dpc = readVarint(p); n == 0 {
			return 0, 0, nil, false
		}
	}
	return int32(-(uv & 1) ^ (uv >> 1)), dpc, p[n:], true
}

// pcvalue mirrors runtime.pcvalue (non-strict): it returns the value of the pctab table at off
// for text offset target in function f, and the value's end offset. ok is false when not found.
func (t *pclntab) pcvalue(f *funcRec, off uint32, target uint64) (val int32, ok bool) {
	if off == 0 || uint64(off) >= uint64(len(t.pctab)) {
		return -1, false
	}
	p := t.pctab[off:]
	pc := uint64(f.entryOff)
	val = -1
	for { // every step consumes at least two bytes
		dv, dpc, rest, ok := pcStep(p, pc == uint64(f.entryOff))
		if !ok {
			return -1, false
		}
		val += dv
		pc += uint64(dpc) // PCQuantum is 1 on amd64
		if target < pc {
			return val, true
		}
		p = rest
	}
}

// maxPCValue returns the largest value of the table at off over the function, -1 if none.
func (t *pclntab) maxPCValue(f *funcRec, off uint32) int32 {
	if off == 0 || uint64(off) >= uint64(len(t.pctab)) {
		return -1
	}
	p := t.pctab[off:]
	val, max := int32(-1), int32(-1)
	atEntry := true
	for {
		dv, dpc, rest, ok := pcStep(p, atEntry)
		if !ok {
			return max
		}
		val += dv
		atEntry = atEntry && dpc == 0
		if val > max {
			max = val
		}
		p = rest
	}
}
