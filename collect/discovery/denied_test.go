package discovery

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/goroscope/goroscope/test/targettest"
)

// deniedChildEnv runs TestDeniedExecutable's child half: a scan, as
// another user, of a /proc-like directory whose only process runs an
// executable that user may not read.
const deniedChildEnv = "GOROSCOPE_DENIED_PROC"

// TestDeniedExecutable: an executable the agent may not read (execute-only,
// without CAP_DAC_READ_SEARCH) is reported to OnDenied once, with its pid,
// path and a permission error, and its process is left out.
func TestDeniedExecutable(t *testing.T) {
	if proc := os.Getenv(deniedChildEnv); proc != "" {
		s := &Scanner{Proc: proc}
		calls := 0
		s.OnDenied = func(pid int, exe string, err error) {
			calls++
			fmt.Printf("denied pid=%d exe=%s permission=%v\n", pid, exe, errors.Is(err, os.ErrPermission))
		}
		for range 2 {
			procs, err := s.Scan()
			if err != nil || len(procs) != 0 {
				t.Fatalf("Scan = %v, %v; want no process", procs, err)
			}
		}
		fmt.Printf("calls=%d\n", calls)
		return
	}
	if testing.Short() {
		t.Skip("builds a target")
	}
	if os.Geteuid() != 0 {
		t.Skip("needs root to run a scan as another user")
	}
	dir, err := os.MkdirTemp("", "goroscope-denied-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	// An execute-only Go executable, and a process directory whose exe
	// links to it.
	data, err := os.ReadFile(targettest.Build(t, "population", targettest.BuildOpts{}))
	if err != nil {
		t.Fatal(err)
	}
	exe := filepath.Join(dir, "secret-app")
	if err := os.WriteFile(exe, data, 0o711); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(exe, 0o711); err != nil {
		t.Fatal(err)
	}
	pidDir := filepath.Join(dir, "proc", "4242")
	if err := os.MkdirAll(pidDir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(exe, filepath.Join(pidDir, "exe")); err != nil {
		t.Fatal(err)
	}
	// This test binary, where the other user can run it.
	self, err := os.ReadFile(os.Args[0])
	if err != nil {
		t.Fatal(err)
	}
	child := filepath.Join(dir, "discovery.test")
	if err := os.WriteFile(child, self, 0o755); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(child, "-test.run=^TestDeniedExecutable$", "-test.count=1")
	cmd.Env = append(os.Environ(), deniedChildEnv+"="+filepath.Join(dir, "proc"))
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("scan as nobody: %v\n%s", err, out)
	}
	for _, want := range []string{"denied pid=4242 exe=" + exe + " permission=true", "calls=1"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("scan as nobody printed no %q:\n%s", want, out)
		}
	}
}
