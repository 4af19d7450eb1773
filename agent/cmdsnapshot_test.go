package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/goroscope/goroscope/agent/bpfload"
	"github.com/goroscope/goroscope/agent/bpfload/bpfloadtest"
	"github.com/goroscope/goroscope/bpf"
	"github.com/goroscope/goroscope/pkg/goroutinedump"
	"github.com/goroscope/goroscope/pkg/snapshot"
	"github.com/goroscope/goroscope/test/eventually"
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

// TestSnapshotTextHeaders: snapshot --format text prints each goroutine's
// header as the target's own dump (/debug/pprof/goroutine?debug=2) does at
// the same moment: a leaked goroutine says so, and a target in a time
// namespace whose clock is 5 minutes behind the host's (unshare --time)
// gets no minutes the runtime does not print (before the Snapshotter read
// the namespace's offset, its goroutines all showed ", 5 minutes"; with
// a clock ahead, it left out minutes the runtime printed).
func TestSnapshotTextHeaders(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs targets")
	}
	t.Run("time namespace", func(t *testing.T) {
		unshare, err := exec.LookPath("unshare")
		if err != nil {
			t.Skip("no unshare(1)")
		}
		args := []string{"--time", "--monotonic=-300"}
		if out, err := exec.Command(unshare, append(args, "true")...).CombinedOutput(); err != nil {
			t.Skipf("cannot make a time namespace (needs root and Linux >= 5.6): %v: %s", err, out)
		}
		// unshare execs the target, which enters the namespace: same pid.
		pop := targettest.Build(t, "population", targettest.BuildOpts{})
		tgt := targettest.Start(t, unshare, append(args, pop, "-spin", "0")...)
		runtimeGC(t, tgt) // sets the GC's start time
		runtimeGC(t, tgt) // stamps every blocked goroutine's waitsince with it
		n, _ := compareTextWithRuntime(t, tgt, "procmem")
		if n < tgt.Goroutines-5 {
			t.Errorf("%d goroutines compared; the target has %d", n, tgt.Goroutines)
		}
	})
	t.Run("leaked", func(t *testing.T) {
		tgt := targettest.Start(t, buildLeakLoad(t), "-leak", "3")
		// The leak-finding GC finds only goroutines already parked: ask
		// again until the runtime's own dump marks all three.
		eventually.Succeeds(t, 30*time.Second, func() error {
			resp, err := http.Get(tgt.URL("/debug/pprof/goroutineleak"))
			if err != nil {
				return err
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			raw, err := tgt.DumpRaw(context.Background())
			if err != nil {
				return err
			}
			if n := strings.Count(raw, "[chan receive (leaked)"); n != 3 {
				return fmt.Errorf("the runtime's dump marks %d goroutines leaked, want 3", n)
			}
			return nil
		})
		compareTextWithRuntime(t, tgt, "procmem")
		leaked := 0
		for _, g := range textSnapshot(t, tgt.PID, "procmem") {
			if slices.Contains(g.Extra, "leaked") && g.Status == "chan receive" {
				leaked++
			}
		}
		if leaked != 3 {
			t.Errorf("%d goroutines print as [chan receive (leaked)], want 3", leaked)
		}
	})
}

// TestSnapshotTextMinutes: snapshot --format text prints the ", N minutes"
// of every goroutine whose dump by the runtime prints them, with the same
// N, waiting, in a system call or locked to thread, with either walker.
// The runtime prints minutes from g.waitsince, which a GC stamps with the
// start of the GC before it: a minute must pass between two GCs and the
// look. The test makes them at once and waits in parallel with the
// package's later tests (then on its own, for the rest of the minute).
func TestSnapshotTextMinutes(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a target and waits a minute")
	}
	tgt := targettest.Start(t, targettest.Build(t, "population", targettest.BuildOpts{}), "-spin", "0")
	runtimeGC(t, tgt)
	stamped := time.Now() // the first GC ended: every waitsince is at most this
	runtimeGC(t, tgt)
	t.Parallel()
	time.Sleep(time.Until(stamped.Add(61 * time.Second)))
	for _, walker := range []string{"procmem", "auto"} {
		n, minutes := compareTextWithRuntime(t, tgt, walker)
		t.Logf("--walker %s: %d goroutines compared with the runtime's dump, %d with minutes", walker, n, minutes)
		if n < tgt.Goroutines-5 || minutes < n-5 {
			t.Errorf("--walker %s: %d goroutines compared, %d with minutes; the target has %d, all parked since before the GCs", walker, n, minutes, tgt.Goroutines)
		}
	}
	kinds := map[string]bool{}
	for _, g := range textSnapshot(t, tgt.PID, "procmem") {
		if g.WaitMinutes >= 1 {
			kinds[g.Status] = true
			if g.LockedToThread {
				kinds["locked to thread"] = true
			}
		}
	}
	for _, k := range []string{"syscall", "locked to thread", "IO wait", "sync.Mutex.Lock", "select"} {
		if !kinds[k] {
			t.Errorf("no %s goroutine with minutes", k)
		}
	}
}

