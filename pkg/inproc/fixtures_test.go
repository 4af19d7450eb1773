package inproc_test

import (
	"context"
	"maps"
	"net/http"
	"net/url"
	"os"
	"slices"
	"testing"
	"time"

	"github.com/goroscope/goroscope/pkg/inproc"
	"github.com/goroscope/goroscope/test/receivers"
)

// fixtureDir holds the SDK's requests as a server receives them, recorded
// by TestRecordFixtures: pyroscope-go's uploads as forwarded, goroscope's
// goroutine profiles through the push API and through legacy /ingest.
const fixtureDir = "testdata/requests"

// fixtureIDs are the profile type IDs each fixture must be stored under.
var fixtureIDs = map[string][]string{
	"pyroscope-go-cpu": {"process_cpu:cpu:nanoseconds:cpu:nanoseconds", "process_cpu:samples:count:cpu:nanoseconds"},
	"pyroscope-go-heap": {"memory:alloc_objects:count:space:bytes", "memory:alloc_space:bytes:space:bytes",
		"memory:inuse_objects:count:space:bytes", "memory:inuse_space:bytes:space:bytes"},
	"pyroscope-go-mutex":              {"mutex:contentions:count:contentions:count", "mutex:delay:nanoseconds:contentions:count"},
	"pyroscope-go-block":              {"block:contentions:count:contentions:count", "block:delay:nanoseconds:contentions:count"},
	"goroscope-legacy-goroutine":      {"goroutine:goroutine:count:goroutine:count"},
	"goroscope-legacy-goroutine_wall": {"wall:wall:nanoseconds:wall:nanoseconds"},
	"goroscope-push":                  {"goroutine:goroutine:count:goroutine:count", "goroutine_wall:wall:nanoseconds:wall:nanoseconds"},
}

// TestFixturesAcceptedByServerRules checks every recorded request shape of
// the SDK against Grafana Pyroscope's rules (receivers.CheckDump): each is
// accepted and stored under the expected profile type IDs, pyroscope-go's
// uploads carry no format parameter, and the same upload with format=pprof
// added, as the SDK sent it before, is refused as the real server refused
// it.
func TestFixturesAcceptedByServerRules(t *testing.T) {
	fixtures := receivers.ReadFixtures(t, fixtureDir)
	for _, name := range slices.Sorted(maps.Keys(fixtureIDs)) {
		t.Run(name, func(t *testing.T) {
			v := receivers.CheckFixture(t, fixtures, name, fixtureIDs[name])
			for _, s := range v.Series {
				if s.Labels["service_name"] != "inproc-fixture" || s.Labels["pid"] == "" || s.Labels["env"] != "test" {
					t.Errorf("series labels %v, want service_name, pid and the tag", s.Labels)
				}
			}
			if v.Path == "push.v1" {
				return
			}
			if v.Path != "pprof (multipart)" {
				t.Errorf("server reads it as %s, want pprof (multipart)", v.Path)
			}
			req, body, err := receivers.ParseDump(fixtures[name])
			if err != nil {
				t.Fatal(err)
			}
			if req.URL.Query().Has("format") {
				t.Errorf("query %q has a format parameter", req.URL.RawQuery)
			}
			// With format=pprof the server takes the multipart body for one
			// pprof message: the '-' of the boundary line reads as field 5
			// (Function) of wire type 5.
			q := req.URL.Query()
			q.Set("format", "pprof")
			bad := receivers.CheckIngestRequest(http.MethodPost, q, req.Header.Get("Content-Type"), body)
			if want := "parsing IngestInput-pprof failed invalid_argument: proto: wrong wireType = 5 for field Function"; bad.Status != http.StatusUnprocessableEntity || bad.Message != want {
				t.Errorf("with format=pprof: HTTP %d %q, want HTTP 422 %q", bad.Status, bad.Message, want)
			}
		})
	}
}

// TestRecordFixtures records the fixtures again, from the real
// pyroscope-go and goroscope's clients: GOROSCOPE_RECORD=1 go test
// -run TestRecordFixtures ./pkg/inproc.
func TestRecordFixtures(t *testing.T) {
	if os.Getenv(receivers.RecordEnv) == "" {
		t.Skipf("set %s=1 to record the fixtures again", receivers.RecordEnv)
	}
	startPopulation(t)
	legacy, push := receivers.StartRecorder(t), receivers.StartRecorder(t)
	p, err := inproc.Start(context.Background(), inproc.Config{
		ApplicationName: "inproc-fixture",
		Pyroscope:       []inproc.Endpoint{{HTTP: testEndpoint(legacy.URL).HTTP, Legacy: true}, testEndpoint(push.URL)},
		Tags:            map[string]string{"env": "test"},
		UploadRate:      time.Hour, GoroutineInterval: time.Hour,
	})
	if err != nil {
		t.Fatal(err)
	}
	burnCPU(t, 100*time.Millisecond)
	contendMutex(100 * time.Millisecond)
	stop(t, p)

	out := map[string][]byte{}
	keep := func(name string, dump []byte) {
		if len(dump) > len(out[name]) { // the CPU profile's near-empty tail loses
			out[name] = dump
		}
	}
	for _, d := range legacy.Dumps() {
		req, body, err := receivers.ParseDump(d)
		if err != nil {
			t.Fatal(err)
		}
		keep(fixtureName(t, req.URL.Query(), req.Header.Get("Content-Type"), body), d)
	}
	for _, d := range push.Dumps() {
		if req, _, _ := receivers.ParseDump(d); req.URL.Path == receivers.PushPath {
			keep("goroscope-push", d)
		}
	}
	if len(out) != len(fixtureIDs) {
		t.Fatalf("recorded %d request shapes, want %d", len(out), len(fixtureIDs))
	}
	receivers.WriteFixtures(t, fixtureDir, out)
}

// fixtureName names a recorded /ingest request by who sent it and the
// profile name the server gives it.
func fixtureName(t *testing.T, q url.Values, contentType string, body []byte) string {
	t.Helper()
	v := receivers.CheckIngestRequest(http.MethodPost, q, contentType, body)
	if err := v.Err(); err != nil {
		t.Fatalf("recorded request refused: %v", err)
	}
	name := v.Series[0].Labels["__name__"]
	switch q.Get("spyName") {
	case "gospy":
		return "pyroscope-go-" + map[string]string{"process_cpu": "cpu", "memory": "heap", "mutex": "mutex", "block": "block"}[name]
	case "goroscope":
		if name == "wall" {
			name = inproc.ProfileGoroutineWall
		}
		return "goroscope-legacy-" + name
	}
	t.Fatalf("request from spy %q", q.Get("spyName"))
	return ""
}
