package targettest

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/goroscope/goroscope/pkg/goroutinedump"
)

// StartTimeout bounds how long Start waits for a target's ready line.
const StartTimeout = 60 * time.Second

// maxStderrBytes bounds the kept stderr of a target (room for a crash dump).
const maxStderrBytes = 64 << 20

// maxDumpBytes bounds a downloaded goroutine dump (pprof caps its own at 64 MiB).
const maxDumpBytes = 256 << 20

// Target is a running test target that printed its ready line
// ({"pid":..,"pprof":"127.0.0.1:PORT","go":"go1.22.12","goroutines":N}).
type Target struct {
	// PID is the target's process id.
	PID int
	// PprofAddr is the host:port serving net/http/pprof and /population.
	PprofAddr string
	// GoVersion is the target's runtime.Version().
	GoVersion string
	// Goroutines is runtime.NumGoroutine() when the target became ready.
	Goroutines int
	// Cmd is the running command; its stdin is a pipe that Stop closes.
	Cmd *exec.Cmd

	stdin    io.WriteCloser
	stderr   *limitedBuffer
	stopOnce sync.Once
	exited   chan struct{} // closed when the process has been waited for
}

// StartOpts are extra settings for StartWith.
type StartOpts struct {
	// Env entries are appended to the test's environment
	// (e.g. "GOTRACEBACK=system", "GODEBUG=tracebacklabels=1").
	Env []string
	// Wrap, when set, is a command line the target's is appended to: a
	// shell that puts itself in a cgroup and execs the target
	// (memcg.Group.Wrapper). It must exec: the target keeps its pid.
	Wrap []string
}

// Start runs binPath with args, waits up to StartTimeout for its JSON ready
// line, and registers a cleanup that stops it.
func Start(tb testing.TB, binPath string, args ...string) *Target {
	tb.Helper()
	return StartWith(tb, StartOpts{}, binPath, args...)
}

// StartWith is Start with extra settings.
func StartWith(tb testing.TB, o StartOpts, binPath string, args ...string) *Target {
	tb.Helper()
	t, err := Launch(o, binPath, args...)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(t.Stop)
	return t
}

// Launch is StartWith outside a test (the benchmark harness): the caller
// stops the target.
func Launch(o StartOpts, binPath string, args ...string) (*Target, error) {
	argv := append(append(append([]string(nil), o.Wrap...), binPath), args...)
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env = append(os.Environ(), o.Env...)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, fmt.Errorf("start %s: stdin pipe: %w", binPath, err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, fmt.Errorf("start %s: stdout pipe: %w", binPath, err)
	}
	t := &Target{Cmd: cmd, stdin: stdin, stderr: &limitedBuffer{max: maxStderrBytes}}
	cmd.Stderr = t.stderr
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", binPath, err)
	}
	t.PID = cmd.Process.Pid
	t.exited = make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(t.exited)
	}()

	type result struct {
		line string
		err  error
	}
	lines := make(chan result, 1)
	go func() {
		r := bufio.NewReader(stdout)
		line, err := r.ReadString('\n')
		lines <- result{line, err}
		_, _ = io.Copy(io.Discard, r) // keep the pipe drained
	}()
	var res result
	select {
	case res = <-lines:
	case <-time.After(StartTimeout):
		res.err = fmt.Errorf("no ready line after %v", StartTimeout)
	}
	if res.err == nil {
		var ready struct {
			PID        int    `json:"pid"`
			Pprof      string `json:"pprof"`
			Go         string `json:"go"`
			Goroutines int    `json:"goroutines"`
		}
		if err := json.Unmarshal([]byte(res.line), &ready); err != nil {
			res.err = fmt.Errorf("bad ready line %q: %w", strings.TrimSpace(res.line), err)
		} else if ready.PID != t.PID || ready.Pprof == "" {
			res.err = fmt.Errorf("ready line %q does not match pid %d or lacks the pprof address", strings.TrimSpace(res.line), t.PID)
		} else {
			t.PprofAddr, t.GoVersion, t.Goroutines = ready.Pprof, ready.Go, ready.Goroutines
		}
	}
	if res.err != nil {
		t.Stop()
		return nil, fmt.Errorf("start %s: %w (stderr: %s)", binPath, res.err, t.stderr.String())
	}
	return t, nil
}

