package remotewrite

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"

	"github.com/golang/snappy"
	"github.com/prometheus/prometheus/prompb"

	"github.com/goroscope/goroscope/pkg/label"
	"github.com/goroscope/goroscope/push/endpoint"
	"github.com/goroscope/goroscope/push/senderr"
)

// Header values the remote-write 1.0 specification requires.
const (
	ContentType     = "application/x-protobuf"
	ContentEncoding = "snappy"
	VersionHeader   = "X-Prometheus-Remote-Write-Version"
	Version         = "0.1.0"
)

// Options configure a Client.
type Options struct {
	// Name identifies the endpoint in logs and metrics; empty means
	// "remote_write:<host>".
	Name string
	// HTTP is the endpoint: URL of the write path (e.g.
	// http://prometheus:9090/api/v1/write), auth, TLS, timeout.
	HTTP endpoint.Config
	// ExternalLabels are added to every series that lacks the label (key
	// "external_labels"); they never replace a series' own label.
	ExternalLabels map[string]string
}

// Client sends batches of items (marshalled prompb.TimeSeries) as
// remote-write requests. It is safe for concurrent use.
type Client struct {
	name     string
	url      string
	http     *http.Client
	external []prompb.Label
}

// New validates o and returns a Client.
func New(o Options) (*Client, error) {
	hc, err := o.HTTP.NewClient()
	if err != nil {
		return nil, fmt.Errorf("remote_write: %w", err)
	}
	ext := LabelsFromMap(o.ExternalLabels)
	for _, l := range ext {
		switch {
		case l.Name == MetricNameLabel:
			return nil, fmt.Errorf("remote_write: external_labels: %s cannot be an external label; remove it", MetricNameLabel)
		case !label.ValidName(l.Name):
			return nil, fmt.Errorf("remote_write: external_labels: %q must match [a-zA-Z_][a-zA-Z0-9_]*; rename it", l.Name)
		case l.Value == "":
			return nil, fmt.Errorf("remote_write: external_labels.%s: empty value; give a value or remove it", l.Name)
		}
	}
	name := o.Name
	if name == "" {
		u, _ := url.Parse(o.HTTP.URL) // validated by NewClient
		name = "remote_write:" + u.Host
	}
	return &Client{name: name, url: o.HTTP.URL, http: hc, external: ext}, nil
}

// Name identifies the endpoint.
func (c *Client) Name() string { return c.name }

// Send merges items into one WriteRequest and posts it. It returns nil when
// the receiver accepted it, or a *senderr.SendError. Items that do not
// decode or validate are dropped and the rest are sent; if any were
// dropped and the rest were accepted (or nothing was left to send), Send
// returns a non-retryable *senderr.SendError with Status 0 wrapping
// ErrInvalid that marks the whole batch done (Done = len(items)) with the
// dropped items counted in Invalid, so the queue counts each item once.
func (c *Client) Send(ctx context.Context, items [][]byte) error {
	req, dropped, firstErr := c.buildRequest(items)
	var dropErr error
	if dropped > 0 {
		dropErr = &senderr.SendError{Done: len(items), Invalid: dropped,
			Err: fmt.Errorf("%s: dropped %d of %d items: %w", c.name, dropped, len(items), firstErr)}
	}
	if len(req.Timeseries) == 0 {
		return dropErr
	}
	body, err := EncodeRequest(req)
	if err != nil {
		return &senderr.SendError{Err: fmt.Errorf("%s: encode request: %w", c.name, err)}
	}
	if err := c.post(ctx, body); err != nil {
		return err
	}
	return dropErr
}

// post sends one compressed request body.
func (c *Client) post(ctx context.Context, body []byte) error {
	r, err := http.NewRequestWithContext(ctx, http.MethodPost, c.url, bytes.NewReader(body))
	if err != nil {
		return &senderr.SendError{Err: fmt.Errorf("%s: %w", c.name, err)}
	}
	r.Header.Set("Content-Type", ContentType)
	r.Header.Set("Content-Encoding", ContentEncoding)
	r.Header.Set(VersionHeader, Version)
	resp, err := c.http.Do(r)
	if err := senderr.Classify(resp, err); err != nil {
		var se *senderr.SendError
		if errors.As(err, &se) {
			se.Err = fmt.Errorf("%s: %w", c.name, se.Err)
		}
		return err
	}
	return nil
}

