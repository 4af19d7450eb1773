package receivers

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"connectrpc.com/connect"
	"github.com/google/pprof/profile"
	pushv1 "github.com/grafana/pyroscope/api/gen/proto/go/push/v1"
	"github.com/grafana/pyroscope/api/gen/proto/go/push/v1/pushv1connect"
	"github.com/klauspost/compress/gzip"

	"github.com/goroscope/goroscope/test/eventually"
)

// maxPyroscopeBody bounds one request body the test server reads.
const maxPyroscopeBody = 32 << 20

// Pyroscope is an in-process push server: the official connect handler for
// push.v1.PusherService/Push plus an /ingest handler, both deciding as
// Grafana Pyroscope does (CheckPush, CheckIngest: what the server refuses is
// refused with its status and message). It decodes every request and every
// pprof payload fully and records what it received.
type Pyroscope struct {
	// URL is the server's base URL, the one a pyroscope client is given.
	URL string

	mu       sync.Mutex
	profiles []ReceivedProfile
	requests []ReceivedRequest
	errs     []error
	fail     []Failure
	failPath map[string]Failure
}

// ReceivedRequest is one HTTP request the server answered.
type ReceivedRequest struct {
	Path   string
	Header http.Header
	Series int // series in a push request; 1 for /ingest
	Bytes  int // body size
}

// ReceivedProfile is one decoded profile with its series' labels.
type ReceivedProfile struct {
	Labels  map[string]string // series labels (push) or parsed from name (ingest)
	ID      string            // RawSample.ID (push only)
	Gzipped bool              // the payload was gzip-compressed (push only)
	Profile *profile.Profile
	Legacy  bool              // came through /ingest
	Query   map[string]string // /ingest query parameters
	// ServerLabels are the series labels the server stores the profile
	// under (for /ingest: __name__ as the server derives it, service_name,
	// pyroscope_spy, __delta__ and the name's labels); ProfileTypes the
	// IDs Grafana lists it under, one per sample type, sorted.
	ServerLabels map[string]string
	ProfileTypes []string
	// SampleTypeConfig is the /ingest form's sample_type_config, if any.
	SampleTypeConfig map[string]*SampleTypeConfig
}

// SampleTypes returns the profile's sample types as "type/unit".
func (r ReceivedProfile) SampleTypes() []string {
	var out []string
	for _, st := range r.Profile.SampleType {
		out = append(out, st.Type+"/"+st.Unit)
	}
	return out
}

// Total returns the sum of value index i over the profile's samples.
func (r ReceivedProfile) Total(i int) int64 {
	var n int64
	for _, s := range r.Profile.Sample {
		if i < len(s.Value) {
			n += s.Value[i]
		}
	}
	return n
}

// Failure makes the server answer the next requests with an HTTP status
// instead of accepting them.
type Failure struct {
	Status     int
	RetryAfter string // Retry-After header, if any
	Message    string
}

// StartPyroscope starts the in-process server on 127.0.0.1 and stops it when
// the test ends.
func StartPyroscope(tb testing.TB) *Pyroscope {
	tb.Helper()
	p := &Pyroscope{}
	mux := http.NewServeMux()
	path, h := pushv1connect.NewPusherServiceHandler(&pusher{p: p}, connect.WithReadMaxBytes(maxPyroscopeBody))
	mux.Handle(path, h)
	mux.HandleFunc("/ingest", p.ingest)
	srv := httptest.NewServer(p.record(mux))
	tb.Cleanup(srv.Close)
	p.URL = srv.URL
	return p
}

// FailNext makes the next len(f) requests fail as given, in order.
func (p *Pyroscope) FailNext(f ...Failure) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.fail = append(p.fail, f...)
}

// FailPath makes every request to path (e.g. "/ingest") fail as given,
// from now on.
func (p *Pyroscope) FailPath(path string, f Failure) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.failPath == nil {
		p.failPath = map[string]Failure{}
	}
	p.failPath[path] = f
}

// Profiles returns every profile received so far.
func (p *Pyroscope) Profiles() []ReceivedProfile {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]ReceivedProfile(nil), p.profiles...)
}

// Requests returns every request answered so far.
func (p *Pyroscope) Requests() []ReceivedRequest {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]ReceivedRequest(nil), p.requests...)
}

// Errors returns every decoding error (each also answered as a client
// error to the sender).
func (p *Pyroscope) Errors() []error {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]error(nil), p.errs...)
}

// WaitProfiles waits up to timeout until at least n profiles arrived.
func (p *Pyroscope) WaitProfiles(tb testing.TB, n int, timeout time.Duration) []ReceivedProfile {
	tb.Helper()
	var got []ReceivedProfile
	eventually.Succeeds(tb, timeout, func() error {
		if got = p.Profiles(); len(got) < n {
			return fmt.Errorf("pyroscope: %d profiles, want %d; errors: %v", len(got), n, p.Errors())
		}
		return nil
	})
	return got
}

// record logs each request and applies queued failures before the
// handlers run.
func (p *Pyroscope) record(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(io.LimitReader(r.Body, maxPyroscopeBody+1))
		if err != nil || len(body) > maxPyroscopeBody {
			http.Error(w, "body unreadable or too large", http.StatusRequestEntityTooLarge)
			return
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
		p.mu.Lock()
		p.requests = append(p.requests, ReceivedRequest{Path: r.URL.Path, Header: r.Header.Clone(), Bytes: len(body)})
		var f *Failure
		if len(p.fail) > 0 {
			f = &p.fail[0]
			p.fail = p.fail[1:]
		} else if pf, ok := p.failPath[r.URL.Path]; ok {
			f = &pf
		}
		p.mu.Unlock()
		if f != nil {
			if f.RetryAfter != "" {
				w.Header().Set("Retry-After", f.RetryAfter)
			}
			if r.URL.Path == "/ingest" {
				http.Error(w, f.Message, f.Status)
				return
			}
			// As the real server: a connect error body, the status mapped
			// from its code.
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(f.Status)
			_ = json.NewEncoder(w).Encode(map[string]string{"code": connectCode(f.Status), "message": f.Message})
			return
		}
		next.ServeHTTP(w, r)
	})
}

