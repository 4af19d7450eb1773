package queue

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/goroscope/goroscope/push/spool"
)

// ErrClosed is returned after Close.
var ErrClosed = errors.New("queue: closed")

// ErrRunning is returned by Run when the queue is already running and by
// Close while it runs.
var ErrRunning = errors.New("queue: Run is active (stop it by cancelling its context first)")

// logEvery limits how often one endpoint logs the same kind of failure.
const logEvery = time.Minute

// Queue delivers items to one endpoint; see the package documentation.
type Queue struct {
	cfg    Config
	client Client
	name   string
	log    *slog.Logger
	m      endpointMetrics
	bl     backlog
	policy retryPolicy

	wake     chan struct{} // Enqueue -> dispatcher
	room     chan struct{} // shard finished a batch -> dispatcher
	inflight atomic.Int64  // entries handed to shards and not finished
	inBytes  atomic.Int64  // their item bytes
	running  atomic.Bool
	closed   atomic.Bool
	flushing atomic.Int32

	mu       sync.Mutex
	progress chan struct{} // closed and replaced when entries finish
	kick     chan struct{} // closed and replaced to make shards send partial batches

	retryLog logLimiter
	dropLogs dropLogs
}

// New creates the queue for client. m may be shared by all queues (nil:
// private, unregistered metrics). With cfg.SpoolDir it opens the spool and
// resumes what a previous run left there.
func New(cfg Config, c Client, m *Metrics, log *slog.Logger) (*Queue, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	if c == nil {
		return nil, errors.New("queue: nil Client")
	}
	if m == nil {
		if m, err = NewMetrics(nil); err != nil {
			return nil, err
		}
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	q := &Queue{
		cfg: cfg, client: c, name: c.Name(),
		log:      log.With("endpoint", c.Name()),
		m:        m.forEndpoint(c.Name()),
		policy:   retryPolicy{minBackoff: cfg.MinBackoff, maxBackoff: cfg.MaxBackoff, maxRetryAfter: cfg.MaxRetryAfter},
		wake:     make(chan struct{}, 1),
		room:     make(chan struct{}, 1),
		progress: make(chan struct{}),
		kick:     make(chan struct{}),
	}
	drop := func(reason string, n int) { q.drop(reason, n, nil) }
	if cfg.SpoolDir == "" {
		q.bl = newMemBacklog(cfg.MemoryItems, drop)
	} else if q.bl, err = newSpoolBacklog(cfg.SpoolDir, cfg.SpoolMaxBytes, cfg.SpoolNoSync, drop, q.log); err != nil {
		return nil, err
	}
	q.updateGauges()
	return q, nil
}

// Enqueue adds one item (copied) with its shard key. It does not wait for
// the endpoint: with a spool the item is written to it, without one the
// oldest queued item makes room. An error means the item was not queued;
// it is counted as dropped.
func (q *Queue) Enqueue(item []byte, key uint64) error {
	if q.closed.Load() {
		return ErrClosed
	}
	q.m.enqueued.Inc()
	if len(item) > spool.HardMaxRecordBytes-keyLen {
		q.m.dropped.WithLabelValues("too_large").Inc()
		return fmt.Errorf("queue %s: item of %d bytes exceeds the %d-byte limit (split it in the wire client)", q.name, len(item), spool.HardMaxRecordBytes-keyLen)
	}
	if err := q.bl.push(item, key); err != nil {
		reason := "spool_error"
		if errors.Is(err, spool.ErrTooLarge) {
			reason = "too_large"
		}
		q.m.dropped.WithLabelValues(reason).Inc()
		return fmt.Errorf("queue %s: enqueue: %w", q.name, err)
	}
	q.updateGauges()
	select {
	case q.wake <- struct{}{}:
	default:
	}
	return nil
}

// Run sends until ctx is done, then gives back what is unsent: with a spool
// it stays there (cursor persisted) for the next Run or process; without one
// it stays in memory until Close. Run returns nil after ctx is done; to
// drain before stopping call Flush first.
func (q *Queue) Run(ctx context.Context) error {
	if q.closed.Load() {
		return ErrClosed
	}
	if !q.running.CompareAndSwap(false, true) {
		return ErrRunning
	}
	defer q.running.Store(false)

	n := 1
	if q.cfg.Ordered {
		n = q.cfg.Shards
	}
	ins := make([]chan entry, n)
	for i := range ins {
		ins[i] = make(chan entry, q.cfg.MaxItemsPerBatch)
	}
	var wg sync.WaitGroup
	for i := range q.cfg.Shards {
		in := ins[i%n]
		wg.Go(func() { q.runShard(ctx, in) })
	}
	err := q.dispatch(ctx, ins)
	wg.Wait()
	q.bl.rewind()
	q.inflight.Store(0)
	q.inBytes.Store(0)
	if sb, ok := q.bl.(*spoolBacklog); ok {
		if serr := sb.sp.Sync(); serr != nil {
			err = errors.Join(err, fmt.Errorf("queue %s: persist spool on stop: %w", q.name, serr))
		}
	}
	q.updateGauges()
	q.notifyProgress()
	return err
}

// dispatch moves entries from the backlog to the shards, reading ahead at
// most MemoryItems entries and MemoryBytes of items (plus one item larger
// than that alone).
func (q *Queue) dispatch(ctx context.Context, ins []chan entry) error {
	for {
		room, roomBytes := int64(q.cfg.MemoryItems)-q.inflight.Load(), q.cfg.MemoryBytes-q.inBytes.Load()
		if room > 0 && roomBytes > 0 {
			ents, err := q.bl.read(int(min(room, int64(q.cfg.MaxItemsPerBatch))), roomBytes)
			if err != nil {
				if ctx.Err() != nil {
					return nil
				}
				return fmt.Errorf("queue %s: read backlog: %w", q.name, err)
			}
			if len(ents) > 0 {
				q.inflight.Add(int64(len(ents)))
				q.inBytes.Add(entryBytes(ents))
				for _, e := range ents {
					in := ins[0]
					if q.cfg.Ordered {
						in = ins[e.key%uint64(len(ins))]
					}
					select {
					case in <- e:
					case <-ctx.Done():
						return nil
					}
				}
				q.updateGauges()
				continue
			}
		}
		select {
		case <-ctx.Done():
			return nil
		case <-q.wake:
		case <-q.room:
		}
	}
}

// runShard batches entries from in and sends each batch until it is
// delivered or dropped; a batch in progress blocks the shard, which keeps
// per-shard order.
func (q *Queue) runShard(ctx context.Context, in <-chan entry) {
	var (
		batch []entry
		size  int
	)
	timer := time.NewTimer(q.cfg.MaxDelay)
	timer.Stop()
	defer timer.Stop()
	flush := func() bool {
		timer.Stop()
		if len(batch) > 0 {
			q.send(ctx, batch)
		}
		batch, size = nil, 0
		return ctx.Err() == nil
	}
	for {
		q.mu.Lock()
		kick := q.kick
		q.mu.Unlock()
		select {
		case <-ctx.Done():
			return
		case e := <-in:
			if len(batch) > 0 && size+len(e.item) > q.cfg.MaxBytesPerBatch && !flush() {
				return
			}
			if len(batch) == 0 {
				timer.Reset(q.cfg.MaxDelay)
			}
			batch = append(batch, e)
			size += len(e.item)
			if len(batch) >= q.cfg.MaxItemsPerBatch || (q.flushing.Load() > 0 && len(in) == 0) {
				if !flush() {
					return
				}
			}
		case <-timer.C:
			if !flush() {
				return
			}
		case <-kick:
			if !flush() {
				return
			}
		}
	}
}

// send delivers one batch, retrying per the policy. It returns without
// finishing the batch only when ctx is done (the batch is then rewound).
// When a failed send says part of the batch is done (delivered, or dropped
// as invalid by the client), that part is acknowledged and only the rest is
// retried, so nothing delivered is sent twice; when a permanent failure
// concerns only part of the rest (SendError.Failed), only that part is
// dropped and the remainder is sent at once.
func (q *Queue) send(ctx context.Context, batch []entry) {
	items := make([][]byte, len(batch))
	for i, e := range batch {
		items[i] = e.item
	}
	for attempt := 0; ; attempt++ {
		rctx, cancel := context.WithTimeout(ctx, q.cfg.RequestTimeout)
		start := time.Now()
		err := q.client.Send(rctx, items)
		cancel()
		q.m.duration.Observe(time.Since(start).Seconds())
		if err == nil {
			q.m.sentBatches.Inc()
			q.delivered(batch, 0, nil)
			return
		}
		var se *SendError
		isSE := errors.As(err, &se)
		if isSE && se.Done > 0 {
			done := min(se.Done, len(batch))
			q.delivered(batch[:done], min(max(se.Invalid, 0), done), err)
			batch, items = batch[done:], items[done:]
			if len(batch) == 0 {
				return
			}
		}
		if ctx.Err() != nil {
			return
		}
		v := q.policy.decide(err, attempt)
		q.m.failed.WithLabelValues(v.class).Inc()
		if !v.retry {
			n := len(batch)
			if isSE && se.Failed > 0 {
				n = min(se.Failed, n)
			}
			q.drop(v.drop, n, err)
			q.finish(batch[:n])
			batch, items = batch[n:], items[n:]
			if len(batch) == 0 {
				return
			}
			attempt = -1 // the rest was never sent: send it now
			continue
		}
		q.m.retries.Inc()
		if ok, suppressed := q.retryLog.allow(time.Now(), 1); ok {
			q.log.Warn("send failed; retrying", "items", len(batch), "attempt", attempt+1, "wait", v.wait,
				"err", err, "similar_errors_suppressed", suppressed)
		}
		t := time.NewTimer(v.wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
	}
}

// delivered counts and acknowledges finished entries: invalid of them were
// dropped by the client as invalid (err says why), the others delivered.
func (q *Queue) delivered(done []entry, invalid int, err error) {
	if n := len(done) - invalid; n > 0 {
		size := 0
		for _, e := range done {
			size += len(e.item)
		}
		q.m.sentItems.Add(float64(n))
		q.m.sentBytes.Add(float64(size))
		q.m.lastSuccess.Set(float64(time.Now().UnixNano()) / 1e9)
	}
	q.drop("invalid", invalid, err)
	q.finish(done)
}

// finish acknowledges a delivered or dropped batch.
func (q *Queue) finish(batch []entry) {
	pos := make([]int64, len(batch))
	for i, e := range batch {
		pos[i] = e.pos
	}
	if err := q.bl.ack(pos); err != nil {
		q.log.Warn("could not persist the spool cursor; delivered items may be sent again after a restart", "err", err)
	}
	q.inflight.Add(-int64(len(batch)))
	q.inBytes.Add(-entryBytes(batch))
	select {
	case q.room <- struct{}{}:
	default:
	}
	q.updateGauges()
	q.notifyProgress()
}

func entryBytes(es []entry) int64 {
	n := int64(0)
	for _, e := range es {
		n += int64(len(e.item))
	}
	return n
}

func (q *Queue) notifyProgress() {
	q.mu.Lock()
	close(q.progress)
	q.progress = make(chan struct{})
	q.mu.Unlock()
}

func (q *Queue) updateGauges() {
	items, bytes := q.bl.stats()
	q.m.queueItems.Set(float64(items))
	q.m.spoolBytes.Set(float64(bytes))
}

// Flush waits until every item enqueued before the call was delivered or
// dropped, making shards send partial batches at once. It needs Run to be
// active and returns ctx's error if ctx ends first.
func (q *Queue) Flush(ctx context.Context) error {
	if q.closed.Load() {
		return ErrClosed
	}
	_, target := q.bl.position()
	q.flushing.Add(1)
	defer q.flushing.Add(-1)
	q.mu.Lock()
	close(q.kick)
	q.kick = make(chan struct{})
	q.mu.Unlock()
	// Evictions and corrupt-region skips also advance the position without a
	// progress signal; a slow tick covers them.
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		q.mu.Lock()
		progress := q.progress
		q.mu.Unlock()
		if done, _ := q.bl.position(); done >= target {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("queue %s: flush: %w", q.name, ctx.Err())
		case <-progress:
		case <-tick.C:
		}
	}
}

// Len is the number of items enqueued and not yet delivered or dropped.
func (q *Queue) Len() int {
	n, _ := q.bl.stats()
	return n
}

// Close releases the queue after Run has returned: the spool is closed with
// its cursor persisted; without a spool, items still queued are counted as
// dropped (reason "shutdown").
func (q *Queue) Close() error {
	if q.running.Load() {
		return ErrRunning
	}
	if q.closed.Swap(true) {
		return nil
	}
	err := q.bl.close()
	q.updateGauges()
	if err != nil {
		return fmt.Errorf("queue %s: close: %w", q.name, err)
	}
	return nil
}

// dropMessage explains a drop reason in the log, with the fix.
func dropMessage(reason string) string {
	switch reason {
	case "non_retryable_4xx":
		return "endpoint rejected a batch; dropping it (fix the data or the endpoint configuration)"
	case "non_retryable":
		return "batch cannot be sent; dropping it"
	case "invalid":
		return "items are invalid and can never be sent; dropping them (a bug in the producer: report it)"
	case "spool_full":
		return "spool budget exceeded while the endpoint lags; dropped the oldest unsent items (raise queue.spool_max_bytes or fix the endpoint)"
	case "queue_full":
		return "memory queue full while the endpoint lags; dropped the oldest unsent items (give the endpoint a spool or raise queue.memory_items)"
	case "corrupt_spool":
		return "skipped a corrupt region of the spool; the items in it are lost (disk or file damage)"
	case "shutdown":
		return "stopped with items queued in memory only; they are lost (give the endpoint a spool to keep them)"
	}
	return "dropping items"
}

// drop counts n items given up on and logs it, at most once a minute per
// reason, with err (the server's message) when there is one. It may run
// with the spool locked, so it must not call the backlog.
func (q *Queue) drop(reason string, n int, err error) {
	if n <= 0 {
		return
	}
	q.m.dropped.WithLabelValues(reason).Add(float64(n))
	ok, unlogged := q.dropLogs.allow(reason, time.Now(), n)
	if !ok {
		return
	}
	attrs := []any{"reason", reason, "items", n, "items_dropped_since_last_log", unlogged}
	if err != nil {
		attrs = append(attrs, "err", err)
	}
	q.log.Error(dropMessage(reason), attrs...)
}

// dropLogs holds one logLimiter per drop reason.
type dropLogs struct {
	mu sync.Mutex
	by map[string]*logLimiter
}

func (d *dropLogs) allow(reason string, now time.Time, n int) (bool, int) {
	d.mu.Lock()
	l := d.by[reason]
	if l == nil {
		if d.by == nil {
			d.by = map[string]*logLimiter{}
		}
		l = &logLimiter{}
		d.by[reason] = l
	}
	d.mu.Unlock()
	return l.allow(now, n)
}

// logLimiter allows one log line per logEvery and adds up the weight of
// the events it suppressed.
type logLimiter struct {
	mu         sync.Mutex
	last       time.Time
	suppressed int
}

// allow reports whether to log an event of weight n now, and the total
// weight suppressed since the last logged event.
func (l *logLimiter) allow(now time.Time, n int) (bool, int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.last.IsZero() && now.Sub(l.last) < logEvery {
		l.suppressed += n
		return false, 0
	}
	s := l.suppressed
	l.last, l.suppressed = now, 0
	return true, s
}
