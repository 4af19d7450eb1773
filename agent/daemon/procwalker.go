package daemon

import (
	"context"
	"sync"

	"github.com/goroscope/goroscope/agent/bpfload"
	"github.com/goroscope/goroscope/bpf"
	"github.com/goroscope/goroscope/collect/walk"
)

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
		return walk.Stats{}, bpfload.ErrStillLoading
	}
	return w.Walk(ctx, pid, req, fn)
}
