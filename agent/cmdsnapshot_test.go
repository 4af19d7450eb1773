package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/goroscope/goroscope/agent/bpfload"
	"github.com/goroscope/goroscope/agent/bpfload/bpfloadtest"
	"github.com/goroscope/goroscope/bpf"
	"github.com/goroscope/goroscope/pkg/snapshot"
	"github.com/goroscope/goroscope/test/targettest"
)

// TestSnapshotDoesNotWaitForBPF: snapshot waits at most a second for the
// eBPF walker, answers a bad pid at once, and skips a rejected walker.
func TestSnapshotDoesNotWaitForBPF(t *testing.T) {
	cache := filepath.Join(t.TempDir(), bpfload.VerdictsFile)
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	t.Run("no such pid", func(t *testing.T) {
		g := bpfloadtest.NewGatedLoader[bpfload.EBPFWalker]()
		start := time.Now()
		err := snapshotCmd{load: g.Load}.run(context.Background(), []string{"--pid", "1073741824", "--bpf-cache", cache}, io.Discard, log)
		if d := time.Since(start); err == nil || !strings.Contains(err.Error(), "no such process") || d > 300*time.Millisecond {
			t.Errorf("after %v: %v; want a quick \"no such process\"", d, err)
		}
	})
	if testing.Short() {
		return
	}
	tgt := targettest.Start(t, targettest.Build(t, "population", targettest.BuildOpts{}))
	pid := strconv.Itoa(tgt.PID)
	snap := func(t *testing.T, load func(context.Context) (bpfload.EBPFWalker, error), args ...string) (string, string, time.Duration, error) {
		var out, errOut bytes.Buffer
		start := time.Now()
		err := snapshotCmd{load: load}.run(context.Background(), append([]string{"--pid", pid, "--bpf-cache", cache}, args...),
			&out, debugLog(&errOut))
		d := time.Since(start)
		var s snapshot.Snapshot
		if err == nil {
			if jerr := json.Unmarshal(out.Bytes(), &s); jerr != nil {
				t.Fatalf("decode the snapshot: %v", jerr)
			}
		}
		return s.Walker, errOut.String(), d, err
	}
	t.Run("slow load: procmem after a second", func(t *testing.T) {
		g := bpfloadtest.NewGatedLoader[bpfload.EBPFWalker]()
		walker, stderr, d, err := snap(t, g.Load)
		if err != nil || walker != "procmem" || d < oneShotWait || !strings.Contains(stderr, "not loaded yet") {
			t.Errorf("walker %q after %v (%v); stderr:\n%s", walker, d, err, stderr)
		}
	})
	t.Run("quick load: eBPF", func(t *testing.T) {
		g := bpfloadtest.NewGatedLoader[bpfload.EBPFWalker]()
		g.Release <- &bpfloadtest.FakeEBPF{}
		if walker, stderr, d, err := snap(t, g.Load); err != nil || walker != "ebpf" {
			t.Errorf("walker %q after %v (%v); stderr:\n%s", walker, d, err, stderr)
		}
	})
	// A rejection, remembered: later snapshots do not load at all.
	bpfload.NewVerdicts(cache, log).Remember(bpfload.Verdict{Object: "goroutines", Hash: bpf.GoroutinesObject().Hash, Kernel: bpf.KernelBuild(),
		Cause: "verifier: too complex, 1,000,001 instructions processed, limit 1,000,000", At: time.Now()})
	t.Run("cached rejection: procmem at once", func(t *testing.T) {
		g := bpfloadtest.NewGatedLoader[bpfload.EBPFWalker]()
		walker, stderr, d, err := snap(t, g.Load)
		if err != nil || walker != "procmem" || g.Calls.Load() != 0 || strings.Contains(stderr, "not loaded yet") ||
			!strings.Contains(stderr, `level=DEBUG msg="eBPF walker unavailable: walking with procmem" reason="cached rejection: verifier: too complex`) {
			t.Errorf("walker %q after %v (%v), %d loads; stderr:\n%s", walker, d, err, g.Calls.Load(), stderr)
		}
	})
	t.Run("cached rejection: --walker ebpf fails at once", func(t *testing.T) {
		g := bpfloadtest.NewGatedLoader[bpfload.EBPFWalker]()
		_, _, d, err := snap(t, g.Load, "--walker", "ebpf")
		if err == nil || !strings.Contains(err.Error(), "cached rejection: verifier: too complex") || d > oneShotWait {
			t.Errorf("after %v: %v", d, err)
		}
	})
}

func debugLog(buf *bytes.Buffer) *slog.Logger {
	return slog.New(slog.NewTextHandler(buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
}
