package process_test

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/goroscope/goroscope/collect/process"
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
		{"no such pid", 1 << 30, process.ErrProcessGone, "no such process"},
		{"exited", exited.Process.Pid, process.ErrProcessGone, "no such process"},
		{"negative pid", -5, nil, "not a process id"},
		{"not Go", notGo.Process.Pid, gobin.ErrNotGo, "not a Go"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tg, err := process.Attach(tc.pid)
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
	_, err := process.Attach(cmd.Process.Pid)
	if err == nil {
		t.Fatal("Attach of a go1.20 process succeeded")
	}
	for _, want := range []string{"go1.20", "go1.21", "go1.26"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %s", err, want)
		}
	}
}

// TestAlivePIDReuse: without a pidfd pinning the process (kernels before
// 5.3), a pid whose start time changed is another process.
func TestAlivePIDReuse(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a target")
	}
	tgt := targettest.Start(t, targettest.Build(t, "population", targettest.BuildOpts{}))
	at, err := process.Attach(tgt.PID)
	if err != nil {
		t.Fatal(err)
	}
	defer at.Close()
	if err := at.Alive(); err != nil {
		t.Fatalf("Alive of a running process = %v", err)
	}
	at.DropPidfd()
	at.StartTime++ // as if the pid now named a process started later
	err = at.Alive()
	if !errors.Is(err, process.ErrProcessGone) || !strings.Contains(err.Error(), "reused") {
		t.Fatalf("Alive after pid reuse = %v; want ErrProcessGone saying the pid was reused", err)
	}
}
