package queue

import (
	"context"

	"github.com/goroscope/goroscope/push/senderr"
)

// Client sends one batch of items as one request. Items are opaque records
// (e.g. a marshalled prompb.TimeSeries or one pprof series); the client
// builds the request body from them. Send must honour ctx (the queue sets a
// per-request deadline) and must not keep items after it returns.
type Client interface {
	// Name identifies the endpoint in metrics (label endpoint) and logs.
	Name() string
	// Send delivers items. Return nil when every item was delivered, a
	// *SendError to classify a failure (and to say which items are done
	// despite it); any other error is retried.
	Send(ctx context.Context, items [][]byte) error
}

// SendError classifies a failed send: status, retryability, the server's
// Retry-After and the part of the batch that is done despite the failure.
// It is the wire clients' error type (package senderr), so the queue and
// every client share one retry policy.
type SendError = senderr.SendError
