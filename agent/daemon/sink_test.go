package daemon

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/goroscope/goroscope/pkg/store"
)

// appended is an Appender that keeps what it takes and fails with err.
type appended struct {
	got []Output
	err error
}

func (s *appended) Append(_ context.Context, o Output) error {
	s.got = append(s.got, o)
	return s.err
}

// TestFanout: every sink takes every output whichever fails, and each
// failure is counted and logged once under its sink's name.
func TestFanout(t *testing.T) {
	st, push := &appended{err: errors.New("disk full")}, &appended{}
	var logBuf bytes.Buffer
	a := &Agent{log: slog.New(slog.NewTextHandler(&logBuf, nil))}
	a.metrics = newSelfMetrics(a)
	a.sink = fanout{{name: "store", Appender: st}, {name: "push", Appender: push}}
	o := Output{Process: store.Process{PID: 42, ServiceName: "svc"}}

	a.record(context.Background(), o)
	if len(st.got) != 1 || len(push.got) != 1 {
		t.Fatalf("store took %d outputs, push %d; want 1 each", len(st.got), len(push.got))
	}
	push.err = errors.New("queue closed")
	a.record(context.Background(), o)
	if s, p := testutil.ToFloat64(a.metrics.errors.WithLabelValues("store")), testutil.ToFloat64(a.metrics.errors.WithLabelValues("push")); s != 2 || p != 1 {
		t.Errorf("goroscope_errors_total store %v, push %v; want 2 and 1", s, p)
	}
	logs := logBuf.String()
	if strings.Count(logs, `msg=store pid=42 service_name=svc err="disk full"`) != 2 || strings.Count(logs, `msg=push pid=42 service_name=svc err="queue closed"`) != 1 {
		t.Errorf("log:\n%s", logs)
	}
}
