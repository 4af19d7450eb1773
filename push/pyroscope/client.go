package pyroscope

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"connectrpc.com/connect"
	pushv1 "github.com/grafana/pyroscope/api/gen/proto/go/push/v1"
	"github.com/grafana/pyroscope/api/gen/proto/go/push/v1/pushv1connect"

	"github.com/goroscope/goroscope/push/endpoint"
	"github.com/goroscope/goroscope/push/senderr"
)

// DefaultMaxRequestBytes bounds one push request when Options leave it zero;
// it stays under the server's default 4 MiB message limit.
const DefaultMaxRequestBytes = 3 << 20

// Options configure a Client.
type Options struct {
	// Name identifies the endpoint in logs and metrics; empty means
	// "pyroscope:<host>".
	Name string
	// HTTP is the endpoint: the server's base URL (e.g.
	// http://pyroscope:4040; the push path is added), auth, TLS, timeout.
	HTTP endpoint.Config
	// MaxRequestBytes bounds the encoded size of one request (key
	// "max_request_bytes"); a batch is split to fit. Zero means
	// DefaultMaxRequestBytes.
	MaxRequestBytes int
	// Legacy sends each profile to the /ingest endpoint (a multipart form,
	// as pyroscope-go uploads) instead of the push API, for servers before
	// Pyroscope 1.0 (the agent's key "legacy"). The server then names profiles
	// from their sample types: goroutine_wall arrives as "wall".
	Legacy bool
}

// Client sends batches of items (marshalled pushv1.RawProfileSeries). It is
// safe for concurrent use.
type Client struct {
	name    string
	base    string
	maxReq  int
	legacy  bool
	http    *http.Client
	pusher  pushv1connect.PusherServiceClient
	nowFunc func() time.Time
}

// New validates o and returns a Client.
func New(o Options) (*Client, error) {
	hc, err := o.HTTP.NewClient()
	if err != nil {
		return nil, fmt.Errorf("pyroscope: %w", err)
	}
	if o.MaxRequestBytes < 0 {
		return nil, fmt.Errorf("pyroscope: max_request_bytes: %d is negative; use a positive size or 0 for %d", o.MaxRequestBytes, DefaultMaxRequestBytes)
	}
	maxReq := o.MaxRequestBytes
	if maxReq == 0 {
		maxReq = DefaultMaxRequestBytes
	}
	hc.Transport = &statusTransport{base: hc.Transport}
	base := strings.TrimRight(o.HTTP.URL, "/")
	name := o.Name
	if name == "" {
		u, _ := url.Parse(base) // validated by NewClient
		name = "pyroscope:" + u.Host
	}
	return &Client{
		name:    name,
		base:    base,
		maxReq:  maxReq,
		legacy:  o.Legacy,
		http:    hc,
		pusher:  pushv1connect.NewPusherServiceClient(hc, base),
		nowFunc: time.Now,
	}, nil
}

// Name identifies the endpoint.
func (c *Client) Name() string { return c.name }

// Send decodes the items and pushes them in as few requests as fit under
// the size limit, in order, stopping at the first failure. Items that do not
// decode or validate, and profiles larger than the limit by themselves, are
// dropped and the rest sent. A failure says what of the batch is done
// despite it (senderr.SendError Done and Invalid): the items before the
// failed request were delivered or dropped, so the queue retries only the
// rest and nothing accepted is sent twice; Failed counts the items of the
// failed request, the only ones a permanent rejection gives up on. (An item
// of several profiles split over requests may have its first profiles sent
// again; the agent's items hold one profile.) When everything sendable was
// accepted but items were dropped, Send returns a non-retryable
// *senderr.SendError with Status 0 wrapping ErrInvalid, the whole batch
// done and the dropped items in Invalid (an item counts as dropped when any
// of its profiles was).
func (c *Client) Send(ctx context.Context, items [][]byte) error {
	series, invalid, dropErr := c.decode(items)
	reqs, tooBig := split(series, c.maxReq, invalid)
	if c.legacy {
		reqs = oneProfileEach(reqs)
	}
	if tooBig > 0 {
		err := fmt.Errorf("%w: %d profiles larger than max_request_bytes %d; raise the limit or profile less", ErrInvalid, tooBig, c.maxReq)
		dropErr = errors.Join(dropErr, err)
	}
	for i, r := range reqs {
		var err error
		if c.legacy {
			err = c.ingest(ctx, r.msg)
		} else {
			err = c.push(ctx, r.msg)
		}
		if err != nil {
			var se *senderr.SendError
			if errors.As(err, &se) {
				first, next := r.items[0], len(items)
				if i+1 < len(reqs) {
					next = reqs[i+1].items[0]
				}
				se.Done, se.Invalid, se.Failed = first, countTrue(invalid[:first]), next-first
			}
			return err
		}
	}
	if dropErr != nil {
		return &senderr.SendError{Done: len(items), Invalid: countTrue(invalid),
			Err: fmt.Errorf("%s: %w", c.name, dropErr)}
	}
	return nil
}

func countTrue(bs []bool) int {
	n := 0
	for _, b := range bs {
		if b {
			n++
		}
	}
	return n
}

// itemSeries is one decoded item, with its index in the batch.
type itemSeries struct {
	item int
	s    *pushv1.RawProfileSeries
}

