// Package bpfload loads goroscope's embedded BPF objects (the eBPF
// goroutine walker, the eBPF CPU sampler) without making anyone wait on the
// kernel verifier, and remembers the verifier's rejections so that no
// command pays for the same answer twice.
//
// It is internal to the goroscope binary: the daemon (agent/daemon) and the
// one-shot commands (agent) share it; nothing outside agent/ should import
// it.
//
// The pieces, from the bottom up:
//
//   - Load is one object loading on its own goroutine. The verifier may
//     take tens of seconds over a program and cannot be interrupted, so a
//     Load's goroutine is the one goroutine nobody stops: callers bound
//     their wait (Wait with a context) and give up what they will not take
//     (Drop: the value is closed when it arrives).
//   - Object is an embedded object with its memory of rejections
//     (Verdicts): a rejection remembered for this kernel build and these
//     bytes is the answer at once; a new one is remembered, with the
//     verifier's log beside the cache.
//   - Walkers are the goroutine walkers a --walker flag asks for: procmem
//     serves while the eBPF walker loads, or for good when it cannot.
package bpfload

import (
	"context"
	"errors"
	"io"
	"sync"
)

// Load is one BPF object loading on its own goroutine. The kernel's
// verifier may take tens of seconds over a program and cannot be
// interrupted, so nobody waits for it longer than they choose: Wait bounds
// the wait, and a load nobody will take is closed when it ends (Drop).
type Load[T io.Closer] struct {
	done chan struct{} // closed when val or err is set

	mu      sync.Mutex
	val     T
	err     error
	taken   bool
	dropped bool
}

// Start runs load on a new goroutine, which the returned Load owns: it ends
// when load returns. load should return when ctx ends; the real loaders
// cannot (a program in the verifier), and their late result is closed if
// dropped.
func Start[T io.Closer](ctx context.Context, load func(context.Context) (T, error)) *Load[T] {
	l := &Load[T]{done: make(chan struct{})}
	go func() {
		v, err := load(ctx)
		l.mu.Lock()
		defer l.mu.Unlock()
		if l.dropped && err == nil {
			v.Close()
			var zero T
			v = zero
		}
		l.val, l.err = v, err
		close(l.done)
	}()
	return l
}

// failedLoad is a load whose answer is known without loading.
func failedLoad[T io.Closer](err error) *Load[T] {
	l := &Load[T]{done: make(chan struct{}), err: err}
	close(l.done)
	return l
}

// Done is closed when the load has ended, loaded or not.
func (l *Load[T]) Done() <-chan struct{} { return l.done }

// Wait waits for the load until ctx ends. It returns the loaded value,
// which the caller owns from then on (later calls return ErrTaken), or
// the load's error, or ErrNotLoaded when ctx ended first.
func (l *Load[T]) Wait(ctx context.Context) (T, error) {
	var zero T
	select {
	case <-l.done:
	case <-ctx.Done():
		select {
		case <-l.done: // both ready: the answer wins
		default:
			return zero, ErrNotLoaded
		}
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.err != nil {
		return zero, l.err
	}
	if l.taken || l.dropped {
		return zero, ErrTaken
	}
	l.taken = true
	return l.val, nil
}

var (
	// ErrTaken is Wait's answer once the loaded value was handed out.
	ErrTaken = errors.New("BPF object already taken")
	// ErrNotLoaded is Wait's answer when its wait ended before the load.
	ErrNotLoaded = errors.New("BPF object still loading")
)

// Drop gives up the load: its value, now or when it arrives, is closed
// unless it was taken.
func (l *Load[T]) Drop() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.dropped {
		return
	}
	l.dropped = true
	select {
	case <-l.done:
		if !l.taken && l.err == nil {
			l.val.Close()
		}
	default:
	}
}
