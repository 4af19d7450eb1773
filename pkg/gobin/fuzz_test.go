package gobin

import (
	"bytes"
	"debug/elf"
	"encoding/binary"
	"os"
	"testing"
)

// pcTable encodes a pcvalue table from (value, end offset) pairs, as the linker does.
func pcTable(pairs ...int32) []byte {
	var out []byte
	val, pc := int32(-1), int32(0)
	for i := 0; i+1 < len(pairs); i += 2 {
		d := pairs[i] - val
		out = binary.AppendUvarint(out, uint64(uint32(d<<1)^uint32(d>>31)))
		out = binary.AppendUvarint(out, uint64(pairs[i+1]-pc))
		val, pc = pairs[i], pairs[i+1]
	}
	return append(out, 0)
}

// syntheticPCLNTab builds a small Go 1.20+ pclntab with two functions, main.a (0x0–0x40, with
// main.inl inlined at 0x10–0x20 from a call site at 0x08) and main.b (0x40–0x80, in b.go).
// The inline tree is appended after the tables; its offset (relative to gofunc = start of the
// data) is returned.
func syntheticPCLNTab() []byte {
	le := binary.LittleEndian
	funcnametab := []byte("\x00main.a\x00main.b\x00main.inl\x00")
	const nameA, nameB, nameInl = 1, 8, 15
	filetab := []byte("a.go\x00b.go\x00")
	cutab := le.AppendUint32(le.AppendUint32(nil, 0), 5)
	pctab := []byte{0}
	add := func(t []byte) uint32 { off := uint32(len(pctab)); pctab = append(pctab, t...); return off }
	aSP := add(pcTable(0, 4, 8, 0x3c, 0, 0x40))
	aFile := add(pcTable(0, 0x40))
	aLine := add(pcTable(10, 0x10, 11, 0x20, 12, 0x40))
	aInl := add(pcTable(-1, 0x10, 0, 0x20, -1, 0x40))
	bSP := add(pcTable(0, 0x40))
	bFile := add(pcTable(1, 0x40))
	bLine := add(pcTable(30, 0x40))

	const hdr = hdrSize
	offName := uint64(hdr)
	offCu := offName + uint64(len(funcnametab))
	offFile := offCu + uint64(len(cutab))
	offPc := offFile + uint64(len(filetab))
	offPcln := offPc + uint64(len(pctab))

	// pclntable: functab (3 entries) then two _func records.
	ftab := make([]byte, 3*8)
	rec := func(entry uint32, name int32, sp, file, line uint32, inl uint32, hasInl bool, funcID uint8) []byte {
		r := make([]byte, funcSize)
		le.PutUint32(r[funcEntryOff:], entry)
		le.PutUint32(r[funcNameOff:], uint32(name))
		le.PutUint32(r[funcPcsp:], sp)
		le.PutUint32(r[funcPcfile:], file)
		le.PutUint32(r[funcPcln:], line)
		le.PutUint32(r[funcNpcdata:], 3)
		r[funcFuncID] = funcID
		r[funcNfuncdata] = 4
		r = le.AppendUint32(r, 0)   // PCDATA_UnsafePoint
		r = le.AppendUint32(r, 0)   // PCDATA_StackMapIndex
		r = le.AppendUint32(r, inl) // PCDATA_InlTreeIndex
		for i := 0; i < 3; i++ {
			r = le.AppendUint32(r, ^uint32(0))
		}
		if hasInl {
			r = le.AppendUint32(r, 0) // placeholder, patched below
		} else {
			r = le.AppendUint32(r, ^uint32(0))
		}
		return r
	}
	recA := rec(0, nameA, aSP, aFile, aLine, aInl, true, 0)
	recB := rec(0x40, nameB, bSP, bFile, bLine, 0, false, 21)
	offA := uint32(len(ftab))
	offB := offA + uint32(len(recA))
	le.PutUint32(ftab[0:], 0)
	le.PutUint32(ftab[4:], offA)
	le.PutUint32(ftab[8:], 0x40)
	le.PutUint32(ftab[12:], offB)
	le.PutUint32(ftab[16:], 0x80)
	pclntable := append(append(ftab, recA...), recB...)

	data := make([]byte, hdr)
	le.PutUint32(data, magicGo120)
	data[6], data[7] = 1, 8
	le.PutUint64(data[hdrNfunc:], 2)
	le.PutUint64(data[hdrNfiles:], 2)
	for i, off := range []uint64{offName, offCu, offFile, offPc, offPcln} {
		le.PutUint64(data[hdrFuncnameOffset+8*i:], off)
	}
	data = append(data, funcnametab...)
	data = append(data, cutab...)
	data = append(data, filetab...)
	data = append(data, pctab...)
	data = append(data, pclntable...)
	// Inline tree: main.inl called from pc 0x08, starting at line 20.
	treeOff := uint32(len(data))
	tree := make([]byte, inlinedCallSize)
	le.PutUint32(tree[4:], nameInl)
	le.PutUint32(tree[8:], 0x08)
	le.PutUint32(tree[12:], 20)
	data = append(data, tree...)
	// Patch main.a's FUNCDATA_InlTree.
	le.PutUint32(data[offPcln+uint64(offA)+funcSize+3*4+3*4:], treeOff)
	return data
}

