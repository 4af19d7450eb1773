package ui

import (
	"encoding/json"
	"net/http/httptest"
	"net/url"
	"testing"
	"time"

	"github.com/goroscope/goroscope/pkg/crash"
	"github.com/goroscope/goroscope/pkg/store"
)

// TestCrashes: the crash records listed newest first, by service (a
// hostile name included), and a damaged one left out and counted.
func TestCrashes(t *testing.T) {
	st := openStore(t)
	add := func(pid int, service string, at time.Time, data []byte) {
		t.Helper()
		if data == nil {
			rec := crash.Record{PID: pid, StartTime: 7, ServiceName: service, Time: at, Reason: "signal", Signal: "killed",
				Class: crash.ClassOf("signal", 0, "killed", "")}
			var err error
			if data, err = json.Marshal(rec); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := st.Append(store.Entry{Process: store.Process{PID: pid, StartTime: 7, ServiceName: service}, Kind: store.KindCrash, Time: at, Data: data}); err != nil {
			t.Fatal(err)
		}
	}
	hostile := `<img src=x onerror="alert(1)">`
	add(1, "api", t0, nil)
	add(2, hostile, t0.Add(time.Minute), nil)
	add(3, "api", t0.Add(2*time.Minute), nil)
	add(4, "api", t0.Add(3*time.Minute), []byte("{not json"))
	srv := httptest.NewServer(New(testSource{Store: st}, nil))
	t.Cleanup(srv.Close)
	for _, tt := range []struct {
		query   string
		pids    []int
		skipped int
	}{
		{"", []int{3, 2, 1}, 1},
		{"?service=api", []int{3, 1}, 1},
		{"?service=" + url.QueryEscape(hostile), []int{2}, 0},
		{"?service=nobody", nil, 0},
		{"?from=" + url.QueryEscape(t0.Add(30*time.Second).Format(time.RFC3339)), []int{3, 2}, 1},
	} {
		got := getJSON[CrashesAnswer](t, srv, "/api/crashes"+tt.query)
		var pids []int
		for _, c := range got.Crashes {
			pids = append(pids, c.PID)
			if c.Name != crash.ClassKilled || c.Hint == "" {
				t.Errorf("crashes%s: pid %d class %+v, want %s with a hint", tt.query, c.PID, c.Class, crash.ClassKilled)
			}
		}
		if len(pids) != len(tt.pids) || got.Skipped != tt.skipped {
			t.Errorf("crashes%s: pids %v, skipped %d; want %v, %d", tt.query, pids, got.Skipped, tt.pids, tt.skipped)
			continue
		}
		for i := range pids {
			if pids[i] != tt.pids[i] {
				t.Errorf("crashes%s: pids %v, want %v", tt.query, pids, tt.pids)
				break
			}
		}
	}
}
