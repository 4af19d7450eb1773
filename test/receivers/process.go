// Package receivers starts real push receivers for tests: Prometheus and
// VictoriaMetrics from their Debian packages (remote-write receivers with a
// query API), and an in-process Pyroscope push server built from the
// official connect handler that decodes every request fully.
//
// A missing binary skips the test with the install command, unless CI is
// "true", where it fails: CI must install the packages (apt-get install -y
// prometheus victoria-metrics).
package receivers

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/goroscope/goroscope/test/eventually"
)

// startTimeout bounds a receiver's start-up.
const startTimeout = 30 * time.Second

// findBinary returns the path of name, or skips (fails in CI) naming the
// Debian package to install.
func findBinary(tb testing.TB, name, pkg string) string {
	tb.Helper()
	path, err := exec.LookPath(name)
	if err == nil {
		return path
	}
	msg := fmt.Sprintf("%s not found (%v); install it with: apt-get install -y %s", name, err, pkg)
	if os.Getenv("CI") == "true" {
		tb.Fatal(msg)
	}
	tb.Skip(msg)
	return ""
}

// freeAddr returns a 127.0.0.1 address with a port that was free a moment
// ago.
func freeAddr(tb testing.TB) string {
	tb.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatalf("find a free port: %v", err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

// process is a receiver binary run for one test; its output is kept (bounded)
// for failure messages.
type process struct {
	cmd  *exec.Cmd
	out  *boundedBuffer
	done chan struct{}
	err  error
}

// startProcess runs path with args and stops it (SIGTERM, then SIGKILL after
// 5s) when the test ends.
func startProcess(tb testing.TB, path string, args ...string) *process {
	tb.Helper()
	p := &process{out: &boundedBuffer{max: 64 << 10}, done: make(chan struct{})}
	p.cmd = exec.Command(path, args...)
	p.cmd.Stdout = p.out
	p.cmd.Stderr = p.out
	if err := p.cmd.Start(); err != nil {
		tb.Fatalf("start %s: %v", path, err)
	}
	go func() {
		p.err = p.cmd.Wait()
		close(p.done)
	}()
	tb.Cleanup(func() {
		_ = p.cmd.Process.Signal(os.Interrupt)
		select {
		case <-p.done:
		case <-time.After(5 * time.Second):
			_ = p.cmd.Process.Kill()
			<-p.done
		}
	})
	return p
}

// waitReady polls url until it answers 200, the process exits or
// startTimeout passes.
func (p *process) waitReady(tb testing.TB, url string) {
	tb.Helper()
	client := &http.Client{Timeout: time.Second}
	if err := eventually.Wait(startTimeout, func() error {
		select {
		case <-p.done:
			tb.Fatalf("%s exited before it was ready (%v); output:\n%s", p.cmd.Path, p.err, p.out)
		default:
		}
		resp, err := client.Get(url)
		if err != nil {
			return err
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return errors.New(resp.Status)
		}
		return nil
	}); err != nil {
		tb.Fatalf("%s not ready at %s: %v; output:\n%s", p.cmd.Path, url, err, p.out)
	}
}

// boundedBuffer keeps the last max bytes written to it.
type boundedBuffer struct {
	mu  sync.Mutex
	max int
	buf bytes.Buffer
}

func (b *boundedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.buf.Write(p)
	if over := b.buf.Len() - b.max; over > 0 {
		b.buf.Next(over)
	}
	return len(p), nil
}

func (b *boundedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// Sample is one value of a series read back from a receiver.
type Sample struct {
	TimestampMs int64
	Value       float64
}

// Series is one series read back from a receiver.
type Series struct {
	Labels  map[string]string
	Samples []Sample
}

// getBody GETs url within ctx bounds and returns the body of a 200 answer.
func getBody(ctx context.Context, url string) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: %s: %s", url, resp.Status, body)
	}
	return body, nil
}

// parseValue reads a Prometheus API sample value ("1.5", "NaN", "+Inf").
func parseValue(s string) (float64, error) {
	return strconv.ParseFloat(s, 64)
}
