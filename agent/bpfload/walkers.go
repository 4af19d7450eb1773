package bpfload

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"

	"github.com/goroscope/goroscope/bpf"
	"github.com/goroscope/goroscope/collect/walk"
)

// EBPFWalker is a loaded eBPF goroutine walker: walk.EBPFWalker, or what a
// test injects.
type EBPFWalker interface {
	walk.Walker
	io.Closer
}

// LoadEBPFWalker loads the eBPF goroutine walker. It cannot honour ctx: the
// kernel verifier cannot be interrupted.
func LoadEBPFWalker(context.Context) (EBPFWalker, error) {
	w, err := walk.NewEBPFWalker()
	if err != nil {
		return nil, err
	}
	return w, nil
}

// WalkerObject is the eBPF walker's object, loaded by load and remembered
// in v when the verifier rejects it.
func WalkerObject(v *Verdicts, load func(context.Context) (EBPFWalker, error)) *Object[EBPFWalker] {
	return &Object[EBPFWalker]{what: "goroutine walker", obj: bpf.GoroutinesObject(), kernel: bpf.KernelBuild(), verdicts: v, load: load}
}

// ErrStillLoading: the eBPF walker has not loaded yet.
var ErrStillLoading = errors.New("the eBPF goroutine walker is still loading (kernel verifier)")

// Walkers are the goroutine walkers a --walker flag asks for. With "auto"
// the eBPF walker loads in the background and procmem serves until it is
// ready, or for good when it cannot load; with "ebpf" nothing serves until
// it is ready, and its failure is fatal; "procmem" loads nothing.
type Walkers struct {
	mode    string
	procmem walk.ProcMemWalker

	mu     sync.Mutex
	load   *Load[EBPFWalker] // once started; nil with procmem
	ebpf   EBPFWalker        // once loaded
	err    error             // why the eBPF walker will not serve
	closed bool
}

// CheckWalkerMode checks a --walker value.
func CheckWalkerMode(mode string) error {
	switch mode {
	case "auto", "ebpf", "procmem":
		return nil
	}
	return fmt.Errorf("--walker %q: want auto, ebpf or procmem", mode)
}

// NewWalkers returns the walkers for mode, procmem serving (unless
// "ebpf") until Start loads the eBPF walker.
func NewWalkers(mode string) (*Walkers, error) {
	if err := CheckWalkerMode(mode); err != nil {
		return nil, err
	}
	return &Walkers{mode: mode}, nil
}

// StartWalkers is NewWalkers and Start.
func StartWalkers(ctx context.Context, mode string, obj *Object[EBPFWalker]) (*Walkers, error) {
	w, err := NewWalkers(mode)
	if err != nil {
		return nil, err
	}
	if err := w.Start(ctx, obj); err != nil {
		return nil, err
	}
	return w, nil
}

// Start begins loading the eBPF walker from obj, unless the mode is
// procmem. The load runs until it ends even if ctx does (see Load);
// Close drops it. With "ebpf" a rejection remembered for this kernel fails
// at once.
func (w *Walkers) Start(ctx context.Context, obj *Object[EBPFWalker]) error {
	switch w.mode {
	case "procmem":
		return nil
	case "ebpf":
		if err := obj.Cached(); err != nil {
			return err
		}
	}
	l := obj.Start(ctx)
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed || w.load != nil {
		l.Drop()
		return errors.New("walkers closed or started twice")
	}
	w.load = l
	return nil
}

// Loading returns the eBPF walker's load; nil before Start or with procmem.
func (w *Walkers) Loading() *Load[EBPFWalker] {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.load
}

// Await waits, until ctx ends, for the eBPF walker's load to end, and lets
// its result serve. It returns nil when the eBPF walker serves (or procmem
// is all there is), ErrStillLoading when ctx ended first, or why the eBPF
// walker cannot serve.
func (w *Walkers) Await(ctx context.Context) error {
	l := w.Loading()
	if l == nil {
		return nil
	}
	v, err := l.Wait(ctx)
	if errors.Is(err, ErrNotLoaded) {
		return ErrStillLoading
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	switch {
	case errors.Is(err, ErrTaken):
		return w.err
	case err != nil:
		w.err = err
		return err
	case w.closed:
		v.Close()
		return errors.New("walkers closed")
	}
	w.ebpf = v
	return nil
}

// Pick returns the walker that serves now; nil with "ebpf" before it loads.
func (w *Walkers) Pick() walk.Walker {
	w.mu.Lock()
	defer w.mu.Unlock()
	switch {
	case w.ebpf != nil:
		return w.ebpf
	case w.mode == "ebpf":
		return nil
	}
	return w.procmem
}

// Status names the walker that serves now and, unless it is the eBPF
// walker, why: "loading", the load's failure, or the configuration.
func (w *Walkers) Status() (walker, reason string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	walker = w.procmem.Name()
	if w.mode == "ebpf" {
		walker = "none"
	}
	switch {
	case w.ebpf != nil:
		return w.ebpf.Name(), ""
	case w.mode == "procmem":
		return walker, "configured: --walker procmem"
	case w.err != nil:
		return walker, Cause(w.err)
	}
	return walker, "loading"
}

// Close unloads the eBPF walker, or drops its load.
func (w *Walkers) Close() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.closed = true
	if w.ebpf != nil {
		w.ebpf.Close()
		w.ebpf = nil
	}
	if w.load != nil {
		w.load.Drop()
	}
}
