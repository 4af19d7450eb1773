package receivers

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"

	pushv1 "github.com/grafana/pyroscope/api/gen/proto/go/push/v1"
	"github.com/grafana/pyroscope/api/gen/proto/go/push/v1/pushv1connect"
)

// PushPath is the push API's URL path.
const PushPath = pushv1connect.PusherServicePushProcedure

// Recorder is an HTTP server that answers every request as Grafana
// Pyroscope answers one it accepts (200; an empty push.v1 PushResponse on
// the push path) and keeps each request as it came over the wire
// (httputil.DumpRequest), to be saved as a fixture.
type Recorder struct {
	URL string

	mu    sync.Mutex
	dumps [][]byte
}

// StartRecorder starts a Recorder on 127.0.0.1 and stops it when the test
// ends.
func StartRecorder(tb testing.TB) *Recorder {
	tb.Helper()
	rec := &Recorder{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		dump, err := httputil.DumpRequest(r, true)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		rec.mu.Lock()
		rec.dumps = append(rec.dumps, dump)
		rec.mu.Unlock()
		if r.URL.Path == PushPath {
			w.Header().Set("Content-Type", r.Header.Get("Content-Type"))
		}
		w.WriteHeader(http.StatusOK)
	}))
	tb.Cleanup(srv.Close)
	rec.URL = srv.URL
	return rec
}

// Dumps returns the requests received so far, as on the wire.
func (r *Recorder) Dumps() [][]byte {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([][]byte(nil), r.dumps...)
}

// ParseDump reads a request saved by a Recorder.
func ParseDump(dump []byte) (*http.Request, []byte, error) {
	req, err := http.ReadRequest(bufio.NewReader(bytes.NewReader(dump)))
	if err != nil {
		return nil, nil, fmt.Errorf("read recorded request: %w", err)
	}
	body, err := io.ReadAll(req.Body)
	if err != nil {
		return nil, nil, fmt.Errorf("read recorded body: %w", err)
	}
	return req, body, nil
}

// CheckDump returns what Grafana Pyroscope does with a recorded request:
// an /ingest request as CheckIngestRequest decides, a push request as
// CheckPush (Path "push.v1", refusals with connect's invalid_argument
// status, 400).
func CheckDump(dump []byte) (IngestVerdict, error) {
	req, body, err := ParseDump(dump)
	if err != nil {
		return IngestVerdict{}, err
	}
	switch req.URL.Path {
	case "/ingest":
		return CheckIngestRequest(req.Method, req.URL.Query(), req.Header.Get("Content-Type"), body), nil
	case PushPath:
		msg, err := decodePushBody(req.Header, body)
		if err != nil {
			return IngestVerdict{Status: http.StatusBadRequest, Message: err.Error(), Path: "push.v1"}, nil
		}
		series, err := CheckPush(msg)
		if err != nil {
			return IngestVerdict{Status: http.StatusBadRequest, Message: err.Error(), Path: "push.v1"}, nil
		}
		return IngestVerdict{Status: http.StatusOK, Path: "push.v1", Series: series}, nil
	}
	return IngestVerdict{}, fmt.Errorf("recorded request to %s: neither /ingest nor %s", req.URL.Path, PushPath)
}

// decodePushBody decodes a connect unary request body: application/proto,
// gzip when Content-Encoding says so.
func decodePushBody(h http.Header, body []byte) (*pushv1.PushRequest, error) {
	if ct := h.Get("Content-Type"); ct != "application/proto" {
		return nil, fmt.Errorf("content type %q; goroscope sends application/proto", ct)
	}
	switch enc := h.Get("Content-Encoding"); enc {
	case "", "identity":
	case "gzip":
		zr, err := gzip.NewReader(bytes.NewReader(body))
		if err != nil {
			return nil, err
		}
		if body, err = io.ReadAll(zr); err != nil {
			return nil, err
		}
	default:
		return nil, fmt.Errorf("content encoding %q", enc)
	}
	msg := &pushv1.PushRequest{}
	if err := msg.UnmarshalVT(body); err != nil {
		return nil, fmt.Errorf("invalid_argument: unmarshal push request: %w", err)
	}
	return msg, nil
}

// RecordEnv is the environment variable that makes the fixture tests
// record their requests again: GOROSCOPE_RECORD=1 go test -run Record ./...
const RecordEnv = "GOROSCOPE_RECORD"

// WriteFixtures replaces the *.http files of dir with the given dumps,
// by name.
func WriteFixtures(tb testing.TB, dir string, dumps map[string][]byte) {
	tb.Helper()
	old, _ := filepath.Glob(filepath.Join(dir, "*.http"))
	for _, f := range old {
		if err := os.Remove(f); err != nil {
			tb.Fatal(err)
		}
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		tb.Fatal(err)
	}
	for name, d := range dumps {
		if err := os.WriteFile(filepath.Join(dir, name+".http"), d, 0o644); err != nil {
			tb.Fatal(err)
		}
	}
}

// ReadFixtures reads the *.http files of dir by name (without .http).
func ReadFixtures(tb testing.TB, dir string) map[string][]byte {
	tb.Helper()
	files, err := filepath.Glob(filepath.Join(dir, "*.http"))
	if err != nil {
		tb.Fatal(err)
	}
	if len(files) == 0 {
		tb.Fatalf("no fixtures in %s; record them with %s=1", dir, RecordEnv)
	}
	out := map[string][]byte{}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			tb.Fatal(err)
		}
		out[filepath.Base(f[:len(f)-len(".http")])] = b
	}
	return out
}

// CheckFixture checks the recorded request name of fixtures against the
// server's rules: it must exist, be accepted, and be stored under wantIDs.
// The verdict is returned for the caller's own checks of the series.
func CheckFixture(tb testing.TB, fixtures map[string][]byte, name string, wantIDs []string) IngestVerdict {
	tb.Helper()
	dump, ok := fixtures[name]
	if !ok {
		tb.Fatalf("no fixture %s.http; record the fixtures with %s=1", name, RecordEnv)
	}
	v, err := CheckDump(dump)
	if err != nil {
		tb.Fatal(err)
	}
	if err := v.Err(); err != nil {
		tb.Fatalf("refused: %v", err)
	}
	if ids := v.ProfileTypeIDs(); !slices.Equal(ids, wantIDs) {
		tb.Errorf("stored as %v, want %v", ids, wantIDs)
	}
	return v
}
