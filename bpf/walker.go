//go:build linux

package bpf

import (
	"errors"
	"fmt"
	"sync"

	"github.com/cilium/ebpf/ringbuf"
	"github.com/cilium/ebpf/rlimit"
)

// minKernel is the oldest kernel with sleepable iterators, bpf_copy_from_user_task and bpf_loop.
const minKernel = "5.18"

// ringSize is the size of the record ring buffer (a power of two multiple
// of the page size). Userspace drains it while the iterator fills it, and a
// full ring ends the pass to resume where it stopped, so it need not hold a
// whole walk: 4 MiB keeps the agent's resident memory low (the ring is
// mapped twice) at the cost of more passes for the largest processes.
const ringSize = 4 << 20

// seenEntries sizes the walker's LRU map of goroutines parked unchanged,
// whose stacks a walk need not copy again (SEEN_MAX in goroutines.bpf.c is
// the largest). LRU maps are preallocated and charged to the agent's
// memory cgroup: 2^17 entries take 15 MB and cover hosts of 130k
// goroutines; beyond that the least recently walked are read in full.
const seenEntries = 1 << 17

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
// A failure is a *LoadError naming the cause in one line; the verifier
// checks the program once (a rejection costs one verification, not two).
func LoadGoroutineWalker() (*GoroutineWalker, error) {
	if err := checkCaps(); err != nil {
		return nil, err
	}
	if err := rlimit.RemoveMemlock(); err != nil {
		return nil, fmt.Errorf("load goroutine walker: raise RLIMIT_MEMLOCK: %w", err)
	}
	spec, err := loadGoroutines()
	if err != nil {
		return nil, fmt.Errorf("load goroutine walker: parse embedded BPF object: %w", err)
	}
	spec.Maps["events"].MaxEntries = ringSize
	spec.Maps["seen"].MaxEntries = seenEntries
	w := &GoroutineWalker{}
	if err := spec.LoadAndAssign(&w.objs, loadOptions()); err != nil {
		return nil, explainLoadError("goroutine walker", "sleepable task iterators, bpf_copy_from_user_task and bpf_loop", err)
	}
	w.rd, err = ringbuf.NewReader(w.objs.Events)
	if err != nil {
		_ = w.objs.Close() // the ring buffer's error is the one to report
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