// pclnBinary wraps a bare pclntab in a Binary whose go:func.* data is the pclntab itself.
func pclnBinary(data []byte) (*Binary, error) {
	t, err := parsePCLNTab(data)
	if err != nil {
		return nil, err
	}
	return &Binary{tab: t, text: 0x1000, name: "fuzz", data: data, gofuncData: data}, nil
}

func TestSyntheticPCLNTab(t *testing.T) {
	b, err := pclnBinary(syntheticPCLNTab())
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		pc   uint64
		want []Frame
		sp   int64
	}{
		{0x1000, []Frame{{Function: "main.a", File: "a.go", Line: 10, Entry: 0x1000}}, 0},
		{0x1018, []Frame{
			{Function: "main.inl", File: "a.go", Line: 11, Entry: 0x1000, Inlined: true},
			{Function: "main.a", File: "a.go", Line: 10, Entry: 0x1000},
		}, 8},
		{0x1030, []Frame{{Function: "main.a", File: "a.go", Line: 12, Entry: 0x1000}}, 8},
		{0x103f, []Frame{{Function: "main.a", File: "a.go", Line: 12, Entry: 0x1000}}, 0},
		{0x1050, []Frame{{Function: "main.b", File: "b.go", Line: 30, Entry: 0x1040, FuncID: 21}}, 0},
		{0x1080, nil, -1},
		{0x0fff, nil, -1},
	}
	for _, tt := range tests {
		got := b.Frames(tt.pc, nil)
		if len(got) != len(tt.want) {
			t.Errorf("Frames(%#x) = %+v, want %+v", tt.pc, got, tt.want)
			continue
		}
		for i := range got {
			if got[i] != tt.want[i] {
				t.Errorf("Frames(%#x)[%d] = %+v, want %+v", tt.pc, i, got[i], tt.want[i])
			}
		}
		sp, err := b.SPDelta(tt.pc)
		if tt.sp < 0 {
			if err == nil {
				t.Errorf("SPDelta(%#x) = %d, want error", tt.pc, sp)
			}
		} else if err != nil || sp != tt.sp {
			t.Errorf("SPDelta(%#x) = %d, %v, want %d", tt.pc, sp, err, tt.sp)
		}
	}
	if f, ok := b.FuncByName("main.b"); !ok || f.Entry != 0x1040 || f.End != 0x1080 || f.FuncID != 21 {
		t.Errorf("FuncByName(main.b) = %+v, %t", f, ok)
	}
}

