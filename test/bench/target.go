package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"sync"
	"time"

	"github.com/goroscope/goroscope/test/targettest"
)

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
type target struct{ *targettest.Target }

// startTarget runs the latency target with n parked goroutines (and the
// extra flags) and waits for its ready line.
func startTarget(ctx context.Context, procs *processes, bin string, n int, extra ...string) (*target, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	tt, err := targettest.Launch(targettest.StartOpts{}, bin, append([]string{"-goroutines", fmt.Sprint(n)}, extra...)...)
	if err != nil {
		return nil, fmt.Errorf("target with %d goroutines: %w", n, err)
	}
	t := &target{tt}
	procs.add(t)
	return t, nil
}

// stop closes stdin (the target exits) and kills the PID if it lingers.
func (t *target) stop() { t.Stop() }

// get fetches path from the target, discarding at most limit bytes, and
// decodes JSON into v when v is not nil.
func (t *target) get(ctx context.Context, path string, limit int64, v any) (int64, error) {
	ctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+t.PprofAddr+path, nil)
	if err != nil {
		return 0, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, fmt.Errorf("GET %s of pid %d: %w", path, t.PID, err)
	}
	defer resp.Body.Close()
	if v == nil {
		n, err := io.Copy(io.Discard, io.LimitReader(resp.Body, limit))
		return n, err
	}
	var buf bytes.Buffer
	n, err := io.Copy(&buf, io.LimitReader(resp.Body, limit))
	if err != nil {
		return n, fmt.Errorf("read %s of pid %d: %w", path, t.PID, err)
	}
	if resp.StatusCode != http.StatusOK {
		return n, fmt.Errorf("GET %s of pid %d: %s: %s", path, t.PID, resp.Status, bytes.TrimSpace(buf.Bytes()))
	}
	if err := json.Unmarshal(buf.Bytes(), v); err != nil {
		return n, fmt.Errorf("decode %s of pid %d: %w", path, t.PID, err)
	}
	return n, nil
}
