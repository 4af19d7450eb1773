package pyroscope

import "github.com/goroscope/goroscope/push/queue"

// The push queue drives a Client through its own interface.
var _ queue.Client = (*Client)(nil)
