package pyroscope_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/pprof/profile"

	"github.com/goroscope/goroscope/pkg/httpconf"
	"github.com/goroscope/goroscope/push/endpoint"
	"github.com/goroscope/goroscope/push/pyroscope"
	"github.com/goroscope/goroscope/push/senderr"
	"github.com/goroscope/goroscope/test/faults"
	"github.com/goroscope/goroscope/test/receivers"
)

// goroutineProfile builds a goroutines/count profile with stacks samples:
// sample i has depth frames, value i+1 and the string label state.
func goroutineProfile(stacks, depth int, states ...string) *profile.Profile {
	p := &profile.Profile{
		SampleType:        []*profile.ValueType{{Type: "goroutines", Unit: "count"}},
		PeriodType:        &profile.ValueType{Type: "goroutines", Unit: "count"},
		Period:            1,
		DefaultSampleType: "goroutines",
		TimeNanos:         time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).UnixNano(),
	}
	nfn := max(depth*4, stacks/2, 1)
	for i := range nfn {
		fn := &profile.Function{ID: uint64(i + 1), Name: fmt.Sprintf("example.com/pkg%d.(*T).Method%d", i%17, i), Filename: fmt.Sprintf("/src/pkg%d/file.go", i%17)}
		p.Function = append(p.Function, fn)
		p.Location = append(p.Location, &profile.Location{ID: uint64(i + 1), Address: 0x401000 + uint64(i)*16, Line: []profile.Line{{Function: fn, Line: int64(10 + i)}}})
	}
	for i := range stacks {
		var locs []*profile.Location
		for d := range depth {
			locs = append(locs, p.Location[(i*7+d*13)%nfn])
		}
		s := &profile.Sample{Location: locs, Value: []int64{int64(i + 1)}}
		if len(states) > 0 {
			s.Label = map[string][]string{"state": {states[i%len(states)]}}
		}
		p.Sample = append(p.Sample, s)
	}
	return p
}

func encode(t testing.TB, labels map[string]string, profs ...*profile.Profile) []byte {
	t.Helper()
	var raws [][]byte
	for _, p := range profs {
		raw, err := pyroscope.EncodeProfile(p)
		if err != nil {
			t.Fatal(err)
		}
		raws = append(raws, raw)
	}
	item, err := pyroscope.EncodeSeries(labels, raws...)
	if err != nil {
		t.Fatal(err)
	}
	return item
}

func seriesLabels(extra ...string) map[string]string {
	m := map[string]string{"service_name": "population", "__name__": "goroutines"}
	for i := 0; i+1 < len(extra); i += 2 {
		m[extra[i]] = extra[i+1]
	}
	return m
}

