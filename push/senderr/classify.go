package senderr

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/goroscope/goroscope/pkg/httpconf"
)

// MaxMessageBytes bounds the part of an error response body kept as the
// server's message.
const MaxMessageBytes = 512

// maxDrainBytes bounds how much of a response body is read so the
// connection can be reused.
const maxDrainBytes = 64 << 10

// Classify turns a request's outcome into nil (2xx) or a *SendError, and
// always drains and closes resp.Body. Network errors, timeouts and
// cancellations, 5xx, 429 and 408 are retryable (the data was not accepted;
// whether to try again is the caller's call, e.g. not after its own context
// ended); they carry the Retry-After the server sent (seconds or an HTTP
// date). Other statuses (4xx, unfollowed 3xx) are permanent and carry the
// server's message, truncated to MaxMessageBytes. So is a redirect the
// client refused (*httpconf.RedirectError): the same URL will redirect
// again, and the fix is configuring the final URL.
func Classify(resp *http.Response, err error) error {
	return classifyAt(resp, err, time.Now())
}

func classifyAt(resp *http.Response, err error, now time.Time) error {
	if err != nil {
		if resp != nil && resp.Body != nil {
			resp.Body.Close()
		}
		if re := (*httpconf.RedirectError)(nil); errors.As(err, &re) {
			return &SendError{Status: re.Status, Err: err}
		}
		return &SendError{Retryable: true, Err: err}
	}
	if resp == nil {
		return &SendError{Err: errors.New("no response and no error")}
	}
	defer resp.Body.Close()
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxDrainBytes))
		return nil
	}
	msg := readMessage(resp.Body)
	return StatusError(resp.StatusCode, resp.Header, msg, now)
}

// StatusError builds the *SendError for a non-2xx status with the server's
// message and response headers (for Retry-After), as Classify does. Wire
// clients that see the status through another library use it directly.
func StatusError(status int, h http.Header, msg string, now time.Time) *SendError {
	e := &SendError{Status: status}
	text := http.StatusText(status)
	if text == "" {
		text = "status " + strconv.Itoa(status)
	}
	if msg = truncate(strings.TrimSpace(msg), MaxMessageBytes); msg != "" {
		e.Err = fmt.Errorf("server said %s: %s", text, msg)
	} else {
		e.Err = fmt.Errorf("server said %s", text)
	}
	switch {
	case status == http.StatusTooManyRequests || status == http.StatusRequestTimeout || status >= 500:
		e.Retryable = true
		e.RetryAfter = ParseRetryAfter(h.Get("Retry-After"), now)
	}
	return e
}

// ParseRetryAfter reads a Retry-After value: delay seconds or an HTTP date
// (relative to now). It returns 0 for an empty, malformed or past value.
func ParseRetryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	if secs, err := strconv.ParseInt(v, 10, 64); err == nil {
		if secs <= 0 {
			return 0
		}
		const maxSecs = int64(24 * time.Hour / time.Second)
		return time.Duration(min(secs, maxSecs)) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil {
		if d := t.Sub(now); d > 0 {
			return min(d, 24*time.Hour)
		}
	}
	return 0
}

// readMessage reads up to MaxMessageBytes+1 of body and drains the rest.
func readMessage(body io.Reader) string {
	b, _ := io.ReadAll(io.LimitReader(body, MaxMessageBytes+1))
	_, _ = io.Copy(io.Discard, io.LimitReader(body, maxDrainBytes))
	return string(b)
}

// truncate cuts s to at most n bytes on a rune boundary, marking the cut.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	cut := n
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "…(truncated)"
}
