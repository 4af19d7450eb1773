package scrape

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"runtime/pprof"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/goroscope/goroscope/pkg/httpconf"
)

// TestRedirect checks that a target cannot send the scraper, or its
// credentials, to another origin, and that a redirect within the target's
// origin is followed with the credentials.
func TestRedirect(t *testing.T) {
	var heap bytes.Buffer
	if err := pprof.Lookup("heap").WriteTo(&heap, 0); err != nil {
		t.Fatal(err)
	}
	var otherHits atomic.Int64
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		otherHits.Add(1)
		w.Write(heap.Bytes())
	}))
	t.Cleanup(other.Close)

	tests := []struct {
		name   string
		status int
		to     string // the redirect's Location: "other" or a path on the target
		reason string // empty: no error
	}{
		{"302 elsewhere", http.StatusFound, "other", ReasonRedirect},
		{"307 elsewhere", http.StatusTemporaryRedirect, "other", ReasonRedirect},
		{"308 elsewhere", http.StatusPermanentRedirect, "other", ReasonRedirect},
		{"same origin", http.StatusFound, "/moved", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			otherHits.Store(0)
			auth := make(chan string, 16)
			target := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if after, ok := strings.CutPrefix(r.URL.Path, "/moved"); ok && after == KindHeap.path() {
					auth <- r.Header.Get("Authorization")
					w.Write(heap.Bytes())
					return
				}
				loc := tt.to + r.URL.RequestURI()
				if tt.to == "other" {
					loc = other.URL + r.URL.RequestURI()
				}
				http.Redirect(w, r, loc, tt.status)
			}))
			t.Cleanup(target.Close)
			s, err := New(Config{
				Profiles: []string{"heap"},
				Targets: []TargetConfig{{URL: target.URL, Name: "t", ServiceName: "svc",
					HTTPClientConfig: httpconf.HTTPClientConfig{BearerToken: "tok", Headers: map[string]string{"X-Extra": "1"}}}},
			}, Options{})
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			res := s.Scrape(ctx)[0]
			if n := otherHits.Load(); n != 0 {
				t.Errorf("the other origin got %d requests, want none", n)
			}
			if tt.reason == "" {
				if len(res.Errors) != 0 {
					t.Fatalf("errors %v, want none", res.Errors)
				}
				if a := <-auth; a != "Bearer tok" {
					t.Errorf("after a same-origin redirect Authorization = %q, want %q", a, "Bearer tok")
				}
				return
			}
			if len(res.Errors) != 1 {
				t.Fatalf("%d errors %v, want one", len(res.Errors), res.Errors)
			}
			e := res.Errors[0]
			for _, want := range []string{"redirecting to " + other.URL + KindHeap.path(), "configure the final URL", target.URL + KindHeap.path()} {
				if e.Reason != tt.reason || !strings.Contains(e.Error(), want) {
					t.Errorf("error %q with reason %s; want reason %s and %q", e, e.Reason, tt.reason, want)
				}
			}
			if got := testutil.ToFloat64(s.m.errors.WithLabelValues("t", string(KindHeap), ReasonRedirect)); got != 1 {
				t.Errorf("errors_total{t,heap,redirect} = %v, want 1", got)
			}
		})
	}
}