// exercise calls every lookup of a Binary on a few pcs: the unexported implementations, which do
// not recover panics, so that the fuzzers find out-of-bounds reads, then the exported methods.
func exercise(b *Binary) {
	buf := make([]Frame, 0, 8)
	n := b.NumFuncs()
	for i := 0; i < n && i < 64; i++ {
		f, ok := b.funcByIndex(i)
		if !ok {
			continue
		}
		for _, pc := range []uint64{f.Entry, f.Entry + 1, (f.Entry + f.End) / 2, f.End - 1} {
			buf = b.frames(pc, buf[:0])
			_, _ = b.spDelta(pc) // errors are fine on fuzzed input; crashes are not
			b.funcForPC(pc)
			buf = b.Frames(pc, buf[:0])
			_, _ = b.SPDelta(pc)
			b.FuncForPC(pc)
		}
		b.funcByName(f.Name)
		b.FuncByName(f.Name)
	}
}

func FuzzPCLNTab(f *testing.F) {
	f.Add(syntheticPCLNTab())
	if self, err := elf.Open("/proc/self/exe"); err == nil {
		if s := self.Section(".gopclntab"); s != nil {
			if data, err := s.Data(); err == nil {
				f.Add(data[:4096])
			}
		}
		self.Close()
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		b, err := pclnBinary(data)
		if err != nil {
			return
		}
		exercise(b)
	})
}

// FuzzOpen feeds bytes as an ELF file through the whole Open path (ELF, build info, pclntab,
// moduledata scan) and the lookups, including RuntimeVars. Run with -fuzzminimizetime=2s:
// minimising the multi-kilobyte ELF seeds otherwise takes most of a short run.
func FuzzOpen(f *testing.F) {
	for _, seed := range [][]byte{
		nil,
		[]byte("\x7fELF\x02\x01\x01"),
		syntheticPCLNTab(),
		syntheticELF(),
	} {
		f.Add(seed)
	}
	if self, err := os.ReadFile("/proc/self/exe"); err == nil {
		f.Add(self[:4096])
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		ef, err := elf.NewFile(bytes.NewReader(data))
		if err != nil {
			return
		}
		b, err := fromELF(ef, data, "fuzz")
		if err != nil {
			return
		}
		exercise(b)
		_, _ = b.runtimeVars()
	})
}

