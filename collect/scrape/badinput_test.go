package scrape

import (
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/google/pprof/profile"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/goroscope/goroscope/test/targettest"
)

// upstreamBody fetches the real answer of the target for r's path.
func upstreamBody(t *testing.T, upstream string, r *http.Request) []byte {
	resp, err := http.Get(upstream + r.URL.RequestURI())
	if err != nil {
		t.Errorf("upstream %s: %v", r.URL, err)
		return nil
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil || len(b) < 100 {
		t.Errorf("upstream %s: %d bytes, %v", r.URL, len(b), err)
	}
	return b
}

// hang waits until the client gives up (or 30s).
func hang(r *http.Request) {
	select {
	case <-r.Context().Done():
	case <-time.After(30 * time.Second):
	}
}

func gzipped(b []byte) []byte {
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	if _, err := zw.Write(b); err != nil {
		panic(err) // a bytes.Buffer does not fail
	}
	if err := zw.Close(); err != nil {
		panic(err)
	}
	return buf.Bytes()
}

const loginPage = "<!DOCTYPE html>\n<html><head><title>Sign in</title></head><body><form>...</form></body></html>"

// TestBadInput serves one misbehaving endpoint per case in front of a real
// pprofload target (everything else is proxied to it) and checks that the
// scraper reports a clear error for that profile only, keeps collecting the
// target's other profiles and a second, healthy target, and never waits
// longer than its timeout.
func TestBadInput(t *testing.T) {
	t.Parallel() // its cases wait on timeouts, as TestRun does on intervals
	real := startLoad(t, targettest.BuildOpts{}, "-spin", "0", "-mutex-rate", "20", "-block-rate", "20")
	upstream := "http://" + real.PprofAddr
	const timeout = time.Second
	bomb := gzipBomb(t, 256<<20) // 4x the default max_profile_bytes

	tests := []struct {
		name   string
		kind   Kind
		serve  func(t *testing.T, w http.ResponseWriter, r *http.Request)
		reason string
		msg    string
	}{
		{"html login page", KindHeap, func(t *testing.T, w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/html; charset=utf-8")
			io.WriteString(w, loginPage)
		}, ReasonNotPprof, `not a pprof profile (Content-Type "text/html; charset=utf-8"), it starts with "<!DOCTYPE html>\n<html><head><title>Sign in`},
		{"html labelled octet-stream", KindMutex, func(t *testing.T, w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/octet-stream")
			io.WriteString(w, "\n  "+loginPage)
		}, ReasonNotPprof, "not a pprof profile"},
		{"json error", KindBlock, func(t *testing.T, w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			io.WriteString(w, `{"error":"profiling disabled"}`)
		}, ReasonNotPprof, `it starts with "{\"error\":\"profiling disabled\"}"`},
		{"empty body", KindHeap, func(t *testing.T, w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/octet-stream")
		}, ReasonNotPprof, "empty body; not a pprof profile"},
		{"gzip bomb", KindMutex, func(t *testing.T, w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/octet-stream")
			w.Write(bomb)
		}, ReasonTooLarge, fmt.Sprintf("inflates to more than the limit of %d bytes (64 MiB), a gzip bomb or an oversized profile; raise max_profile_bytes", DefaultMaxProfileBytes)},
		{"truncated gzip", KindHeap, func(t *testing.T, w http.ResponseWriter, r *http.Request) {
			b := upstreamBody(t, upstream, r)
			w.Write(b[:len(b)/2])
		}, ReasonCorrupt, "gzip stream is truncated: it ends after"},
		{"corrupt gzip", KindMutex, func(t *testing.T, w http.ResponseWriter, r *http.Request) {
			b := upstreamBody(t, upstream, r)
			for i := len(b) / 3; i < len(b)/3+16; i++ {
				b[i] ^= 0x5a
			}
			w.Write(b)
		}, ReasonCorrupt, "gzip stream is corrupt"},
		{"gzip of garbage", KindBlock, func(t *testing.T, w http.ResponseWriter, r *http.Request) {
			w.Write(gzipped(bytes.Repeat([]byte{0xff, 0x07, 0x13}, 1000)))
		}, ReasonParse, "not a valid pprof profile"},
		{"profile of another kind", KindHeap, func(t *testing.T, w http.ResponseWriter, r *http.Request) {
			r2 := r.Clone(r.Context())
			r2.URL.Path = "/debug/pprof/goroutine"
			w.Write(upstreamBody(t, upstream, r2))
		}, ReasonUnexpected, "profile has sample types [goroutine/count], not alloc_objects/count"},
		{"server error", KindHeap, func(t *testing.T, w http.ResponseWriter, r *http.Request) {
			http.Error(w, "Could not enable CPU profiling: cpu profiling already in use", http.StatusInternalServerError)
		}, ReasonStatus, `server answered 500 Internal Server Error: "Could not enable CPU profiling`},
		{"not found", KindMutex, func(t *testing.T, w http.ResponseWriter, r *http.Request) {
			http.NotFound(w, r)
		}, ReasonNotFound, "server answered 404 Not Found"},
		{"hang before answering", KindGoroutine, func(t *testing.T, w http.ResponseWriter, r *http.Request) {
			hang(r)
		}, ReasonTimeout, "no answer in time"},
		{"hang mid-body", KindHeap, func(t *testing.T, w http.ResponseWriter, r *http.Request) {
			b := upstreamBody(t, upstream, r)
			w.Header().Set("Content-Length", fmt.Sprint(len(b)))
			w.Write(b[:len(b)/2])
			w.(http.Flusher).Flush()
			hang(r)
		}, ReasonTimeout, "no complete answer in time: the body stopped after"},
		{"connection cut mid-body", KindBlock, func(t *testing.T, w http.ResponseWriter, r *http.Request) {
			b := upstreamBody(t, upstream, r)
			conn, buf, err := w.(http.Hijacker).Hijack()
			if err != nil {
				t.Error(err)
				return
			}
			fmt.Fprintf(buf, "HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nContent-Length: %d\r\n\r\n", len(b))
			buf.Write(b[:len(b)/2])
			if err := buf.Flush(); err != nil {
				t.Error(err)
			}
			conn.Close()
		}, ReasonCorrupt, "body cut off after"},
		{"html instead of goroutine dump", KindGoroutine, func(t *testing.T, w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/html")
			io.WriteString(w, loginPage)
		}, ReasonNotPprof, "not a goroutine dump"},
		{"goroutine dump cut mid-line", KindGoroutine, func(t *testing.T, w http.ResponseWriter, r *http.Request) {
			b := upstreamBody(t, upstream, r)
			// Cut inside the header line of the last goroutine.
			cut := bytes.LastIndex(b, []byte("\ngoroutine ")) + len("\ngorout")
			w.Write(b[:cut])
		}, ReasonPartialDump, "kept the"},
		{"html instead of cpu profile", KindCPU, func(t *testing.T, w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/html")
			io.WriteString(w, loginPage)
		}, ReasonNotPprof, "not a pprof profile"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			up, _ := url.Parse(upstream)
			proxy := httputil.NewSingleHostReverseProxy(up)
			mux := http.NewServeMux()
			mux.HandleFunc(tt.kind.path(), func(w http.ResponseWriter, r *http.Request) { tt.serve(t, w, r) })
			mux.Handle("/", proxy)
			srv := httptest.NewUnstartedServer(mux)
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			srv.Listener = ln
			srv.Start()
			defer srv.Close()

			profiles := []string{"heap", "mutex", "block", "goroutine"}
			if tt.kind == KindCPU {
				profiles = append(profiles, "cpu")
			}
			s := newScraper(t, Config{
				Interval:    2 * time.Second,
				Timeout:     timeout,
				CPUDuration: time.Second,
				Profiles:    profiles,
				Targets: []TargetConfig{
					{URL: srv.URL, Name: "bad"},
					{URL: upstream, Name: "good"},
				},
			})
			var last []Result
			for cycle := 1; cycle <= 2; cycle++ {
				ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
				start := time.Now()
				last = s.Scrape(ctx)
				took := time.Since(start)
				cancel()
				// One failing request costs at most the timeout (CPU: its
				// duration on top); the good ones take milliseconds.
				if limit := 2*timeout + time.Second; took > limit {
					t.Errorf("cycle %d took %s, more than %s", cycle, took, limit)
				}
				bad, good := last[0], last[1]
				if len(good.Errors) > 0 {
					t.Errorf("cycle %d: healthy target has errors %v", cycle, good.Errors)
				}
				if len(bad.Errors) != 1 {
					t.Fatalf("cycle %d: %d errors, want exactly one (for %s): %v", cycle, len(bad.Errors), tt.kind, bad.Errors)
				}
				e := bad.Errors[0]
				if e.Kind != tt.kind || e.Reason != tt.reason || e.Target != "bad" || !strings.Contains(e.Error(), tt.msg) ||
					!strings.Contains(e.Error(), srv.URL+tt.kind.path()) {
					t.Errorf("cycle %d: error %q: kind %s reason %s; want kind %s reason %s, the URL and %q", cycle, e, e.Kind, e.Reason, tt.kind, tt.reason, tt.msg)
				}
				var re *reasonError
				if !errors.As(e, &re) {
					t.Errorf("error does not unwrap to its cause")
				}
				if cycle == 1 {
					t.Logf("error: %v", e)
				}
			}
			// Everything else of the bad target was collected: the second
			// cycle has the deltas of the healthy kinds and the snapshot.
			bad, good := last[0], last[1]
			partial := tt.reason == ReasonPartialDump // the snapshot is kept despite the error
			for _, k := range []Kind{KindHeap, KindMutex, KindBlock} {
				if k != tt.kind && bad.profileOf(k) == nil {
					t.Errorf("bad target: %s delta missing, have %v", k, bad.kinds())
				}
				if good.profileOf(k) == nil {
					t.Errorf("good target: %s delta missing, have %v", k, good.kinds())
				}
			}
			if wantSnap := tt.kind != KindGoroutine || partial; (bad.Snapshot != nil) != wantSnap {
				t.Errorf("bad target snapshot present %v, want %v", bad.Snapshot != nil, wantSnap)
			}
			if partial && bad.Snapshot != nil && (len(bad.Snapshot.Goroutines) < 2 || len(bad.Snapshot.Goroutines) >= len(good.Snapshot.Goroutines)+5) {
				t.Errorf("partial snapshot has %d goroutines (full: %d)", len(bad.Snapshot.Goroutines), len(good.Snapshot.Goroutines))
			}
			if good.Snapshot == nil {
				t.Errorf("good target: no snapshot")
			}
			if got := testutil.ToFloat64(s.m.errors.WithLabelValues("bad", string(tt.kind), tt.reason)); got != 2 {
				t.Errorf("errors_total{bad,%s,%s} = %v, want 2", tt.kind, tt.reason, got)
			}
		})
	}
}

