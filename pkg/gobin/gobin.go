// Package gobin reads what the goroutine walker needs from a Go executable:
// build info, the pclntab (function table, pc→file:line with inlined frames, SP deltas),
// the addresses of runtime variables, and the load bias of a running process.
// It supports Go 1.21–1.26 amd64 ELF binaries, stripped or not, PIE or not, linked by Go or by the
// external linker.
//
// An opened executable is mapped read-only rather than read into the heap: a Binary costs tens of
// kilobytes of heap plus bounded caches, and the file pages it touches, which Trim drops. The
// file is untrusted and may shrink while mapped: lookups then return empty results or errors,
// never fault (see mapping.go). A Binary is safe for concurrent use, Close included.
//
// It is internal to goroscope, not meant for import by other modules: its
// API may change at any time. The one public API is pkg/inproc.
package gobin

import (
	"bytes"
	"debug/buildinfo"
	"debug/elf"
	"errors"
	"fmt"
	"os"
	"runtime/debug"
	"strconv"
	"sync"
	"syscall"

	"golang.org/x/sys/unix"
)

// ErrNotGo is wrapped by the errors of Open and OpenProcess when the file is not a Go executable.
var ErrNotGo = errors.New("not a Go executable")

// maxSectionSize bounds any section or segment read (1 GiB).
const maxSectionSize = 1 << 30

// Binary is an opened Go executable. It is safe for concurrent use, including Close.
//
// The file is mapped read-only (see mapping.go): what a Binary holds in the heap is its ELF
// headers, build info and a few addresses (about 30 kB, whatever the size of the executable),
// and caches bounded to about 0.3 MB (see cache.go).
type Binary struct {
	path     string
	name     string
	file     *os.File
	elf      *elf.File
	bi       *debug.BuildInfo
	stripped bool
	ino      uint64 // inode of the file, to find its mappings in /proc/PID/maps

	// mu is read-locked by every call that reads the mapping (enter, leave); Close write-locks
	// it to unmap. closed, data, tab and gofuncData are read under it.
	mu     sync.RWMutex
	closed bool
	mapped []byte // the mapping as mmap returned it; nil when built from bytes by fromELF
	data   []byte // the whole file: the mapping, or the bytes given to fromELF; bounds every read

	tab      *pclntab // aliases data
	pclnAddr uint64   // link-time address of the pclntab (runtime.pclntab, the pcHeader)
	text     uint64   // link-time address of runtime.text (moduledata.text)
	gofunc   uint64   // link-time address of go:func.* (moduledata.gofunc)
	modAddr  uint64   // link-time address of runtime.firstmoduledata, 0 if found via symbols only

	gofuncBase uint64 // link-time address of gofuncData
	gofuncData []byte // the section or segment holding go:func.*, aliasing data; nil if none

	gnuBuildID string // hex, "" if absent
	goBuildID  string

	symsOnce sync.Once
	syms     symbolTable
	symsErr  error

	varsOnce sync.Once
	vars     RuntimeVars
	varsErr  error

	state stateMemo

	cache cache
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

// newBinary maps an opened file and parses its ELF headers, build info and pclntab. The ELF
// headers are read through f, so that ELF() and its section readers (DWARF) never touch the
// mapping; everything else aliases the mapping.
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
	ef, err := parseELF(f, name)
	if err != nil {
		return nil, err
	}
	mapped, err := mapFile(f, st.Size(), name)
	if err != nil {
		return nil, err
	}
	b, err := fromELF(ef, mapped, name)
	if err != nil {
		_ = unix.Munmap(mapped)
		return nil, err
	}
	b.path, b.file, b.mapped = path, f, mapped
	if sys, ok := st.Sys().(*syscall.Stat_t); ok {
		b.ino = sys.Ino
	}
	b.Trim() // parsing touched the headers, the moduledata and maybe .symtab
	return b, nil
}

// parseELF parses the ELF headers of f, turning a panic of debug/elf on corrupt input into an
// error.
func parseELF(f *os.File, name string) (ef *elf.File, err error) {
	defer func() {
		if p := recover(); p != nil {
			ef, err = nil, fmt.Errorf("%s is not an ELF file (corrupt headers: %v): %w", name, p, ErrNotGo)
		}
	}()
	ef, err = elf.NewFile(f)
	if err != nil {
		return nil, fmt.Errorf("%s is not an ELF file (%v): %w", name, err, ErrNotGo)
	}
	return ef, nil
}

