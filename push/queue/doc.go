// Package queue is the delivery machinery shared by goroscope's push
// endpoints (Prometheus remote-write, Pyroscope): a bounded backlog, shards
// that batch and send concurrently, retries with backoff, an optional
// on-disk spool, and per-endpoint metrics gathered in one struct.
//
// A wire client implements Client (one batch = one request) and classifies
// failures with *SendError; the Queue owns everything else.
//
// # Flow
//
//	Enqueue ─► backlog (memory ring, or the spool when SpoolDir is set)
//	             │  FIFO; the dispatcher reads ahead at most MemoryItems
//	             │  items and MemoryBytes bytes
//	             ▼
//	          dispatcher ─► shard[key % Shards] (Ordered) or any shard
//	                           │ batch: MaxItemsPerBatch / MaxBytesPerBatch / MaxDelay
//	                           ▼
//	                        Client.Send ─► ok: acknowledge (spool cursor)
//	                                   ─► retryable: back off, retry the same batch
//	                                   ─► not retryable: drop, count, acknowledge
//
// Retries. 429, 408, 5xx and network errors and timeouts are retried with
// exponential backoff (MinBackoff doubling up to MaxBackoff, equal jitter),
// waiting at least the server's Retry-After (capped at MaxRetryAfter).
// Other 4xx are not retried: the batch is dropped (reason
// "non_retryable_4xx") and logged with the server's message.
//
// Partial sends. A client that sends one batch in several requests, or
// drops invalid items and sends the rest, says in its *SendError which
// leading part of the batch is done (Done, of which Invalid were dropped
// as invalid) and, for a permanent failure, how many items the failed
// request carried (Failed). The queue acknowledges the done part, counts it
// once, and retries (or drops) only the rest, so a retry never sends an
// accepted item again.
//
// Accounting. Every item offered to Enqueue is counted
// (goroscope_push_enqueued_items_total) and ends up sent
// (sent_items_total), dropped with a reason (dropped_items_total) or
// still queued (queue_items, which after a restart includes what the
// previous run spooled). Drops are logged at most once a minute per reason,
// with the count of items dropped since the last line.
//
// With a spool every item is written to it on Enqueue (write-through), so the
// spool is the queue and memory holds only the read-ahead. This keeps one
// FIFO order for everything: while a backend fails, new items queue behind
// the spooled ones and drain in order on recovery, a stop at any moment
// leaves nothing unsent outside the spool, and a restart resumes from the
// spool cursor. See package spool for the exactly-once-across-clean-restarts
// and at-most-one-batch-per-shard-duplicated-on-crash guarantees.
//
// Without a spool the backlog is a ring of MemoryItems items; when it is
// full the oldest unsent item is dropped (reason "queue_full"), and items
// still queued at Close are dropped (reason "shutdown").
//
// # Ordering
//
// With Config.Ordered, items with the same key always go to the same shard
// and a shard sends one batch at a time, retrying it until it succeeds or is
// dropped, so one key's items reach the backend in Enqueue order (as
// remote-write requires for the samples of one series).
package queue
