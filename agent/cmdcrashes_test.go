package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/goroscope/goroscope/agent/ui"
	"github.com/goroscope/goroscope/pkg/crash"
	"github.com/goroscope/goroscope/pkg/store"
)

// storeSource serves a store through the UI, as the agent does.
type storeSource struct{ *store.Store }

func (storeSource) Processes() []ui.Process { return nil }

// TestCrashesCommand: goroscope crashes asks the agent's UI for the
// stored crash records and prints them as a table (a hostile service name
// made printable) or as JSON; a wrong --agent says what to pass.
func TestCrashesCommand(t *testing.T) {
	st, err := store.Open(t.TempDir(), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	at := time.Date(2026, 12, 4, 10, 0, 0, 0, time.UTC)
	for i, rec := range []crash.Record{
		{PID: 10, StartTime: 1, ServiceName: "api", Time: at, Reason: "exit", Code: 2, Message: "panic: assignment to entry in nil map",
			LastSnapshot: at.Add(-4 * time.Second), LastSnapshotAge: 4, GoID: 7,
			Stack: []string{"runtime.fatalpanic /go/src/runtime/panic.go:1217", "main.store /src/api/main.go:42\x1b[2J"}},
		{PID: 11, StartTime: 1, ServiceName: "evil\x1b[2Jname", Time: at.Add(time.Minute), Reason: "signal", Signal: "killed"},
	} {
		rec.Class = crash.ClassOf(rec.Reason, rec.Code, rec.Signal, rec.Message)
		b, err := json.Marshal(rec)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := st.Append(store.Entry{Process: store.Process{PID: rec.PID, StartTime: 1, ServiceName: rec.ServiceName}, Kind: store.KindCrash,
			Time: rec.Time, Data: b}); err != nil {
			t.Fatalf("record %d: %v", i, err)
		}
	}
	srv := httptest.NewServer(ui.New(storeSource{st}, nil))
	t.Cleanup(srv.Close)

	var out bytes.Buffer
	if err := run(context.Background(), []string{"crashes", "--agent", srv.URL}, &out, &out); err != nil {
		t.Fatal(err)
	}
	text := out.String()
	for _, want := range []string{"CLASS", "api", "exit 2", crash.ClassNilMapWrite, "panic: assignment to entry in nil map", "4.0s before",
		"signal killed", crash.ClassKilled} {
		if !strings.Contains(text, want) {
			t.Errorf("crashes printed no %q:\n%s", want, text)
		}
	}
	if strings.Contains(text, "\x1b") {
		t.Errorf("crashes printed a target's escape sequence:\n%q", text)
	}
	if strings.Index(text, crash.ClassKilled) > strings.Index(text, crash.ClassNilMapWrite) {
		t.Errorf("crashes not newest first:\n%s", text)
	}

	out.Reset()
	if err := run(context.Background(), []string{"crashes", "--agent", srv.URL, "--stacks"}, &out, &out); err != nil {
		t.Fatal(err)
	}
	text = out.String()
	for _, want := range []string{"goroutine 7:\n\truntime.fatalpanic /go/src/runtime/panic.go:1217\n\tmain.store /src/api/main.go:42",
		"(no stack seen", "initialise it with make"} {
		if !strings.Contains(text, want) {
			t.Errorf("crashes --stacks printed no %q:\n%s", want, text)
		}
	}
	if strings.Contains(text, "\x1b") {
		t.Errorf("crashes --stacks printed a target's escape sequence:\n%q", text)
	}

	out.Reset()
	if err := run(context.Background(), []string{"crashes", "--agent", srv.URL, "--service", "api", "--format", "json"}, &out, &out); err != nil {
		t.Fatal(err)
	}
	var recs []crash.Record
	if err := json.Unmarshal(out.Bytes(), &recs); err != nil || len(recs) != 1 || recs[0].PID != 10 || recs[0].Name != crash.ClassNilMapWrite {
		t.Errorf("crashes --service api --format json: %v, %+v; want pid 10's record", err, recs)
	}

	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"crashes", "--agent", "127.0.0.1:7070"}, "want the agent's address"},
		{[]string{"crashes", "--format", "yaml"}, "want text or json"},
		{[]string{"crashes", "--agent", "http://127.0.0.1:1"}, "is `goroscope agent` running there?"},
	} {
		err := run(context.Background(), tt.args, &out, &out)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%q: %v, want an error saying %q", tt.args, err, tt.want)
		}
	}
}
