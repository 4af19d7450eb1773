// Package gobin reads what the goroutine walker needs from a Go executable:
// build info, the pclntab (function table, pc→file:line with inlined frames, SP deltas),
// the addresses of runtime variables, and the load bias of a running process.
// It supports Go 1.21–1.26 amd64 ELF binaries, stripped or not, PIE or not, linked by Go or by the
// external linker.
//
// It is internal to goroscope, not meant for import by other modules: its
// API may change at any time. The one public API is pkg/inproc.
package gobin

import (
	"debug/buildinfo"
	"debug/elf"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime/debug"
	"strconv"
	"sync"
	"syscall"
)

// ErrNotGo is wrapped by the errors of Open and OpenProcess when the file is not a Go executable.
var ErrNotGo = errors.New("not a Go executable")

// maxSectionSize bounds any section read into memory (1 GiB).
const maxSectionSize = 1 << 30

// Binary is an opened Go executable. It is safe for concurrent use.
type Binary struct {
	path     string
	name     string
	file     *os.File
	elf      *elf.File
	bi       *debug.BuildInfo
	stripped bool
	size     uint64 // file size, bounding every read
	ino      uint64 // inode of the file, to find its mappings in /proc/PID/maps
	tab      *pclntab
	pclnAddr uint64 // link-time address of the pclntab (runtime.pclntab, the pcHeader)
	text     uint64 // link-time address of runtime.text (moduledata.text)
	gofunc   uint64 // link-time address of go:func.* (moduledata.gofunc)
	modAddr  uint64 // link-time address of runtime.firstmoduledata, 0 if found via symbols only

	gnuBuildID string // hex, "" if absent
	goBuildID  string

	gofuncOnce sync.Once
	gofuncBase uint64
	gofuncData []byte
	gofuncErr  error

	namesOnce sync.Once
	names     map[string]int32 // physical function name -> functab index

	symsOnce sync.Once
	syms     map[string]uint64
	symsErr  error

	varsOnce sync.Once
	vars     RuntimeVars
	varsErr  error

	cache frameCache
}

// Open reads the Go executable at path.
func Open(path string) (*Binary, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("open Go executable: %w", err)
	}
	b, err := newBinary(f, path, path)
	if err != nil {
		f.Close()
		return nil, err
	}
	return b, nil
}

// OpenProcess opens the executable of a live process through /proc/PID/exe
// (works when the file was deleted or replaced, and across mount namespaces).
func OpenProcess(pid int) (*Binary, error) {
	if pid <= 0 {
		return nil, fmt.Errorf("open executable of process %d: invalid pid", pid)
	}
	path := "/proc/" + strconv.Itoa(pid) + "/exe"
	name := path
	if target, err := os.Readlink(path); err == nil {
		name = target
	}
	f, err := os.Open(path)
	if err != nil {
		switch {
		case errors.Is(err, os.ErrNotExist):
			return nil, fmt.Errorf("open executable of process %d: process does not exist or is a kernel thread: %w", pid, err)
		case errors.Is(err, os.ErrPermission):
			return nil, fmt.Errorf("open executable of process %d: permission denied: reading another user's executable needs root or CAP_DAC_READ_SEARCH (for an execute-only file) and CAP_SYS_PTRACE: %w", pid, err)
		}
		return nil, fmt.Errorf("open executable of process %d: %w", pid, err)
	}
	b, err := newBinary(f, path, name)
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("process %d: %w", pid, err)
	}
	return b, nil
}

// newBinary parses the ELF headers, build info and pclntab of an opened file.
func newBinary(f *os.File, path, name string) (*Binary, error) {
	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("stat %s: %w", name, err)
	}
	if st.IsDir() {
		return nil, fmt.Errorf("%s is a directory, not a Go executable: %w", name, ErrNotGo)
	}
	if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("%s is not a regular file: %w", name, ErrNotGo)
	}
	ef, err := elf.NewFile(f)
	if err != nil {
		return nil, fmt.Errorf("%s is not an ELF file (%v): %w", name, err, ErrNotGo)
	}
	b, err := fromELF(ef, f, st.Size(), name)
	if err != nil {
		return nil, err
	}
	b.path, b.file = path, f
	if sys, ok := st.Sys().(*syscall.Stat_t); ok {
		b.ino = sys.Ino
	}
	return b, nil
}

