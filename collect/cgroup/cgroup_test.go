package cgroup

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// open opens the reader of pid 4242 in a captured tree.
func open(t *testing.T, tree string) *Reader {
	t.Helper()
	r, err := Open(4242, Options{Proc: filepath.Join("testdata", tree, "proc"), Root: filepath.Join("testdata", tree)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return r
}

// TestV1Captured reads files captured on a cgroup v1 host (Linux 6.18): the process's cpu
// cgroup /gs-cap/ctr sets no quota, its parent 0.5 cores, which throttled it; its memory
// cgroup sets no limit, its parent 256 MiB.
func TestV1Captured(t *testing.T) {
	s := open(t, "v1").Read()
	want := Stats{
		CPUVersion: 1, CPUQuotaCores: 0.5, CPUQuotaCgroup: "/gs-cap", CPUPeriod: 100 * time.Millisecond,
		Periods: 25, ThrottledPeriods: 20, ThrottledTime: 1748419958 * time.Nanosecond,
		MemoryVersion: 1, MemoryLimitBytes: 256 << 20, MemoryUsageBytes: 364544, OOMKills: 0, HaveOOMKills: true,
	}
	if s != want {
		t.Errorf("got  %+v\nwant %+v", s, want)
	}
}

// TestV2 reads a cgroup v2 tree written as the kernel writes its files (the host that
// captured v1 has no v2 controllers): a Kubernetes container whose pod sets 1.5 cores and
// 256 MiB, the container itself neither.
func TestV2(t *testing.T) {
	s := open(t, "v2").Read()
	want := Stats{
		CPUVersion: 2, CPUQuotaCores: 1.5, CPUPeriod: 100 * time.Millisecond,
		CPUQuotaCgroup: "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod6f1c.slice",
		Periods:        5123, ThrottledPeriods: 4811, ThrottledTime: 61234567 * time.Microsecond,
		MemoryVersion: 2, MemoryLimitBytes: 268435456, MemoryUsageBytes: 199999997, OOMKills: 2, HaveOOMKills: true,
	}
	if s != want {
		t.Errorf("got  %+v\nwant %+v", s, want)
	}
}

// copyTree copies a captured tree to a temporary directory, to change it.
func copyTree(t *testing.T, tree string) string {
	t.Helper()
	dst := t.TempDir()
	src := filepath.Join("testdata", tree)
	err := filepath.Walk(src, func(p string, fi os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		if fi.IsDir() {
			return os.MkdirAll(filepath.Join(dst, rel), 0o755)
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(dst, rel), b, 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
	return dst
}

// TestRefresh: a tighter quota set on the container itself is seen at the next Refresh,
// with the container's own throttling; a process moved to another cgroup is followed.
func TestRefresh(t *testing.T) {
	dir := copyTree(t, "v2")
	r, err := Open(4242, Options{Proc: filepath.Join(dir, "proc"), Root: dir})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	ctr := filepath.Join(dir, "sys/fs/cgroup/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod6f1c.slice/cri-containerd-4b2e.scope")
	write := func(path, s string) {
		t.Helper()
		if err := os.WriteFile(path, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write(filepath.Join(ctr, "cpu.max"), "50000 100000\n")
	write(filepath.Join(ctr, "cpu.stat"), "usage_usec 1\nnr_periods 10\nnr_throttled 3\nthrottled_usec 1500\n")
	if s := r.Read(); s.CPUQuotaCores != 1.5 {
		t.Errorf("before Refresh: quota %v, want the pod's 1.5", s.CPUQuotaCores)
	}
	if err := r.Refresh(); err != nil {
		t.Fatal(err)
	}
	s := r.Read()
	if s.CPUQuotaCores != 0.5 || s.ThrottledPeriods != 3 || s.ThrottledTime != 1500*time.Microsecond || !strings.HasSuffix(s.CPUQuotaCgroup, "cri-containerd-4b2e.scope") {
		t.Errorf("after Refresh: %+v; want the container's 0.5 cores and its throttling", s)
	}
	// Moved to the pod's cgroup: its memory.current is read.
	write(filepath.Join(dir, "proc/4242/cgroup"), "0::/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod6f1c.slice\n")
	if err := r.Refresh(); err != nil {
		t.Fatal(err)
	}
	if s := r.Read(); s.MemoryUsageBytes != 199999998 || s.CPUQuotaCores != 1.5 || s.OOMKills != 0 {
		t.Errorf("after the move: %+v; want the pod's usage, quota and OOM kills", s)
	}
}

// TestBadFiles: malformed files give errors naming the file, never a panic or wrong figures.
func TestBadFiles(t *testing.T) {
	for _, tc := range []struct {
		file, content, cpuErr, memErr string
	}{
		{file: "cpu.max", content: "lots 100000\n", cpuErr: "bad quota"},
		{file: "cpu.max", content: "100000\n", cpuErr: "want QUOTA PERIOD"},
		{file: "cpu.max", content: "100000 0\n", cpuErr: "bad period"},
		{file: "memory.max", content: "-5\n", memErr: "want bytes or max"},
		{file: "memory.max", content: strings.Repeat("9", 5000), memErr: "longer than 4096 bytes"},
	} {
		t.Run(tc.file+"="+tc.content[:min(len(tc.content), 10)], func(t *testing.T) {
			dir := copyTree(t, "v2")
			pod := filepath.Join(dir, "sys/fs/cgroup/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod6f1c.slice")
			if err := os.WriteFile(filepath.Join(pod, tc.file), []byte(tc.content), 0o644); err != nil {
				t.Fatal(err)
			}
			r, err := Open(4242, Options{Proc: filepath.Join(dir, "proc"), Root: dir})
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			s := r.Read()
			if !strings.Contains(s.CPUError, tc.cpuErr) || (tc.cpuErr == "") != (s.CPUError == "") {
				t.Errorf("CPUError %q, want %q", s.CPUError, tc.cpuErr)
			}
			if !strings.Contains(s.MemoryError, tc.memErr) || (tc.memErr == "") != (s.MemoryError == "") {
				t.Errorf("MemoryError %q, want %q", s.MemoryError, tc.memErr)
			}
			if tc.cpuErr != "" && s.CPUQuotaCores != 0 || tc.memErr != "" && s.MemoryLimitBytes != 0 {
				t.Errorf("figures despite the error: %+v", s)
			}
		})
	}
	t.Run("cpu.stat", func(t *testing.T) {
		dir := copyTree(t, "v1")
		stat := filepath.Join(dir, "sys/fs/cgroup/cpu/gs-cap/cpu.stat")
		if err := os.WriteFile(stat, []byte("nr_periods 3\nnr_throttled 5\nthrottled_time 1\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		r, err := Open(4242, Options{Proc: filepath.Join(dir, "proc"), Root: dir})
		if err != nil {
			t.Fatal(err)
		}
		defer r.Close()
		if s := r.Read(); !strings.Contains(s.CPUError, "5 throttled periods of 3") || s.ThrottledPeriods != 0 {
			t.Errorf("%+v", s)
		}
	})
	t.Run("proc cgroup", func(t *testing.T) {
		dir := copyTree(t, "v1")
		if err := os.WriteFile(filepath.Join(dir, "proc/4242/cgroup"), []byte("garbage\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		_, err := Open(4242, Options{Proc: filepath.Join(dir, "proc"), Root: dir})
		if err == nil || !strings.Contains(err.Error(), "hierarchy-ID:controllers:/path") {
			t.Errorf("Open: %v", err)
		}
	})
	t.Run("gone", func(t *testing.T) {
		_, err := Open(4243, Options{Proc: "testdata/v1/proc", Root: "testdata/v1"})
		if !errors.Is(err, os.ErrNotExist) {
			t.Errorf("Open of a process that is not there: %v", err)
		}
	})
}

// TestResolve: paths are found under the mount whose root covers them, including a host
// hierarchy mounted into a container with a cgroup namespace of its own; a path the mounts
// do not show is reported, not guessed.
func TestResolve(t *testing.T) {
	ms, err := ParseMountinfo(strings.NewReader(strings.Join([]string{
		`26 23 0:25 / /sys/fs/cgroup ro,nosuid - cgroup2 cgroup2 rw,nsdelegate`,
		`90 23 0:25 /../../.. /host/sys\040fs/cgroup ro shared:1 - cgroup2 cgroup2 rw`,
		`32 31 0:29 / /sys/fs/cgroup/cpu,cpuacct rw - cgroup cgroup rw,cpu,cpuacct`,
		`33 31 0:30 /kubepods /mnt/mem rw - cgroup cgroup rw,memory`,
		`34 31 0:30 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory`,
	}, "\n")))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		v2             bool
		ctl, path      string
		wantDir, wantT string
		err            bool
	}{
		{v2: true, path: "/", wantDir: "/sys/fs/cgroup", wantT: "/sys/fs/cgroup"},
		{v2: true, path: "/sub/leaf", wantDir: "/sys/fs/cgroup/sub/leaf", wantT: "/sys/fs/cgroup"},
		{v2: true, path: "/../../../system.slice/x.service", wantDir: "/host/sys fs/cgroup/system.slice/x.service", wantT: "/host/sys fs/cgroup"},
		{v2: true, path: "/../../kubepods-burstable.slice/pod/ctr", err: true}, // shares an ancestor with the agent's cgroup
		{v2: true, path: "/../../../../up", err: true},
		{ctl: "cpu", path: "/a/b", wantDir: "/sys/fs/cgroup/cpu,cpuacct/a/b", wantT: "/sys/fs/cgroup/cpu,cpuacct"},
		{ctl: "cpuacct", path: "/a", wantDir: "/sys/fs/cgroup/cpu,cpuacct/a", wantT: "/sys/fs/cgroup/cpu,cpuacct"},
		{ctl: "memory", path: "/kubepods/pod1", wantDir: "/mnt/mem/pod1", wantT: "/mnt/mem"}, // the deepest root
		{ctl: "memory", path: "/system.slice", wantDir: "/sys/fs/cgroup/memory/system.slice", wantT: "/sys/fs/cgroup/memory"},
		{ctl: "pids", path: "/", err: true},
	} {
		dir, top, err := ms.resolve(tc.v2, tc.ctl, tc.path)
		if tc.err {
			if err == nil || !errors.Is(err, errOutside) {
				t.Errorf("%s: got %s, %v; want errOutside", tc.path, dir, err)
			}
			continue
		}
		if err != nil || dir != tc.wantDir || top != tc.wantT {
			t.Errorf("%s %s: got %q, %q, %v; want %q, %q", tc.ctl, tc.path, dir, top, err, tc.wantDir, tc.wantT)
		}
	}
}

// TestParseMountinfoErrors: a line without the separator or with too few fields is an error.
func TestParseMountinfoErrors(t *testing.T) {
	for _, in := range []string{"1 2 3 / /x rw cgroup2 cgroup2 rw", "1 2 / /x - cgroup2 c rw", "1 2 3 / /x rw - cgroup2"} {
		if _, err := ParseMountinfo(strings.NewReader(in)); err == nil || !strings.Contains(err.Error(), "mountinfo line 1") {
			t.Errorf("%q: %v", in, err)
		}
	}
}

// FuzzParsers: nothing the files may hold makes a parser panic.
func FuzzParsers(f *testing.F) {
	for _, s := range []string{"max 100000", "50000 100000\n", "nr_periods 1\nnr_throttled 1\nthrottled_usec 9\n", "0::/a\n1:cpu:/b",
		"31 23 0:28 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw\n", `\134\040`, "hierarchical_memory_limit 9223372036854771712\n", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		b := []byte(s)
		// Any answer will do, errors included: none may panic.
		_, _, _, _ = parseCPUMax(b)
		_, _, _, _ = parseV1Quota(b, b)
		_, _ = parseMemoryMax(b)
		_, _ = parseV1Limit(b)
		_, _ = parseCPUStat(b, 1)
		_, _ = parseCPUStat(b, 2)
		_, _ = parseProcCgroup(b)
		if ms, err := ParseMountinfo(strings.NewReader(s)); err == nil {
			_, _, _ = ms.resolve(true, "", s)
			_, _, _ = ms.resolve(false, "cpu", s)
		}
		unescape(s)
	})
}
