package cgroup_test

import (
	"context"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/goroscope/goroscope/collect/cgroup"
	"github.com/goroscope/goroscope/test/eventually"
	"github.com/goroscope/goroscope/test/memcg"
)

// needRoot skips without root, except under CI, where it fails.
func needRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		if os.Getenv("CI") == "true" {
			t.Fatal("needs root to make cgroups; CI runs as root")
		}
		t.Skip("needs root to make cgroups")
	}
}

// quota is the CPU quota of the test's cgroup, in cores: low enough that two spinning
// shells exceed it on a busy host.
const quota = 0.25

// burner starts two shells spinning in a new cgroup of a quarter of a core and 64 MiB,
// and returns the cgroup and the pid of one of them.
func burner(t testing.TB) (*memcg.Group, int) {
	t.Helper()
	needRoot(t)
	g, err := memcg.NewWith(fmt.Sprintf("goroscope-cgroup-test-%d", os.Getpid()), memcg.Limits{MemoryBytes: 64 << 20, CPUCores: quota})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := g.Close(); err != nil {
			t.Error(err)
		}
	})
	ctx, cancel := context.WithCancel(context.Background())
	cmd := g.Command(ctx, "/bin/sh", "-c", "while :; do :; done & while :; do :; done")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cancel(); _ = cmd.Wait() })
	return g, cmd.Process.Pid
}

// TestLive reads a cgroup the test makes, limited to a quarter of a core and 64 MiB, in
// which two shells spin: the limits as set, and throttling that grows, as the kernel's own
// files say.
func TestLive(t *testing.T) {
	g, pid := burner(t)
	var r *cgroup.Reader
	eventually.Succeeds(t, 10*time.Second, func() error { // the shell moves itself in first
		var err error
		if r, err = cgroup.Open(pid, cgroup.Options{}); err != nil {
			return err
		}
		if s := r.Read(); s.CPUQuotaCores != quota {
			r.Close()
			return fmt.Errorf("quota %v cores (%s), want %v", s.CPUQuotaCores, s.CPUError, quota)
		}
		return nil
	})
	defer r.Close()
	s := r.Read()
	if s.CPUError != "" || s.MemoryError != "" || s.MemoryLimitBytes != 64<<20 || s.CPUPeriod != 100*time.Millisecond || !s.HaveOOMKills || s.OOMKills != 0 {
		t.Fatalf("%+v; want a quota per 100ms, 64 MiB, no OOM kill", s)
	}
	start := time.Now()
	defer func() { t.Logf("throttling seen growing in %v", time.Since(start)) }()
	eventually.Succeeds(t, 20*time.Second, func() error {
		now := r.Read()
		periods, d, err := g.Throttled()
		if err != nil {
			return err
		}
		if now.ThrottledPeriods < s.ThrottledPeriods+3 || now.ThrottledTime <= s.ThrottledTime || now.MemoryUsageBytes <= 0 {
			return fmt.Errorf("throttled %d periods, %v; want growth from %d, %v", now.ThrottledPeriods, now.ThrottledTime, s.ThrottledPeriods, s.ThrottledTime)
		}
		if int64(now.ThrottledPeriods) > periods || now.ThrottledTime > d {
			return fmt.Errorf("read %d periods, %v; the cgroup says %d, %v a moment later", now.ThrottledPeriods, now.ThrottledTime, periods, d)
		}
		return nil
	})
}

// BenchmarkRead is the cost of a Read (the files read every time) and of a Refresh (the
// limits, read now and then) of a cgroup one level under the test's own.
func BenchmarkRead(b *testing.B) {
	_, pid := burner(b)
	var r *cgroup.Reader
	eventually.Succeeds(b, 10*time.Second, func() error {
		var err error
		if r, err = cgroup.Open(pid, cgroup.Options{}); err == nil && r.Read().CPUQuotaCores != quota {
			r.Close()
			err = fmt.Errorf("not in its cgroup yet")
		}
		return err
	})
	defer r.Close()
	b.Run("Read", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			if s := r.Read(); s.CPUError != "" || s.MemoryError != "" {
				b.Fatal(s)
			}
		}
	})
	b.Run("Refresh", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			if err := r.Refresh(); err != nil {
				b.Fatal(err)
			}
		}
	})
}
