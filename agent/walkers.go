package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"

	"github.com/goroscope/goroscope/bpf"
	"github.com/goroscope/goroscope/collect/walk"
)

// ebpfWalker is a loaded eBPF goroutine walker: walk.EBPFWalker, or what a
// test injects.
type ebpfWalker interface {
	walk.Walker
	io.Closer
}

// loadEBPFWalker loads the eBPF goroutine walker. It cannot honour ctx: the
// kernel verifier cannot be interrupted.
func loadEBPFWalker(context.Context) (ebpfWalker, error) {
	w, err := walk.NewEBPFWalker()
	if err != nil {
		return nil, err
	}
	return w, nil
}

// walkerObject is the eBPF walker's object, loaded by load and remembered
// in v when the verifier rejects it.
func walkerObject(v *verdicts, load func(context.Context) (ebpfWalker, error)) *bpfObject[ebpfWalker] {
	return &bpfObject[ebpfWalker]{what: "goroutine walker", obj: bpf.GoroutinesObject(), kernel: bpf.KernelBuild(), verdicts: v, load: load}
}

// errStillLoading: the eBPF walker has not loaded yet.
var errStillLoading = errors.New("the eBPF goroutine walker is still loading (kernel verifier)")

// walkers are the goroutine walkers a --walker flag asks for. With "auto"
// the eBPF walker loads in the background and procmem serves until it is
// ready, or for good when it cannot load; with "ebpf" nothing serves until
// it is ready, and its failure is fatal; "procmem" loads nothing.
type walkers struct {
	mode    string
	procmem walk.ProcMemWalker

	mu     sync.Mutex
	load   *bpfLoad[ebpfWalker] // once started; nil with procmem
	ebpf   ebpfWalker           // once loaded
	err    error                // why the eBPF walker will not serve
	closed bool
}

// checkWalkerMode checks a --walker value.
func checkWalkerMode(mode string) error {
	switch mode {
	case "auto", "ebpf", "procmem":
		return nil
	}
	return usageError{fmt.Sprintf("--walker %q: want auto, ebpf or procmem", mode)}
}

// newWalkers returns the walkers for mode, procmem serving (unless
// "ebpf") until start loads the eBPF walker.
func newWalkers(mode string) (*walkers, error) {
	if err := checkWalkerMode(mode); err != nil {
		return nil, err
	}
	return &walkers{mode: mode}, nil
}

// startWalkers is newWalkers and start.
func startWalkers(ctx context.Context, mode string, obj *bpfObject[ebpfWalker]) (*walkers, error) {
	w, err := newWalkers(mode)
	if err != nil {
		return nil, err
	}
	if err := w.start(ctx, obj); err != nil {
		return nil, err
	}
	return w, nil
}

// start begins loading the eBPF walker from obj, unless the mode is
// procmem. The load runs until it ends even if ctx does (see bpfLoad);
// Close drops it. With "ebpf" a rejection remembered for this kernel fails
// at once.
func (w *walkers) start(ctx context.Context, obj *bpfObject[ebpfWalker]) error {
	switch w.mode {
	case "procmem":
		return nil
	case "ebpf":
		if err := obj.cached(); err != nil {
			return err
		}
	}
	l := obj.start(ctx)
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed || w.load != nil {
		l.drop()
		return errors.New("walkers closed or started twice")
	}
	w.load = l
	return nil
}

// loading returns the eBPF walker's load; nil before start or with procmem.
func (w *walkers) loading() *bpfLoad[ebpfWalker] {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.load
}

// await waits, until ctx ends, for the eBPF walker's load to end, and lets
// its result serve. It returns nil when the eBPF walker serves (or procmem
// is all there is), errStillLoading when ctx ended first, or why the eBPF
// walker cannot serve.
func (w *walkers) await(ctx context.Context) error {
	l := w.loading()
	if l == nil {
		return nil
	}
	v, err := l.wait(ctx)
	if errors.Is(err, errNotLoaded) {
		return errStillLoading
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	switch {
	case errors.Is(err, errTaken):
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

// pick returns the walker that serves now; nil with "ebpf" before it loads.
func (w *walkers) pick() walk.Walker {
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

// status names the walker that serves now and, unless it is the eBPF
// walker, why: "loading", the load's failure, or the configuration.
func (w *walkers) status() (walker, reason string) {
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
		return walker, loadCause(w.err)
	}
	return walker, "loading"
}

// Close unloads the eBPF walker, or drops its load.
func (w *walkers) Close() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.closed = true
	if w.ebpf != nil {
		w.ebpf.Close()
		w.ebpf = nil
	}
	if w.load != nil {
		w.load.drop()
	}
}

// procWalker is one watched process's walker. The snapshot loop points it
// at the walker that serves before each snapshot (use), so a process
// watched while the eBPF walker loaded moves to it at its next snapshot,
// keeping its Snapshotter and all it learnt of each goroutine. The
// Snapshotter's memory does not depend on the walker (it compares the g
// fields it decoded); the eBPF walker's own skip-unchanged memory (a kernel
// map) starts empty, so its first walk of each process reads every stack.
// Walkers only ever move from procmem to eBPF.
type procWalker struct {
	mu sync.Mutex
	w  walk.Walker // nil: none serves yet
}

func (p *procWalker) use(w walk.Walker) {
	p.mu.Lock()
	p.w = w
	p.mu.Unlock()
}

func (p *procWalker) current() walk.Walker {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.w
}

// Name implements walk.Walker.
func (p *procWalker) Name() string {
	if w := p.current(); w != nil {
		return w.Name()
	}
	return "none"
}

// Walk implements walk.Walker.
func (p *procWalker) Walk(ctx context.Context, pid int, req walk.Request, fn func(*bpf.GRecord) error) (walk.Stats, error) {
	w := p.current()
	if w == nil {
		return walk.Stats{}, errStillLoading
	}
	return w.Walk(ctx, pid, req, fn)
}
