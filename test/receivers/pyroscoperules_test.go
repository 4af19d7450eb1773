package receivers

import (
	"bytes"
	"compress/gzip"
	"mime/multipart"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/google/pprof/profile"
	pushv1 "github.com/grafana/pyroscope/api/gen/proto/go/push/v1"
	typesv1 "github.com/grafana/pyroscope/api/gen/proto/go/types/v1"
)

// testProfile is a one-sample profile with the given sample types
// ("type/unit") and period type.
func testProfile(period string, types ...string) *profile.Profile {
	vt := func(s string) *profile.ValueType {
		t, u, _ := strings.Cut(s, "/")
		return &profile.ValueType{Type: t, Unit: u}
	}
	fn := &profile.Function{ID: 1, Name: "main.f", Filename: "main.go"}
	loc := &profile.Location{ID: 1, Address: 0x1000, Line: []profile.Line{{Function: fn, Line: 3}}}
	p := &profile.Profile{Function: []*profile.Function{fn}, Location: []*profile.Location{loc}, Period: 1, PeriodType: vt(period)}
	s := &profile.Sample{Location: []*profile.Location{loc}, Label: map[string][]string{"state": {"waiting"}}}
	for _, t := range types {
		p.SampleType = append(p.SampleType, vt(t))
		s.Value = append(s.Value, 1)
	}
	p.Sample = []*profile.Sample{s}
	return p
}

