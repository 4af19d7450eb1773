package main

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
	"path/filepath"
	"runtime"
	"sync"
	"syscall"
	"time"
)

// startTimeout bounds how long a target may take to park its goroutines.
const startTimeout = 60 * time.Second

// stopper is a process the harness started and must stop by its PID.
type stopper interface{ stop() }

// processes remembers every process started, to stop each by PID on exit.
type processes struct {
	mu   sync.Mutex
	list []stopper
}

func (p *processes) add(t stopper) {
	p.mu.Lock()
	p.list = append(p.list, t)
	p.mu.Unlock()
}

// killAll stops every process still running.
func (p *processes) killAll() {
	p.mu.Lock()
	list := p.list
	p.list = nil
	p.mu.Unlock()
	for _, t := range list {
		t.stop()
	}
}

// target is one running latency target.
type target struct {
	pid        int
	addr       string
	goVersion  string
	goroutines int
	cmd        *exec.Cmd
	stdin      io.WriteCloser
	exited     chan struct{}
	once       sync.Once
}

// buildTarget builds test/targets/latency with the local toolchain into dir.
func buildTarget(ctx context.Context, dir string) (string, error) {
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		return "", fmt.Errorf("locate test/targets: runtime.Caller failed")
	}
	src := filepath.Join(filepath.Dir(file), "..", "targets")
	if _, err := os.Stat(filepath.Join(src, "go.mod")); err != nil {
		return "", fmt.Errorf("locate test/targets next to %s (run from a checkout): %w", file, err)
	}
	bin := filepath.Join(dir, "latency")
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "go", "build", "-o", bin, "./latency")
	cmd.Dir = src
	cmd.Env = append(os.Environ(), "GOTOOLCHAIN=local", "GOWORK=off", "GOFLAGS=", "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("build test/targets/latency: %w\n%s", err, out)
	}
	return bin, nil
}

// startTarget runs the latency target with n parked goroutines (and the
// extra flags) and waits for its ready line.
func startTarget(ctx context.Context, procs *processes, bin string, n int, extra ...string) (*target, error) {
	cmd := exec.Command(bin, append([]string{"-goroutines", fmt.Sprint(n)}, extra...)...)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, fmt.Errorf("start target: %w", err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, fmt.Errorf("start target: %w", err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start target %s: %w", bin, err)
	}
	t := &target{pid: cmd.Process.Pid, cmd: cmd, stdin: stdin, exited: make(chan struct{})}
	procs.add(t)
	go func() {
		_ = cmd.Wait()
		close(t.exited)
	}()
	lines := make(chan string, 1)
	go func() {
		r := bufio.NewReader(stdout)
		line, _ := r.ReadString('\n')
		lines <- line
		_, _ = io.Copy(io.Discard, r)
	}()
	var line string
	select {
	case line = <-lines:
	case <-time.After(startTimeout):
		t.stop()
		return nil, fmt.Errorf("target with %d goroutines not ready after %v", n, startTimeout)
	case <-ctx.Done():
		t.stop()
		return nil, ctx.Err()
	}
	var ready struct {
		PID        int    `json:"pid"`
		Pprof      string `json:"pprof"`
		Go         string `json:"go"`
		Goroutines int    `json:"goroutines"`
	}
	if err := json.Unmarshal([]byte(line), &ready); err != nil || ready.PID != t.pid {
		t.stop()
		return nil, fmt.Errorf("target pid %d: bad ready line %q: %v", t.pid, line, err)
	}
	t.addr, t.goVersion, t.goroutines = ready.Pprof, ready.Go, ready.Goroutines
	return t, nil
}

// stop closes stdin (the target exits) and kills the PID if it lingers.
func (t *target) stop() {
	t.once.Do(func() {
		_ = t.stdin.Close()
		select {
		case <-t.exited:
		case <-time.After(3 * time.Second):
			_ = syscall.Kill(t.pid, syscall.SIGKILL)
			<-t.exited
		}
	})
}

// get fetches path from the target, discarding at most limit bytes, and
// decodes JSON into v when v is not nil.
func (t *target) get(ctx context.Context, path string, limit int64, v any) (int64, error) {
	ctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+t.addr+path, nil)
	if err != nil {
		return 0, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, fmt.Errorf("GET %s of pid %d: %w", path, t.pid, err)
	}
	defer resp.Body.Close()
	if v == nil {
		n, err := io.Copy(io.Discard, io.LimitReader(resp.Body, limit))
		return n, err
	}
	var buf bytes.Buffer
	n, err := io.Copy(&buf, io.LimitReader(resp.Body, limit))
	if err != nil {
		return n, fmt.Errorf("read %s of pid %d: %w", path, t.pid, err)
	}
	if resp.StatusCode != http.StatusOK {
		return n, fmt.Errorf("GET %s of pid %d: %s: %s", path, t.pid, resp.Status, bytes.TrimSpace(buf.Bytes()))
	}
	if err := json.Unmarshal(buf.Bytes(), v); err != nil {
		return n, fmt.Errorf("decode %s of pid %d: %w", path, t.pid, err)
	}
	return n, nil
}
