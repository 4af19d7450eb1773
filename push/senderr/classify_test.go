package senderr

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/goroscope/goroscope/pkg/httpconf"
)

func TestClassify(t *testing.T) {
	longMsg := strings.Repeat("é", 600) // 1200 bytes, two-byte runes
	tests := []struct {
		name          string
		handler       http.HandlerFunc
		ctxTimeout    time.Duration
		wantNil       bool
		wantStatus    int
		wantRetryable bool
		wantAfterMin  time.Duration
		wantAfterMax  time.Duration
		wantMsg       string
		wantIs        error
	}{
		{name: "204", handler: status(204, nil, ""), wantNil: true},
		{name: "200 with body", handler: status(200, nil, "ok"), wantNil: true},
		{name: "500", handler: status(500, nil, "boom"), wantStatus: 500, wantRetryable: true, wantMsg: "Internal Server Error: boom"},
		{name: "503 Retry-After seconds", handler: status(503, map[string]string{"Retry-After": "7"}, ""),
			wantStatus: 503, wantRetryable: true, wantAfterMin: 7 * time.Second, wantAfterMax: 7 * time.Second},
		{name: "429 Retry-After seconds", handler: status(429, map[string]string{"Retry-After": "120"}, "slow down"),
			wantStatus: 429, wantRetryable: true, wantAfterMin: 2 * time.Minute, wantAfterMax: 2 * time.Minute, wantMsg: "slow down"},
		{name: "429 Retry-After date", handler: func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Retry-After", time.Now().Add(90*time.Second).UTC().Format(http.TimeFormat))
			w.WriteHeader(429)
		}, wantStatus: 429, wantRetryable: true, wantAfterMin: 88 * time.Second, wantAfterMax: 90 * time.Second},
		{name: "429 Retry-After garbage", handler: status(429, map[string]string{"Retry-After": "soon"}, ""),
			wantStatus: 429, wantRetryable: true},
		{name: "400 with message", handler: status(400, nil, "out of order sample\n"), wantStatus: 400, wantMsg: "Bad Request: out of order sample"},
		{name: "400 long message truncated", handler: status(400, nil, longMsg), wantStatus: 400, wantMsg: strings.Repeat("é", 256) + "…(truncated)"},
		{name: "408 is retryable", handler: status(408, map[string]string{"Retry-After": "3"}, "too slow"),
			wantStatus: 408, wantRetryable: true, wantAfterMin: 3 * time.Second, wantAfterMax: 3 * time.Second, wantMsg: "too slow"},
		{name: "401", handler: status(401, nil, "no"), wantStatus: 401, wantMsg: "Unauthorized: no"},
		{name: "413", handler: status(413, nil, ""), wantStatus: 413, wantMsg: "Request Entity Too Large"},
		{name: "connection reset", handler: func(w http.ResponseWriter, r *http.Request) {
			conn, _, err := w.(http.Hijacker).Hijack()
			if err != nil {
				return
			}
			_ = conn.(*net.TCPConn).SetLinger(0) // close with RST (else the test fails on its message)
			conn.Close()
		}, wantRetryable: true, wantMsg: "connection reset by peer"},
		{name: "hang until ctx timeout", handler: func(w http.ResponseWriter, r *http.Request) {
			_, _ = io.Copy(io.Discard, r.Body) // lets the server notice the client going away
			select {
			case <-r.Context().Done():
			case <-time.After(10 * time.Second):
			}
		}, ctxTimeout: 200 * time.Millisecond, wantRetryable: true, wantIs: context.DeadlineExceeded},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := httptest.NewServer(tt.handler)
			defer srv.Close()
			c := &http.Client{Timeout: 5 * time.Second}
			ctx := context.Background()
			if tt.ctxTimeout > 0 {
				var cancel context.CancelFunc
				ctx, cancel = context.WithTimeout(ctx, tt.ctxTimeout)
				defer cancel()
			}
			req, _ := http.NewRequestWithContext(ctx, http.MethodPost, srv.URL, strings.NewReader("payload"))
			start := time.Now()
			resp, err := c.Do(req)
			got := Classify(resp, err)
			if tt.ctxTimeout > 0 && time.Since(start) > tt.ctxTimeout+2*time.Second {
				t.Errorf("took %s, want about %s", time.Since(start), tt.ctxTimeout)
			}
			if tt.wantNil {
				if got != nil {
					t.Fatalf("Classify = %v, want nil", got)
				}
				return
			}
			var se *SendError
			if !errors.As(got, &se) {
				t.Fatalf("Classify = %v (%T), want *SendError", got, got)
			}
			if se.Status != tt.wantStatus || se.Retryable != tt.wantRetryable {
				t.Errorf("Status, Retryable = %d, %v; want %d, %v (%v)", se.Status, se.Retryable, tt.wantStatus, tt.wantRetryable, se)
			}
			if se.RetryAfter < tt.wantAfterMin || se.RetryAfter > tt.wantAfterMax {
				t.Errorf("RetryAfter = %s, want in [%s, %s]", se.RetryAfter, tt.wantAfterMin, tt.wantAfterMax)
			}
			if !strings.Contains(se.Error(), tt.wantMsg) {
				t.Errorf("Error() = %q, want it to contain %q", se.Error(), tt.wantMsg)
			}
			if tt.wantIs != nil && !errors.Is(got, tt.wantIs) {
				t.Errorf("errors.Is(%v, %v) = false", got, tt.wantIs)
			}
		})
	}
}