// fromELF builds a Binary from a parsed ELF file whose whole contents are data (the mapping, or
// bytes in tests). Faults on data and panics of debug/elf or debug/buildinfo on corrupt input
// become errors.
func fromELF(ef *elf.File, data []byte, name string) (b *Binary, err error) {
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer func() {
		if p := recover(); p != nil {
			b, err = nil, fmt.Errorf("parse %s: corrupt ELF file: %w", name, faultError(name, p))
		}
	}()
	bi, err := buildinfo.Read(bytes.NewReader(data))
	if err != nil {
		if err.Error() == ErrNotGo.Error() {
			return nil, fmt.Errorf("%s: no Go build info: %w", name, ErrNotGo)
		}
		return nil, fmt.Errorf("read build info of %s: %v: %w", name, err, ErrNotGo)
	}
	if ef.Class != elf.ELFCLASS64 || ef.Machine != elf.EM_X86_64 {
		return nil, fmt.Errorf("%s (%s) is a %s %s executable: goroscope supports only amd64", name, bi.GoVersion, ef.Class, ef.Machine)
	}
	b = &Binary{name: name, path: name, elf: ef, bi: bi, data: data[:len(data):len(data)]}
	b.stripped = ef.Section(".symtab") == nil
	b.gnuBuildID, b.goBuildID = b.readBuildIDs()
	if err := b.loadPCLNTab(); err != nil {
		return nil, err
	}
	// Without go:func.* data (never seen in a Go executable), Frames reports no inlined calls.
	b.gofuncData, b.gofuncBase, _ = b.findGofunc()
	return b, nil
}

// Close unmaps the executable and closes the file. It may be called more than once and
// concurrently with every other method: it waits for the calls reading the mapping to return;
// afterwards Frames, FuncForPC, FuncByIndex, FuncByName and NumFuncs return empty results, and
// SPDelta and RuntimeVars errors wrapping ErrClosed. Strings returned earlier stay valid (they
// are heap copies). What is held in the heap stays available: Path, Name, GoVersion, BuildInfo,
// BuildID, Stripped, TextStart, FuncIDs, FileOffset and LoadBias. ELF() still returns the parsed
// headers, but reading sections or DWARF through it fails.
func (b *Binary) Close() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return nil
	}
	b.closed = true
	err := b.unmap()
	b.data, b.tab, b.gofuncData = nil, nil, nil
	b.cache.reset()
	if b.file != nil {
		if cerr := b.file.Close(); err == nil {
			err = cerr
		}
		b.file = nil
	}
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

// ELF returns the parsed ELF file, for DWARF readers elsewhere (DWARF may be absent). Its section
// readers read the file (pread), not the mapping, so a truncated file gives them errors, not
// faults; they fail after Close. DWARF() decompresses the debug sections into the heap: drop the
// result as soon as it has been read.
func (b *Binary) ELF() *elf.File { return b.elf }

// TextStart returns the link-time address of runtime.text, the base of pclntab entry offsets.
func (b *Binary) TextStart() uint64 { return b.text }

// readVA returns the n bytes at link-time virtual address addr from the file's PT_LOAD
// segments. The result aliases the mapping (see fileBytes).
func (b *Binary) readVA(addr, n uint64) ([]byte, error) {
	if n > maxSectionSize {
		return nil, fmt.Errorf("read %d bytes at %#x: too large", n, addr)
	}
	size := uint64(len(b.data))
	for _, p := range b.elf.Progs {
		if p.Type != elf.PT_LOAD || addr < p.Vaddr || addr-p.Vaddr >= p.Filesz {
			continue
		}
		off := addr - p.Vaddr
		if n > p.Filesz-off || p.Off > size || off > size-p.Off {
			return nil, fmt.Errorf("read %d bytes at %#x: crosses the end of the file-backed segment", n, addr)
		}
		data, ok := b.fileBytes(p.Off+off, n)
		if !ok {
			return nil, fmt.Errorf("read %d bytes at %#x: crosses the end of the %d-byte file", n, addr, size)
		}
		return data, nil
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