// decode unmarshals and validates items, dropping bad ones; invalid[i]
// says item i was dropped.
func (c *Client) decode(items [][]byte) ([]itemSeries, []bool, error) {
	out := make([]itemSeries, 0, len(items))
	invalid := make([]bool, len(items))
	dropped := 0
	var first error
	for i, item := range items {
		s := &pushv1.RawProfileSeries{}
		err := s.UnmarshalVT(item)
		if err != nil {
			err = fmt.Errorf("%w: not a marshalled pushv1.RawProfileSeries: %v", ErrInvalid, err)
		} else if err = ValidateLabels(s.Labels); err == nil && len(s.Samples) == 0 {
			err = fmt.Errorf("%w: series without profiles", ErrInvalid)
		}
		if err != nil {
			dropped++
			invalid[i] = true
			if first == nil {
				first = fmt.Errorf("item %d: %w", i, err)
			}
			continue
		}
		out = append(out, itemSeries{item: i, s: s})
	}
	if dropped > 0 {
		return out, invalid, fmt.Errorf("dropped %d of %d items: %w", dropped, len(items), first)
	}
	return out, invalid, nil
}

// request is one request of a batch; items[i] is the index in the batch of
// the item msg.Series[i] comes from. Once the requests before it succeeded,
// every item before items[0] is delivered or dropped.
type request struct {
	msg   *pushv1.PushRequest
	items []int
}

// oneProfileEach splits requests into one request per profile, the legacy
// endpoint's unit, so a failure leaves no profile of its request delivered.
func oneProfileEach(reqs []request) []request {
	var out []request
	for _, r := range reqs {
		for i, s := range r.msg.Series {
			for _, smp := range s.Samples {
				out = append(out, request{
					msg:   &pushv1.PushRequest{Series: []*pushv1.RawProfileSeries{{Labels: s.Labels, Samples: []*pushv1.RawSample{smp}}}},
					items: []int{r.items[i]},
				})
			}
		}
	}
	return out
}

// split packs series into requests whose encoded size stays at most max,
// splitting a series' samples over several requests when needed. It marks
// in invalid the items with a profile that alone exceeds max, and returns
// the requests and the number of such profiles.
func split(series []itemSeries, max int, invalid []bool) ([]request, int) {
	var reqs []request
	cur := request{msg: &pushv1.PushRequest{}}
	size, tooBig := 0, 0
	flush := func() {
		if len(cur.msg.Series) > 0 {
			reqs = append(reqs, cur)
			cur, size = request{msg: &pushv1.PushRequest{}}, 0
		}
	}
	add := func(item int, s *pushv1.RawProfileSeries) bool {
		n := fieldSize(s.SizeVT())
		if n > max {
			return false
		}
		if size+n > max {
			flush()
		}
		cur.msg.Series = append(cur.msg.Series, s)
		cur.items = append(cur.items, item)
		size += n
		return true
	}
	for _, is := range series {
		if add(is.item, is.s) {
			continue
		}
		// Too big as a whole: one series per sample.
		for _, smp := range is.s.Samples {
			if !add(is.item, &pushv1.RawProfileSeries{Labels: is.s.Labels, Samples: []*pushv1.RawSample{smp}}) {
				tooBig++
				invalid[is.item] = true
			}
		}
	}
	flush()
	return reqs, tooBig
}

// fieldSize is the encoded size of a length-delimited field of n bytes with
// a one-byte tag.
func fieldSize(n int) int {
	v := 1
	for x := uint64(n); x >= 0x80; x >>= 7 {
		v++
	}
	return 1 + v + n
}

// push sends one request through the connect client and classifies the
// outcome by the HTTP status the server answered with.
func (c *Client) push(ctx context.Context, req *pushv1.PushRequest) error {
	rec := &responseInfo{}
	_, err := c.pusher.Push(withResponseInfo(ctx, rec), connect.NewRequest(req))
	if err == nil {
		return nil
	}
	var se *senderr.SendError
	var ce *connect.Error
	switch {
	case rec.status != 0 && rec.status != http.StatusOK:
		msg := err.Error()
		if errors.As(err, &ce) {
			msg = ce.Message()
		}
		se = senderr.StatusError(rec.status, rec.header, msg, c.nowFunc())
	case rec.status == 0:
		// No response: network failure, timeout or cancellation.
		se = &senderr.SendError{Retryable: true, Err: err}
	default:
		// 200 with an error: an unreadable answer; the push may have landed.
		se = &senderr.SendError{Status: rec.status, Err: err}
	}
	se.Err = fmt.Errorf("%s: push %d series: %w", c.name, len(req.Series), se.Err)
	return se
}

// responseInfo records the status and headers of the response to a request
// whose context carries it.
type responseInfo struct {
	status int
	header http.Header
}

type responseInfoKey struct{}

func withResponseInfo(ctx context.Context, r *responseInfo) context.Context {
	return context.WithValue(ctx, responseInfoKey{}, r)
}

// statusTransport fills the request context's responseInfo, so Send can
// classify connect errors by HTTP status and Retry-After.
type statusTransport struct{ base http.RoundTripper }

func (t *statusTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := t.base.RoundTrip(r)
	if rec, ok := r.Context().Value(responseInfoKey{}).(*responseInfo); ok && resp != nil {
		rec.status, rec.header = resp.StatusCode, resp.Header.Clone()
	}
	return resp, err
}

// CloseIdleConnections lets http.Client.CloseIdleConnections reach the base.
func (t *statusTransport) CloseIdleConnections() {
	if c, ok := t.base.(interface{ CloseIdleConnections() }); ok {
		c.CloseIdleConnections()
	}
}
