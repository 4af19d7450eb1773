package scrape

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"unicode/utf8"

	"github.com/google/pprof/profile"

	"github.com/goroscope/goroscope/pkg/httpconf"
)

// Limits on what one response may make the scraper hold.
const (
	// MaxBodyBytes bounds a response body as received. The runtime cuts
	// goroutine dumps at 64 MiB; a gzip-compressed profile is far smaller.
	MaxBodyBytes = 64<<20 + 64<<10
	// DefaultMaxProfileBytes bounds a decompressed profile (a gzip bomb
	// stops here) when max_profile_bytes is not set.
	DefaultMaxProfileBytes = 64 << 20
	// MaxProfileBytes is the largest max_profile_bytes allowed.
	MaxProfileBytes = 512 << 20
	// MinProfileBytes is the smallest max_profile_bytes allowed.
	MinProfileBytes = 64 << 10
	// inflateChunk is the most inflateBounded allocates at a time once
	// the gzip trailer's size hint is used up.
	inflateChunk = 4 << 20
)

// Reasons a collection fails, the "reason" label of
// goroscope_scrape_errors_total and Error.Reason.
const (
	ReasonTimeout     = "timeout"      // no complete answer within the timeout
	ReasonConnect     = "connect"      // connection refused, reset, DNS, TLS
	ReasonStatus      = "status"       // an HTTP status other than 200
	ReasonRedirect    = "redirect"     // a redirect off the target's origin, or too many
	ReasonNotFound    = "not_found"    // 404: the endpoint does not exist
	ReasonNotPprof    = "not_pprof"    // an HTML page, JSON, empty body, ...
	ReasonCorrupt     = "corrupt"      // truncated body, broken gzip stream
	ReasonTooLarge    = "too_large"    // above MaxBodyBytes, or inflating above max_profile_bytes
	ReasonParse       = "parse"        // not a valid pprof protobuf or dump
	ReasonUnexpected  = "unexpected"   // a valid profile of another kind
	ReasonPartialDump = "partial_dump" // a goroutine dump cut short; the part before is kept
)

// Error is a failed collection of one profile of one target.
type Error struct {
	// Target is the target's name, Kind the profile, URL the request.
	Target string
	Kind   Kind
	URL    string
	// Reason classifies the failure (the Reason* constants).
	Reason string
	Err    error
}

func (e *Error) Error() string {
	return fmt.Sprintf("scrape %s profile of %s (%s): %v", e.Kind, e.Target, e.URL, e.Err)
}

func (e *Error) Unwrap() error { return e.Err }

// response is a received body and what is known about it.
type response struct {
	body        []byte
	contentType string
}

// fetch GETs u and returns its body. wait is called once the response
// headers are in, before the body is read (the scraper takes its decode
// slot there, so a target that never answers holds none); it returns a
// release function or an error (the context ended).
func fetch(ctx context.Context, client *http.Client, u string, wait func(context.Context) (func(), error)) (response, func(), error) {
	none := func() {}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return response{}, none, classify(ReasonConnect, fmt.Errorf("build request: %w", err))
	}
	resp, err := client.Do(req)
	if err != nil {
		return response{}, none, classifyTransport(ctx, err)
	}
	defer resp.Body.Close()
	release, err := wait(ctx)
	if err != nil {
		return response{}, none, classifyTransport(ctx, err)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, MaxBodyBytes+1))
	if err != nil {
		release()
		if ctx.Err() != nil || isTimeout(err) {
			return response{}, none, classify(ReasonTimeout, fmt.Errorf("no complete answer in time: the body stopped after %d bytes: %w", len(body), err))
		}
		return response{}, none, classify(ReasonCorrupt, fmt.Errorf("body cut off after %d bytes (%v); the connection broke or the server stopped writing", len(body), err))
	}
	if len(body) > MaxBodyBytes {
		release()
		return response{}, none, classify(ReasonTooLarge, fmt.Errorf("body larger than %d bytes", MaxBodyBytes))
	}
	if resp.StatusCode != http.StatusOK {
		release()
		reason := ReasonStatus
		if resp.StatusCode == http.StatusNotFound {
			reason = ReasonNotFound
		}
		return response{}, none, classify(reason, fmt.Errorf("server answered %s: %s", resp.Status, preview(body)))
	}
	return response{body: body, contentType: resp.Header.Get("Content-Type")}, release, nil
}

