package store

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// mountTmpfs mounts a tmpfs with opts at a new directory and unmounts it
// when the test ends. Without the privilege it skips, except in CI.
func mountTmpfs(t *testing.T, flags uintptr, opts string) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "mnt")
	if err := os.Mkdir(dir, 0o750); err != nil {
		t.Fatal(err)
	}
	if err := unix.Mount("tmpfs", dir, "tmpfs", flags, opts); err != nil {
		if os.Getenv("CI") != "true" {
			t.Skipf("mounting a tmpfs needs root (CAP_SYS_ADMIN): %v", err)
		}
		t.Fatalf("mount tmpfs %q at %s: %v", opts, dir, err)
	}
	t.Cleanup(func() {
		if err := unix.Unmount(dir, 0); err != nil {
			t.Errorf("unmount %s: %v", dir, err)
		}
	})
	return dir
}

// TestDiskFull fills a real 1 MiB filesystem several times over: every
// Append succeeds, the oldest data goes and is counted.
func TestDiskFull(t *testing.T) {
	dir := mountTmpfs(t, 0, "size=1m")
	const n, size, fsBytes = 1500, 3000, 1 << 20
	s, err := Open(dir, Options{Now: (&clock{now: t0}).Now})
	if err != nil {
		t.Fatal(err)
	}
	closeAtEnd(t, s) // before the unmount
	appended := make(map[uint64]Entry)
	var last Meta
	for i := 0; i < n; i++ {
		e := ent(1+i%4, KindGoroutines, t0.Add(time.Duration(i)*time.Second), size)
		if last, err = s.Append(e); err != nil {
			t.Fatalf("Append #%d on a full disk: %v (stats %+v)", i, err, s.Stats())
		}
		appended[last.ID] = e
	}
	st := s.Stats()
	_, disk := segFiles(t, dir)
	full := st.Dropped[reasonDiskFull]
	t.Logf("after %d appends of %d bytes to 1 MiB: %d entries kept (%d payload, %d disk bytes in %d segments), %d dropped for disk_full",
		n, size, st.Entries, st.Bytes, st.DiskBytes, st.Segments, full)
	if st.Written != n || st.WriteErrors != 0 || uint64(st.Entries)+full != n || full == 0 ||
		st.Dropped[reasonSize] != 0 || st.DiskBytes != disk || st.DiskBytes > fsBytes || st.Bytes != int64(st.Entries*size) {
		t.Errorf("Stats = %+v (files %d bytes): want %d written, none failed, entries + disk_full drops = %d, DiskBytes = files <= 1 MiB", st, disk, n, n)
	}
	// Dropping is by segment (~1/32 of the filesystem): most of it stays in use.
	if st.Bytes < fsBytes*3/4 {
		t.Errorf("only %d payload bytes kept on a %d-byte filesystem: too much dropped", st.Bytes, fsBytes)
	}
	ms := mustList(t, s, Query{})
	if want := seq(last.ID-uint64(st.Entries)+1, last.ID); !reflect.DeepEqual(ids(ms), want) {
		t.Errorf("kept IDs %v, want the newest %d", ids(ms), st.Entries)
	}
	for _, m := range ms {
		if b, err := s.Read(m.ID); err != nil || !bytes.Equal(b, appended[m.ID].Data) {
			t.Fatalf("Read(%d): %d bytes, %v", m.ID, len(b), err)
		}
	}
	if _, err := s.Read(1); !errors.Is(err, ErrNotFound) {
		t.Errorf("Read(1) of a dropped entry: %v, want ErrNotFound", err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	// Everything kept survives a restart on the full filesystem.
	s, err = Open(dir, Options{Now: (&clock{now: t0}).Now})
	if err != nil {
		t.Fatal(err)
	}
	closeAtEnd(t, s)
	if st2 := s.Stats(); st2.Entries != st.Entries || st2.DiskBytes != st.DiskBytes || len(st2.Dropped) != 0 {
		t.Errorf("after restart: %+v, want %d entries, %d bytes, nothing dropped", st2, st.Entries, st.DiskBytes)
	}
	if _, err := s.Append(ent(9, KindCPU, t0, size)); err != nil {
		t.Errorf("Append after restart on a full disk: %v", err)
	}
}

// TestDiskFullTooBig: a record that cannot fit even on the empty
// filesystem fails after a bounded number of drops, and the store goes on.
func TestDiskFullTooBig(t *testing.T) {
	dir := mountTmpfs(t, 0, "size=256k")
	s, err := Open(dir, Options{Now: (&clock{now: t0}).Now})
	if err != nil {
		t.Fatal(err)
	}
	closeAtEnd(t, s)
	for i := 0; i < 5; i++ {
		mustAppend(t, s, ent(1, KindCPU, t0.Add(time.Duration(i)*time.Second), 1000))
	}
	_, err = s.Append(ent(1, KindCPU, t0, 300<<10))
	if !errors.Is(err, syscall.ENOSPC) || !strings.Contains(err.Error(), dir) {
		t.Fatalf("Append of 300 KiB to a 256 KiB filesystem: %v, want ENOSPC naming %s", err, dir)
	}
	st := s.Stats()
	if st.WriteErrors != 1 || st.Written != 5 || st.Dropped[reasonDiskFull] != 5 || st.Entries != 0 {
		t.Errorf("Stats = %+v, want 1 write error, 5 written and dropped for disk_full", st)
	}
	mustAppend(t, s, ent(1, KindCPU, t0.Add(time.Minute), 1000))
	if _, disk := segFiles(t, dir); s.Stats().DiskBytes != disk {
		t.Errorf("DiskBytes = %d, files hold %d", s.Stats().DiskBytes, disk)
	}
}

func TestUnusableDir(t *testing.T) {
	file := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(file, nil, 0o640); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		dir  func(t *testing.T) string
		want error
	}{
		{"under a regular file", func(*testing.T) string { return filepath.Join(file, "data") }, syscall.ENOTDIR},
		{"is a regular file", func(*testing.T) string { return file }, syscall.ENOTDIR},
		{"read-only mount", func(t *testing.T) string { return mountTmpfs(t, unix.MS_RDONLY, "size=64k") }, syscall.EROFS},
		{"under a read-only mount", func(t *testing.T) string {
			return filepath.Join(mountTmpfs(t, unix.MS_RDONLY, "size=64k"), "data")
		}, syscall.EROFS},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := tt.dir(t)
			s, err := Open(dir, Options{})
			if err == nil {
				_ = s.Close() // the test fails anyway
				t.Fatalf("Open(%s) succeeded", dir)
			}
			if !errors.Is(err, tt.want) || !strings.Contains(err.Error(), dir) || !strings.Contains(err.Error(), "--data-dir") {
				t.Errorf("Open(%s) error = %q, want %v naming the directory and --data-dir", dir, err, tt.want)
			}
		})
	}
}