func TestPushReceivedAndDecoded(t *testing.T) {
	srv := receivers.StartPyroscope(t)
	c, err := pyroscope.New(pyroscope.Options{HTTP: endpoint.Config{URL: srv.URL, Tenant: "team-a", Version: "1.0.0",
		HTTPClientConfig: httpconf.HTTPClientConfig{BasicAuth: &httpconf.BasicAuth{Username: "u", Password: "p"}}}})
	if err != nil {
		t.Fatal(err)
	}
	items := [][]byte{
		encode(t, seriesLabels("pid", "4242", "state", "waiting", "wait_reason", "chan_receive"), goroutineProfile(10, 5), goroutineProfile(3, 2)),
		encode(t, seriesLabels("pid", "4242"), goroutineProfile(20, 8, "running", "runnable")),
	}
	if err := c.Send(context.Background(), items); err != nil {
		t.Fatal(err)
	}
	if errs := srv.Errors(); len(errs) > 0 {
		t.Fatalf("server decode errors: %v", errs)
	}
	reqs := srv.Requests()
	if len(reqs) != 1 || reqs[0].Series != 2 || reqs[0].Path != "/push.v1.PusherService/Push" {
		t.Fatalf("requests = %+v, want one push with 2 series", reqs)
	}
	h := reqs[0].Header
	for k, want := range map[string]string{
		"User-Agent":    "goroscope/1.0.0",
		"X-Scope-Orgid": "team-a",
		"Authorization": "Basic dTpw",
		"Content-Type":  "application/proto",
	} {
		if g := h.Get(k); g != want {
			t.Errorf("header %s = %q, want %q", k, g, want)
		}
	}
	got := srv.Profiles()
	if len(got) != 3 {
		t.Fatalf("received %d profiles, want 3", len(got))
	}
	wantTotals := []int64{55, 6, 210} // sum 1..n
	ids := map[string]bool{}
	for i, rp := range got {
		if !rp.Gzipped {
			t.Errorf("profile %d was not gzipped", i)
		}
		if st := rp.SampleTypes(); !slices.Equal(st, []string{"goroutines/count"}) {
			t.Errorf("profile %d sample types %v", i, st)
		}
		if tot := rp.Total(0); tot != wantTotals[i] {
			t.Errorf("profile %d total %d, want %d", i, tot, wantTotals[i])
		}
		if rp.Labels["service_name"] != "population" || rp.Labels["__name__"] != "goroutines" || rp.Labels["pid"] != "4242" {
			t.Errorf("profile %d labels %v", i, rp.Labels)
		}
		if len(rp.ID) != 36 || ids[rp.ID] {
			t.Errorf("profile %d ID %q: want a fresh UUID", i, rp.ID)
		}
		ids[rp.ID] = true
	}
	if got[0].Labels["wait_reason"] != "chan_receive" || got[0].Labels["state"] != "waiting" {
		t.Errorf("first series labels %v", got[0].Labels)
	}
	var states []string
	for _, s := range got[2].Profile.Sample {
		states = append(states, s.Label["state"]...)
	}
	if n := len(states); n != 20 || states[0] != "running" || states[1] != "runnable" {
		t.Errorf("sample state labels %v, want 20 alternating running/runnable", states)
	}
	if fn := got[2].Profile.Sample[0].Location[0].Line[0].Function.Name; !strings.HasPrefix(fn, "example.com/pkg") {
		t.Errorf("first frame function %q", fn)
	}
}

func TestSendSplitsBySize(t *testing.T) {
	srv := receivers.StartPyroscope(t)
	const limit = 64 << 10
	c, err := pyroscope.New(pyroscope.Options{HTTP: endpoint.Config{URL: srv.URL}, MaxRequestBytes: limit})
	if err != nil {
		t.Fatal(err)
	}
	var items [][]byte
	for i := range 12 {
		// ~10-20 KiB each; one series of three profiles exceeds the limit.
		n := 1
		if i == 5 {
			n = 3
		}
		var profs []*profile.Profile
		for range n {
			profs = append(profs, goroutineProfile(400, 12))
		}
		items = append(items, encode(t, seriesLabels("pid", fmt.Sprint(i)), profs...))
	}
	huge := encode(t, seriesLabels("pid", "huge"), goroutineProfile(6000, 64))
	items = append(items, huge)
	if len(huge) <= limit {
		t.Fatalf("the huge profile is only %d bytes", len(huge))
	}
	err = c.Send(context.Background(), items)
	var se *senderr.SendError
	if !errors.As(err, &se) || se.Retryable || !errors.Is(err, pyroscope.ErrInvalid) || !strings.Contains(err.Error(), "1 profiles larger than max_request_bytes") {
		t.Fatalf("Send = %v, want a permanent error for the one oversized profile", err)
	}
	reqs := srv.Requests()
	if len(reqs) < 3 {
		t.Errorf("%d requests, want the batch split over at least 3", len(reqs))
	}
	for i, r := range reqs {
		if r.Bytes > limit+1024 { // the connect envelope adds a few bytes
			t.Errorf("request %d is %d bytes, limit %d", i, r.Bytes, limit)
		}
	}
	got := srv.Profiles()
	if len(got) != 14 {
		t.Errorf("received %d profiles, want 14 (12 series, one with 3, without the huge one)", len(got))
	}
	perPID := map[string]int{}
	for _, p := range got {
		perPID[p.Labels["pid"]]++
	}
	if perPID["5"] != 3 || perPID["huge"] != 0 {
		t.Errorf("profiles per pid %v", perPID)
	}
}

