//go:build linux

package bpf

import (
	"errors"
	"fmt"
	"runtime"
	"unsafe"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
	"golang.org/x/sys/unix"
)

// From include/uapi/linux/bpf.h.
const (
	bpfLinkCreate = 28 // enum bpf_cmd BPF_LINK_CREATE
	bpfTraceIter  = 28 // enum bpf_attach_type BPF_TRACE_ITER
)

// linkCreateIterAttr is the BPF_LINK_CREATE part of union bpf_attr used for iterators.
type linkCreateIterAttr struct {
	progFD      uint32
	targetFD    uint32
	attachType  uint32
	flags       uint32
	iterInfo    uint64
	iterInfoLen uint32
	_           [36]byte
}

// iterLinkInfoTask is the task member of union bpf_iter_link_info (Linux >= 6.1).
type iterLinkInfoTask struct {
	tid   uint32
	pid   uint32
	pidFD uint32
}

// attachTaskIter links the task iterator prog so that it visits only the
// task with thread id tid. cilium/ebpf's link.AttachIter cannot pass the task
// parameters, so this issues BPF_LINK_CREATE itself. Kernels older than 6.1
// reject the parameters; then the iterator is linked unfiltered (it visits all
// tasks and the BPF program filters). filtered reports which happened.
func attachTaskIter(prog *ebpf.Program, tid uint32) (it *link.Iter, filtered bool, err error) {
	info := &iterLinkInfoTask{tid: tid}
	var pin runtime.Pinner
	pin.Pin(info)
	defer pin.Unpin()

	attr := linkCreateIterAttr{
		progFD:      uint32(prog.FD()),
		attachType:  bpfTraceIter,
		iterInfo:    uint64(uintptr(unsafe.Pointer(info))),
		iterInfoLen: uint32(unsafe.Sizeof(*info)),
	}
	fd, _, errno := unix.Syscall(unix.SYS_BPF, bpfLinkCreate, uintptr(unsafe.Pointer(&attr)), unsafe.Sizeof(attr))
	runtime.KeepAlive(&attr)
	if errno == 0 {
		l, err := link.NewFromFD(int(fd))
		if err != nil {
			return nil, false, fmt.Errorf("wrap task iterator link: %w", err)
		}
		it, ok := l.(*link.Iter)
		if !ok {
			l.Close()
			return nil, false, fmt.Errorf("task iterator link has unexpected type %T", l)
		}
		return it, true, nil
	}
	if !errors.Is(errno, unix.EINVAL) && !errors.Is(errno, unix.E2BIG) {
		return nil, false, fmt.Errorf("link task iterator for tid %d: %w", tid, errno)
	}
	it, err = link.AttachIter(link.IterOptions{Program: prog})
	if err != nil {
		return nil, false, fmt.Errorf("link task iterator (unfiltered; the kernel rejected tid %d as a filter: %v): %w", tid, errno, err)
	}
	return it, false, nil
}
