package walk

import (
	"encoding/binary"
	"errors"
	"fmt"
	"sync"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// ErrFault reports a read of an address the target has not mapped (or no
// longer maps): under a live walk this means the memory changed under us.
var ErrFault = errors.New("address not mapped in target")

// Memory reads another process's memory.
type Memory interface {
	// ReadAt fills p with the target's bytes at addr, or fails with an error
	// wrapping ErrFault when the range is not mapped.
	ReadAt(p []byte, addr uint64) error
}

// maxIOV is the most iovecs one process_vm_readv call takes (IOV_MAX).
const maxIOV = 1024

// ProcMem reads a live process's memory with process_vm_readv, batching
// many small reads into one system call.
type ProcMem struct {
	pid int
}

// NewProcMem returns a reader of process pid's memory. It checks once that
// the process exists and that we may read it.
func NewProcMem(pid int) (*ProcMem, error) {
	m := &ProcMem{pid: pid}
	var b [1]byte
	// Reading address 0 fails with EFAULT when we may read, ESRCH when the
	// process is gone and EPERM without ptrace rights: a cheap probe.
	err := m.ReadAt(b[:], 0)
	switch {
	case err == nil, errors.Is(err, ErrFault):
		return m, nil
	case errors.Is(err, ErrProcessGone):
		return nil, fmt.Errorf("read memory of pid %d: %w", pid, err)
	case errors.Is(err, syscall.EPERM):
		return nil, fmt.Errorf("read memory of pid %d: %w (run as root or grant CAP_SYS_PTRACE)", pid, err)
	}
	return nil, fmt.Errorf("read memory of pid %d: %w", pid, err)
}

// PID is the process read.
func (m *ProcMem) PID() int { return m.pid }

// ReadAt implements Memory.
func (m *ProcMem) ReadAt(p []byte, addr uint64) error {
	if len(p) == 0 {
		return nil
	}
	local := []unix.Iovec{{Base: &p[0]}}
	local[0].SetLen(len(p))
	remote := []unix.RemoteIovec{{Base: uintptr(addr), Len: len(p)}}
	n, err := unix.ProcessVMReadv(m.pid, local, remote, 0)
	if err != nil {
		return fmt.Errorf("read %d bytes at %#x of pid %d: %w", len(p), addr, m.pid, classify(err))
	}
	if n != len(p) {
		return fmt.Errorf("read %d bytes at %#x of pid %d: short read of %d: %w", len(p), addr, m.pid, n, ErrFault)
	}
	return nil
}

// classify maps process_vm_readv errors to the package's sentinels.
func classify(err error) error {
	switch {
	case errors.Is(err, syscall.EFAULT):
		return ErrFault
	case errors.Is(err, syscall.ESRCH):
		return fmt.Errorf("no such process: %w", ErrProcessGone)
	}
	return err
}

// iovecs are the system call's vectors, pooled: walks make many batches.
type iovecs struct {
	local  []unix.Iovec
	remote []unix.RemoteIovec
}

var iovPool = sync.Pool{New: func() any {
	return &iovecs{local: make([]unix.Iovec, 0, maxIOV), remote: make([]unix.RemoteIovec, 0, maxIOV)}
}}

// Read is one element of a batch: Len bytes at Addr into Buf[:Len].
type Read struct {
	Addr uint64
	Buf  []byte
	// Err is set by ReadBatch for a read that failed.
	Err error
}

// ReadBatch performs all reads with as few system calls as possible. Each
// read's outcome is in its Err; the returned error is for the batch as a
// whole (process gone, no permission).
func (m *ProcMem) ReadBatch(reads []Read) error {
	iov := iovPool.Get().(*iovecs)
	defer iovPool.Put(iov)
	local, remote := iov.local[:0], iov.remote[:0]
	for start := 0; start < len(reads); {
		end := min(start+maxIOV, len(reads))
		local, remote = local[:0], remote[:0]
		want := 0
		for i := start; i < end; i++ {
			r := &reads[i]
			r.Err = nil
			if len(r.Buf) == 0 {
				continue
			}
			iv := unix.Iovec{Base: &r.Buf[0]}
			iv.SetLen(len(r.Buf))
			local = append(local, iv)
			remote = append(remote, unix.RemoteIovec{Base: uintptr(r.Addr), Len: len(r.Buf)})
			want += len(r.Buf)
		}
		if len(local) == 0 {
			start = end
			continue
		}
		n, err := unix.ProcessVMReadv(m.pid, local, remote, 0)
		if err != nil && !errors.Is(err, syscall.EFAULT) {
			return fmt.Errorf("read memory of pid %d: %w", m.pid, classify(err))
		}
		if n == want {
			start = end
			continue
		}
		// The kernel stops at the first remote range it cannot read: mark
		// that read failed and go on after it.
		for i := start; i < end; i++ {
			r := &reads[i]
			if len(r.Buf) == 0 {
				continue
			}
			if n >= len(r.Buf) {
				n -= len(r.Buf)
				continue
			}
			r.Err = fmt.Errorf("read %d bytes at %#x of pid %d: %w", len(r.Buf), r.Addr, m.pid, ErrFault)
			start = i + 1
			break
		}
	}
	return nil
}

// Cached wraps a Memory with nothing but helpers for typed reads.
type reader struct {
	mem Memory
	buf [8]byte
}

func (r *reader) u64(addr uint64) (uint64, error) {
	if err := r.mem.ReadAt(r.buf[:8], addr); err != nil {
		return 0, err
	}
	return binary.LittleEndian.Uint64(r.buf[:8]), nil
}

func le64(b []byte, off int64) uint64 {
	if off < 0 || int(off)+8 > len(b) {
		return 0
	}
	return binary.LittleEndian.Uint64(b[off:])
}

func le32(b []byte, off int64) uint32 {
	if off < 0 || int(off)+4 > len(b) {
		return 0
	}
	return binary.LittleEndian.Uint32(b[off:])
}

func le8(b []byte, off int64) uint8 {
	if off < 0 || int(off) >= len(b) {
		return 0
	}
	return b[off]
}

// bytesOf views a []uint64 as bytes without copying.
func bytesOf(s []uint64) []byte {
	if len(s) == 0 {
		return nil
	}
	return unsafe.Slice((*byte)(unsafe.Pointer(&s[0])), len(s)*8)
}

// bytesOf32 views a []uint32 as bytes without copying.
func bytesOf32(s []uint32) []byte {
	if len(s) == 0 {
		return nil
	}
	return unsafe.Slice((*byte)(unsafe.Pointer(&s[0])), len(s)*4)
}