func status(code int, headers map[string]string, body string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		for k, v := range headers {
			w.Header().Set(k, v)
		}
		w.WriteHeader(code)
		_, _ = w.Write([]byte(body))
	}
}

func TestParseRetryAfter(t *testing.T) {
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		in   string
		want time.Duration
	}{
		{"", 0},
		{"0", 0},
		{"-5", 0},
		{"30", 30 * time.Second},
		{" 30 ", 30 * time.Second},
		{"999999999", 24 * time.Hour},
		{"Sun, 01 Mar 2026 12:01:00 GMT", time.Minute},
		{"Sunday, 01-Mar-26 12:00:10 GMT", 10 * time.Second}, // RFC 850
		{"Sun Mar  1 12:00:05 2026", 5 * time.Second},        // ANSI C
		{"Sun, 01 Mar 2026 11:59:00 GMT", 0},                 // past
		{"1.5", 0},
		{"tomorrow", 0},
	}
	for _, tt := range tests {
		if got := ParseRetryAfter(tt.in, now); got != tt.want {
			t.Errorf("ParseRetryAfter(%q) = %s, want %s", tt.in, got, tt.want)
		}
	}
}

func TestSendErrorText(t *testing.T) {
	base := errors.New("server said Too Many Requests")
	e := &SendError{Status: 429, Retryable: true, RetryAfter: 3 * time.Second, Err: base}
	if got, want := e.Error(), "retryable failure: HTTP 429 (retry after 3s): server said Too Many Requests"; got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
	if !errors.Is(e, base) {
		t.Error("Unwrap does not reach the cause")
	}
	if got, want := (&SendError{Err: base}).Error(), "permanent failure: server said Too Many Requests"; got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
}

// A redirect the client refused is permanent: the same URL redirects again.
func TestClassifyRefusedRedirect(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "http://elsewhere.invalid/x", http.StatusTemporaryRedirect)
	}))
	defer srv.Close()
	u, err := httpconf.ParseURL(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	c, err := httpconf.NewClient(httpconf.HTTPClientConfig{}, httpconf.ClientOptions{Origin: u})
	if err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequestWithContext(context.Background(), http.MethodPost, srv.URL, strings.NewReader("payload"))
	resp, err := c.Do(req)
	var se *SendError
	if got := Classify(resp, err); !errors.As(got, &se) || se.Retryable || se.Status != http.StatusTemporaryRedirect ||
		!strings.Contains(se.Error(), "configure the final URL") {
		t.Errorf("Classify = %v, want a permanent HTTP 307 failure naming the fix", got)
	}
}
