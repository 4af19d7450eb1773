package daemon

import (
	"context"
	"errors"
	"testing"

	"github.com/goroscope/goroscope/agent/bpfload"
	"github.com/goroscope/goroscope/agent/bpfload/bpfloadtest"
	"github.com/goroscope/goroscope/collect/walk"
)

// TestProcWalkerSwitch: a process's walker follows the serving one.
func TestProcWalkerSwitch(t *testing.T) {
	pw := &procWalker{}
	if pw.Name() != "none" {
		t.Errorf("no walker yet: %s", pw.Name())
	}
	if _, err := pw.Walk(context.Background(), 1, walk.Request{}, nil); !errors.Is(err, bpfload.ErrStillLoading) {
		t.Errorf("walk without a walker = %v", err)
	}
	pw.use(walk.ProcMemWalker{})
	if pw.Name() != "procmem" {
		t.Errorf("after use(procmem): %s", pw.Name())
	}
	pw.use(&bpfloadtest.FakeEBPF{})
	if pw.Name() != "ebpf" {
		t.Errorf("after use(ebpf): %s", pw.Name())
	}
}
