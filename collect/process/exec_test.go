package process_test

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/goroscope/goroscope/collect/discovery"
	"github.com/goroscope/goroscope/collect/process"
	"github.com/goroscope/goroscope/collect/walk"
	"github.com/goroscope/goroscope/test/eventually"
	"github.com/goroscope/goroscope/test/targettest"
)

// afterExecSrc is the program the execer target exec's: other functions,
// another file.
const afterExecSrc = `package main

import (
	"io"
	"os"
)

func main() {
	for i := 0; i < 20; i++ {
		go programAfterExecParked()
	}
	_, _ = io.Copy(io.Discard, os.Stdin)
}

//go:noinline
func programAfterExecParked() { select {} }
`

// buildAfterExec builds afterExecSrc with the local toolchain.
func buildAfterExec(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "main.go"), []byte(afterExecSrc), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "go.mod"), []byte("module afterexec\n\ngo 1.21\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(dir, "afterexec")
	cmd := exec.Command("go", "build", "-o", bin, ".")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build the program to exec: %v\n%s", err, out)
	}
	return bin
}

// functions lists the functions of a snapshot's stacks.
func functions(t *testing.T, tg *process.Target) string {
	t.Helper()
	s, err := walk.NewSnapshotter(tg, walk.ProcMemWalker{}).Snapshot(context.Background())
	if err != nil {
		t.Fatalf("snapshot pid %d: %v", tg.PID, err)
	}
	var b strings.Builder
	for _, g := range s.Goroutines {
		for _, f := range g.Frames {
			b.WriteString(f.Function)
			b.WriteByte('\n')
		}
	}
	return b.String()
}

// TestExecDetected: a process that exec's another Go program keeps its pid,
// start time and pidfd, but Intact and discovery see the new executable,
// and attaching anew reads the new program's functions.
func TestExecDetected(t *testing.T) {
	next := buildAfterExec(t)
	tgt := targettest.Start(t, targettest.Build(t, "execer", targettest.BuildOpts{}), "-exec", next)
	old, err := process.Attach(tgt.PID)
	if err != nil {
		t.Fatal(err)
	}
	defer old.Close()
	if err := old.Intact(); err != nil {
		t.Fatalf("Intact before exec: %v", err)
	}
	sc := discovery.NewScanner()
	before, err := sc.Lookup(tgt.PID)
	if err != nil {
		t.Fatal(err)
	}
	if before.ExeID != old.ExeID || old.ExeID.IsZero() {
		t.Fatalf("discovery says executable %v, the target %v", before.ExeID, old.ExeID)
	}
	if fns := functions(t, old); !strings.Contains(fns, "main.execerParkedBeforeExec") {
		t.Fatalf("before exec, no main.execerParkedBeforeExec in:\n%s", fns)
	}

	if err := syscall.Kill(tgt.PID, syscall.SIGUSR1); err != nil {
		t.Fatal(err)
	}
	eventually.True(t, 30*time.Second, "Intact reports the exec", func() bool {
		return errors.Is(old.Intact(), process.ErrExeced)
	})
	ierr := old.Intact()
	if !errors.Is(ierr, process.ErrProcessGone) || !strings.Contains(ierr.Error(), "executable changed") {
		t.Errorf("Intact after exec = %v, want it to wrap ErrProcessGone and say the executable changed", ierr)
	}
	if err := old.Alive(); err != nil {
		t.Errorf("Alive after exec = %v: exec keeps pid, start time and pidfd", err)
	}
	// The snapshot across the exec is refused, never reported.
	if _, err := walk.NewSnapshotter(old, walk.ProcMemWalker{}).Snapshot(context.Background()); err == nil {
		t.Error("a snapshot with the old executable's symbols succeeded after the exec")
	}

	var after discovery.Process
	eventually.Succeeds(t, 30*time.Second, func() error {
		var err error
		after, err = sc.Lookup(tgt.PID)
		return err
	})
	if after.ExeID == before.ExeID || after.StartTime != before.StartTime || !strings.Contains(after.Exe, "afterexec") {
		t.Fatalf("after exec discovery has %+v, before %+v: want the same start time, another executable", after, before)
	}
	var nt *process.Target
	eventually.Succeeds(t, 30*time.Second, func() error {
		var err error
		nt, err = process.Attach(tgt.PID)
		return err
	})
	defer nt.Close()
	if nt.ExeID != after.ExeID {
		t.Errorf("new target has executable %v, discovery %v", nt.ExeID, after.ExeID)
	}
	eventually.True(t, 30*time.Second, "the new program's goroutines are parked", func() bool {
		return strings.Contains(functions(t, nt), "main.programAfterExecParked")
	})
	if fns := functions(t, nt); strings.Contains(fns, "execerParkedBeforeExec") {
		t.Errorf("after exec, the old program's function in:\n%s", fns)
	}
}

// TestCheckExe: the identity comparison.
func TestCheckExe(t *testing.T) {
	self, err := process.ExeIdentity(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	other := self
	other.Ino++
	newer := self
	newer.Mtime++
	for _, tc := range []struct {
		name string
		pid  int
		was  process.ExeID
		is   error
	}{
		{"same file", os.Getpid(), self, nil},
		{"unknown identity", os.Getpid(), process.ExeID{}, nil},
		{"other inode", os.Getpid(), other, process.ErrExeced},
		{"rewritten in place", os.Getpid(), newer, process.ErrExeced},
		{"no such process", 1 << 30, self, process.ErrProcessGone},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := process.CheckExe(tc.pid, tc.was)
			if tc.is == nil && err != nil || tc.is != nil && !errors.Is(err, tc.is) {
				t.Errorf("CheckExe(%d, %v) = %v, want %v", tc.pid, tc.was, err, tc.is)
			}
		})
	}
}