// Encode is Send before the network: the request body (a snappy-compressed
// WriteRequest) Send would post for items. Unlike Send it fails on the
// first invalid item. It exists for measurements.
func (c *Client) Encode(items [][]byte) ([]byte, error) {
	req, _, firstErr := c.buildRequest(items)
	if firstErr != nil {
		return nil, firstErr
	}
	return EncodeRequest(req)
}

// EncodeRequest marshals a WriteRequest and compresses it with snappy's
// block format, giving the HTTP body.
func EncodeRequest(req *prompb.WriteRequest) ([]byte, error) {
	raw, err := req.Marshal()
	if err != nil {
		return nil, err
	}
	return snappy.Encode(nil, raw), nil
}

// buildRequest decodes the items, adds external labels, joins items of the
// same series and returns the request with the count of dropped items and
// the first reason.
func (c *Client) buildRequest(items [][]byte) (*prompb.WriteRequest, int, error) {
	req := &prompb.WriteRequest{Timeseries: make([]prompb.TimeSeries, 0, len(items))}
	index := make(map[string]int, len(items))
	var key strings.Builder
	dropped := 0
	var firstErr error
	drop := func(i int, err error) {
		dropped++
		if firstErr == nil {
			firstErr = fmt.Errorf("item %d: %w", i, err)
		}
	}
	merged := make(map[int]bool)
	for i, item := range items {
		var ts prompb.TimeSeries
		if err := ts.Unmarshal(item); err != nil {
			drop(i, fmt.Errorf("%w: not a marshalled prompb.TimeSeries: %v", ErrInvalid, err))
			continue
		}
		if len(ts.Histograms) > 0 || len(ts.Exemplars) > 0 {
			drop(i, fmt.Errorf("%w: histograms and exemplars are not part of remote-write 1.0; send float samples", ErrInvalid))
			continue
		}
		ts.Labels = c.addExternal(ts.Labels)
		if err := ValidateLabels(ts.Labels); err != nil {
			drop(i, err)
			continue
		}
		if len(ts.Samples) == 0 {
			drop(i, fmt.Errorf("%w: series %s has no samples", ErrInvalid, labelString(ts.Labels)))
			continue
		}
		key.Reset()
		for _, l := range ts.Labels {
			key.WriteString(l.Name)
			key.WriteByte(0xff)
			key.WriteString(l.Value)
			key.WriteByte(0xff)
		}
		if j, ok := index[key.String()]; ok {
			req.Timeseries[j].Samples = append(req.Timeseries[j].Samples, ts.Samples...)
			merged[j] = true
			continue
		}
		index[key.String()] = len(req.Timeseries)
		req.Timeseries = append(req.Timeseries, ts)
	}
	// Items of one series: samples in time order, equal duplicates once;
	// a conflicting duplicate keeps the earlier item's value.
	for j := range merged {
		ss := req.Timeseries[j].Samples
		slices.SortStableFunc(ss, func(a, b prompb.Sample) int { return cmp.Compare(a.Timestamp, b.Timestamp) })
		ss = dedupSamples(ss)
		ss = slices.CompactFunc(ss, func(a, b prompb.Sample) bool { return a.Timestamp == b.Timestamp })
		req.Timeseries[j].Samples = ss
	}
	return req, dropped, firstErr
}

// addExternal returns labels plus every external label whose name is not
// already present, sorted by name.
func (c *Client) addExternal(ls []prompb.Label) []prompb.Label {
	if len(c.external) == 0 {
		return ls
	}
	added := false
	for _, e := range c.external {
		if !slices.ContainsFunc(ls, func(l prompb.Label) bool { return l.Name == e.Name }) {
			ls = append(ls, e)
			added = true
		}
	}
	if added {
		slices.SortFunc(ls, func(a, b prompb.Label) int { return strings.Compare(a.Name, b.Name) })
	}
	return ls
}
