package gobin

import (
	"debug/elf"
	"encoding/binary"
	"errors"
	"fmt"
)

// The symbols gobin reads from .symtab, indexes into symbolNames and symbolTable. They are looked
// up together, in one scan of .symtab in the mapping, the first time one is needed.
const (
	symPclntab         = iota // runtime.pclntab: the pclntab, when it has no section
	symEpclntab               // runtime.epclntab: its end
	symText                   // runtime.text: moduledata.text, when no moduledata is found
	symGofunc                 // go:func.*: moduledata.gofunc, likewise
	symFirstModuledata        // runtime.firstmoduledata (tests compare the moduledata scan with it)
	symAllgs                  // runtime.allgs: RuntimeVars
	symAllglen                // runtime.allglen: RuntimeVars
	symSemtable               // runtime.semtable: RuntimeVars
	symGomaxprocs             // runtime.gomaxprocs: StateVars
	symAllp                   // runtime.allp: StateVars
	symSched                  // runtime.sched: StateVars
	symGCController           // runtime.gcController: StateVars
	symMemstats               // runtime.memstats: StateVars
	symExtraMInUse            // runtime.extraMInUse: StateVars
	symExtraMLength           // runtime.extraMLength: StateVars
	numSymbols
)

// symbolNames names the symbols of the sym* indexes.
var symbolNames = [numSymbols]string{
	symPclntab:         "runtime.pclntab",
	symEpclntab:        "runtime.epclntab",
	symText:            "runtime.text",
	symGofunc:          "go:func.*",
	symFirstModuledata: "runtime.firstmoduledata",
	symAllgs:           "runtime.allgs",
	symAllglen:         "runtime.allglen",
	symSemtable:        "runtime.semtable",
	symGomaxprocs:      "runtime.gomaxprocs",
	symAllp:            "runtime.allp",
	symSched:           "runtime.sched",
	symGCController:    "runtime.gcController",
	symMemstats:        "runtime.memstats",
	symExtraMInUse:     "runtime.extraMInUse",
	symExtraMLength:    "runtime.extraMLength",
}

// elfSymSize is the size of an Elf64_Sym: name uint32, info, other uint8, shndx uint16,
// value, size uint64.
const elfSymSize = 24

// symbolTable holds the values of the symbols in symbolNames that .symtab defines.
type symbolTable struct {
	value [numSymbols]uint64
	found [numSymbols]bool
}

// symbol returns the value of symbol i (a sym* index) from .symtab, ok false when the
// executable is stripped, its .symtab unreadable, or the symbol absent.
func (b *Binary) symbol(i int) (uint64, bool) {
	st, err := b.symbols()
	if err != nil {
		return 0, false
	}
	return st.value[i], st.found[i]
}

// symbols scans .symtab once for every name in symbolNames. A compressed or malformed .symtab
// counts as none: the error says why.
func (b *Binary) symbols() (*symbolTable, error) {
	b.symsOnce.Do(func() {
		defer func() {
			if p := recover(); p != nil { // a fault on the mapping: Once would record success
				b.syms, b.symsErr = symbolTable{}, b.faultError(p)
			}
		}()
		symtab, strtab, err := b.symtabBytes()
		if err != nil {
			b.symsErr = fmt.Errorf("%s: %w", b.name, err)
			return
		}
		b.syms = findSymbols(symtab, strtab)
	})
	return &b.syms, b.symsErr
}

// symtabBytes returns .symtab and its string table, aliasing the mapping, after checking that
// they are what the section headers claim.
func (b *Binary) symtabBytes() (symtab, strtab []byte, err error) {
	const how = "its symbols are ignored, as if built with -ldflags=-s"
	s := b.elf.Section(".symtab")
	switch {
	case s == nil:
		return nil, nil, errors.New("no .symtab (built with -ldflags=-s)")
	case s.Type != elf.SHT_SYMTAB:
		return nil, nil, fmt.Errorf("malformed .symtab: section type %s, not SHT_SYMTAB; %s", s.Type, how)
	case s.Flags&elf.SHF_COMPRESSED != 0:
		return nil, nil, fmt.Errorf(".symtab is compressed (SHF_COMPRESSED), which goroscope does not read; %s", how)
	case s.Entsize != 0 && s.Entsize != elfSymSize:
		return nil, nil, fmt.Errorf("malformed .symtab: entry size %d, not %d; %s", s.Entsize, elfSymSize, how)
	case s.Link == 0 || int(s.Link) >= len(b.elf.Sections):
		return nil, nil, fmt.Errorf("malformed .symtab: string table index %d out of range; %s", s.Link, how)
	}
	str := b.elf.Sections[s.Link]
	if str.Type != elf.SHT_STRTAB {
		return nil, nil, fmt.Errorf("malformed .symtab: its string table %s has type %s, not SHT_STRTAB; %s", str.Name, str.Type, how)
	}
	if symtab, err = b.sectionBytes(s); err != nil {
		return nil, nil, fmt.Errorf("unreadable .symtab: %v; %s", err, how)
	}
	if strtab, err = b.sectionBytes(str); err != nil {
		return nil, nil, fmt.Errorf("unreadable .symtab string table: %v; %s", err, how)
	}
	if len(symtab)%elfSymSize != 0 {
		return nil, nil, fmt.Errorf("malformed .symtab: %d bytes is not a whole number of %d-byte symbols; %s", len(symtab), elfSymSize, how)
	}
	return symtab, strtab, nil
}

// findSymbols looks up every name of symbolNames in the Elf64_Sym entries of symtab, whose names
// are offsets into strtab, comparing names in place. The first definition of a name wins; entry 0
// (the null symbol) and names out of strtab's bounds are skipped. It stops when all are found.
func findSymbols(symtab, strtab []byte) symbolTable {
	var st symbolTable
	left := numSymbols
	for off := elfSymSize; off+elfSymSize <= len(symtab) && left > 0; off += elfSymSize {
		e := symtab[off : off+elfSymSize]
		name := uint64(binary.LittleEndian.Uint32(e))
		if name == 0 || name >= uint64(len(strtab)) {
			continue
		}
		for i := range symbolNames {
			if !st.found[i] && cstringIs(strtab, name, symbolNames[i]) {
				st.value[i], st.found[i] = binary.LittleEndian.Uint64(e[8:]), true
				left--
				break
			}
		}
	}
	return st
}

// cstringIs reports whether the NUL-terminated string at off in tab is want, without copying.
func cstringIs(tab []byte, off uint64, want string) bool {
	end := off + uint64(len(want))
	return off <= end && end < uint64(len(tab)) && tab[end] == 0 && string(tab[off:end]) == want
}
