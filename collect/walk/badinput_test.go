package walk_test

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/goroscope/goroscope/collect/walk"
	"github.com/goroscope/goroscope/pkg/gobin"
	"github.com/goroscope/goroscope/test/targettest"
)

// TestAttachBadInput: every way a target can be wrong gives an error that
// names the process and the problem, never a panic.
func TestAttachBadInput(t *testing.T) {
	notGo := targettest.StartNotGo(t)
	exited := exec.Command("true")
	if err := exited.Run(); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		pid  int
		is   error
		want string
	}{
		{"no such pid", 1 << 30, walk.ErrProcessGone, "no such process"},
		{"exited", exited.Process.Pid, walk.ErrProcessGone, "no such process"},
		{"negative pid", -5, nil, "not a process id"},
		{"not Go", notGo.Process.Pid, gobin.ErrNotGo, "not a Go"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tg, err := walk.Attach(tc.pid)
			if err == nil {
				tg.Close()
				t.Fatalf("Attach(%d) succeeded", tc.pid)
			}
			if tc.is != nil && !errors.Is(err, tc.is) {
				t.Errorf("Attach(%d) = %v, want it to wrap %v", tc.pid, err, tc.is)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Attach(%d) = %q, want it to say %q", tc.pid, err, tc.want)
			}
		})
	}
}

// TestSnapshotProcessExits: a process that exits between attach and walk,
// or in the middle of a walk, gives ErrProcessGone and no partial snapshot.
func TestSnapshotProcessExits(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a target")
	}
	bin := targettest.Build(t, "population", targettest.BuildOpts{})
	for _, w := range walkersUnderTest(t) {
		t.Run(w.Name()+"/before walk", func(t *testing.T) {
			tgt := targettest.Start(t, bin)
			at, err := walk.Attach(tgt.PID)
			if err != nil {
				t.Fatal(err)
			}
			defer at.Close()
			tgt.Stop() // the target exits and is reaped
			s, err := walk.NewSnapshotter(at, w).Snapshot(context.Background())
			if err == nil || !errors.Is(err, walk.ErrProcessGone) || s != nil {
				t.Fatalf("Snapshot of an exited process = %v, %v; want ErrProcessGone", s, err)
			}
		})
		t.Run(w.Name()+"/mid walk", func(t *testing.T) {
			tgt := targettest.Start(t, bin, "-scale", "20")
			at, err := walk.Attach(tgt.PID)
			if err != nil {
				t.Fatal(err)
			}
			defer at.Close()
			killer := &killingWalker{Walker: w, pid: tgt.PID, after: 10}
			s, err := walk.NewSnapshotter(at, killer).Snapshot(context.Background())
			tgt.Stop()
			if err == nil || s != nil {
				t.Fatalf("Snapshot of a process killed mid-walk = %d goroutines, %v; want an error", len(s.Goroutines), err)
			}
			if !errors.Is(err, walk.ErrProcessGone) {
				t.Errorf("error %q does not say the process is gone", err)
			}
		})
	}
}

// killingWalker kills the target after some records, mid-walk.
type killingWalker struct {
	walk.Walker
	pid, after int
}

func (k *killingWalker) Walk(ctx context.Context, pid int, req walk.Request, fn func(*walk.Record) error) (walk.Stats, error) {
	n := 0
	return k.Walker.Walk(ctx, pid, req, func(r *walk.Record) error {
		n++
		if n == k.after {
			syscall.Kill(k.pid, syscall.SIGKILL)
			// Wait until the kernel has torn the address space down.
			for i := 0; i < 200; i++ {
				if _, err := os.Stat("/proc/" + itoa(k.pid) + "/exe"); err != nil {
					break
				}
				var st syscall.Stat_t
				if syscall.Stat("/proc/"+itoa(k.pid)+"/task", &st) != nil {
					break
				}
				time.Sleep(5 * time.Millisecond)
			}
		}
		return fn(r)
	})
}

func itoa(n int) string { return strconv.Itoa(n) }

