package process

import (
	"errors"
	"fmt"
	"sync"
	"syscall"

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

// MaxIOV is the most reads one process_vm_readv call takes (IOV_MAX):
// ReadBatch makes one system call per MaxIOV reads at best.
const MaxIOV = 1024

// Mem reads a live process's memory with process_vm_readv, batching many
// small reads into one system call.
type Mem struct {
	pid int
}

// NewMem returns a reader of process pid's memory. It checks once that the
// process exists and that we may read it.
func NewMem(pid int) (*Mem, error) {
	m := &Mem{pid: pid}
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
func (m *Mem) PID() int { return m.pid }

// ReadAt implements Memory.
func (m *Mem) ReadAt(p []byte, addr uint64) error {
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
	return &iovecs{local: make([]unix.Iovec, 0, MaxIOV), remote: make([]unix.RemoteIovec, 0, MaxIOV)}
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
func (m *Mem) ReadBatch(reads []Read) error {
	iov := iovPool.Get().(*iovecs)
	defer iovPool.Put(iov)
	local, remote := iov.local[:0], iov.remote[:0]
	for start := 0; start < len(reads); {
		end := min(start+MaxIOV, len(reads))
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
