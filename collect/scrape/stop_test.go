package scrape

import (
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/goroscope/goroscope/test/logbuf"
)

// TestStopDuringCPUProfileLogsNothing: stopping the scraper while a CPU
// profile is being recorded cuts the request short; that is no failure of
// the target, and no "timeout" warning is logged.
func TestStopDuringCPUProfileLogsNothing(t *testing.T) {
	started := make(chan struct{})
	var once sync.Once
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/debug/pprof/profile" {
			http.NotFound(w, r)
			return
		}
		once.Do(func() { close(started) })
		<-r.Context().Done() // recording until the client goes away
	}))
	defer srv.Close()
	var logs logbuf.Buffer
	s, err := New(Config{Profiles: []string{"cpu"}, Targets: []TargetConfig{{URL: srv.URL, Name: "t"}}},
		Options{Logger: slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug})), Version: "test"})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		s.Scrape(ctx)
	}()
	<-started
	cancel()
	<-done
	if out := logs.String(); strings.Contains(out, "pprof scrape failed") {
		t.Errorf("stopping during a CPU profile logged a failure:\n%s", out)
	}
}
