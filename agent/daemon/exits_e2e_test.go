package daemon

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/goroscope/goroscope/pkg/crash"
	"github.com/goroscope/goroscope/pkg/store"
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
	cmd, stdin := startExiter(t, exiter, "-mode", "exit", "-code", "3")
	pcmd, pstdin := startExiter(t, exiter, "-mode", "panic")
	pop := targettest.Start(t, buildTarget(t, "population", targettest.BuildOpts{}), "-spin", "0")

	// The probe goes on processes at once, not after shortLived.
	run := startAgentWith(t, func(cfg *Config) { cfg.SnapshotInterval = Duration(300 * time.Millisecond) },
		func(a *Agent) { a.panicProbeAfter = 0 })
	a, base := run.a, run.base
	eventually.Succeeds(t, 30*time.Second, func() error {
		resp, err := http.Get(base + "/metrics") // the server may not listen yet
		if err != nil {
			return err
		}
		m, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			return err
		}
		if !strings.Contains(string(m), "goroscope_processes_watched 3") || len(storeEntries(t, a, pop.PID, store.KindSnapshot)) == 0 {
			return fmt.Errorf("the targets not yet watched and snapshotted")
		}
		a.mu.Lock()
		defer a.mu.Unlock()
		for k, s := range a.exitSubjects {
			if k.PID == pcmd.Process.Pid && !s.probed {
				return fmt.Errorf("the panic probe not yet on pid %d", k.PID)
			}
		}
		return nil
	})
	// The processes' keys, read while they live.
	exiterKey := store.ProcessKey{PID: cmd.Process.Pid, StartTime: processStart(t, cmd.Process.Pid)}
	popKey := store.ProcessKey{PID: pop.PID, StartTime: processStart(t, pop.PID)}
	panicKey := store.ProcessKey{PID: pcmd.Process.Pid, StartTime: processStart(t, pcmd.Process.Pid)}
	crashRecords := func(k store.ProcessKey) []store.Meta {
		ms, err := a.store.List(store.Query{Process: k, Kind: store.KindCrash})
		if err != nil {
			t.Fatal(err)
		}
		return ms
	}
	if _, err := fmt.Fprintln(stdin, "go"); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Wait(); err == nil || cmd.ProcessState.ExitCode() != 3 {
		t.Fatalf("exiter ended with %v, want status 3", err)
	}
	if _, err := fmt.Fprintln(pstdin, "go"); err != nil {
		t.Fatal(err)
	}
	if err := pcmd.Wait(); err == nil || pcmd.ProcessState.ExitCode() != 2 {
		t.Fatalf("panicking exiter ended with %v, want status 2", err)
	}
	if err := pop.Cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	want := []string{
		fmt.Sprintf(`goroscope_process_exits_total{reason="exit",service_name=%q} 2`, filepath.Base(exiter)),
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

	// The SIGKILL is a crash: its record says so and holds the last
	// snapshot's time; the status 3 is not.
	if n := len(crashRecords(exiterKey)); n != 0 {
		t.Errorf("%d crash records of the process that exited with status 3, want none", n)
	}
	crashes := crashRecords(popKey)
	if len(crashes) != 1 {
		t.Fatalf("%d crash records of the killed process, want 1", len(crashes))
	}
	b, err := a.store.Read(crashes[0].ID)
	if err != nil {
		t.Fatal(err)
	}
	var rec crash.Record
	if err := json.Unmarshal(b, &rec); err != nil {
		t.Fatal(err)
	}
	if rec.Reason != "signal" || rec.Signal != "killed" || rec.Name != crash.ClassKilled || rec.PID != pop.PID ||
		rec.LastSnapshot.IsZero() || rec.LastSnapshotAge < 0 || rec.LastSnapshotAge > 10 || rec.Runtime == nil {
		t.Errorf("crash record %+v; want a kill by SIGKILL (%s) with the last snapshot at most 10 s old and the runtime health", rec, crash.ClassKilled)
	}
	if m := get(t, base+"/metrics"); !strings.Contains(m, fmt.Sprintf(`goroscope_process_crashes_total{class=%q,service_name=%q} 1`, crash.ClassKilled, filepath.Base(pop.Cmd.Path))) {
		t.Errorf("no crash counted in /metrics")
	}

	// The panic: its record holds the runtime's message and the panicking
	// stack, from the fatal-path probe.
	crashes = crashRecords(panicKey)
	if len(crashes) != 1 {
		t.Fatalf("%d crash records of the panicking process, want 1", len(crashes))
	}
	if b, err = a.store.Read(crashes[0].ID); err != nil {
		t.Fatal(err)
	}
	var prec crash.Record
	if err := json.Unmarshal(b, &prec); err != nil {
		t.Fatal(err)
	}
	if prec.Reason != "exit" || prec.Code != 2 || prec.Message != "panic: exiter: x" || prec.Name != crash.ClassExplicitPanic ||
		len(prec.Stack) == 0 || !strings.Contains(strings.Join(prec.Stack, "\n"), "main.main") {
		t.Errorf("crash record of the panic %+v; want status 2, \"panic: exiter: x\" (%s) and a stack through main.main", prec, crash.ClassExplicitPanic)
	}
}

// startExiter starts test/targets/exiter (bin) with args and waits for
// its ready line; a line on stdin makes it end as args say.
func startExiter(t *testing.T, bin string, args ...string) (*exec.Cmd, io.Writer) {
	t.Helper()
	cmd := exec.Command(bin, args...)
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
		t.Fatalf("exiter %q: %q, %v; want its ready line", args, line, err)
	}
	return cmd, stdin
}
