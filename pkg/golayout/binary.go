package golayout

import (
	"debug/buildinfo"
	"debug/dwarf"
	"debug/elf"
	"errors"
	"fmt"
)

// ErrNoDWARF is wrapped by DWARFOf when a binary carries no DWARF.
var ErrNoDWARF = errors.New("binary has no DWARF")

// DWARFOf returns an ELF file's DWARF. A binary built with -ldflags=-s or -w
// (or stripped later) gives an error wrapping ErrNoDWARF that says so.
func DWARFOf(f *elf.File, path string) (*dwarf.Data, error) {
	if f.Section(".debug_info") == nil && f.Section(".zdebug_info") == nil {
		return nil, fmt.Errorf("read DWARF of %s: %w (built with -ldflags='-s -w' or stripped): "+
			"use the built-in tables (ForVersion) or rebuild without -s/-w", path, ErrNoDWARF)
	}
	d, err := f.DWARF()
	if err != nil {
		return nil, fmt.Errorf("read DWARF of %s: %w", path, err)
	}
	return d, nil
}

// ForBinary returns the layout for the Go executable at path: from its DWARF
// when present, else the built-in table for its build-info Go version.
func ForBinary(path string) (*Layout, error) {
	bi, err := buildinfo.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read Go build info of %s: %w", path, err)
	}
	f, err := elf.Open(path)
	if err != nil {
		return nil, fmt.Errorf("open ELF %s: %w", path, err)
	}
	defer f.Close()
	d, derr := DWARFOf(f, path)
	if derr == nil {
		l, err := FromDWARF(d, bi.GoVersion)
		if err == nil {
			return l, nil
		}
		derr = fmt.Errorf("layout of %s: %w", path, err)
	}
	l, terr := ForVersion(bi.GoVersion)
	if terr != nil {
		return nil, fmt.Errorf("layout of %s: %w; and %w", path, derr, terr)
	}
	return l, nil
}