// reasonError carries a Reason until the scraper wraps it in an *Error.
type reasonError struct {
	reason string
	err    error
}

func (e *reasonError) Error() string { return e.err.Error() }
func (e *reasonError) Unwrap() error { return e.err }

func classify(reason string, err error) error { return &reasonError{reason, err} }

// reasonOf returns the Reason of err (ReasonParse if it has none).
func reasonOf(err error) string {
	var re *reasonError
	if errors.As(err, &re) {
		return re.reason
	}
	return ReasonParse
}

func classifyTransport(ctx context.Context, err error) error {
	if re := (*httpconf.RedirectError)(nil); errors.As(err, &re) {
		return classify(ReasonRedirect, re)
	}
	if ctx.Err() != nil || isTimeout(err) {
		return classify(ReasonTimeout, fmt.Errorf("no answer in time: %w", err))
	}
	return classify(ReasonConnect, err)
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.Is(err, context.DeadlineExceeded) || errors.As(err, &ne) && ne.Timeout()
}

// decodeProfile turns a /debug/pprof/<profile> body into a profile: gzip
// is inflated, at most limit bytes of it (an uncompressed body is held to
// limit too), text and HTML are refused with a preview, and the result
// must be a valid pprof protobuf. The protobuf is parsed uncompressed:
// profile.Parse would inflate again, without a bound.
func decodeProfile(r response, limit int64) (*profile.Profile, error) {
	data := r.body
	if len(data) == 0 {
		return nil, classify(ReasonNotPprof, errors.New("empty body; not a pprof profile (is the endpoint enabled?)"))
	}
	if len(data) >= 2 && data[0] == 0x1f && data[1] == 0x8b {
		var err error
		if data, err = inflateBounded(data, limit); err != nil {
			return nil, err
		}
	} else if looksLikeText(r.contentType, data) {
		return nil, classify(ReasonNotPprof, fmt.Errorf("not a pprof profile (Content-Type %q), it starts with %s; check the URL and that the program serves net/http/pprof there", r.contentType, preview(data)))
	} else if int64(len(data)) > limit {
		return nil, classify(ReasonTooLarge, fmt.Errorf("uncompressed profile of %d bytes is above the limit of %d bytes (%s); raise max_profile_bytes (at most %d) if the target's profiles are this large", len(data), limit, mib(limit), MaxProfileBytes))
	}
	p, err := parseProto(data)
	if err != nil {
		return nil, classify(ReasonParse, fmt.Errorf("not a valid pprof profile: %w", err))
	}
	return p, nil
}

