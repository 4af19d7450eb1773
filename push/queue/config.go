package queue

import (
	"fmt"
	"time"
)

// Config tunes one endpoint's queue. Zero values take the defaults below.
type Config struct {
	MaxItemsPerBatch int           // items per request (default 500)
	MaxBytesPerBatch int           // item bytes per request; a larger single item is sent alone (default 4 MiB)
	MaxDelay         time.Duration // longest an item waits for its batch to fill (default 5s)
	Shards           int           // concurrent senders (default 1)
	MemoryItems      int           // items held in memory: the ring without spool, the read-ahead with one (default 10000)
	MemoryBytes      int64         // item bytes read ahead for the senders (default (Shards+1) × MaxBytesPerBatch); a larger single item is read alone

	SpoolDir      string // on-disk spool for this endpoint; "" = memory only (drop oldest when full)
	SpoolMaxBytes int64  // spool budget; the oldest data is dropped beyond it (default 256 MiB)
	SpoolNoSync   bool   // skip fsync in the spool (tests and benchmarks only)

	MinBackoff     time.Duration // first retry wait (default 100ms); doubles per attempt, with jitter
	MaxBackoff     time.Duration // cap of the exponential backoff (default 30s)
	MaxRetryAfter  time.Duration // cap on a server's Retry-After (default 5m)
	RequestTimeout time.Duration // deadline of one Send (default 30s)

	// Ordered routes items by key: one key always goes to one shard, in
	// Enqueue order. Without it any idle shard takes the next item.
	Ordered bool
}

func (c Config) withDefaults() (Config, error) {
	def := func(v *int, d int) {
		if *v == 0 {
			*v = d
		}
	}
	defDur := func(v *time.Duration, d time.Duration) {
		if *v == 0 {
			*v = d
		}
	}
	def(&c.MaxItemsPerBatch, 500)
	def(&c.MaxBytesPerBatch, 4<<20)
	def(&c.Shards, 1)
	def(&c.MemoryItems, 10000)
	defDur(&c.MaxDelay, 5*time.Second)
	defDur(&c.MinBackoff, 100*time.Millisecond)
	defDur(&c.MaxBackoff, 30*time.Second)
	defDur(&c.MaxRetryAfter, 5*time.Minute)
	defDur(&c.RequestTimeout, 30*time.Second)
	if c.MemoryBytes == 0 {
		c.MemoryBytes = int64(c.Shards+1) * int64(c.MaxBytesPerBatch)
	}
	if c.SpoolMaxBytes == 0 {
		c.SpoolMaxBytes = 256 << 20
	}
	for _, f := range []struct {
		name string
		bad  bool
	}{
		{"MaxItemsPerBatch", c.MaxItemsPerBatch < 0},
		{"MaxBytesPerBatch", c.MaxBytesPerBatch < 0},
		{"Shards", c.Shards < 0 || c.Shards > 1024},
		{"MemoryItems", c.MemoryItems < 0},
		{"MemoryBytes", c.MemoryBytes < 0},
		{"MaxDelay", c.MaxDelay < 0},
		{"MinBackoff", c.MinBackoff < 0},
		{"MaxBackoff", c.MaxBackoff < c.MinBackoff},
		{"MaxRetryAfter", c.MaxRetryAfter < 0},
		{"RequestTimeout", c.RequestTimeout < 0},
		{"SpoolMaxBytes", c.SpoolMaxBytes < 0},
	} {
		if f.bad {
			return c, fmt.Errorf("queue: invalid Config.%s (negative, out of range or MaxBackoff < MinBackoff)", f.name)
		}
	}
	return c, nil
}