func TestSendErrorClassification(t *testing.T) {
	srv := receivers.StartPyroscope(t)
	c, err := pyroscope.New(pyroscope.Options{HTTP: endpoint.Config{URL: srv.URL, HTTPClientConfig: httpconf.HTTPClientConfig{Timeout: 5 * time.Second}}})
	if err != nil {
		t.Fatal(err)
	}
	item := encode(t, seriesLabels(), goroutineProfile(3, 3))
	tests := []struct {
		fail      receivers.Failure
		retryable bool
		after     time.Duration
		msg       string
	}{
		{receivers.Failure{Status: 429, RetryAfter: "5", Message: "ingestion rate limit"}, true, 5 * time.Second, "ingestion rate limit"},
		{receivers.Failure{Status: 503, Message: "ring not ready"}, true, 0, "ring not ready"},
		{receivers.Failure{Status: 500, Message: "boom"}, true, 0, "boom"},
		{receivers.Failure{Status: 400, Message: "profile too old"}, false, 0, "profile too old"},
		{receivers.Failure{Status: 401, Message: "no auth"}, false, 0, "no auth"},
	}
	for _, tt := range tests {
		srv.FailNext(tt.fail)
		err := c.Send(context.Background(), [][]byte{item})
		var se *senderr.SendError
		if !errors.As(err, &se) {
			t.Errorf("HTTP %d: Send = %v, want *SendError", tt.fail.Status, err)
			continue
		}
		if se.Status != tt.fail.Status || se.Retryable != tt.retryable || se.RetryAfter != tt.after || !strings.Contains(se.Error(), tt.msg) {
			t.Errorf("HTTP %d: got status %d retryable %v after %s err %q; want %v %s %q",
				tt.fail.Status, se.Status, se.Retryable, se.RetryAfter, se, tt.retryable, tt.after, tt.msg)
		}
	}
	// A real decoding failure on the server side: a gzip stream that is not pprof.
	if err := c.Send(context.Background(), [][]byte{encodeRaw(t, []byte{0x1f, 0x8b, 0, 0})}); err == nil {
		t.Error("a corrupt profile was accepted")
	} else if se := (*senderr.SendError)(nil); !errors.As(err, &se) || se.Status != 400 || se.Retryable {
		t.Errorf("corrupt profile: %v, want permanent 400", err)
	}

	// No server: retryable, no status.
	dead, err := pyroscope.New(pyroscope.Options{HTTP: endpoint.Config{URL: "http://127.0.0.1:1", HTTPClientConfig: httpconf.HTTPClientConfig{Timeout: 2 * time.Second}}})
	if err != nil {
		t.Fatal(err)
	}
	err = dead.Send(context.Background(), [][]byte{item})
	var se *senderr.SendError
	if !errors.As(err, &se) || !se.Retryable || se.Status != 0 {
		t.Errorf("connection refused: %v, want retryable without status", err)
	}
}

func encodeRaw(t *testing.T, raw []byte) []byte {
	t.Helper()
	item, err := pyroscope.EncodeSeries(seriesLabels(), raw)
	if err != nil {
		t.Fatal(err)
	}
	return item
}