// TestAttachUnsupportedGoVersion: a Go 1.20 program is refused with an
// error naming its version and the supported range.
func TestAttachUnsupportedGoVersion(t *testing.T) {
	if testing.Short() {
		t.Skip("downloads and uses the go1.20 toolchain")
	}
	dir := t.TempDir()
	src := "package main\n\nimport \"time\"\n\nfunc main() { time.Sleep(time.Hour) }\n"
	if err := os.WriteFile(filepath.Join(dir, "main.go"), []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "go.mod"), []byte("module old\n\ngo 1.20\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	exe := filepath.Join(dir, "old")
	build := exec.Command("go", "build", "-o", exe, ".")
	build.Dir = dir
	build.Env = append(os.Environ(), "GOTOOLCHAIN=go1.20.14", "GOFLAGS=-mod=mod", "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("build with go1.20.14: %v\n%s", err, out)
		}
		t.Skipf("go1.20.14 toolchain not available: %v\n%s", err, out)
	}
	cmd := exec.Command(exe)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cmd.Process.Kill(); cmd.Wait() }()
	_, err := walk.Attach(cmd.Process.Pid)
	if err == nil {
		t.Fatal("Attach of a go1.20 process succeeded")
	}
	for _, want := range []string{"go1.20", "go1.21", "go1.26"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %s", err, want)
		}
	}
}

// TestSnapshotPIDReuse: without a pidfd pinning the process (kernels
// before 5.3), a pid whose start time changed is another process.
func TestSnapshotPIDReuse(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a target")
	}
	at := attachPopulation(t)
	at.DropPidfd()
	at.StartTime++ // as if the pid now named a process started later
	_, err := walk.NewSnapshotter(at, walk.ProcMemWalker{}).Snapshot(context.Background())
	if !errors.Is(err, walk.ErrProcessGone) || !strings.Contains(err.Error(), "reused") {
		t.Fatalf("Snapshot after pid reuse = %v; want ErrProcessGone saying the pid was reused", err)
	}
}

// TestSnapshotWaitTime: goroutines parked across two snapshots are known to
// have waited at least the interval ("observed"), or longer per the
// runtime's GC-stamped waitsince ("runtime"); unchanged stacks are reused.
func TestSnapshotWaitTime(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a target")
	}
	sn := walk.NewSnapshotter(attachPopulation(t), walk.ProcMemWalker{})
	s1, err := sn.Snapshot(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	const gap = 1200 * time.Millisecond
	time.Sleep(gap)
	s2, err := sn.Snapshot(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	first := map[uint64]bool{}
	for _, g := range s1.Goroutines {
		if g.State == "waiting" {
			first[g.ID] = true
		}
	}
	observed := 0
	for _, g := range s2.Goroutines {
		if !first[g.ID] || g.WaitReason != "chan receive" {
			continue
		}
		switch g.WaitingSource {
		case "observed":
			observed++
			if g.WaitingSeconds < gap.Seconds()*0.9 {
				t.Errorf("goroutine %d: observed wait %.3fs, want at least %.1fs", g.ID, g.WaitingSeconds, gap.Seconds())
			}
		case "runtime":
			if g.WaitingSeconds < gap.Seconds()*0.9 {
				t.Errorf("goroutine %d: runtime wait %.3fs shorter than the observed %.1fs", g.ID, g.WaitingSeconds, gap.Seconds())
			}
		default:
			t.Errorf("goroutine %d parked across both snapshots has no wait time (%q)", g.ID, g.WaitingSource)
		}
		if len(g.Frames) == 0 {
			t.Errorf("goroutine %d: reused stack is empty", g.ID)
		}
	}
	if observed == 0 {
		t.Errorf("no goroutine had an observed wait time")
	}
}

// attachPopulation starts the population target and attaches to it.
func attachPopulation(t *testing.T) *walk.Target {
	t.Helper()
	tgt := targettest.Start(t, targettest.Build(t, "population", targettest.BuildOpts{}))
	at, err := walk.Attach(tgt.PID)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { at.Close() })
	return at
}
