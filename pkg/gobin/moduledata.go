package gobin

import (
	"debug/elf"
	"encoding/binary"
	"errors"
	"fmt"
)

// Word indexes into runtime.moduledata (src/runtime/symtab.go), identical in Go 1.21–1.26 on amd64:
// pcHeader, then six slices (funcnametab, cutab, filetab, pctab, pclntable, ftab), findfunctab,
// minpc, maxpc, text, etext, noptrdata..enoptrbss (8 words), covctrs, ecovctrs, end, gcdata, gcbss,
// types, etypes, rodata, gofunc.
const (
	mdPcHeader    = 0
	mdFuncnametab = 1
	mdCutab       = 4
	mdFiletab     = 7
	mdPctab       = 10
	mdPclntable   = 13
	mdFtab        = 16
	mdMinpc       = 20
	mdText        = 22
	mdEtext       = 23
	mdTypes       = 37
	mdEtypes      = 38
	mdGofunc      = 40
	mdWords       = 41
)

// maxPCLNCandidates bounds the pclntab headers tried by searchPCLNTab.
const maxPCLNCandidates = 16

// loadPCLNTab finds and parses the pclntab the way Go's own tools do (cmd/internal/objfile,
// debug/gosym users): the .gopclntab section (.data.rel.ro.gopclntab in some PIE builds), else
// the range between the symbols runtime.pclntab and runtime.epclntab (Go 1.25 and earlier built as
// PIE by the external linker put the table inside .data.rel.ro), else, without symbols, a pclntab
// header that a moduledata (runtime.firstmoduledata) points at. It then sets text, gofunc and modAddr.
func (b *Binary) loadPCLNTab() error {
	sec := b.elf.Section(".gopclntab")
	if sec == nil {
		sec = b.elf.Section(".data.rel.ro.gopclntab") // PIE before Go 1.26
	}
	if sec != nil && sec.Type != elf.SHT_NOBITS {
		data, err := b.sectionBytes(sec)
		if err != nil {
			return fmt.Errorf("read .gopclntab of %s: %w", b.name, err)
		}
		return b.usePCLNTab(data, sec.Addr, "section .gopclntab")
	}
	start, ok1 := b.symbol(symPclntab)
	end, ok2 := b.symbol(symEpclntab)
	if ok1 && ok2 && end > start {
		data, err := b.readVA(start, end-start)
		if err != nil {
			return fmt.Errorf("read pclntab of %s (runtime.pclntab to runtime.epclntab): %w", b.name, err)
		}
		return b.usePCLNTab(data, start, "runtime.pclntab to runtime.epclntab")
	}
	return b.searchPCLNTab()
}

// usePCLNTab parses data, found at link-time address addr as described by where, and locates
// the moduledata.
func (b *Binary) usePCLNTab(data []byte, addr uint64, where string) error {
	tab, err := parsePCLNTab(data)
	if err != nil {
		return fmt.Errorf("read pclntab of %s (%s, built with %s): %w", b.name, where, b.GoVersion(), err)
	}
	b.tab, b.pclnAddr = tab, addr
	if err := b.findModuledata(); err != nil {
		return fmt.Errorf("%s (built with %s): %w", b.name, b.GoVersion(), err)
	}
	return nil
}

// searchPCLNTab finds a pclntab in a binary with neither a pclntab section nor symbols (e.g. a
// stripped PIE from the external linker): every 8-byte-aligned Go 1.20+ pcHeader in the file
// (magic, zero padding, pc quantum 1, pointer size 8) is a candidate, kept when a moduledata in
// writable data points at it. The table is cut where moduledata.pclntable ends.
func (b *Binary) searchPCLNTab() error {
	var cands []uint64
	var hdr [8]byte
	binary.LittleEndian.PutUint32(hdr[:], magicGo120)
	hdr[6], hdr[7] = 1, 8
	// Read-only and data segments first: the table is never in code, though an old external
	// linker (ld -z noseparate-code) may put it in the same segment.
	for _, exec := range []bool{false, true} {
		for _, p := range b.elf.Progs {
			if p.Type != elf.PT_LOAD || (p.Flags&elf.PF_X != 0) != exec || len(cands) >= maxPCLNCandidates {
				continue
			}
			b.findInSegment(p, hdr[:], func(addr uint64) bool {
				cands = append(cands, addr)
				return len(cands) < maxPCLNCandidates
			})
		}
	}
	var errs []error
	for _, addr := range cands {
		data, err := b.readVA(addr, b.segmentRest(addr))
		if err != nil {
			errs = append(errs, err)
			continue
		}
		tab, err := parsePCLNTab(data)
		if err != nil {
			errs = append(errs, fmt.Errorf("at %#x: %w", addr, err))
			continue
		}
		b.tab, b.pclnAddr = tab, addr
		if err := b.scanModuledata(); err != nil {
			errs = append(errs, fmt.Errorf("at %#x: %w", addr, err))
			continue
		}
		return nil
	}
	b.tab, b.pclnAddr = nil, 0
	if len(cands) == 0 {
		return fmt.Errorf("%s (%s) has no pclntab: no .gopclntab section, no runtime.pclntab symbol and no Go 1.20+ pclntab header in the file; it may have been modified (e.g. by sstrip or a packer such as UPX): use the unmodified binary", b.name, b.GoVersion())
	}
	return fmt.Errorf("%s (%s) has no .gopclntab section or runtime.pclntab symbol, and none of the %d pclntab headers found is the runtime's (%w); use the unmodified binary, or file an issue with the binary's Go version", b.name, b.GoVersion(), len(cands), errors.Join(errs...))
}

