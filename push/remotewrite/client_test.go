package remotewrite

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/golang/snappy"
	"github.com/prometheus/prometheus/prompb"

	"github.com/goroscope/goroscope/pkg/httpconf"
	"github.com/goroscope/goroscope/push/endpoint"
	"github.com/goroscope/goroscope/push/senderr"
)

// received is one request as a spec-following receiver decodes it.
type received struct {
	header http.Header
	req    prompb.WriteRequest
	err    error
}

// specReceiver decodes every request strictly (snappy block format, then
// WriteRequest) and answers with status.
func specReceiver(t *testing.T, status int, msg string) (*httptest.Server, <-chan received) {
	ch := make(chan received, 8)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec := received{header: r.Header.Clone()}
		body, err := io.ReadAll(r.Body)
		if err == nil {
			var raw []byte
			if raw, err = snappy.Decode(nil, body); err == nil {
				err = rec.req.Unmarshal(raw)
			}
		}
		rec.err = err
		ch <- rec
		w.WriteHeader(status)
		_, _ = io.WriteString(w, msg)
	}))
	t.Cleanup(srv.Close)
	return srv, ch
}

func mustEncode(t testing.TB, labels []prompb.Label, samples []prompb.Sample) []byte {
	t.Helper()
	b, err := EncodeSeries(labels, samples)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestSendHeadersAndBody(t *testing.T) {
	srv, got := specReceiver(t, http.StatusNoContent, "")
	c, err := New(Options{
		HTTP:           endpoint.Config{URL: srv.URL + "/api/v1/write", Tenant: "tenant-1", Version: "0.9.0", HTTPClientConfig: httpconf.HTTPClientConfig{BearerToken: "tok"}},
		ExternalLabels: map[string]string{"cluster": "c1", "instance": "host-ext"},
	})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(c.Name(), "remote_write:127.0.0.1:") {
		t.Errorf("Name() = %q", c.Name())
	}
	items := [][]byte{
		mustEncode(t, l("__name__", "goroscope_goroutines", "state", "running"), s(2000, 20, 3000, 30)),
		mustEncode(t, l("__name__", "goroscope_goroutines", "state", "waiting", "instance", "own"), s(1000, 7)),
		// Same series as the first item, earlier samples and one repeat.
		mustEncode(t, l("__name__", "goroscope_goroutines", "state", "running"), s(1000, 10, 3000, 30)),
	}
	if err := c.Send(context.Background(), items); err != nil {
		t.Fatal(err)
	}
	rec := <-got
	if rec.err != nil {
		t.Fatalf("receiver could not decode the request: %v", rec.err)
	}
	for k, want := range map[string]string{
		"Content-Encoding":                  "snappy",
		"Content-Type":                      "application/x-protobuf",
		"X-Prometheus-Remote-Write-Version": "0.1.0",
		"User-Agent":                        "goroscope/0.9.0",
		"X-Scope-Orgid":                     "tenant-1",
		"Authorization":                     "Bearer tok",
	} {
		if g := rec.header.Get(k); g != want {
			t.Errorf("header %s = %q, want %q", k, g, want)
		}
	}
	want := []prompb.TimeSeries{
		{Labels: l("__name__", "goroscope_goroutines", "cluster", "c1", "instance", "host-ext", "state", "running"), Samples: s(1000, 10, 2000, 20, 3000, 30)},
		// The series' own instance label wins over the external one.
		{Labels: l("__name__", "goroscope_goroutines", "cluster", "c1", "instance", "own", "state", "waiting"), Samples: s(1000, 7)},
	}
	if len(rec.req.Timeseries) != len(want) {
		t.Fatalf("got %d series, want %d: %v", len(rec.req.Timeseries), len(want), rec.req.Timeseries)
	}
	for i := range want {
		g := rec.req.Timeseries[i]
		if !reflect.DeepEqual(g.Labels, want[i].Labels) || !reflect.DeepEqual(g.Samples, want[i].Samples) {
			t.Errorf("series %d = %v %v, want %v %v", i, g.Labels, g.Samples, want[i].Labels, want[i].Samples)
		}
	}
	if len(rec.req.Metadata) != 0 {
		t.Errorf("request carries %d metadata entries; 1.0 senders send none", len(rec.req.Metadata))
	}
}

func TestSendDropsInvalidItems(t *testing.T) {
	srv, got := specReceiver(t, http.StatusNoContent, "")
	c, err := New(Options{HTTP: endpoint.Config{URL: srv.URL}})
	if err != nil {
		t.Fatal(err)
	}
	bad := prompb.TimeSeries{Labels: l("__name__", "bad-name"), Samples: s(1, 1)}
	badBytes, _ := bad.Marshal()
	items := [][]byte{[]byte{0xff, 0x01}, mustEncode(t, l("__name__", "ok"), s(1, 1)), badBytes}
	err = c.Send(context.Background(), items)
	var se *senderr.SendError
	if !errors.As(err, &se) || se.Retryable || se.Status != 0 || !errors.Is(err, ErrInvalid) {
		t.Fatalf("Send = %v, want a permanent SendError wrapping ErrInvalid", err)
	}
	if se.Done != 3 || se.Invalid != 2 {
		t.Errorf("Done, Invalid = %d, %d; want 3, 2 (the batch is done, two items dropped)", se.Done, se.Invalid)
	}
	if !strings.Contains(err.Error(), "dropped 2 of 3 items") || !strings.Contains(err.Error(), "item 0") {
		t.Errorf("error %q does not count the dropped items", err)
	}
	rec := <-got
	if len(rec.req.Timeseries) != 1 || rec.req.Timeseries[0].Labels[0].Value != "ok" {
		t.Errorf("receiver got %v, want the one valid series", rec.req.Timeseries)
	}

	// A batch with nothing valid sends nothing.
	if err := c.Send(context.Background(), [][]byte{badBytes}); !errors.As(err, &se) || !errors.Is(err, ErrInvalid) || se.Done != 1 || se.Invalid != 1 {
		t.Errorf("all-invalid batch: %v, want Done 1 Invalid 1 wrapping ErrInvalid", err)
	}
	select {
	case r := <-got:
		t.Errorf("all-invalid batch reached the receiver: %v", r.req)
	case <-time.After(50 * time.Millisecond):
	}
}

func TestSendErrors(t *testing.T) {
	tests := []struct {
		status    int
		msg       string
		retryable bool
	}{
		{400, "out of bounds", false},
		{429, "rate limited", true},
		{500, "storage down", true},
	}
	for _, tt := range tests {
		srv, got := specReceiver(t, tt.status, tt.msg)
		c, err := New(Options{Name: "prom", HTTP: endpoint.Config{URL: srv.URL}})
		if err != nil {
			t.Fatal(err)
		}
		err = c.Send(context.Background(), [][]byte{mustEncode(t, l("__name__", "m"), s(1, 1))})
		<-got
		var se *senderr.SendError
		if !errors.As(err, &se) || se.Status != tt.status || se.Retryable != tt.retryable {
			t.Errorf("HTTP %d: Send = %v, want status %d retryable %v", tt.status, err, tt.status, tt.retryable)
			continue
		}
		if !strings.Contains(err.Error(), "prom: server said") || !strings.Contains(err.Error(), tt.msg) {
			t.Errorf("HTTP %d: error %q lacks the endpoint name or the server's message", tt.status, err)
		}
	}
}

func TestNewRejectsBadExternalLabels(t *testing.T) {
	for ext, want := range map[string]string{
		"__name__": "cannot be an external label",
		"a-b":      "must match",
		"empty":    "empty value",
	} {
		v := "x"
		if ext == "empty" {
			v = ""
		}
		_, err := New(Options{HTTP: endpoint.Config{URL: "http://127.0.0.1:1"}, ExternalLabels: map[string]string{ext: v}})
		if err == nil || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), "external_labels") {
			t.Errorf("external label %q: %v, want %q", ext, err, want)
		}
	}
}
