package bpfload

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"testing"

	"github.com/goroscope/goroscope/agent/bpfload/bpfloadtest"
)

// TestLogLoadFailure: a failure is one line with the cause, never the log.
func TestLogLoadFailure(t *testing.T) {
	var buf bytes.Buffer
	err := &rejection{what: "goroutine walker", cause: "verifier: too complex", logPath: "/d/bpf-verifier-goroutines.log", err: bpfloadtest.TooComplex()}
	LogFailure(context.Background(), slog.New(slog.NewTextHandler(&buf, nil)), slog.LevelDebug, "eBPF goroutine walker unavailable", err)
	if got := buf.String(); strings.Count(got, "\n") != 1 || !strings.Contains(got, `reason="verifier: too complex"`) ||
		!strings.Contains(got, "verifier_log=/d/bpf-verifier-goroutines.log") || strings.Contains(got, "insns") {
		t.Errorf("log:\n%s", got)
	}
	buf.Reset()
	err.cached = true
	LogFailure(context.Background(), slog.New(slog.NewTextHandler(&buf, nil)), slog.LevelDebug, "eBPF goroutine walker unavailable", err)
	if buf.Len() != 0 {
		t.Errorf("a cached rejection logged at info:\n%s", buf.String())
	}
}
