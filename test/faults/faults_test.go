package faults_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/google/pprof/profile"
	"github.com/prometheus/prometheus/prompb"

	"github.com/goroscope/goroscope/pkg/httpconf"
	"github.com/goroscope/goroscope/push/endpoint"
	"github.com/goroscope/goroscope/push/pyroscope"
	"github.com/goroscope/goroscope/push/remotewrite"
	"github.com/goroscope/goroscope/push/senderr"
	"github.com/goroscope/goroscope/test/faults"
)

// sender is what both wire clients provide.
type sender interface {
	Send(ctx context.Context, items [][]byte) error
}

func clients(t *testing.T, s *faults.Server, timeout time.Duration) (rw, py sender) {
	t.Helper()
	r, err := remotewrite.New(remotewrite.Options{HTTP: endpoint.Config{URL: s.WriteURL, HTTPClientConfig: httpconf.HTTPClientConfig{Timeout: timeout}}})
	if err != nil {
		t.Fatal(err)
	}
	p, err := pyroscope.New(pyroscope.Options{HTTP: endpoint.Config{URL: s.URL, HTTPClientConfig: httpconf.HTTPClientConfig{Timeout: timeout}}})
	if err != nil {
		t.Fatal(err)
	}
	return r, p
}

// rwItems returns n remote-write items: one sample each of series
// test_metric{i="k"} at timestamp base+k.
func rwItems(t *testing.T, base int64, n int) [][]byte {
	t.Helper()
	var out [][]byte
	for k := range n {
		it, err := remotewrite.EncodeSeriesMap(map[string]string{"__name__": "test_metric", "i": fmt.Sprint(k)},
			[]prompb.Sample{{Timestamp: base + int64(k), Value: float64(k)}})
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, it)
	}
	return out
}

// pyItems returns n push items: one goroutine profile each, at time 1+base+k ns.
func pyItems(t *testing.T, base int64, n int) [][]byte {
	t.Helper()
	var out [][]byte
	for k := range n {
		fn := &profile.Function{ID: 1, Name: "main.work"}
		loc := &profile.Location{ID: 1, Address: 0x1000, Line: []profile.Line{{Function: fn, Line: 3}}}
		p := &profile.Profile{
			SampleType: []*profile.ValueType{{Type: "goroutines", Unit: "count"}},
			TimeNanos:  1 + base + int64(k), // 0 would mean "no time"
			Function:   []*profile.Function{fn},
			Location:   []*profile.Location{loc},
			Sample:     []*profile.Sample{{Location: []*profile.Location{loc}, Value: []int64{int64(k + 1)}}},
		}
		gz, err := pyroscope.EncodeProfile(p)
		if err != nil {
			t.Fatal(err)
		}
		it, err := pyroscope.EncodeSeries(map[string]string{"service_name": "svc", "__name__": "goroutines", "i": fmt.Sprint(k)}, gz)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, it)
	}
	return out
}

