package inproc_test

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/goroscope/goroscope/pkg/inproc"
	"github.com/goroscope/goroscope/test/logbuf"
	"github.com/goroscope/goroscope/test/receivers"
)

// serverRefusal is what Grafana Pyroscope answered to pyroscope-go's
// uploads when goroscope added format=pprof to them (issue 11).
const serverRefusal = "parsing IngestInput-pprof failed invalid_argument: proto: wrong wireType = 5 for field Function"

// TestRejectedUploadsCountedLoggedAndReported: a server that answers 422
// to every /ingest upload loses the data, and the SDK says so: Stats
// counts every rejected upload, the first rejection is logged through
// slog's default logger although no Logger is set (once), and Stop's error
// names the loss and the server's message. With Endpoint.Legacy
// goroscope's own profiles go to /ingest too and are lost the same way.
func TestRejectedUploadsCountedLoggedAndReported(t *testing.T) {
	for _, legacy := range []bool{false, true} {
		t.Run(map[bool]string{false: "push API", true: "legacy"}[legacy], func(t *testing.T) {
			var logged logbuf.Buffer
			old := slog.Default()
			slog.SetDefault(slog.New(slog.NewTextHandler(&logged, nil)))
			t.Cleanup(func() { slog.SetDefault(old) })

			srv := receivers.StartPyroscope(t)
			srv.FailPath("/ingest", receivers.Failure{Status: http.StatusUnprocessableEntity, Message: serverRefusal})
			ep := testEndpoint(srv.URL)
			ep.Legacy = legacy
			p, err := inproc.Start(context.Background(), inproc.Config{
				ApplicationName:   "inproc-rejected",
				Pyroscope:         []inproc.Endpoint{ep},
				ProfileTypes:      []inproc.ProfileType{inproc.ProfileCPU, inproc.ProfileInuseSpace, inproc.ProfileMutexCount, inproc.ProfileBlockCount},
				UploadRate:        time.Hour,
				GoroutineInterval: time.Hour,
			})
			if err != nil {
				t.Fatal(err)
			}
			burnCPU(t, 50*time.Millisecond)
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			stopErr := p.Stop(ctx)

			st := p.Stats()
			ingestRequests := 0
			for _, r := range srv.Requests() {
				if r.Path == "/ingest" {
					ingestRequests++
				}
			}
			// Stop cut pyroscope-go's CPU, heap, mutex and block profiles:
			// four uploads at least, all refused.
			if st.Uploads.Rejected < 4 || st.Uploads.Sent != 0 || st.Uploads.Dropped+st.Uploads.Pending != 0 {
				t.Errorf("uploads %+v, want at least 4 rejected and nothing else", st.Uploads)
			}
			wantProfiles := inproc.Delivery{Sent: 2} // the final collection's two profiles
			if legacy {
				wantProfiles = inproc.Delivery{Rejected: 2}
			}
			if st.Profiles != wantProfiles {
				t.Errorf("goroutine profiles %+v, want %+v", st.Profiles, wantProfiles)
			}
			if n := st.Uploads.Rejected + st.Profiles.Rejected; n != ingestRequests {
				t.Errorf("%d items counted rejected, the server refused %d requests", n, ingestRequests)
			}

			if stopErr == nil {
				t.Fatal("Stop returned nil after every upload was rejected")
			}
			msg := stopErr.Error()
			for _, want := range []string{"pyroscope-go uploads: ", " rejected by the endpoint", "HTTP 422", serverRefusal, "Config.Logger"} {
				if !strings.Contains(msg, want) {
					t.Errorf("Stop's error %q does not mention %q", msg, want)
				}
			}
			if legacy != strings.Contains(msg, "goroutine profiles: 2 of 2 (2 rejected by the endpoint)") {
				t.Errorf("Stop's error %q: goroutine profiles reported lost = %v, want %v", msg, !legacy, legacy)
			}

			out := logged.String()
			if n := strings.Count(out, "level=ERROR"); n != 1 || !strings.Contains(out, "HTTP 422") || !strings.Contains(out, "inproc.Config.Logger") {
				t.Errorf("default logger got %d error lines, want 1 with the server's answer and the fix:\n%s", n, out)
			}
		})
	}
}

// TestLoggerGetsEveryFailure: with a Logger, failures go there and not to
// slog's default logger.
func TestLoggerGetsEveryFailure(t *testing.T) {
	var logged, def logbuf.Buffer
	old := slog.Default()
	slog.SetDefault(slog.New(slog.NewTextHandler(&def, nil)))
	t.Cleanup(func() { slog.SetDefault(old) })

	srv := receivers.StartPyroscope(t)
	srv.FailPath("/ingest", receivers.Failure{Status: http.StatusUnprocessableEntity, Message: serverRefusal})
	p, err := inproc.Start(context.Background(), inproc.Config{
		ApplicationName: "inproc-logger", Pyroscope: []inproc.Endpoint{testEndpoint(srv.URL)},
		ProfileTypes: []inproc.ProfileType{inproc.ProfileCPU}, UploadRate: time.Hour, GoroutineInterval: -1,
		Logger: slog.New(slog.NewTextHandler(&logged, &slog.HandlerOptions{Level: slog.LevelDebug})),
	})
	if err != nil {
		t.Fatal(err)
	}
	err = p.Stop(context.Background())
	if n := p.Stats().Uploads.Rejected; n == 0 || err == nil || !strings.Contains(err.Error(), fmt.Sprintf("pyroscope-go uploads: %d of %d (%d rejected by the endpoint)", n, n, n)) {
		t.Errorf("Stop: %v, want the %d rejected uploads", err, n)
	}
	if out := logged.String(); !strings.Contains(out, "level=ERROR") || !strings.Contains(out, serverRefusal) || !strings.Contains(out, "pyroscope-go: ") {
		t.Errorf("Logger got:\n%s\nwant the rejection and pyroscope-go's messages", out)
	}
	if out := def.String(); out != "" {
		t.Errorf("slog's default logger got:\n%s\nwant nothing: a Logger is set", out)
	}
}

// TestStopWithoutCPUProfile: Stop returns when pyroscope-go runs without
// its CPU profile (pyroscope-go v1.4.3's Flush would block forever).
func TestStopWithoutCPUProfile(t *testing.T) {
	srv := receivers.StartPyroscope(t)
	p, err := inproc.Start(context.Background(), inproc.Config{
		ApplicationName: "inproc-nocpu", Pyroscope: []inproc.Endpoint{testEndpoint(srv.URL)},
		ProfileTypes: []inproc.ProfileType{inproc.ProfileInuseSpace}, UploadRate: time.Hour, GoroutineInterval: -1,
	})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- p.Stop(context.Background()) }()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Stop: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("Stop still blocked after 30s")
	}
	noLeftovers(t)
}
