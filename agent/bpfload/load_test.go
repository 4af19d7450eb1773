package bpfload

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/goroscope/goroscope/agent/bpfload/bpfloadtest"
)

func TestBPFLoad(t *testing.T) {
	t.Run("wait is bounded, then takes once", func(t *testing.T) {
		g := bpfloadtest.NewGatedLoader[EBPFWalker]()
		l := Start(context.Background(), g.Load)
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Millisecond)
		defer cancel()
		if _, err := l.Wait(ctx); !errors.Is(err, ErrNotLoaded) {
			t.Fatalf("wait before the load ended = %v, want ErrNotLoaded", err)
		}
		f := &bpfloadtest.FakeEBPF{}
		g.Release <- f
		if v, err := l.Wait(context.Background()); err != nil || v != f {
			t.Fatalf("wait = %v, %v; want the walker", v, err)
		}
		if _, err := l.Wait(context.Background()); !errors.Is(err, ErrTaken) {
			t.Fatalf("second wait = %v, want ErrTaken", err)
		}
		l.Drop()
		if f.Closed.Load() {
			t.Error("drop closed a walker that was taken")
		}
	})
	t.Run("dropped while loading: closed on arrival", func(t *testing.T) {
		g := bpfloadtest.NewGatedLoader[EBPFWalker]()
		l := Start(context.Background(), g.Load)
		l.Drop()
		f := &bpfloadtest.FakeEBPF{}
		g.Release <- f
		<-l.done
		if !f.Closed.Load() {
			t.Error("a walker that arrived after drop was not closed")
		}
		if _, err := l.Wait(context.Background()); err == nil {
			t.Error("wait after drop handed out a closed walker")
		}
	})
	t.Run("dropped after loading: closed", func(t *testing.T) {
		g := bpfloadtest.NewGatedLoader[EBPFWalker]()
		f := &bpfloadtest.FakeEBPF{}
		g.Release <- f
		l := Start(context.Background(), g.Load)
		<-l.done
		l.Drop()
		if !f.Closed.Load() {
			t.Error("an untaken walker was not closed by drop")
		}
	})
	t.Run("context ends the load", func(t *testing.T) {
		g := bpfloadtest.NewGatedLoader[EBPFWalker]()
		ctx, cancel := context.WithCancel(context.Background())
		l := Start(ctx, g.Load)
		cancel()
		<-l.done
		if _, err := l.Wait(context.Background()); !errors.Is(err, context.Canceled) {
			t.Errorf("wait = %v, want context.Canceled", err)
		}
	})
}
