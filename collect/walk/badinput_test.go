package walk_test

import (
	"context"
	"errors"
	"os"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/goroscope/goroscope/bpf"
	"github.com/goroscope/goroscope/collect/process"
	"github.com/goroscope/goroscope/collect/walk"
	"github.com/goroscope/goroscope/test/eventually"
	"github.com/goroscope/goroscope/test/targettest"
)

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
			at, err := process.Attach(tgt.PID)
			if err != nil {
				t.Fatal(err)
			}
			defer at.Close()
			tgt.Stop() // the target exits and is reaped
			s, err := walk.NewSnapshotter(at, w).Snapshot(context.Background())
			if err == nil || !errors.Is(err, process.ErrProcessGone) || s != nil {
				t.Fatalf("Snapshot of an exited process = %v, %v; want ErrProcessGone", s, err)
			}
		})
		t.Run(w.Name()+"/mid walk", func(t *testing.T) {
			tgt := targettest.Start(t, bin, "-scale", "20")
			at, err := process.Attach(tgt.PID)
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
			if !errors.Is(err, process.ErrProcessGone) {
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

func (k *killingWalker) Walk(ctx context.Context, pid int, req walk.Request, fn func(*bpf.GRecord) error) (walk.Stats, error) {
	n := 0
	return k.Walker.Walk(ctx, pid, req, func(r *bpf.GRecord) error {
		n++
		if n == k.after {
			syscall.Kill(k.pid, syscall.SIGKILL)
			// Wait (a second at most: the walk must cope either way) until
			// the kernel has torn the address space down.
			_ = eventually.Wait(time.Second, func() error {
				if _, err := os.Stat("/proc/" + itoa(k.pid) + "/exe"); err != nil {
					return nil
				}
				var st syscall.Stat_t
				if syscall.Stat("/proc/"+itoa(k.pid)+"/task", &st) != nil {
					return nil
				}
				return errors.New("still mapped")
			})
		}
		return fn(r)
	})
}

func itoa(n int) string { return strconv.Itoa(n) }

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
	time.Sleep(gap) // the workload: the wait time measured
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
func attachPopulation(t *testing.T) *process.Target {
	t.Helper()
	tgt := targettest.Start(t, targettest.Build(t, "population", targettest.BuildOpts{}))
	at, err := process.Attach(tgt.PID)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { at.Close() })
	return at
}