func TestPreview(t *testing.T) {
	tests := []struct{ in, want string }{
		{"", "an empty body"},
		{"  hello\n", `"hello"`},
		{strings.Repeat("é", 100), `"` + strings.Repeat("é", 60) + `"…`},
	}
	for _, tt := range tests {
		if got := preview([]byte(tt.in)); got != tt.want {
			t.Errorf("preview(%q) = %s, want %s", tt.in, got, tt.want)
		}
	}
}

// FuzzDecodeProfile checks that no body makes the decoder panic or
// accept something that is not a valid profile.
func FuzzDecodeProfile(f *testing.F) {
	p := &profile.Profile{
		SampleType: []*profile.ValueType{{Type: "contentions", Unit: "count"}, {Type: "delay", Unit: "nanoseconds"}},
		Sample:     []*profile.Sample{{Value: []int64{1, 2}}},
	}
	var buf bytes.Buffer
	if err := p.Write(&buf); err != nil {
		f.Fatal(err)
	}
	f.Add(buf.Bytes(), "application/octet-stream")
	f.Add(buf.Bytes()[:buf.Len()/2], "")
	f.Add([]byte(loginPage), "text/html")
	f.Add([]byte{0x1f, 0x8b, 0, 0}, "")
	f.Fuzz(func(t *testing.T, body []byte, ct string) {
		p, err := decodeProfile(response{body: body, contentType: ct}, DefaultMaxProfileBytes)
		if err == nil {
			if p == nil {
				t.Fatal("nil profile without error")
			}
			if err := p.CheckValid(); err != nil {
				t.Fatalf("accepted an invalid profile: %v", err)
			}
			_ = checkTypes(KindMutex, p)
			aggregateSamples(p)
		}
	})
}