func TestLegacyIngest(t *testing.T) {
	srv := receivers.StartPyroscope(t)
	c, err := pyroscope.New(pyroscope.Options{HTTP: endpoint.Config{URL: srv.URL}, Legacy: true})
	if err != nil {
		t.Fatal(err)
	}
	items := [][]byte{
		encode(t, seriesLabels("state", "waiting", "wait_reason", "select"), goroutineProfile(4, 3), goroutineProfile(5, 3)),
	}
	if err := c.Send(context.Background(), items); err != nil {
		t.Fatal(err)
	}
	if errs := srv.Errors(); len(errs) > 0 {
		t.Fatalf("server errors: %v", errs)
	}
	got := srv.Profiles()
	if len(got) != 2 {
		t.Fatalf("received %d profiles, want 2", len(got))
	}
	for i, want := range []int64{10, 15} {
		p := got[i]
		// No format parameter: the server reads the multipart form as pprof
		// only without one.
		if _, ok := p.Query["format"]; ok || !p.Legacy || p.Query["name"] != "population{state=waiting,wait_reason=select}" || p.Query["spyName"] != "goroscope" {
			t.Errorf("profile %d: legacy %v query %v", i, p.Legacy, p.Query)
		}
		if !slices.Equal(p.ProfileTypes, []string{"goroutines:goroutines:count:goroutines:count"}) {
			t.Errorf("profile %d stored as %v", i, p.ProfileTypes)
		}
		if p.Labels["service_name"] != "population" || p.Labels["wait_reason"] != "select" {
			t.Errorf("profile %d labels %v", i, p.Labels)
		}
		if p.Total(0) != want {
			t.Errorf("profile %d total %d, want %d", i, p.Total(0), want)
		}
	}
	if ct := srv.Requests()[0].Header.Get("Content-Type"); !strings.HasPrefix(ct, "multipart/form-data; boundary=") {
		t.Errorf("Content-Type %q", ct)
	}
	srv.FailNext(receivers.Failure{Status: http.StatusServiceUnavailable, RetryAfter: "3"})
	var se *senderr.SendError
	if err := c.Send(context.Background(), items); !errors.As(err, &se) || !se.Retryable || se.RetryAfter != 3*time.Second {
		t.Errorf("legacy 503: %v", err)
	}
}

func TestEncodeSeriesValidation(t *testing.T) {
	raw, err := pyroscope.EncodeProfile(goroutineProfile(1, 1))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		labels map[string]string
		raws   [][]byte
		want   string
	}{
		{map[string]string{"__name__": "goroutines"}, [][]byte{raw}, "no service_name label"},
		{map[string]string{"service_name": "a"}, [][]byte{raw}, "no __name__ label"},
		{seriesLabels("goroutine.id", "1"), [][]byte{raw}, `label name "goroutine.id" must match`},
		{seriesLabels("__internal", "1"), [][]byte{raw}, "reserved by the server"},
		{seriesLabels("state", ""), [][]byte{raw}, `label "state" has an empty value`},
		{map[string]string{"service_name": "a", "__name__": "go-routines"}, [][]byte{raw}, "profile name (__name__)"},
		{seriesLabels(), nil, "no profiles"},
		{seriesLabels(), [][]byte{[]byte("plain pprof")}, "not gzip-compressed"},
	}
	for _, tt := range tests {
		_, err := pyroscope.EncodeSeries(tt.labels, tt.raws...)
		if err == nil || !errors.Is(err, pyroscope.ErrInvalid) || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("EncodeSeries(%v) = %v, want ErrInvalid with %q", tt.labels, err, tt.want)
		}
	}
	srv := receivers.StartPyroscope(t)
	c, err := pyroscope.New(pyroscope.Options{HTTP: endpoint.Config{URL: srv.URL}})
	if err != nil {
		t.Fatal(err)
	}
	err = c.Send(context.Background(), [][]byte{[]byte("junk"), encode(t, seriesLabels(), goroutineProfile(2, 2))})
	if !errors.Is(err, pyroscope.ErrInvalid) || !strings.Contains(err.Error(), "dropped 1 of 2 items") {
		t.Errorf("Send with a junk item = %v", err)
	}
	if n := len(srv.Profiles()); n != 1 {
		t.Errorf("server got %d profiles, want the 1 valid one", n)
	}
}

