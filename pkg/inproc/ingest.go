package inproc

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"

	"github.com/goroscope/goroscope/push/queue"
	"github.com/goroscope/goroscope/push/senderr"
	"github.com/goroscope/goroscope/push/spool"
)

// maxIngestBody bounds one captured pyroscope-go upload (a pprof profile in
// a multipart form); it stays under the queue's item limit.
const maxIngestBody = spool.HardMaxRecordBytes - 64<<10

// ingestCapture is the HTTP client pyroscope-go uploads through. Instead of
// sending, it queues each upload (query, content type and body, unchanged:
// nothing is added or removed) on every Pyroscope endpoint's ingest queue
// and answers 200 at once, so pyroscope-go's profiles get the same bounded
// queues, retries, fan-out and flush on Stop as goroscope's own, and the
// server sees exactly the request pyroscope-go built.
type ingestCapture struct {
	queues []*queue.Queue
}

// Do queues req for every endpoint. It implements pyroscope-go's
// remote.HTTPClient.
func (c *ingestCapture) Do(req *http.Request) (*http.Response, error) {
	if req.Body != nil {
		defer req.Body.Close()
	}
	if req.Method != http.MethodPost || !strings.HasSuffix(req.URL.Path, "/ingest") {
		return nil, fmt.Errorf("inproc: unexpected pyroscope-go request %s %s; only POST .../ingest is forwarded", req.Method, req.URL.Path)
	}
	var body []byte
	if req.Body != nil {
		var err error
		body, err = io.ReadAll(io.LimitReader(req.Body, maxIngestBody+1))
		if err != nil {
			return nil, fmt.Errorf("inproc: read pyroscope-go upload: %w", err)
		}
		if len(body) > maxIngestBody {
			return nil, fmt.Errorf("inproc: pyroscope-go upload larger than %d bytes; dropped", maxIngestBody)
		}
	}
	// Forwarded as pyroscope-go built it: the server reads a multipart body
	// as pprof only without a format parameter (format=pprof makes it take
	// the whole body for one raw pprof message, and refuse it: see
	// push/pyroscope's ingest).
	item := encodeIngest(req.URL.RawQuery, req.Header.Get("Content-Type"), body)
	var errs []error
	for _, q := range c.queues {
		if err := q.Enqueue(item, 0); err != nil {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("inproc: queue pyroscope-go upload: %w", err)
	}
	return &http.Response{
		Status: "200 OK", StatusCode: http.StatusOK, Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
		Header: http.Header{}, Body: http.NoBody, Request: req,
	}, nil
}

// encodeIngest packs one upload as a queue item: the query and the content
// type, each preceded by its length as a uvarint, then the body.
func encodeIngest(query, contentType string, body []byte) []byte {
	b := make([]byte, 0, 2*binary.MaxVarintLen32+len(query)+len(contentType)+len(body))
	b = binary.AppendUvarint(b, uint64(len(query)))
	b = append(b, query...)
	b = binary.AppendUvarint(b, uint64(len(contentType)))
	b = append(b, contentType...)
	return append(b, body...)
}

// decodeIngest unpacks an item made by encodeIngest.
func decodeIngest(item []byte) (query, contentType string, body []byte, err error) {
	field := func() (string, error) {
		n, k := binary.Uvarint(item)
		if k <= 0 || n > uint64(len(item)-k) {
			return "", errors.New("bad field length")
		}
		s := string(item[k : k+int(n)])
		item = item[k+int(n):]
		return s, nil
	}
	if query, err = field(); err != nil {
		return "", "", nil, fmt.Errorf("ingest item query: %w", err)
	}
	if contentType, err = field(); err != nil {
		return "", "", nil, fmt.Errorf("ingest item content type: %w", err)
	}
	return query, contentType, item, nil
}

// ingestClient sends queued pyroscope-go uploads to one endpoint's /ingest.
// It is a queue.Client; its queue sends one item per batch, so a retry
// never repeats an upload the server already accepted.
type ingestClient struct {
	name string
	url  string // base URL + /ingest
	http *http.Client
}

func newIngestClient(e Endpoint) (*ingestClient, error) {
	hc, err := e.HTTP.NewClient()
	if err != nil {
		return nil, fmt.Errorf("pyroscope ingest: %w", err)
	}
	u, _ := url.Parse(e.HTTP.URL) // validated by NewClient
	return &ingestClient{name: "pyroscope-ingest:" + u.Host, url: strings.TrimRight(e.HTTP.URL, "/") + "/ingest", http: hc}, nil
}

// Name identifies the endpoint in logs.
func (c *ingestClient) Name() string { return c.name }

// Send posts each item as the upload pyroscope-go built, in order, and
// stops at the first failed request; the error says how many items are
// done (senderr.SendError Done and Invalid). Items that do not decode are
// dropped.
func (c *ingestClient) Send(ctx context.Context, items [][]byte) error {
	invalid := 0
	var dropErr error
	for i, item := range items {
		query, ct, body, err := decodeIngest(item)
		var req *http.Request
		if err == nil {
			req, err = http.NewRequestWithContext(ctx, http.MethodPost, c.url+"?"+query, bytes.NewReader(body))
		}
		if err != nil {
			invalid++
			dropErr = errors.Join(dropErr, fmt.Errorf("item %d: %w", i, err))
			continue
		}
		req.Header.Set("Content-Type", ct)
		resp, err := c.http.Do(req)
		if err := senderr.Classify(resp, err); err != nil {
			var se *senderr.SendError
			if errors.As(err, &se) {
				se.Done, se.Invalid = i, invalid
			}
			return fmt.Errorf("%s: ingest: %w", c.name, err)
		}
	}
	if invalid > 0 {
		return &senderr.SendError{Done: len(items), Invalid: invalid,
			Err: fmt.Errorf("%s: dropped %d undecodable items: %w", c.name, invalid, dropErr)}
	}
	return nil
}
