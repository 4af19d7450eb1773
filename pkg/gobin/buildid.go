package gobin

import (
	"debug/elf"
	"encoding/binary"
	"encoding/hex"
)

// ELF note types of the build IDs (cmd/internal/buildid/note.go).
const (
	noteGNUBuildID = 3 // NT_GNU_BUILD_ID, owner "GNU"
	noteGoBuildID  = 4 // ELF_NOTE_GOBUILDID_TAG, owner "Go"
)

// maxNoteSize bounds a note section or segment read for build IDs.
const maxNoteSize = 1 << 16

// BuildID returns the executable's build ID as pprof mappings carry it: the GNU build ID in hex
// (what runtime/pprof reports, and what pprof matches local binaries by), else the Go build ID
// (the "go tool buildid" string); "" when the file has neither note.
func (b *Binary) BuildID() string {
	if b.gnuBuildID != "" {
		return b.gnuBuildID
	}
	return b.goBuildID
}

// readBuildIDs reads the GNU (hex) and Go build IDs from the SHT_NOTE sections, as
// runtime/pprof does (Go 1.26's linker leaves the GNU note out of the PT_NOTE segment), and
// without section headers from the PT_NOTE segments.
func (b *Binary) readBuildIDs() (gnu, gobuild string) {
	var notes [][]byte
	for _, s := range b.elf.Sections {
		if s.Type == elf.SHT_NOTE && s.Size <= maxNoteSize {
			if data, err := b.sectionBytes(s); err == nil {
				notes = append(notes, data)
			}
		}
	}
	if len(notes) == 0 {
		for _, p := range b.elf.Progs {
			if p.Type == elf.PT_NOTE && p.Filesz <= maxNoteSize {
				if data, ok := b.fileBytes(p.Off, p.Filesz); ok {
					notes = append(notes, data)
				}
			}
		}
	}
	for _, data := range notes {
		g, gb := parseNotes(data)
		if gnu == "" {
			gnu = g
		}
		if gobuild == "" {
			gobuild = gb
		}
	}
	return gnu, gobuild
}

// parseNotes returns the GNU (hex) and Go build IDs among the little-endian ELF notes in data.
// The results are copies.
func parseNotes(data []byte) (gnu, gobuild string) {
	le := binary.LittleEndian
	for len(data) >= 12 {
		namesz, descsz, typ := uint64(le.Uint32(data)), uint64(le.Uint32(data[4:])), le.Uint32(data[8:])
		nameEnd := 12 + (namesz+3)&^3
		descEnd := nameEnd + (descsz+3)&^3
		if descEnd > uint64(len(data)) {
			break
		}
		name, desc := string(data[12:12+namesz]), data[nameEnd:nameEnd+descsz]
		switch {
		case name == "GNU\x00" && typ == noteGNUBuildID && gnu == "":
			gnu = hex.EncodeToString(desc)
		case name == "Go\x00\x00" && typ == noteGoBuildID && gobuild == "":
			gobuild = string(desc)
		}
		data = data[descEnd:]
	}
	return gnu, gobuild
}

// FileOffset returns the offset in the file of the link-time address addr, ok false when addr is
// not in the file-backed part of a PT_LOAD segment.
func (b *Binary) FileOffset(addr uint64) (uint64, bool) {
	for _, p := range b.elf.Progs {
		if p.Type == elf.PT_LOAD && addr >= p.Vaddr && addr-p.Vaddr < p.Filesz {
			return p.Off + addr - p.Vaddr, true
		}
	}
	return 0, false
}
