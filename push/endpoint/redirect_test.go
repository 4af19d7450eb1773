package endpoint_test

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"runtime/pprof"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/pprof/profile"

	"github.com/goroscope/goroscope/pkg/httpconf"
	"github.com/goroscope/goroscope/push/endpoint"
	"github.com/goroscope/goroscope/push/pyroscope"
	"github.com/goroscope/goroscope/push/remotewrite"
	"github.com/goroscope/goroscope/push/senderr"
)

// sender is what the wire clients have in common.
type sender interface {
	Send(ctx context.Context, items [][]byte) error
}

// TestRedirectRefused checks that an endpoint answering a redirect to
// another origin gets neither the data nor the credentials there: the send
// fails permanently, naming the Location and the fix.
func TestRedirectRefused(t *testing.T) {
	var heap bytes.Buffer
	if err := pprof.Lookup("heap").WriteTo(&heap, 0); err != nil {
		t.Fatal(err)
	}
	p, err := profile.Parse(&heap)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := pyroscope.EncodeProfile(p)
	if err != nil {
		t.Fatal(err)
	}
	profItem, err := pyroscope.EncodeSeries(map[string]string{"service_name": "svc", "__name__": "memory"}, raw)
	if err != nil {
		t.Fatal(err)
	}
	sampleItem, _, err := remotewrite.SampleItem("goroscope_goroutines", map[string]string{"service_name": "svc"}, 1, time.Now())
	if err != nil {
		t.Fatal(err)
	}

	var otherHits atomic.Int64
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		otherHits.Add(1)
		w.WriteHeader(http.StatusOK)
	}))
	t.Cleanup(other.Close)

	clients := []struct {
		name string
		item []byte
		new  func(endpoint.Config) (sender, error)
	}{
		{"remote-write", sampleItem, func(c endpoint.Config) (sender, error) { return remotewrite.New(remotewrite.Options{HTTP: c}) }},
		{"pyroscope push", profItem, func(c endpoint.Config) (sender, error) { return pyroscope.New(pyroscope.Options{HTTP: c}) }},
		{"pyroscope legacy", profItem, func(c endpoint.Config) (sender, error) {
			return pyroscope.New(pyroscope.Options{HTTP: c, Legacy: true})
		}},
	}
	auths := []struct {
		name string
		cfg  httpconf.HTTPClientConfig
	}{
		{"basic", httpconf.HTTPClientConfig{BasicAuth: &httpconf.BasicAuth{Username: "agent", Password: "s3cret"}}},
		{"bearer", httpconf.HTTPClientConfig{BearerToken: "tok"}},
	}
	for _, cl := range clients {
		for _, a := range auths {
			for _, status := range []int{http.StatusFound, http.StatusTemporaryRedirect, http.StatusPermanentRedirect} {
				t.Run(cl.name+"/"+a.name+"/"+http.StatusText(status), func(t *testing.T) {
					otherHits.Store(0)
					srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
						http.Redirect(w, r, other.URL+r.URL.RequestURI(), status)
					}))
					t.Cleanup(srv.Close)
					cfg := endpoint.Config{URL: srv.URL, Tenant: "team-a", HTTPClientConfig: a.cfg}
					cfg.Headers = map[string]string{"X-Extra": "custom"}
					c, err := cl.new(cfg)
					if err != nil {
						t.Fatal(err)
					}
					ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
					defer cancel()
					err = c.Send(ctx, [][]byte{cl.item})
					if n := otherHits.Load(); n != 0 {
						t.Errorf("the other origin got %d requests, want none", n)
					}
					var se *senderr.SendError
					if !errors.As(err, &se) {
						t.Fatalf("Send = %v (%T), want a *senderr.SendError", err, err)
					}
					if se.Retryable || se.Status != status {
						t.Errorf("Retryable, Status = %v, %d; want false, %d (%v)", se.Retryable, se.Status, status, se)
					}
					for _, want := range []string{"redirecting to " + other.URL, "a POST is never redirected", "configure the final URL"} {
						if !strings.Contains(err.Error(), want) {
							t.Errorf("Send = %v, want it to contain %q", err, want)
						}
					}
				})
			}
		}
	}
}
