package main

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/goroscope/goroscope/bpf"
	"github.com/goroscope/goroscope/collect/walk"
)

// fakeEBPF stands for a loaded eBPF walker: it walks as procmem does and
// answers to "ebpf".
type fakeEBPF struct {
	walk.ProcMemWalker
	closed atomic.Bool
}

func (*fakeEBPF) Name() string   { return "ebpf" }
func (f *fakeEBPF) Close() error { f.closed.Store(true); return nil }

// gatedLoader is a BPF load that ends when the test says (release, fail)
// or when its context does.
type gatedLoader struct {
	calls   atomic.Int32
	release chan ebpfWalker
	fail    chan error
}

func newGatedLoader() *gatedLoader {
	return &gatedLoader{release: make(chan ebpfWalker, 1), fail: make(chan error, 1)}
}

func (g *gatedLoader) load(ctx context.Context) (ebpfWalker, error) {
	g.calls.Add(1)
	select {
	case w := <-g.release:
		return w, nil
	case err := <-g.fail:
		return nil, err
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// tooComplex is the rejection the kernel verifier gave the walker on 6.18.
func tooComplex() error {
	return &bpf.LoadError{What: "goroutine walker", Kernel: "6.18.44", Program: "walk_goroutines", Rejected: true,
		Cause:       "verifier: too complex, 1,000,001 instructions processed, limit 1,000,000",
		VerifierLog: []string{"BPF program is too large. Processed 1000001 insn", "processed 1000001 insns (limit 1000000) max_states_per_insn 30"},
		Err:         errors.New("program walk_goroutines: load program: argument list too long")}
}

func debugLog(buf *bytes.Buffer) *slog.Logger {
	return slog.New(slog.NewTextHandler(buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

func TestVerdicts(t *testing.T) {
	obj := bpf.Object{Name: "goroutines", Hash: "aa"}
	r := verdict{Object: "goroutines", Hash: "aa", Kernel: "6.18.44 #1", Cause: "verifier: too complex", At: time.Unix(1700000000, 0).UTC()}
	for _, tt := range []struct {
		name    string
		file    string // the cache's content before; "-" for none
		lookup  bpf.Object
		kernel  string
		want    bool
		logHas  string // a debug line
		noWrite bool
	}{
		{name: "round trip", file: "-", lookup: obj, kernel: r.Kernel, want: true},
		{name: "other object hash", file: "-", lookup: bpf.Object{Name: "goroutines", Hash: "bb"}, kernel: r.Kernel},
		{name: "other kernel build", file: "-", lookup: obj, kernel: "6.18.45 #1"},
		{name: "other object", file: "-", lookup: bpf.Object{Name: "cpu", Hash: "aa"}, kernel: r.Kernel},
		{name: "corrupt file", file: "{not json", lookup: obj, kernel: r.Kernel, noWrite: true, logHas: "BPF verdict cache corrupt, ignored"},
		{name: "other version", file: `{"version": 99, "rejections": []}`, lookup: obj, kernel: r.Kernel, noWrite: true, logHas: "version 99"},
		{name: "corrupt file replaced", file: "{not json", lookup: obj, kernel: r.Kernel, want: true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var log bytes.Buffer
			v := newVerdicts(filepath.Join(t.TempDir(), "sub", verdictsFile), debugLog(&log))
			if tt.file != "-" {
				os.MkdirAll(filepath.Dir(v.path), 0o755)
				if err := os.WriteFile(v.path, []byte(tt.file), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			if !tt.noWrite {
				v.remember(r)
			}
			got, ok := v.lookup(tt.lookup, tt.kernel)
			if ok != tt.want || (ok && got != r) {
				t.Errorf("lookup(%+v, %q) = %+v, %v; want %v", tt.lookup, tt.kernel, got, ok, tt.want)
			}
			if !strings.Contains(log.String(), tt.logHas) {
				t.Errorf("log lacks %q:\n%s", tt.logHas, log.String())
			}
			ents, _ := os.ReadDir(filepath.Dir(v.path))
			for _, e := range ents {
				if strings.HasPrefix(e.Name(), ".") {
					t.Errorf("temporary file %s left behind", e.Name())
				}
			}
		})
	}
}

func TestVerdictsBounded(t *testing.T) {
	v := newVerdicts(filepath.Join(t.TempDir(), verdictsFile), slog.New(slog.DiscardHandler))
	for i := range maxVerdicts + 3 {
		v.remember(verdict{Object: "cpu", Hash: "h", Kernel: string(rune('a' + i)), Cause: "c"})
	}
	v.remember(verdict{Object: "cpu", Hash: "h", Kernel: "z", Cause: "again"}) // replaces, not adds
	got := v.read()
	if len(got) != maxVerdicts || got[len(got)-1].Cause != "again" {
		t.Errorf("%d verdicts kept, newest %+v; want %d, the newest last", len(got), got[len(got)-1], maxVerdicts)
	}
	if _, ok := v.lookup(bpf.Object{Name: "cpu", Hash: "h"}, "a"); ok {
		t.Error("the oldest verdict was kept")
	}
	// No path: nothing is remembered, nothing fails.
	none := newVerdicts("", slog.New(slog.DiscardHandler))
	none.remember(verdict{Object: "cpu"})
	if _, ok := none.lookup(bpf.Object{Name: "cpu"}, ""); ok {
		t.Error("a cache without a path remembered")
	}
}

func TestBPFLoad(t *testing.T) {
	t.Run("wait is bounded, then takes once", func(t *testing.T) {
		g := newGatedLoader()
		l := startLoad(context.Background(), g.load)
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Millisecond)
		defer cancel()
		if _, err := l.wait(ctx); !errors.Is(err, errNotLoaded) {
			t.Fatalf("wait before the load ended = %v, want errNotLoaded", err)
		}
		f := &fakeEBPF{}
		g.release <- f
		if v, err := l.wait(context.Background()); err != nil || v != f {
			t.Fatalf("wait = %v, %v; want the walker", v, err)
		}
		if _, err := l.wait(context.Background()); !errors.Is(err, errTaken) {
			t.Fatalf("second wait = %v, want errTaken", err)
		}
		l.drop()
		if f.closed.Load() {
			t.Error("drop closed a walker that was taken")
		}
	})
	t.Run("dropped while loading: closed on arrival", func(t *testing.T) {
		g := newGatedLoader()
		l := startLoad(context.Background(), g.load)
		l.drop()
		f := &fakeEBPF{}
		g.release <- f
		<-l.done
		if !f.closed.Load() {
			t.Error("a walker that arrived after drop was not closed")
		}
		if _, err := l.wait(context.Background()); err == nil {
			t.Error("wait after drop handed out a closed walker")
		}
	})
	t.Run("dropped after loading: closed", func(t *testing.T) {
		g := newGatedLoader()
		f := &fakeEBPF{}
		g.release <- f
		l := startLoad(context.Background(), g.load)
		<-l.done
		l.drop()
		if !f.closed.Load() {
			t.Error("an untaken walker was not closed by drop")
		}
	})
	t.Run("context ends the load", func(t *testing.T) {
		g := newGatedLoader()
		ctx, cancel := context.WithCancel(context.Background())
		l := startLoad(ctx, g.load)
		cancel()
		<-l.done
		if _, err := l.wait(context.Background()); !errors.Is(err, context.Canceled) {
			t.Errorf("wait = %v, want context.Canceled", err)
		}
	})
}

// TestWalkersLoad: procmem serves while the eBPF walker loads, the eBPF
// walker once loaded, procmem for good after a rejection, which is
// remembered and then answered without loading.
func TestWalkersLoad(t *testing.T) {
	ctx := context.Background()
	v := newVerdicts(filepath.Join(t.TempDir(), verdictsFile), slog.New(slog.DiscardHandler))

	g := newGatedLoader()
	ws, err := startWalkers(ctx, "auto", walkerObject(v, g.load))
	if err != nil {
		t.Fatal(err)
	}
	if w, reason := ws.status(); w != "procmem" || reason != "loading" || ws.pick().Name() != "procmem" {
		t.Errorf("while loading: status %s %q, pick %s; want procmem loading", w, reason, ws.pick().Name())
	}
	short, cancel := context.WithTimeout(ctx, 10*time.Millisecond)
	defer cancel()
	if err := ws.await(short); !errors.Is(err, errStillLoading) {
		t.Errorf("await before the load ended = %v, want errStillLoading", err)
	}
	f := &fakeEBPF{}
	g.release <- f
	if err := ws.await(ctx); err != nil {
		t.Fatal(err)
	}
	if w, reason := ws.status(); w != "ebpf" || reason != "" || ws.pick() != f {
		t.Errorf("loaded: status %s %q; want ebpf", w, reason)
	}
	ws.Close()
	if !f.closed.Load() {
		t.Error("Close left the eBPF walker loaded")
	}

	// A rejection: procmem serves, and the verdict is remembered with the
	// verifier's log beside the cache.
	g = newGatedLoader()
	g.fail <- tooComplex()
	ws, err = startWalkers(ctx, "auto", walkerObject(v, g.load))
	if err != nil {
		t.Fatal(err)
	}
	err = ws.await(ctx)
	if err == nil || !strings.Contains(err.Error(), "too complex") || !strings.Contains(err.Error(), "bpf-verifier-goroutines.log") {
		t.Errorf("await = %v, want the rejection and where its log is", err)
	}
	want := "verifier: too complex, 1,000,001 instructions processed, limit 1,000,000"
	if w, reason := ws.status(); w != "procmem" || reason != want {
		t.Errorf("rejected: status %s %q; want procmem %q", w, reason, want)
	}
	ws.Close()
	logText, err := os.ReadFile(filepath.Join(filepath.Dir(v.path), "bpf-verifier-goroutines.log"))
	if err != nil || !bytes.Contains(logText, []byte("BPF program is too large")) {
		t.Errorf("verifier log file: %v\n%s", err, logText)
	}

	// Remembered: no load, the same answer at once.
	g = newGatedLoader()
	ws, err = startWalkers(ctx, "auto", walkerObject(v, g.load))
	if err != nil {
		t.Fatal(err)
	}
	ws.await(ctx)
	if w, reason := ws.status(); w != "procmem" || reason != "cached rejection: "+want || g.calls.Load() != 0 {
		t.Errorf("cached: status %s %q after %d loads; want procmem, cached rejection, no load", w, reason, g.calls.Load())
	}
	ws.Close()
	_, err = startWalkers(ctx, "ebpf", walkerObject(v, g.load))
	if err == nil || !strings.Contains(err.Error(), "cached rejection: "+want) || !strings.Contains(err.Error(), "delete "+v.path) {
		t.Errorf("--walker ebpf with a cached rejection: %v; want it, and how to retry", err)
	}

	// Not a verdict (privileges): not remembered.
	v2 := newVerdicts(filepath.Join(t.TempDir(), verdictsFile), slog.New(slog.DiscardHandler))
	g = newGatedLoader()
	g.fail <- &bpf.LoadError{What: "goroutine walker", Cause: "missing CAP_BPF and CAP_PERFMON", Err: os.ErrPermission}
	ws, _ = startWalkers(ctx, "auto", walkerObject(v2, g.load))
	ws.await(ctx)
	ws.Close()
	if got := v2.read(); len(got) != 0 {
		t.Errorf("a missing capability was remembered: %+v", got)
	}
}

// TestProcWalkerSwitch: a process's walker follows the serving one.
func TestProcWalkerSwitch(t *testing.T) {
	pw := &procWalker{}
	if pw.Name() != "none" {
		t.Errorf("no walker yet: %s", pw.Name())
	}
	if _, err := pw.Walk(context.Background(), 1, walk.Request{}, nil); !errors.Is(err, errStillLoading) {
		t.Errorf("walk without a walker = %v", err)
	}
	pw.use(walk.ProcMemWalker{})
	if pw.Name() != "procmem" {
		t.Errorf("after use(procmem): %s", pw.Name())
	}
	pw.use(&fakeEBPF{})
	if pw.Name() != "ebpf" {
		t.Errorf("after use(ebpf): %s", pw.Name())
	}
}