// runtimeGC makes the target run a garbage collection (pprof's heap
// profile with gc=1).
func runtimeGC(t *testing.T, tgt *targettest.Target) {
	t.Helper()
	resp, err := http.Get(tgt.URL("/debug/pprof/heap?gc=1"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
}

// textSnapshot runs snapshot --format text on pid with walker and parses
// what it prints (without its "# labels:" lines, which the runtime's dumps
// do not have).
func textSnapshot(t *testing.T, pid int, walker string) []goroutinedump.Goroutine {
	t.Helper()
	var out, errOut bytes.Buffer
	args := []string{"--pid", strconv.Itoa(pid), "--format", "text", "--walker", walker, "--bpf-cache", filepath.Join(t.TempDir(), bpfload.VerdictsFile)}
	if err := (snapshotCmd{load: bpfload.LoadEBPFWalker}).run(context.Background(), args, &out, debugLog(&errOut)); err != nil {
		t.Fatalf("snapshot --walker %s: %v\n%s", walker, err, errOut.String())
	}
	lines := strings.SplitAfter(out.String(), "\n")
	lines = slices.DeleteFunc(lines, func(l string) bool { return strings.HasPrefix(l, "# labels: ") })
	gs, err := goroutinedump.ParseString(strings.Join(lines, ""))
	if err != nil {
		t.Fatalf("parse the text snapshot: %v\n%s", err, out.String())
	}
	return gs
}

// compareTextWithRuntime compares the headers of the text snapshot with
// those of the runtime's dumps just before and just after it. It leaves
// out the goroutines that ran about then (running or runnable in any of
// the three, or changed between the two dumps: woken, or past a minute
// mark), and those only one side has. It returns how many goroutines it
// compared and how many of them printed minutes.
func compareTextWithRuntime(t *testing.T, tgt *targettest.Target, walker string) (compared, minutes int) {
	t.Helper()
	ctx := context.Background()
	before, _, err := tgt.Dump(ctx)
	if err != nil {
		t.Fatal(err)
	}
	ours := textSnapshot(t, tgt.PID, walker)
	after, _, err := tgt.Dump(ctx)
	if err != nil {
		t.Fatal(err)
	}
	header := func(g *goroutinedump.Goroutine) string {
		h := fmt.Sprintf("[%s", g.Status)
		if slices.Contains(g.Extra, "leaked") {
			h += " (leaked)"
		}
		if g.WaitMinutes > 0 {
			h += fmt.Sprintf(", %d minutes", g.WaitMinutes)
		}
		if g.LockedToThread {
			h += ", locked to thread"
		}
		return h + "]"
	}
	runs := func(g *goroutinedump.Goroutine) bool { return g.Status == "running" || g.Status == "runnable" }
	byID := func(gs []goroutinedump.Goroutine) map[uint64]*goroutinedump.Goroutine {
		m := map[uint64]*goroutinedump.Goroutine{}
		for i := range gs {
			m[gs[i].ID] = &gs[i]
		}
		return m
	}
	b, a := byID(before), byID(after)
	for i := range ours {
		g := &ours[i]
		gb, ga := b[g.ID], a[g.ID]
		if gb == nil || ga == nil || runs(g) || runs(gb) || runs(ga) || header(gb) != header(ga) {
			continue
		}
		compared++
		if header(g) != header(gb) {
			t.Errorf("--walker %s: goroutine %d is %s in the text snapshot, %s in the runtime's dump", walker, g.ID, header(g), header(gb))
		}
		if gb.WaitMinutes > 0 {
			minutes++
		}
	}
	return compared, minutes
}

// buildLeakLoad builds pprofload with GOEXPERIMENT=goroutineleakprofile
// (which targettest.Build cannot set) with the local toolchain.
func buildLeakLoad(t *testing.T) string {
	t.Helper()
	dir, err := targettest.TargetsDir()
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(t.TempDir(), "pprofload-leak")
	cmd := exec.Command("go", "build", "-o", bin, "./pprofload")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GOEXPERIMENT=goroutineleakprofile", "GOTOOLCHAIN=local", "GOWORK=off", "GOFLAGS=", "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build pprofload with GOEXPERIMENT=goroutineleakprofile: %v\n%s", err, out)
	}
	return bin
}
