package daemon

import (
	"bufio"
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/goroscope/goroscope/test/eventually"
	"github.com/goroscope/goroscope/test/targettest"
)

// TestProcessExits: the agent counts each watched process's end by
// service and reason: one that exits with status 3 and one killed by
// SIGKILL, each once.
func TestProcessExits(t *testing.T) {
	if testing.Short() {
		t.Skip("starts targets and the agent")
	}
	exiter := buildTarget(t, "exiter", targettest.BuildOpts{})
	cmd := exec.Command(exiter, "-mode", "exit", "-code", "3")
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	if line, err := bufio.NewReader(stdout).ReadString('\n'); err != nil || strings.TrimSpace(line) != "ready" {
		t.Fatalf("exiter: %q, %v; want its ready line", line, err)
	}
	pop := targettest.Start(t, buildTarget(t, "population", targettest.BuildOpts{}), "-spin", "0")

	_, base := runAgent(t, func(cfg *Config) { cfg.SnapshotInterval = Duration(300 * time.Millisecond) })
	eventually.True(t, 30*time.Second, "both targets watched", func() bool {
		return strings.Contains(get(t, base+"/metrics"), "goroscope_processes_watched 2")
	})
	if _, err := fmt.Fprintln(stdin, "go"); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Wait(); err == nil || cmd.ProcessState.ExitCode() != 3 {
		t.Fatalf("exiter ended with %v, want status 3", err)
	}
	if err := pop.Cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	want := []string{
		fmt.Sprintf(`goroscope_process_exits_total{reason="exit",service_name=%q} 1`, filepath.Base(exiter)),
		fmt.Sprintf(`goroscope_process_exits_total{reason="signal",service_name=%q} 1`, filepath.Base(pop.Cmd.Path)),
	}
	eventually.Succeeds(t, 30*time.Second, func() error {
		m := get(t, base+"/metrics")
		for _, w := range want {
			if !strings.Contains(m, w) {
				var got []string
				for _, l := range strings.Split(m, "\n") {
					if strings.HasPrefix(l, "goroscope_process_exits_total") {
						got = append(got, l)
					}
				}
				return fmt.Errorf("no %s in /metrics; exits counted: %q", w, got)
			}
		}
		return nil
	})
}