// BenchmarkEncodeProfile measures EncodeProfile (pprof + gzip) for a
// goroutine profile of 2,000 distinct stacks, 32 frames deep; MB/s are of
// uncompressed pprof.
func BenchmarkEncodeProfile(b *testing.B) {
	p := goroutineProfile(2000, 32, "running", "runnable", "waiting")
	var raw bytes.Buffer
	if err := p.WriteUncompressed(&raw); err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(raw.Len())) // MB/s of uncompressed pprof
	var size int
	b.ReportAllocs()
	for b.Loop() {
		raw, err := pyroscope.EncodeProfile(p)
		if err != nil {
			b.Fatal(err)
		}
		size = len(raw)
	}
	b.ReportMetric(float64(size), "gz-bytes")
}

// TestSendReportsDonePart: a batch split over several requests that fails
// in the middle says which items are done and which the failed request
// carried, so retrying the rest delivers every profile exactly once.
func TestSendReportsDonePart(t *testing.T) {
	srv := faults.Start(t)
	c, err := pyroscope.New(pyroscope.Options{HTTP: endpoint.Config{URL: srv.URL}, MaxRequestBytes: 4 << 10})
	if err != nil {
		t.Fatal(err)
	}
	var items [][]byte
	for i := range 12 {
		p := goroutineProfile(40, 8)
		p.TimeNanos += int64(i)
		items = append(items, encode(t, seriesLabels("i", fmt.Sprint(i)), p))
	}
	bad := encodeRaw(t, []byte{0x1f, 0x8b, 0, 0}) // decodes on our side, not on the server's
	items = slices.Insert(items, 0, []byte{0xff}) // does not decode: dropped by the client

	// 503 on the second request: the first request's items are done.
	srv.Script(faults.OK, faults.Status503)
	err = c.Send(context.Background(), items)
	var se *senderr.SendError
	if !errors.As(err, &se) || !se.Retryable || se.Status != 503 {
		t.Fatalf("Send = %v, want a retryable 503", err)
	}
	got := srv.Counts()
	if se.Done < 2 || se.Done >= len(items) || se.Invalid != 1 || se.Failed < 1 || got.Profiles != se.Done-se.Invalid {
		t.Fatalf("Done %d Invalid %d Failed %d with %d profiles received; want the first request's items done (and the bad one)",
			se.Done, se.Invalid, se.Failed, got.Profiles)
	}
	if err := c.Send(context.Background(), items[se.Done:]); err != nil {
		t.Fatalf("retrying the rest: %v", err)
	}
	if got = srv.Counts(); got.Profiles != 12 || got.ProfileDups != 0 || got.IDDups != 0 {
		t.Fatalf("after the retry: %d profiles, %d duplicates; want 12, 0", got.Profiles, got.ProfileDups+got.IDDups)
	}

	// 400 on the second request: only that request's items fail.
	items = append(items[1:], bad)
	for i := range items[:12] {
		p := goroutineProfile(40, 8)
		p.TimeNanos += int64(100 + i)
		items[i] = encode(t, seriesLabels("i", fmt.Sprint(i)), p)
	}
	srv.Script(faults.OK, faults.BadRequest)
	err = c.Send(context.Background(), items)
	if !errors.As(err, &se) || se.Retryable || se.Status != 400 || se.Done < 1 || se.Failed < 1 || se.Done+se.Failed >= len(items) {
		t.Fatalf("Send = %v (Done %d Failed %d), want a permanent 400 for the second request only", err, se.Done, se.Failed)
	}
	if got := srv.Counts(); got.RejectedProfiles != se.Failed || got.Profiles != 12+se.Done {
		t.Fatalf("server rejected %d and holds %d; want %d rejected, %d held", got.RejectedProfiles, got.Profiles, se.Failed, 12+se.Done)
	}
	// The rest: the server cannot decode the last profile and rejects the
	// request that carries it.
	rest := items[se.Done+se.Failed:]
	err = c.Send(context.Background(), rest)
	if !errors.As(err, &se) || se.Status != 400 || se.Done+se.Failed != len(rest) {
		t.Fatalf("Send(rest) = %v (Done %d Failed %d of %d), want the last request rejected", err, se.Done, se.Failed, len(rest))
	}
}