// connectCode is the connect error code a server answers with for status.
func connectCode(status int) string {
	switch status {
	case http.StatusBadRequest:
		return "invalid_argument"
	case http.StatusUnauthorized:
		return "unauthenticated"
	case http.StatusForbidden:
		return "permission_denied"
	case http.StatusNotFound:
		return "not_found"
	case http.StatusTooManyRequests:
		return "resource_exhausted"
	case http.StatusServiceUnavailable:
		return "unavailable"
	case http.StatusGatewayTimeout:
		return "deadline_exceeded"
	}
	return "internal"
}

// setSeries notes the series count of the latest request.
func (p *Pyroscope) setSeries(n int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.requests) > 0 {
		p.requests[len(p.requests)-1].Series = n
	}
}

func (p *Pyroscope) addError(err error) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.errs = append(p.errs, err)
	return err
}

// pusher implements the push service over the recorder.
type pusher struct {
	pushv1connect.UnimplementedPusherServiceHandler
	p *Pyroscope
}

func (s *pusher) Push(ctx context.Context, req *connect.Request[pushv1.PushRequest]) (*connect.Response[pushv1.PushResponse], error) {
	s.p.setSeries(len(req.Msg.Series))
	if _, err := CheckPush(req.Msg); err != nil {
		return nil, s.p.addError(err)
	}
	var got []ReceivedProfile
	for i, series := range req.Msg.Series {
		labels := map[string]string{}
		for _, l := range series.Labels {
			labels[l.Name] = l.Value
		}
		for j, smp := range series.Samples {
			prof, gz, err := decodePprof(smp.RawProfile)
			if err != nil {
				return nil, connect.NewError(connect.CodeInvalidArgument, s.p.addError(fmt.Errorf("series %d sample %d: %w", i, j, err)))
			}
			one := &pushv1.PushRequest{Series: []*pushv1.RawProfileSeries{{Labels: series.Labels, Samples: []*pushv1.RawSample{smp}}}}
			stored, err := CheckPush(one)
			if err != nil {
				return nil, s.p.addError(err)
			}
			got = append(got, ReceivedProfile{Labels: labels, ID: smp.ID, Gzipped: gz, Profile: prof,
				ServerLabels: stored[0].Labels, ProfileTypes: profileTypeIDs(stored)})
		}
	}
	s.p.mu.Lock()
	s.p.profiles = append(s.p.profiles, got...)
	s.p.mu.Unlock()
	return connect.NewResponse(&pushv1.PushResponse{}), nil
}

// ingest handles /ingest as the server does (CheckIngest): a request the
// server refuses is answered with its status and message and recorded as
// an error; an accepted one is recorded with the labels parsed from its
// name (service_name for the application) and what the server stores.
func (p *Pyroscope) ingest(w http.ResponseWriter, r *http.Request) {
	q := map[string]string{}
	for k := range r.URL.Query() {
		q[k] = r.URL.Query().Get(k)
	}
	v := CheckIngest(r)
	if err := v.Err(); err != nil {
		status := v.Status
		if status == http.StatusOK || status == 0 {
			// Accepted and lost, or not mirrored: the test must see it.
			status = http.StatusTeapot
		}
		http.Error(w, p.addError(fmt.Errorf("ingest %s: %w", r.URL.RawQuery, err)).Error(), status)
		return
	}
	labels := map[string]string{}
	for k, v := range v.Series[0].Labels {
		switch k {
		case "__name__", "__delta__", "pyroscope_spy":
		default:
			labels[k] = v
		}
	}
	p.setSeries(1)
	p.mu.Lock()
	p.profiles = append(p.profiles, ReceivedProfile{Labels: labels, Profile: v.Series[0].Profile, Legacy: true, Query: q,
		ServerLabels: v.Series[0].Labels, ProfileTypes: v.ProfileTypeIDs(), SampleTypeConfig: v.SampleTypeConfig})
	p.mu.Unlock()
	w.WriteHeader(http.StatusOK)
}

// decodePprof gunzips (when gzipped) and parses a pprof payload, checking
// the profile's internal consistency.
func decodePprof(raw []byte) (*profile.Profile, bool, error) {
	gz := len(raw) >= 2 && raw[0] == 0x1f && raw[1] == 0x8b
	data := raw
	if gz {
		zr, err := gzip.NewReader(bytes.NewReader(raw))
		if err != nil {
			return nil, gz, fmt.Errorf("gunzip: %w", err)
		}
		data, err = io.ReadAll(io.LimitReader(zr, 4*maxPyroscopeBody))
		if err != nil {
			return nil, gz, fmt.Errorf("gunzip: %w", err)
		}
	}
	prof, err := profile.ParseData(data)
	if err != nil {
		return nil, gz, fmt.Errorf("parse pprof: %w", err)
	}
	if err := prof.CheckValid(); err != nil {
		return nil, gz, fmt.Errorf("invalid pprof: %w", err)
	}
	if len(prof.SampleType) == 0 {
		return nil, gz, errors.New("pprof without sample types")
	}
	return prof, gz, nil
}
