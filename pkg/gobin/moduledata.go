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
	mdFtab        = 16
	mdMinpc       = 20
	mdText        = 22
	mdEtext       = 23
	mdGofunc      = 40
	mdWords       = 41
)

// findModuledata locates runtime.firstmoduledata without symbols by scanning writable data
// sections for a word equal to the .gopclntab address (moduledata.pcHeader), validates the
// candidate against the pclntab, and reads moduledata.text and moduledata.gofunc.
// When the scan fails it falls back to the symbol table.
func (b *Binary) findModuledata() error {
	scanErr := b.scanModuledata()
	if scanErr == nil {
		return nil
	}
	syms, err := b.symbols()
	if err != nil {
		return fmt.Errorf("locate runtime.firstmoduledata: %v; symbol table: %v (file an issue with the binary's Go version)", scanErr, err)
	}
	gofunc, ok1 := syms["go:func.*"]
	text, ok2 := syms["runtime.text"]
	if !ok1 || !ok2 {
		return fmt.Errorf("locate runtime.firstmoduledata: %v; symbol table has no go:func.* or runtime.text (file an issue with the binary's Go version)", scanErr)
	}
	b.gofunc, b.text = gofunc, text
	return nil
}

// scanModuledata implements the symbol-free search of findModuledata.
func (b *Binary) scanModuledata() error {
	le := binary.LittleEndian
	t := b.tab
	funcnameAddr := b.pclnAddr + le.Uint64(t.data[hdrFuncnameOffset:])
	ftabAddr := b.pclnAddr + le.Uint64(t.data[hdrPclnOffset:])
	var candidates int
	for _, s := range b.elf.Sections {
		if s.Type != elf.SHT_PROGBITS || s.Flags&elf.SHF_WRITE == 0 || s.Flags&elf.SHF_ALLOC == 0 {
			continue
		}
		if s.Size > maxSectionSize {
			continue
		}
		data, err := s.Data()
		if err != nil {
			continue
		}
		align := (8 - s.Addr%8) % 8
		for off := align; off+mdWords*8 <= uint64(len(data)); off += 8 {
			if le.Uint64(data[off:]) != b.pclnAddr {
				continue
			}
			candidates++
			w := func(i int) uint64 { return le.Uint64(data[off+uint64(i)*8:]) }
			// Slice lengths may be shorter than the distance between tables (alignment padding).
			if w(mdFuncnametab) != funcnameAddr || w(mdFuncnametab+1) > uint64(len(t.funcnametab)) ||
				w(mdFtab) != ftabAddr || w(mdFtab+1) != uint64(t.nfunc+1) {
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
			b.text, b.gofunc, b.modAddr = text, gofunc, s.Addr+off
			return nil
		}
	}
	if candidates == 0 {
		return errors.New("no data word points at .gopclntab")
	}
	return fmt.Errorf("%d data words point at .gopclntab but none is a valid moduledata", candidates)
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

// loadGofunc reads, once, the section (or segment) holding go:func.*, where inline trees live.
func (b *Binary) loadGofunc() ([]byte, uint64, error) {
	b.gofuncOnce.Do(func() {
		if s := b.sectionFor(b.gofunc); s != nil && s.Size <= maxSectionSize {
			data, err := s.Data()
			if err == nil {
				b.gofuncData, b.gofuncBase = data, s.Addr
				return
			}
		}
		for _, p := range b.elf.Progs {
			if p.Type != elf.PT_LOAD || b.gofunc < p.Vaddr || b.gofunc-p.Vaddr >= p.Filesz {
				continue
			}
			data, err := b.readVA(p.Vaddr, p.Filesz)
			if err != nil {
				b.gofuncErr = fmt.Errorf("read go:func.* data: %w", err)
				return
			}
			b.gofuncData, b.gofuncBase = data, p.Vaddr
			return
		}
		b.gofuncErr = fmt.Errorf("go:func.* address %#x is not in the file", b.gofunc)
	})
	return b.gofuncData, b.gofuncBase, b.gofuncErr
}