// fromELF builds a Binary from a parsed ELF file; r is the underlying file of size bytes.
func fromELF(ef *elf.File, r io.ReaderAt, size int64, name string) (b *Binary, err error) {
	defer func() {
		// debug/elf and debug/buildinfo can panic on some corrupt inputs; never let that escape.
		if p := recover(); p != nil {
			b, err = nil, fmt.Errorf("parse %s: corrupt ELF file (%v)", name, p)
		}
	}()
	bi, err := buildinfo.Read(r)
	if err != nil {
		if err.Error() == ErrNotGo.Error() {
			return nil, fmt.Errorf("%s: no Go build info: %w", name, ErrNotGo)
		}
		return nil, fmt.Errorf("read build info of %s: %v: %w", name, err, ErrNotGo)
	}
	if ef.Class != elf.ELFCLASS64 || ef.Machine != elf.EM_X86_64 {
		return nil, fmt.Errorf("%s (%s) is a %s %s executable: goroscope supports only amd64", name, bi.GoVersion, ef.Class, ef.Machine)
	}
	b = &Binary{name: name, path: name, elf: ef, bi: bi, size: uint64(size)}
	b.stripped = ef.Section(".symtab") == nil
	b.gnuBuildID, b.goBuildID = readBuildIDs(ef)
	if err := b.loadPCLNTab(); err != nil {
		return nil, err
	}
	b.cache.init()
	return b, nil
}

// Close releases the file. Strings returned earlier stay valid; ELF() and not yet loaded data
// (symbols, inline trees, code for RuntimeVars) become unavailable.
func (b *Binary) Close() error {
	if b.file == nil {
		return nil
	}
	err := b.file.Close()
	b.file = nil
	return err
}

// Path returns the path the executable was opened by (for OpenProcess, /proc/PID/exe).
func (b *Binary) Path() string { return b.path }

// Name returns a human-readable name: the path, or for OpenProcess the /proc/PID/exe link target
// (which may end in " (deleted)").
func (b *Binary) Name() string { return b.name }

// GoVersion returns the Go toolchain version from the build info, e.g. "go1.22.12".
func (b *Binary) GoVersion() string { return b.bi.GoVersion }

// BuildInfo returns the build info embedded by the Go toolchain.
func (b *Binary) BuildInfo() *debug.BuildInfo { return b.bi }

// Stripped reports whether the executable has no .symtab (e.g. built with -ldflags=-s).
func (b *Binary) Stripped() bool { return b.stripped }

// ELF returns the parsed ELF file, for DWARF readers elsewhere (DWARF may be absent).
func (b *Binary) ELF() *elf.File { return b.elf }

// TextStart returns the link-time address of runtime.text, the base of pclntab entry offsets.
func (b *Binary) TextStart() uint64 { return b.text }

// readVA reads n bytes at link-time virtual address addr from the file's PT_LOAD segments.
func (b *Binary) readVA(addr, n uint64) ([]byte, error) {
	if n > maxSectionSize {
		return nil, fmt.Errorf("read %d bytes at %#x: too large", n, addr)
	}
	for _, p := range b.elf.Progs {
		if p.Type != elf.PT_LOAD || addr < p.Vaddr || addr-p.Vaddr >= p.Filesz {
			continue
		}
		off := addr - p.Vaddr
		if n > p.Filesz-off || p.Off > b.size || off > b.size-p.Off || n > b.size-p.Off-off {
			return nil, fmt.Errorf("read %d bytes at %#x: crosses the end of the file-backed segment", n, addr)
		}
		buf := make([]byte, n)
		if _, err := p.ReadAt(buf, int64(addr-p.Vaddr)); err != nil {
			return nil, fmt.Errorf("read %d bytes at %#x: %w", n, addr, err)
		}
		return buf, nil
	}
	return nil, fmt.Errorf("address %#x is not in a file-backed segment", addr)
}

// sectionFor returns the allocated section with file data containing addr, or nil.
func (b *Binary) sectionFor(addr uint64) *elf.Section {
	for _, s := range b.elf.Sections {
		if s.Flags&elf.SHF_ALLOC == 0 || s.Type == elf.SHT_NOBITS || s.Size == 0 {
			continue
		}
		if addr >= s.Addr && addr-s.Addr < s.Size {
			return s
		}
	}
	return nil
}

// symbols loads the .symtab once into a name->address map.
func (b *Binary) symbols() (map[string]uint64, error) {
	b.symsOnce.Do(func() {
		if b.stripped {
			b.symsErr = errors.New("no .symtab (built with -ldflags=-s)")
			return
		}
		syms, err := b.elf.Symbols()
		if err != nil {
			b.symsErr = fmt.Errorf("read .symtab: %w", err)
			return
		}
		b.syms = make(map[string]uint64, len(syms))
		for _, s := range syms {
			b.syms[s.Name] = s.Value
		}
	})
	return b.syms, b.symsErr
}
