// Package bpfloadtest has test doubles for BPF loads: a loader that ends
// when the test says, a stand-in for the eBPF walker, and the verifier's
// rejection of the walker. Tests of agent/bpfload, agent/daemon and the
// agent's commands share them; nothing else should import it.
package bpfloadtest

import (
	"context"
	"errors"
	"sync/atomic"

	"github.com/goroscope/goroscope/bpf"
	"github.com/goroscope/goroscope/collect/walk"
)

// FakeEBPF stands for a loaded eBPF walker: it walks as procmem does and
// answers to "ebpf".
type FakeEBPF struct {
	walk.ProcMemWalker
	// Closed is set by Close.
	Closed atomic.Bool
}

// Name implements walk.Walker.
func (*FakeEBPF) Name() string { return "ebpf" }

// Close implements io.Closer.
func (f *FakeEBPF) Close() error { f.Closed.Store(true); return nil }

// GatedLoader is a BPF load that ends when the test says (Release, Fail)
// or when its context does.
type GatedLoader[T any] struct {
	// Calls counts the loads.
	Calls atomic.Int32
	// Release ends a load with its value; Fail with its error.
	Release chan T
	Fail    chan error
}

// NewGatedLoader returns a loader that waits for one Release or Fail.
func NewGatedLoader[T any]() *GatedLoader[T] {
	return &GatedLoader[T]{Release: make(chan T, 1), Fail: make(chan error, 1)}
}

// Load is the loader: it waits for Release, Fail or ctx.
func (g *GatedLoader[T]) Load(ctx context.Context) (T, error) {
	g.Calls.Add(1)
	var zero T
	select {
	case w := <-g.Release:
		return w, nil
	case err := <-g.Fail:
		return zero, err
	case <-ctx.Done():
		return zero, ctx.Err()
	}
}

// TooComplex is the rejection the kernel verifier gave the walker on 6.18.
func TooComplex() error {
	return &bpf.LoadError{What: "goroutine walker", Kernel: "6.18.44", Program: "walk_goroutines", Rejected: true,
		Cause:       "verifier: too complex, 1,000,001 instructions processed, limit 1,000,000",
		VerifierLog: []string{"BPF program is too large. Processed 1000001 insn", "processed 1000001 insns (limit 1000000) max_states_per_insn 30"},
		Err:         errors.New("program walk_goroutines: load program: argument list too long")}
}