// inflateBounded inflates a gzip body, refusing (ReasonTooLarge) once it
// passes limit bytes: a gzip bomb costs at most limit bytes of memory, and
// is never inflated whole. The output is read into chunks, the first sized
// by the gzip trailer's length (a hint: it may lie, and is only the last
// member's), the next at most inflateChunk each, so that growing never
// copies; an output in several chunks is joined once at the end.
func inflateBounded(data []byte, limit int64) ([]byte, error) {
	zr, err := gzip.NewReader(bytes.NewReader(data))
	if err != nil {
		return nil, classify(ReasonCorrupt, fmt.Errorf("gzip header is corrupt: %w", err))
	}
	hint := int64(64 << 10)
	if len(data) >= 18 {
		hint = max(hint, int64(binary.LittleEndian.Uint32(data[len(data)-4:]))+1)
	}
	var chunks [][]byte
	var total int64
	size := min(hint, limit+1)
	for eof := false; !eof; {
		buf := make([]byte, min(size, limit+1-total))
		n := 0
		for n < len(buf) {
			m, err := zr.Read(buf[n:])
			n += m
			if err == io.EOF {
				eof = true
				break
			}
			switch {
			case errors.Is(err, io.ErrUnexpectedEOF):
				return nil, classify(ReasonCorrupt, fmt.Errorf("gzip stream is truncated: it ends after %d bytes received (%d inflated): %w", len(data), total+int64(n), err))
			case err != nil:
				return nil, classify(ReasonCorrupt, fmt.Errorf("gzip stream is corrupt (%d bytes received, %d inflated before the error): %w", len(data), total+int64(n), err))
			}
		}
		chunks = append(chunks, buf[:n])
		total += int64(n)
		if total > limit {
			return nil, classify(ReasonTooLarge, fmt.Errorf("the %d-byte gzip body inflates to more than the limit of %d bytes (%s), a gzip bomb or an oversized profile; raise max_profile_bytes (at most %d) if the target's profiles are this large", len(data), limit, mib(limit), MaxProfileBytes))
		}
		size = inflateChunk
	}
	if len(chunks) == 1 {
		return chunks[0], nil
	}
	out := make([]byte, 0, total)
	for _, c := range chunks {
		out = append(out, c...)
	}
	return out, nil
}

// mib formats a byte count in MiB.
func mib(n int64) string { return fmt.Sprintf("%.4g MiB", float64(n)/(1<<20)) }

// parseProto parses an uncompressed pprof protobuf, turning a panic of
// the decoder on hostile input into an error.
func parseProto(data []byte) (p *profile.Profile, err error) {
	defer func() {
		if r := recover(); r != nil {
			p, err = nil, fmt.Errorf("decoder failed: %v", r)
		}
	}()
	p, err = profile.ParseUncompressed(data)
	if err != nil {
		return nil, err
	}
	if err := p.CheckValid(); err != nil {
		return nil, err
	}
	return p, nil
}

// looksLikeText reports whether a body that is not gzip is a text page
// rather than an uncompressed profile.
func looksLikeText(contentType string, data []byte) bool {
	ct := strings.ToLower(contentType)
	if strings.HasPrefix(ct, "text/") || strings.Contains(ct, "json") || strings.Contains(ct, "html") {
		return true
	}
	trimmed := bytes.TrimLeft(data, " \t\r\n")
	return len(trimmed) > 0 && (trimmed[0] == '<' || trimmed[0] == '{' || trimmed[0] == '[')
}

// preview quotes the start of a body for an error message.
func preview(b []byte) string {
	const n = 120
	b = bytes.TrimSpace(b)
	if len(b) == 0 {
		return "an empty body"
	}
	cut := len(b) > n
	if cut {
		b = b[:n]
		for len(b) > 0 && !utf8.Valid(b) {
			b = b[:len(b)-1]
		}
	}
	s := fmt.Sprintf("%q", b)
	if cut {
		s += "…"
	}
	return s
}

// checkTypes verifies that p has the sample types of kind k.
func checkTypes(k Kind, p *profile.Profile) error {
	for _, want := range k.requiredTypes() {
		if typeIndex(p, want) < 0 {
			have := make([]string, len(p.SampleType))
			for i, st := range p.SampleType {
				have[i] = st.Type + "/" + st.Unit
			}
			return classify(ReasonUnexpected, fmt.Errorf("profile has sample types [%s], not %s; is this the Go runtime's %s endpoint?", strings.Join(have, " "), want, k))
		}
	}
	return nil
}

func typeIndex(p *profile.Profile, vt valueType) int {
	for i, st := range p.SampleType {
		if st.Type == vt.typ && st.Unit == vt.unit {
			return i
		}
	}
	return -1
}