// Stop closes the target's stdin (which makes it exit), kills it if it is
// still running after a grace period, and waits for it. It is safe to call
// more than once; Start registers it as a test cleanup.
func (t *Target) Stop() {
	t.stopOnce.Do(func() {
		_ = t.stdin.Close()
		select {
		case <-t.exited:
		case <-time.After(5 * time.Second):
			_ = t.Cmd.Process.Kill()
			<-t.exited
		}
	})
}

// Stderr returns what the target wrote to stderr (at most 64 MiB).
func (t *Target) Stderr() string { return t.stderr.String() }

// Quit sends SIGQUIT, which makes the Go runtime print every goroutine to
// stderr and exit, waits for the exit and returns the stderr text. Run the
// target with GOTRACEBACK=system to get the gp=/m= header fields and
// fp/sp/pc of every frame (runtime.Stack and pprof always use level 1).
func (t *Target) Quit() (string, error) {
	if err := t.Cmd.Process.Signal(syscall.SIGQUIT); err != nil {
		return "", fmt.Errorf("send SIGQUIT to pid %d: %w", t.PID, err)
	}
	select {
	case <-t.exited:
	case <-time.After(30 * time.Second):
		t.Stop()
		return t.Stderr(), fmt.Errorf("pid %d still running 30s after SIGQUIT", t.PID)
	}
	t.Stop()
	return t.Stderr(), nil
}

// URL returns the http URL of path on the target's pprof server.
func (t *Target) URL(path string) string { return "http://" + t.PprofAddr + path }

// DumpRaw fetches /debug/pprof/goroutine?debug=2.
func (t *Target) DumpRaw(ctx context.Context) (string, error) {
	b, err := t.get(ctx, "/debug/pprof/goroutine?debug=2", maxDumpBytes)
	return string(b), err
}

// Dump fetches /debug/pprof/goroutine?debug=2 and parses it; it returns
// the raw text too, also on a parse error.
func (t *Target) Dump(ctx context.Context) ([]goroutinedump.Goroutine, string, error) {
	raw, err := t.DumpRaw(ctx)
	if err != nil {
		return nil, "", err
	}
	gs, err := goroutinedump.ParseString(raw)
	if err != nil {
		return gs, raw, fmt.Errorf("parse goroutine dump of pid %d (%s): %w", t.PID, t.GoVersion, err)
	}
	return gs, raw, nil
}

// Population fetches the target's /population description.
func (t *Target) Population(ctx context.Context) (Population, error) {
	var p Population
	b, err := t.get(ctx, "/population", 64<<20)
	if err != nil {
		return p, err
	}
	if err := json.Unmarshal(b, &p); err != nil {
		return p, fmt.Errorf("decode /population of pid %d: %w", t.PID, err)
	}
	return p, nil
}

func (t *Target) get(ctx context.Context, path string, limit int64) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, t.URL(path), nil)
	if err != nil {
		return nil, fmt.Errorf("GET %s: %w", path, err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("GET %s of pid %d: %w", path, t.PID, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, limit+1))
	if err != nil {
		return nil, fmt.Errorf("read %s of pid %d: %w", path, t.PID, err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s of pid %d: %s: %s", path, t.PID, resp.Status, bytes.TrimSpace(b[:min(len(b), 200)]))
	}
	if int64(len(b)) > limit {
		return nil, fmt.Errorf("GET %s of pid %d: response larger than %d bytes", path, t.PID, limit)
	}
	return b, nil
}

// limitedBuffer keeps the first max bytes written to it.
type limitedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
	max int
}

func (b *limitedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if room := b.max - b.buf.Len(); room > 0 {
		b.buf.Write(p[:min(len(p), room)])
	}
	return len(p), nil
}

func (b *limitedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