// syntheticELF builds a minimal amd64 ELF "Go executable": build info, the synthetic pclntab,
// a moduledata pointing at it, and 0x80 bytes of text. Every address is 0x400000 + file offset.
func syntheticELF() []byte {
	le := binary.LittleEndian
	const base = 0x400000
	type sec struct {
		name  string
		typ   elf.SectionType
		flags elf.SectionFlag
		data  []byte
		off   uint64
	}
	pcln := syntheticPCLNTab()
	text := bytes.Repeat([]byte{0xcc}, 0x80)
	bi := append([]byte("\xff Go buildinf:"), 8, 2)
	bi = append(bi, make([]byte, 32-len(bi))...)
	bi = append(bi, byte(len("go1.22.0")))
	bi = append(bi, "go1.22.0"...)
	bi = append(bi, 0)
	secs := []*sec{
		{name: ".text", typ: elf.SHT_PROGBITS, flags: elf.SHF_ALLOC | elf.SHF_EXECINSTR, data: text},
		{name: ".gopclntab", typ: elf.SHT_PROGBITS, flags: elf.SHF_ALLOC, data: pcln},
		{name: ".go.buildinfo", typ: elf.SHT_PROGBITS, flags: elf.SHF_ALLOC | elf.SHF_WRITE, data: bi},
		{name: ".noptrdata", typ: elf.SHT_PROGBITS, flags: elf.SHF_ALLOC | elf.SHF_WRITE, data: make([]byte, 48*8)},
	}
	off := uint64(64 + 56) // ELF header + one program header
	for _, s := range secs {
		off = (off + 15) &^ 15
		s.off = off
		off += uint64(len(s.data))
	}
	textAddr, pclnAddr := base+secs[0].off, base+secs[1].off
	md := secs[3].data
	t, _ := parsePCLNTab(pcln)
	put := func(i int, v uint64) { le.PutUint64(md[8*i:], v) }
	put(mdPcHeader, pclnAddr)
	for i, w := range []int{mdFuncnametab, mdCutab, mdFiletab, mdPctab, mdPclntable} {
		put(w, pclnAddr+le.Uint64(pcln[hdrFuncnameOffset+8*i:]))
	}
	put(mdFuncnametab+1, uint64(len(t.funcnametab)))
	put(mdPclntable+1, uint64(len(t.pclntable)))
	put(mdFtab, pclnAddr+le.Uint64(pcln[hdrPclnOffset:]))
	put(mdFtab+1, 3)
	put(mdMinpc, textAddr)
	put(mdText, textAddr)
	put(mdEtext, textAddr+0x80)
	put(mdGofunc, pclnAddr)
	shstr := []byte{0}
	nameOff := map[string]uint32{}
	for _, s := range append(secs, &sec{name: ".shstrtab"}) {
		nameOff[s.name] = uint32(len(shstr))
		shstr = append(append(shstr, s.name...), 0)
	}
	shstrOff := off
	off += uint64(len(shstr))
	shoff := (off + 7) &^ 7
	out := make([]byte, shoff+64*uint64(len(secs)+2))
	copy(out, "\x7fELF\x02\x01\x01")
	le.PutUint16(out[16:], uint16(elf.ET_EXEC))
	le.PutUint16(out[18:], uint16(elf.EM_X86_64))
	le.PutUint32(out[20:], 1)
	le.PutUint64(out[24:], textAddr)
	le.PutUint64(out[32:], 64) // phoff
	le.PutUint64(out[40:], shoff)
	le.PutUint16(out[52:], 64)
	le.PutUint16(out[54:], 56)
	le.PutUint16(out[56:], 1)
	le.PutUint16(out[58:], 64)
	le.PutUint16(out[60:], uint16(len(secs)+2))
	le.PutUint16(out[62:], uint16(len(secs)+1))
	ph := out[64:]
	le.PutUint32(ph[0:], uint32(elf.PT_LOAD))
	le.PutUint32(ph[4:], uint32(elf.PF_R|elf.PF_W|elf.PF_X))
	le.PutUint64(ph[16:], base)
	le.PutUint64(ph[24:], base)
	le.PutUint64(ph[32:], shoff)
	le.PutUint64(ph[40:], shoff)
	le.PutUint64(ph[48:], 0x1000)
	for _, s := range secs {
		copy(out[s.off:], s.data)
	}
	copy(out[shstrOff:], shstr)
	for i, s := range append(secs, &sec{name: ".shstrtab", typ: elf.SHT_STRTAB, data: shstr, off: shstrOff}) {
		sh := out[shoff+64*uint64(i+1):]
		le.PutUint32(sh[0:], nameOff[s.name])
		le.PutUint32(sh[4:], uint32(s.typ))
		le.PutUint64(sh[8:], uint64(s.flags))
		if s.flags&elf.SHF_ALLOC != 0 {
			le.PutUint64(sh[16:], base+s.off)
		}
		le.PutUint64(sh[24:], s.off)
		le.PutUint64(sh[32:], uint64(len(s.data)))
		le.PutUint64(sh[48:], 1)
	}
	return out
}

func TestSyntheticELF(t *testing.T) {
	p := t.TempDir() + "/synthetic"
	if err := os.WriteFile(p, syntheticELF(), 0o755); err != nil {
		t.Fatal(err)
	}
	b, err := Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if b.GoVersion() != "go1.22.0" || !b.Stripped() || b.modAddr == 0 {
		t.Errorf("GoVersion %q Stripped %t moduledata %#x", b.GoVersion(), b.Stripped(), b.modAddr)
	}
	got := b.Frames(b.TextStart()+0x18, nil)
	if len(got) != 2 || got[0].Function != "main.inl" || got[1].Function != "main.a" || got[1].Line != 10 {
		t.Errorf("Frames = %+v", got)
	}
	if _, err := b.RuntimeVars(); err == nil {
		t.Error("RuntimeVars succeeded without a runtime")
	} else {
		t.Log(err)
	}
}
