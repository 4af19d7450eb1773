package bpfload

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/goroscope/goroscope/agent/bpfload/bpfloadtest"
	"github.com/goroscope/goroscope/bpf"
)

// TestWalkersLoad: procmem serves while the eBPF walker loads, the eBPF
// walker once loaded, procmem for good after a rejection, which is
// remembered and then answered without loading.
func TestWalkersLoad(t *testing.T) {
	ctx := context.Background()
	v := NewVerdicts(filepath.Join(t.TempDir(), VerdictsFile), slog.New(slog.DiscardHandler))

	g := bpfloadtest.NewGatedLoader[EBPFWalker]()
	ws, err := StartWalkers(ctx, "auto", WalkerObject(v, g.Load))
	if err != nil {
		t.Fatal(err)
	}
	if w, reason := ws.Status(); w != "procmem" || reason != "loading" || ws.Pick().Name() != "procmem" {
		t.Errorf("while loading: status %s %q, pick %s; want procmem loading", w, reason, ws.Pick().Name())
	}
	short, cancel := context.WithTimeout(ctx, 10*time.Millisecond)
	defer cancel()
	if err := ws.Await(short); !errors.Is(err, ErrStillLoading) {
		t.Errorf("await before the load ended = %v, want ErrStillLoading", err)
	}
	f := &bpfloadtest.FakeEBPF{}
	g.Release <- f
	if err := ws.Await(ctx); err != nil {
		t.Fatal(err)
	}
	if w, reason := ws.Status(); w != "ebpf" || reason != "" || ws.Pick() != f {
		t.Errorf("loaded: status %s %q; want ebpf", w, reason)
	}
	ws.Close()
	if !f.Closed.Load() {
		t.Error("Close left the eBPF walker loaded")
	}

	// A rejection: procmem serves, and the verdict is remembered with the
	// verifier's log beside the cache.
	g = bpfloadtest.NewGatedLoader[EBPFWalker]()
	g.Fail <- bpfloadtest.TooComplex()
	ws, err = StartWalkers(ctx, "auto", WalkerObject(v, g.Load))
	if err != nil {
		t.Fatal(err)
	}
	err = ws.Await(ctx)
	if err == nil || !strings.Contains(err.Error(), "too complex") || !strings.Contains(err.Error(), "bpf-verifier-goroutines.log") {
		t.Errorf("await = %v, want the rejection and where its log is", err)
	}
	want := "verifier: too complex, 1,000,001 instructions processed, limit 1,000,000"
	if w, reason := ws.Status(); w != "procmem" || reason != want {
		t.Errorf("rejected: status %s %q; want procmem %q", w, reason, want)
	}
	ws.Close()
	logText, err := os.ReadFile(filepath.Join(filepath.Dir(v.path), "bpf-verifier-goroutines.log"))
	if err != nil || !bytes.Contains(logText, []byte("BPF program is too large")) {
		t.Errorf("verifier log file: %v\n%s", err, logText)
	}

	// Remembered: no load, the same answer at once.
	g = bpfloadtest.NewGatedLoader[EBPFWalker]()
	ws, err = StartWalkers(ctx, "auto", WalkerObject(v, g.Load))
	if err != nil {
		t.Fatal(err)
	}
	if err := ws.Await(ctx); err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("cached: Await = %v, want the rejection", err)
	}
	if w, reason := ws.Status(); w != "procmem" || reason != "cached rejection: "+want || g.Calls.Load() != 0 {
		t.Errorf("cached: status %s %q after %d loads; want procmem, cached rejection, no load", w, reason, g.Calls.Load())
	}
	ws.Close()
	_, err = StartWalkers(ctx, "ebpf", WalkerObject(v, g.Load))
	if err == nil || !strings.Contains(err.Error(), "cached rejection: "+want) || !strings.Contains(err.Error(), "delete "+v.path) {
		t.Errorf("--walker ebpf with a cached rejection: %v; want it, and how to retry", err)
	}

	// Not a verdict (privileges): not remembered.
	v2 := NewVerdicts(filepath.Join(t.TempDir(), VerdictsFile), slog.New(slog.DiscardHandler))
	g = bpfloadtest.NewGatedLoader[EBPFWalker]()
	g.Fail <- &bpf.LoadError{What: "goroutine walker", Cause: "missing CAP_BPF and CAP_PERFMON", Err: os.ErrPermission}
	if ws, err = StartWalkers(ctx, "auto", WalkerObject(v2, g.Load)); err != nil {
		t.Fatal(err)
	}
	if err := ws.Await(ctx); !errors.Is(err, os.ErrPermission) {
		t.Errorf("Await = %v, want the missing capability", err)
	}
	ws.Close()
	if got := v2.read(); len(got) != 0 {
		t.Errorf("a missing capability was remembered: %+v", got)
	}
}