// segmentRest returns how many file-backed bytes of its PT_LOAD segment follow addr, capped at
// maxSectionSize.
func (b *Binary) segmentRest(addr uint64) uint64 {
	for _, p := range b.elf.Progs {
		if p.Type == elf.PT_LOAD && addr >= p.Vaddr && addr-p.Vaddr < p.Filesz {
			return min(p.Filesz-(addr-p.Vaddr), maxSectionSize)
		}
	}
	return 0
}

// findInSegment calls found with the link-time address of every 8-byte-aligned occurrence of pat
// (8 bytes) in the file-backed part of segment p (as much of it as the file holds), until found
// returns false.
func (b *Binary) findInSegment(p *elf.Prog, pat []byte, found func(addr uint64) bool) {
	size := uint64(len(b.data))
	if p.Off > size {
		return
	}
	data, _ := b.fileBytes(p.Off, min(p.Filesz, size-p.Off, maxSectionSize))
	for i := (8 - p.Vaddr%8) % 8; i+8 <= uint64(len(data)); i += 8 {
		if string(data[i:i+8]) == string(pat) && !found(p.Vaddr+i) {
			return
		}
	}
}

// findModuledata locates runtime.firstmoduledata without symbols by scanning writable data
// for a word equal to the pclntab address (moduledata.pcHeader), validates the
// candidate against the pclntab, and reads moduledata.text and moduledata.gofunc.
// When the scan fails it falls back to the symbol table.
func (b *Binary) findModuledata() error {
	scanErr := b.scanModuledata()
	if scanErr == nil {
		return nil
	}
	if _, err := b.symbols(); err != nil {
		return fmt.Errorf("locate runtime.firstmoduledata: %v; symbol table: %v (file an issue with the binary's Go version)", scanErr, err)
	}
	gofunc, ok1 := b.symbol(symGofunc)
	text, ok2 := b.symbol(symText)
	if !ok1 || !ok2 {
		return fmt.Errorf("locate runtime.firstmoduledata: %v; symbol table has no go:func.* or runtime.text (file an issue with the binary's Go version)", scanErr)
	}
	b.gofunc, b.text = gofunc, text
	return nil
}

// dataRegion is writable, file-backed data that may hold the moduledata.
type dataRegion struct {
	addr, size uint64
	read       func() ([]byte, error) // aliases the mapping
}

// dataRegions lists the writable PROGBITS sections, .go.module and .noptrdata (where the
// moduledata lives) first; without section headers, the writable PT_LOAD segments.
func (b *Binary) dataRegions() []dataRegion {
	var first, rest []dataRegion
	for _, s := range b.elf.Sections {
		if s.Type != elf.SHT_PROGBITS || s.Flags&elf.SHF_WRITE == 0 || s.Flags&elf.SHF_ALLOC == 0 || s.Size > maxSectionSize {
			continue
		}
		r := dataRegion{addr: s.Addr, size: s.Size, read: func() ([]byte, error) { return b.sectionBytes(s) }}
		if s.Name == ".go.module" || s.Name == ".noptrdata" {
			first = append(first, r)
		} else {
			rest = append(rest, r)
		}
	}
	if len(b.elf.Sections) == 0 {
		for _, p := range b.elf.Progs {
			if p.Type == elf.PT_LOAD && p.Flags&elf.PF_W != 0 && p.Filesz > 0 && p.Filesz <= maxSectionSize {
				rest = append(rest, dataRegion{addr: p.Vaddr, size: p.Filesz, read: func() ([]byte, error) { return b.readVA(p.Vaddr, p.Filesz) }})
			}
		}
	}
	return append(first, rest...)
}

