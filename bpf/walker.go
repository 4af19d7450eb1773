//go:build linux

package bpf

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/btf"
	"github.com/cilium/ebpf/ringbuf"
	"github.com/cilium/ebpf/rlimit"
	"golang.org/x/sys/unix"
)

// minKernel is the oldest kernel with sleepable iterators, bpf_copy_from_user_task and bpf_loop.
const minKernel = "5.18"

// ringSize is the size of the record ring buffer (a power of two multiple
// of the page size). Userspace drains it while the iterator fills it, and a
// full ring ends the pass to resume where it stopped, so it need not hold a
// whole walk: 4 MiB keeps the agent's resident memory low (the ring is
// mapped twice) at the cost of more passes for the largest processes.
const ringSize = 4 << 20

// GoroutineWalker holds the loaded iterator program and its maps; load once, walk many processes.
// Walks are serialized: concurrent Walk calls wait for each other.
type GoroutineWalker struct {
	mu     sync.Mutex // serializes walks: one config map, one ring
	objs   goroutinesObjects
	rd     *ringbuf.Reader
	rec    ringbuf.Record
	grec   GRecord
	walkID uint32
	closed bool
}

// LoadGoroutineWalker loads the goroutine iterator into the kernel.
// It needs root (or CAP_BPF and CAP_PERFMON), kernel BTF and Linux >= 5.18.
func LoadGoroutineWalker() (*GoroutineWalker, error) {
	if err := checkCaps(); err != nil {
		return nil, err
	}
	if _, err := os.Stat("/sys/kernel/btf/vmlinux"); err != nil {
		return nil, fmt.Errorf("load goroutine walker: kernel BTF is missing (%w); it needs a kernel built with CONFIG_DEBUG_INFO_BTF=y (Linux >= %s)", err, minKernel)
	}
	if err := rlimit.RemoveMemlock(); err != nil {
		return nil, fmt.Errorf("load goroutine walker: raise RLIMIT_MEMLOCK: %w", err)
	}
	spec, err := loadGoroutines()
	if err != nil {
		return nil, fmt.Errorf("load goroutine walker: parse embedded BPF object: %w", err)
	}
	spec.Maps["events"].MaxEntries = ringSize
	w := &GoroutineWalker{}
	if err := spec.LoadAndAssign(&w.objs, nil); err != nil {
		return nil, explainLoadError(err)
	}
	w.rd, err = ringbuf.NewReader(w.objs.Events)
	if err != nil {
		w.objs.Close()
		return nil, fmt.Errorf("load goroutine walker: open ring buffer: %w", err)
	}
	return w, nil
}

// Close unloads the program and frees its maps. It waits for a running Walk.
func (w *GoroutineWalker) Close() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return nil
	}
	w.closed = true
	return errors.Join(w.rd.Close(), w.objs.Close())
}

// checkCaps fails clearly when the process cannot load tracing BPF programs.
func checkCaps() error {
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	var data [2]unix.CapUserData
	if err := unix.Capget(&hdr, &data[0]); err != nil {
		return fmt.Errorf("load goroutine walker: read capabilities: %w", err)
	}
	has := func(c uint) bool { return data[c/32].Effective&(1<<(c%32)) != 0 }
	if has(unix.CAP_SYS_ADMIN) || (has(unix.CAP_BPF) && has(unix.CAP_PERFMON)) {
		return nil
	}
	return fmt.Errorf("load goroutine walker: need root, or CAP_BPF and CAP_PERFMON (uid %d lacks them): %w", os.Geteuid(), os.ErrPermission)
}

// explainLoadError turns a failed load into an error naming the likely fix.
func explainLoadError(err error) error {
	rel := kernelRelease()
	var verr *ebpf.VerifierError
	// The verifier reports rejections as EACCES/EPERM too, so look at its log first.
	switch {
	case errors.As(err, &verr) && mentionsMissingFeature(verr.Error()):
		return fmt.Errorf("load goroutine walker: kernel %s lacks sleepable task iterators, bpf_copy_from_user_task or bpf_loop; Linux >= %s is needed: %w", rel, minKernel, err)
	case errors.As(err, &verr):
		return fmt.Errorf("load goroutine walker: the kernel %s verifier rejected the iterator (Linux >= %s is needed): %+v", rel, minKernel, verr)
	case errors.Is(err, btf.ErrNotSupported):
		return fmt.Errorf("load goroutine walker: kernel %s has no usable BTF; it needs CONFIG_DEBUG_INFO_BTF=y and Linux >= %s: %w", rel, minKernel, err)
	case errors.Is(err, ebpf.ErrNotSupported):
		return fmt.Errorf("load goroutine walker: kernel %s lacks sleepable task iterators, bpf_copy_from_user_task or bpf_loop; Linux >= %s is needed: %w", rel, minKernel, err)
	case errors.Is(err, unix.EPERM) || errors.Is(err, unix.EACCES):
		return fmt.Errorf("load goroutine walker: permission denied; run as root or with CAP_BPF and CAP_PERFMON: %w", err)
	}
	return fmt.Errorf("load goroutine walker on kernel %s (Linux >= %s needed): %w", rel, minKernel, err)
}

func mentionsMissingFeature(log string) bool {
	for _, s := range []string{"unknown func", "invalid func", "sleepable", "iter.s", "attach_btf_id", "not supported"} {
		if strings.Contains(log, s) {
			return true
		}
	}
	return false
}

func kernelRelease() string {
	var u unix.Utsname
	if err := unix.Uname(&u); err != nil {
		return "(unknown)"
	}
	return unix.ByteSliceToString(u.Release[:])
}
