package gobin

import (
	"debug/elf"
	"errors"
	"fmt"
	"os"
	"runtime/debug"

	"golang.org/x/sys/unix"
)

// The executable is mapped read-only, once, by Open and OpenProcess: the pclntab, the go:func.*
// data (inline trees), .symtab/.strtab and the code read for RuntimeVars alias the mapping
// instead of being copied into the heap, so an opened executable costs its page tables and the
// pages touched (file pages, shared with the page cache, which Trim drops) rather than megabytes
// of heap.
//
// The file is untrusted and its owner may truncate or rewrite it while it is mapped: a read past
// the new end of the file raises SIGBUS. Every exported method that reads the mapping therefore
// runs between enter and leave, which make such a fault panic (debug.SetPanicOnFault) and turn the
// panic into an empty result or an error. No slice or string that aliases the mapping leaves the
// package: names and file names are copied to the heap (and interned, see cache).

// ErrClosed is wrapped by the errors of methods called after Close.
var ErrClosed = errors.New("gobin: executable closed")

// maxFileSize bounds the size of an executable that is mapped (4 GiB): larger is no Go program.
const maxFileSize = 1 << 32

// mapFile maps the first size bytes of f read-only.
func mapFile(f *os.File, size int64, name string) ([]byte, error) {
	if size <= 0 {
		return nil, fmt.Errorf("%s is empty: %w", name, ErrNotGo)
	}
	if size > maxFileSize {
		return nil, fmt.Errorf("%s is %d bytes, larger than the %d that goroscope maps: not a Go executable it can read", name, size, int64(maxFileSize))
	}
	data, err := unix.Mmap(int(f.Fd()), 0, int(size), unix.PROT_READ, unix.MAP_SHARED)
	if err != nil {
		return nil, fmt.Errorf("map %s read-only: %w", name, err)
	}
	return data, nil
}

// enter begins an exported call that reads the mapping: it read-locks b against Close and makes
// a fault on the mapping panic instead of killing the process. open is false when b is closed;
// otherwise the caller must `defer b.leave(old, onFault)` right away.
func (b *Binary) enter() (old, open bool) {
	b.mu.RLock()
	if b.closed {
		b.mu.RUnlock()
		return false, false
	}
	return debug.SetPanicOnFault(true), true
}

// leave ends a call begun by enter. Deferred directly, it recovers a panic of the call (a fault
// on the mapping of a truncated file, or a bound exceeded in data rewritten under us) and hands
// it to onFault, which sets the call's results to an empty answer or an error.
func (b *Binary) leave(old bool, onFault func(p any)) {
	if p := recover(); p != nil {
		onFault(p)
	}
	debug.SetPanicOnFault(old)
	b.mu.RUnlock()
}

// faultError describes a panic recovered while reading the executable.
func (b *Binary) faultError(p any) error { return faultError(b.name, p) }

// faultError describes a panic recovered while reading the executable called name: a fault on
// the mapping (the file shrank), or a bound exceeded in corrupt or changing data.
func faultError(name string, p any) error {
	if f, ok := p.(interface{ Addr() uintptr }); ok {
		return fmt.Errorf("read %s: fault at %#x: the file was truncated or rewritten while open; reopen it", name, f.Addr())
	}
	return fmt.Errorf("read %s: corrupt or changing file (%v); reopen it, or file an issue with the binary if it persists", name, p)
}

// closedError is the error of a method called after Close.
func (b *Binary) closedError() error {
	return fmt.Errorf("%s: %w", b.name, ErrClosed)
}

// Trim drops this process's resident pages of the executable's mapping (madvise
// MADV_DONTNEED). The file's pages stay in the page cache, shared with the processes that run
// it; only this process's RSS (RssFile) falls, and later lookups fault the pages they need back
// in. Open calls it once the tables are parsed, and RuntimeVars after its scan; call it when a
// round of symbolisation is done (e.g. after each snapshot of the processes running b). It is a
// no-op after Close, for a Binary not backed by a file, and if the kernel refuses the advice.
func (b *Binary) Trim() {
	b.mu.RLock()
	defer b.mu.RUnlock()
	if !b.closed {
		b.dropPages()
	}
}

// dropPages implements Trim for a caller that holds b.mu.
func (b *Binary) dropPages() {
	if b.mapped != nil {
		_ = unix.Madvise(b.mapped, unix.MADV_DONTNEED) // fails only for a range not mapped
	}
}

// unmap releases the mapping. The caller holds b.mu for writing.
func (b *Binary) unmap() error {
	if b.mapped == nil {
		return nil
	}
	err := unix.Munmap(b.mapped)
	b.mapped = nil
	if err != nil {
		return fmt.Errorf("unmap %s: %w", b.name, err)
	}
	return nil
}

// fileBytes returns the n bytes at offset off of the file. The result aliases the mapping: it is
// read-only (its capacity ends with it, so an append copies) and must not leave the package.
func (b *Binary) fileBytes(off, n uint64) ([]byte, bool) {
	size := uint64(len(b.data))
	if off > size || n > size-off {
		return nil, false
	}
	return b.data[off : off+n : off+n], true
}

// sectionBytes returns the file contents of section s, aliasing the mapping (see fileBytes).
// Compressed sections are refused: nothing gobin reads is compressed in an executable.
func (b *Binary) sectionBytes(s *elf.Section) ([]byte, error) {
	switch {
	case s.Type == elf.SHT_NOBITS:
		return nil, fmt.Errorf("section %s has no file data", s.Name)
	case s.Flags&elf.SHF_COMPRESSED != 0:
		return nil, fmt.Errorf("section %s is compressed (SHF_COMPRESSED); goroscope reads it only uncompressed", s.Name)
	case s.FileSize > maxSectionSize:
		return nil, fmt.Errorf("section %s of %d bytes is too large", s.Name, s.FileSize)
	}
	data, ok := b.fileBytes(s.Offset, s.FileSize)
	if !ok {
		return nil, fmt.Errorf("section %s (%d bytes at offset %#x) extends past the end of the %d-byte file", s.Name, s.FileSize, s.Offset, len(b.data))
	}
	return data, nil
}