// scanModuledata implements the symbol-free search of findModuledata. A candidate must agree
// with the pcHeader on the address of every table, the number of functions, and the text start;
// moduledata.pclntable then bounds the table.
func (b *Binary) scanModuledata() error {
	le := binary.LittleEndian
	t := b.tab
	var tables [5]uint64 // funcnametab, cutab, filetab, pctab, pclntable
	for i, at := range []int{hdrFuncnameOffset, hdrCuOffset, hdrFiletabOffset, hdrPctabOffset, hdrPclnOffset} {
		tables[i] = b.pclnAddr + le.Uint64(t.data[at:])
	}
	var candidates int
	for _, r := range b.dataRegions() {
		data, err := r.read()
		if err != nil {
			continue
		}
		align := (8 - r.addr%8) % 8
		for off := align; off+mdWords*8 <= uint64(len(data)); off += 8 {
			if le.Uint64(data[off:]) != b.pclnAddr {
				continue
			}
			candidates++
			w := func(i int) uint64 { return le.Uint64(data[off+uint64(i)*8:]) }
			if w(mdFuncnametab) != tables[0] || w(mdCutab) != tables[1] || w(mdFiletab) != tables[2] ||
				w(mdPctab) != tables[3] || w(mdPclntable) != tables[4] || w(mdFtab) != tables[4] {
				continue
			}
			// Slice lengths may be shorter than the distance between tables (alignment padding).
			if w(mdFuncnametab+1) > uint64(len(t.funcnametab)) || w(mdFtab+1) != uint64(t.nfunc+1) ||
				w(mdPclntable+1) < uint64(len(t.functab)) || w(mdPclntable+1) > uint64(len(t.pclntable)) {
				continue
			}
			text, etext, gofunc := w(mdText), w(mdEtext), w(mdGofunc)
			if text == 0 || etext < text || w(mdMinpc) != text+uint64(t.entryOff(0)) {
				continue
			}
			if t.hdrText != 0 && t.hdrText != text {
				continue
			}
			if b.sectionFor(gofunc) == nil && !b.inLoad(gofunc) {
				continue
			}
			b.text, b.gofunc, b.modAddr = text, gofunc, r.addr+off
			t.trim(w(mdPclntable + 1))
			return nil
		}
	}
	if candidates == 0 {
		return errors.New("no data word points at the pclntab")
	}
	return fmt.Errorf("%d data words point at the pclntab but none is a valid moduledata", candidates)
}

// inLoad reports whether addr lies in the file-backed part of a PT_LOAD segment.
func (b *Binary) inLoad(addr uint64) bool {
	for _, p := range b.elf.Progs {
		if p.Type == elf.PT_LOAD && addr >= p.Vaddr && addr-p.Vaddr < p.Filesz {
			return true
		}
	}
	return false
}

// maxTypesSize bounds moduledata.etypes-types (256 MiB): the type descriptors and names of the
// largest Go programs take tens of megabytes.
const maxTypesSize = 256 << 20

// typesRange returns moduledata.types and moduledata.etypes, the link-time bounds of the type
// descriptors and the names they refer to (abi.NameOff is relative to types). They are read from
// the moduledata found by scanModuledata or, when only the symbol table located it,
// runtime.firstmoduledata; the range must be file-backed. It reads the mapping: call it between
// enter and leave.
func (b *Binary) typesRange() (types, etypes uint64, err error) {
	md := b.modAddr
	if md == 0 {
		var ok bool
		if md, ok = b.symbol(symFirstModuledata); !ok {
			return 0, 0, errors.New("runtime.firstmoduledata not found (no moduledata scan result, no symbol)")
		}
	}
	w, err := b.readVA(md+mdTypes*8, 16)
	if err != nil {
		return 0, 0, fmt.Errorf("read moduledata.types at %#x: %w", md+mdTypes*8, err)
	}
	types, etypes = binary.LittleEndian.Uint64(w), binary.LittleEndian.Uint64(w[8:])
	if types == 0 || etypes <= types || etypes-types > maxTypesSize {
		return 0, 0, fmt.Errorf("moduledata at %#x has implausible types %#x..%#x", md, types, etypes)
	}
	return types, etypes, nil
}

// findGofunc returns the section (or, without section headers, the segment) holding go:func.*,
// where inline trees live, and its link-time address. It aliases the mapping.
func (b *Binary) findGofunc() ([]byte, uint64, error) {
	if s := b.sectionFor(b.gofunc); s != nil {
		if data, err := b.sectionBytes(s); err == nil {
			return data, s.Addr, nil
		}
	}
	for _, p := range b.elf.Progs {
		if p.Type != elf.PT_LOAD || b.gofunc < p.Vaddr || b.gofunc-p.Vaddr >= p.Filesz {
			continue
		}
		data, err := b.readVA(p.Vaddr, p.Filesz)
		if err != nil {
			return nil, 0, fmt.Errorf("read go:func.* data: %w", err)
		}
		return data, p.Vaddr, nil
	}
	return nil, 0, fmt.Errorf("go:func.* address %#x is not in the file", b.gofunc)
}
