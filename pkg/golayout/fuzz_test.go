package golayout

import (
	"debug/dwarf"
	"debug/elf"
	"encoding/binary"
	"os"
	"testing"
)

// FuzzDWARF feeds mutated DWARF sections through FromDWARF: whatever the
// bytes, it returns a layout or an error, never panics. The seeds are the
// test binary's own sections (so runtime.g and friends are there to be
// damaged), its first compile unit alone, and nothing.
func FuzzDWARF(f *testing.F) {
	f.Add([]byte(nil), []byte(nil), []byte(nil))
	if abbrev, info, str, err := ownDWARF(); err != nil {
		f.Logf("no seeds from the test binary: %v", err)
	} else {
		f.Add(abbrev, info, str)
		if n := firstUnitLen(info); n > 0 {
			f.Add(abbrev, info[:n], str)
		}
	}
	f.Fuzz(func(t *testing.T, abbrev, info, str []byte) {
		d, err := dwarf.New(abbrev, nil, nil, info, nil, nil, nil, str)
		if err != nil {
			return
		}
		l, err := FromDWARF(d, "go1.26.0")
		if err == nil && l == nil {
			t.Fatal("FromDWARF returned neither a layout nor an error")
		}
	})
}

// ownDWARF returns the .debug_abbrev, .debug_info and .debug_str sections
// of the running test binary, decompressed.
func ownDWARF() (abbrev, info, str []byte, err error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, nil, nil, err
	}
	ef, err := elf.Open(exe)
	if err != nil {
		return nil, nil, nil, err
	}
	defer ef.Close()
	data := func(name string) []byte {
		s := ef.Section(name)
		if s == nil {
			return nil
		}
		b, serr := s.Data()
		if serr != nil && err == nil {
			err = serr
		}
		return b
	}
	abbrev, info, str = data(".debug_abbrev"), data(".debug_info"), data(".debug_str")
	return abbrev, info, str, err
}

// firstUnitLen is the length of the first 32-bit DWARF unit in info, or 0.
func firstUnitLen(info []byte) int {
	if len(info) < 4 {
		return 0
	}
	n := int64(binary.LittleEndian.Uint32(info)) + 4
	if n > int64(len(info)) {
		return 0
	}
	return int(n)
}