func encodePprof(t *testing.T, p *profile.Profile, gz bool) []byte {
	t.Helper()
	var b bytes.Buffer
	var err error
	if gz {
		err = p.Write(&b)
	} else {
		err = p.WriteUncompressed(&b)
	}
	if err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// TestCheckIngest holds the checker to the server's decisions, one per
// branch of readInputRawDataFromRequest, ParseToPprof and metricName.
func TestCheckIngest(t *testing.T) {
	cpu := string(encodePprof(t, testProfile("cpu/nanoseconds", "samples/count", "cpu/nanoseconds"), true))
	gor := string(encodePprof(t, testProfile("goroutine/count", "goroutine/count"), true))
	block := string(encodePprof(t, testProfile("contentions/count", "contentions/count", "delay/nanoseconds"), true))
	wall := string(encodePprof(t, testProfile("wall/nanoseconds", "wall/nanoseconds"), true))
	dashed := string(encodePprof(t, testProfile("a/b", "inuse-space/bytes"), true))
	ctForm, bodyForm := fixedForm(t, "profile", cpu)
	const goroutineCfg = `{"goroutine":{"display-name":"goroutine"}}`
	const blockCfg = `{"contentions":{"display-name":"block_count"},"delay":{"display-name":"block_duration"}}`
	const wallCfg = `{"wall":{"display-name":"goroutine_wall"}}`
	ctGor, bodyGor := fixedForm(t, "profile", gor)
	ctGorCfg, bodyGorCfg := fixedForm(t, "profile", gor, "sample_type_config", goroutineCfg)
	ctBlock, bodyBlock := fixedForm(t, "profile", block)
	ctBlockCfg, bodyBlockCfg := fixedForm(t, "profile", block, "sample_type_config", blockCfg)
	ctWall, bodyWall := fixedForm(t, "profile", wall, "sample_type_config", wallCfg)
	ctEmpty, bodyEmpty := fixedForm(t, "sample_type_config", "{}")
	ctPrev, bodyPrev := fixedForm(t, "profile", cpu, "prev_profile", cpu)
	ctBadCfg, bodyBadCfg := fixedForm(t, "profile", cpu, "sample_type_config", `{"samples":`)
	// pyroscope-go's goroutine leak upload (sample_types.go,
	// sampleTypeConfigGoroutineLeak).
	leak := string(encodePprof(t, testProfile("goroutineleak/count", "goroutineleak/count"), true))
	ctLeak, bodyLeak := fixedForm(t, "profile", leak, "sample_type_config", `{"goroutineleak":{"units":"goroutines","aggregation":"average","display-name":"goroutine_leak"}}`)
	q := func(kv ...string) url.Values {
		v := url.Values{"name": {"app{env=test,__private=x,__session_id__=s1}"}, "spyName": {"gospy"}}
		for i := 0; i+1 < len(kv); i += 2 {
			v.Set(kv[i], kv[i+1])
		}
		return v
	}
	type want struct {
		status int
		path   string
		ids    []string
		msg    string // in Message
	}
	tests := []struct {
		name        string
		method      string
		query       url.Values
		contentType string
		body        []byte
		want        want
	}{
		{"multipart, no format: pprof", "POST", q(), ctForm, bodyForm,
			want{200, "pprof (multipart)", []string{"process_cpu:cpu:nanoseconds:cpu:nanoseconds", "process_cpu:samples:count:cpu:nanoseconds"}, ""}},
		{"multipart with format=pprof: the body is taken for one pprof message", "POST", q("format", "pprof"), ctForm, bodyForm,
			want{422, "pprof (raw body)", nil, "parsing IngestInput-pprof failed invalid_argument: proto: wrong wireType = 5 for field Function"}},
		{"raw gzipped pprof with format=pprof", "POST", q("format", "pprof"), "application/octet-stream", []byte(cpu),
			want{200, "pprof (raw body)", []string{"process_cpu:cpu:nanoseconds:cpu:nanoseconds", "process_cpu:samples:count:cpu:nanoseconds"}, ""}},
		{"raw uncompressed pprof with format=pprof", "POST", q("format", "pprof"), "", encodePprof(t, testProfile("goroutine/count", "goroutine/count"), false),
			want{200, "pprof (raw body)", []string{"goroutines:goroutine:count:goroutine:count"}, ""}},
		{"go goroutine profile without config: named goroutines", "POST", q(), ctGor, bodyGor,
			want{200, "pprof (multipart)", []string{"goroutines:goroutine:count:goroutine:count"}, ""}},
		{"goroutine profile with display name goroutine", "POST", q(), ctGorCfg, bodyGorCfg,
			want{200, "pprof (multipart)", []string{"goroutine:goroutine:count:goroutine:count"}, ""}},
		{"block profile without config: named mutex", "POST", q(), ctBlock, bodyBlock,
			want{200, "pprof (multipart)", []string{"mutex:contentions:count:contentions:count", "mutex:delay:nanoseconds:contentions:count"}, ""}},
		{"block profile with block_* display names", "POST", q(), ctBlockCfg, bodyBlockCfg,
			want{200, "pprof (multipart)", []string{"block:contentions:count:contentions:count", "block:delay:nanoseconds:contentions:count"}, ""}},
		{"wall sample type: named wall whatever the config", "POST", q(), ctWall, bodyWall,
			want{200, "pprof (multipart)", []string{"wall:wall:nanoseconds:wall:nanoseconds"}, ""}},
		{"pyroscope-go goroutine leak profile", "POST", q(), ctLeak, bodyLeak,
			want{200, "pprof (multipart)", []string{"goroutine_leak:goroutineleak:count:goroutineleak:count"}, ""}},
		{"no profile file: accepted, nothing stored", "POST", q(), ctEmpty, bodyEmpty,
			want{200, "pprof (multipart)", nil, ""}},
		{"prev_profile: old client refused", "POST", q(), ctPrev, bodyPrev,
			want{422, "pprof (multipart)", nil, "unsupported client version"}},
		{"bad sample_type_config", "POST", q(), ctBadCfg, bodyBadCfg,
			want{422, "pprof (multipart)", nil, "failed to parse pprof /ingest multipart form"}},
		{"multipart without boundary", "POST", q(), "multipart/form-data", bodyForm,
			want{422, "pprof (multipart)", nil, "malformed multipart content type header"}},
		{"sample type with a dash", "POST", q("format", "pprof"), "", []byte(dashed),
			want{422, "pprof (raw body)", nil, "sample type contains -"}},
		{"service name with a colon", "POST", url.Values{"name": {"my:app{}"}}, ctForm, bodyForm,
			want{400, "", nil, "invalid service name"}},
		{"GET", "GET", q(), ctForm, bodyForm, want{405, "", nil, "POST"}},
		{"collapsed stacks, cpu by name suffix", "POST", url.Values{"name": {"app.cpu{env=test}"}}, "text/plain", []byte("main;f 3\nmain;g 2\n"),
			want{200, "groups", []string{"process_cpu:cpu:nanoseconds:cpu:nanoseconds"}, ""}},
		{"collapsed stacks, goroutines by name suffix", "POST", url.Values{"name": {"app.goroutines{}"}}, "", []byte("main;f 3\n"),
			want{200, "groups", []string{"goroutine:goroutines:count::"}, ""}},
		{"collapsed stacks, unknown type", "POST", url.Values{"name": {"app.weird{}"}}, "", []byte("main;f 3\n"),
			want{400, "groups", nil, "unknown profile type: weird"}},
		{"collapsed stacks, bad count", "POST", url.Values{"name": {"app.cpu{}"}}, "", []byte("main;f x\n"),
			want{422, "groups", nil, "invalid syntax"}},
		{"lines", "POST", url.Values{"name": {"app.cpu{}"}, "format": {"lines"}}, "", []byte("main;f\nmain;f\n"),
			want{200, "lines", []string{"process_cpu:cpu:nanoseconds:cpu:nanoseconds"}, ""}},
		{"trie: not mirrored", "POST", url.Values{"name": {"app{}"}}, "binary/octet-stream+trie", []byte{1},
			want{0, "trie", nil, "not mirrored"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := CheckIngestRequest(tt.method, tt.query, tt.contentType, tt.body)
			if v.Status != tt.want.status || v.Path != tt.want.path || !strings.Contains(v.Message, tt.want.msg) {
				t.Errorf("HTTP %d %s %q, want HTTP %d %s with %q", v.Status, v.Path, v.Message, tt.want.status, tt.want.path, tt.want.msg)
			}
			if ids := v.ProfileTypeIDs(); !slices.Equal(ids, tt.want.ids) {
				t.Errorf("stored as %v, want %v", ids, tt.want.ids)
			}
			if (v.Err() == nil) != (tt.want.status == 200 && len(tt.want.ids) > 0) {
				t.Errorf("Err() = %v", v.Err())
			}
			for _, s := range v.Series {
				if v.Path == "pprof (multipart)" && (s.Labels["service_name"] != "app" || s.Labels["env"] != "test" || s.Labels["__session_id__"] != "s1" ||
					s.Labels["pyroscope_spy"] != "gospy" || s.Labels["__delta__"] != "false" || s.Labels["__private"] != "") {
					t.Errorf("series labels %v", s.Labels)
				}
			}
		})
	}
}

// fixedForm builds a multipart body of (field, data) file parts, leaving
// out empty data, with a fixed boundary.
func fixedForm(t *testing.T, parts ...string) (contentType string, body []byte) {
	t.Helper()
	var b bytes.Buffer
	mw := multipart.NewWriter(&b)
	if err := mw.SetBoundary("fixedboundary0123456789"); err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(parts); i += 2 {
		if parts[i+1] == "" {
			continue
		}
		fw, err := mw.CreateFormFile(parts[i], parts[i])
		if err != nil {
			t.Fatal(err)
		}
		if _, err := fw.Write([]byte(parts[i+1])); err != nil {
			t.Fatal(err)
		}
	}
	if err := mw.Close(); err != nil {
		t.Fatal(err)
	}
	return mw.FormDataContentType(), b.Bytes()
}

// TestCheckPush holds the push check to the distributor's decisions.
func TestCheckPush(t *testing.T) {
	gz := func(p *profile.Profile) []byte { return encodePprof(t, p, true) }
	labels := func(kv ...string) []*typesv1.LabelPair {
		var ls []*typesv1.LabelPair
		for i := 0; i+1 < len(kv); i += 2 {
			ls = append(ls, &typesv1.LabelPair{Name: kv[i], Value: kv[i+1]})
		}
		return ls
	}
	good := labels("__name__", "goroutine", "service_name", "app", "state", "waiting")
	noLoc := testProfile("goroutine/count", "goroutine/count")
	noLoc.Location[0].ID = 0
	var notGz bytes.Buffer
	zw := gzip.NewWriter(&notGz)
	if _, err := zw.Write([]byte("not a profile")); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		req  *pushv1.PushRequest
		ids  []string
		msg  string
	}{
		{"goroutine profile", &pushv1.PushRequest{Series: []*pushv1.RawProfileSeries{{Labels: good, Samples: []*pushv1.RawSample{{RawProfile: gz(testProfile("goroutine/count", "goroutine/count"))}}}}},
			[]string{"goroutine:goroutine:count:goroutine:count"}, ""},
		{"no profiles", &pushv1.PushRequest{}, nil, "no profiles received"},
		{"no service name", &pushv1.PushRequest{Series: []*pushv1.RawProfileSeries{{Labels: labels("__name__", "goroutine"), Samples: []*pushv1.RawSample{{RawProfile: gz(testProfile("goroutine/count", "goroutine/count"))}}}}},
			nil, "service name is not provided"},
		{"duplicate label", &pushv1.PushRequest{Series: []*pushv1.RawProfileSeries{{Labels: append(labels("state", "x"), good...), Samples: []*pushv1.RawSample{{RawProfile: gz(testProfile("goroutine/count", "goroutine/count"))}}}}},
			nil, "duplicate label name"},
		{"location id 0", &pushv1.PushRequest{Series: []*pushv1.RawProfileSeries{{Labels: good, Samples: []*pushv1.RawSample{{RawProfile: gz(noLoc)}}}}},
			nil, "location id is 0"},
		{"gzip of garbage", &pushv1.PushRequest{Series: []*pushv1.RawProfileSeries{{Labels: good, Samples: []*pushv1.RawSample{{RawProfile: notGz.Bytes()}}}}},
			nil, "invalid_argument"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			series, err := CheckPush(tt.req)
			if (err == nil) != (tt.msg == "") || err != nil && !strings.Contains(err.Error(), tt.msg) {
				t.Fatalf("CheckPush: %v, want an error with %q", err, tt.msg)
			}
			if ids := profileTypeIDs(series); !slices.Equal(ids, tt.ids) {
				t.Errorf("stored as %v, want %v", ids, tt.ids)
			}
		})
	}
}

// TestReceiverRefusesAsServer: the in-process receiver answers a request
// the server refuses with the server's status.
func TestReceiverRefusesAsServer(t *testing.T) {
	p := StartPyroscope(t)
	ct, body := fixedForm(t, "profile", string(encodePprof(t, testProfile("goroutine/count", "goroutine/count"), true)))
	for _, tc := range []struct {
		query  string
		status int
	}{{"name=app%7B%7D", 200}, {"name=app%7B%7D&format=pprof", 422}} {
		resp, err := http.Post(p.URL+"/ingest?"+tc.query, ct, bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != tc.status {
			t.Errorf("%s: HTTP %d, want %d", tc.query, resp.StatusCode, tc.status)
		}
	}
	if n := len(p.Profiles()); n != 1 {
		t.Errorf("%d profiles recorded, want 1", n)
	}
	if n := len(p.Errors()); n != 1 {
		t.Errorf("%d errors recorded, want 1", n)
	}
}