// TestModes sends one batch of each protocol in every mode and checks both
// sides: how the real wire client classifies the answer, and that the
// server ingested the batch only when it answered 2xx.
func TestModes(t *testing.T) {
	s := faults.Start(t)
	rw, py := clients(t, s, 300*time.Millisecond)
	cases := []struct {
		mode      faults.Mode
		ingested  bool
		status    int
		retryable bool
		after     time.Duration
		rejected  bool
	}{
		{faults.OK, true, 0, false, 0, false},
		{faults.Status500, false, 500, true, 0, false},
		{faults.Status503, false, 503, true, 0, false},
		{faults.TooMany, false, 429, true, 2 * time.Second, false},
		{faults.BadRequest, false, 400, false, 0, true},
		{faults.Hang, false, 0, true, 0, false},
		{faults.Reset, false, 0, true, 0, false},
		{faults.Down, false, 0, true, 0, false},
	}
	s.SetRetryAfter("2")
	var wantSamples, wantProfiles, wantRejected int
	for i, tc := range cases {
		if err := s.SetMode(tc.mode); err != nil {
			t.Fatal(err)
		}
		for _, p := range []struct {
			name  string
			c     sender
			items [][]byte
		}{{"remote-write", rw, rwItems(t, int64(i)*100, 5)}, {"push", py, pyItems(t, int64(i)*100+1, 3)}} {
			start := time.Now()
			err := p.c.Send(context.Background(), p.items)
			if tc.mode == faults.Hang && time.Since(start) < 250*time.Millisecond {
				t.Errorf("%s %s: returned after %v, before the client timeout", tc.mode, p.name, time.Since(start))
			}
			if tc.ingested {
				if err != nil {
					t.Fatalf("%s %s: %v", tc.mode, p.name, err)
				}
				continue
			}
			var se *senderr.SendError
			if !errors.As(err, &se) || se.Status != tc.status || se.Retryable != tc.retryable || se.RetryAfter != tc.after {
				t.Fatalf("%s %s: Send = %v; want status %d retryable %v retry-after %v", tc.mode, p.name, err, tc.status, tc.retryable, tc.after)
			}
		}
		if tc.ingested {
			wantSamples, wantProfiles = wantSamples+5, wantProfiles+3
		}
		if tc.rejected {
			wantRejected += 8
		}
		c := s.Counts()
		if c.Samples != wantSamples || c.Profiles != wantProfiles || c.RejectedSamples+c.RejectedProfiles != wantRejected {
			t.Fatalf("after %s: %d samples, %d profiles, %d rejected; want %d, %d, %d", tc.mode,
				c.Samples, c.Profiles, c.RejectedSamples+c.RejectedProfiles, wantSamples, wantProfiles, wantRejected)
		}
		if want := 2; tc.mode != faults.Down && c.Answered[tc.mode] != want {
			t.Fatalf("%s answered %d requests, want %d", tc.mode, c.Answered[tc.mode], want)
		}
	}
	// Back up on the same port: the same clients deliver again.
	if err := s.SetMode(faults.OK); err != nil {
		t.Fatal(err)
	}
	if err := rw.Send(context.Background(), rwItems(t, 10000, 4)); err != nil {
		t.Fatalf("remote-write after coming back up: %v", err)
	}
	if err := py.Send(context.Background(), pyItems(t, 10000, 2)); err != nil {
		t.Fatalf("push after coming back up: %v", err)
	}
	c := s.Counts()
	if c.Samples != wantSamples+4 || c.Profiles != wantProfiles+2 || c.SampleDups+c.ProfileDups+c.IDDups+c.RejectedAgain != 0 || len(c.Errors) != 0 {
		t.Fatalf("after coming back up: %+v", c)
	}
	if c.Requests != 4 || c.WireBytes <= 0 {
		t.Fatalf("%d requests ingested (%d bytes), want 4", c.Requests, c.WireBytes)
	}
}

// TestDuplicatesAndScript: a batch sent twice counts as duplicates, and a
// script answers the next requests before the mode applies again.
func TestDuplicatesAndScript(t *testing.T) {
	s := faults.Start(t)
	rw, py := clients(t, s, time.Second)
	items := rwItems(t, 0, 7)
	profs := pyItems(t, 0, 2)
	s.Script(faults.Status503, faults.Reset)
	for i, want := range []bool{false, false, true, true} {
		err := rw.Send(context.Background(), items)
		if (err == nil) != want {
			t.Fatalf("send %d: %v, want success %v", i, err, want)
		}
	}
	for range 2 {
		if err := py.Send(context.Background(), profs); err != nil {
			t.Fatal(err)
		}
	}
	c := s.Counts()
	if c.Samples != 7 || c.SampleDups != 7 || c.Profiles != 2 || c.ProfileDups != 2 || c.IDDups != 2 {
		t.Fatalf("counts %+v; want 7 samples and 2 profiles, each received twice", c)
	}
	if c.Answered[faults.Status503] != 1 || c.Answered[faults.Reset] != 1 || c.Answered[faults.OK] != 4 {
		t.Fatalf("answered %v", c.Answered)
	}
	got, _ := s.Received()
	if got[`{__name__="test_metric", i="3"}@3`] != 2 {
		t.Fatalf("identity of item 3 not recorded as received twice: %v", got)
	}
}
