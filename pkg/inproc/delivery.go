package inproc

import (
	"context"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"sync"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/goroscope/goroscope/push/queue"
)

// Delivery says what became of the items of one kind of upload, summed
// over the endpoints (an item sent to two endpoints counts twice). Every
// item queued is sent, rejected, dropped or still pending.
type Delivery struct {
	// Sent is what the endpoints accepted.
	Sent int
	// Rejected is what an endpoint refused for good: an HTTP 4xx other
	// than 429 (the server's message is logged), or a request that could
	// not be made.
	Rejected int
	// Dropped is what was given up on without an answer: the memory queue
	// overflowed while an endpoint lagged, items still queued when
	// profiling ended, or items that could not be encoded.
	Dropped int
	// Pending is what is queued and not yet delivered or given up on.
	Pending int
}

// lost is the number of items given up on.
func (d Delivery) lost() int { return d.Rejected + d.Dropped }

// total is the number of items queued so far.
func (d Delivery) total() int { return d.Sent + d.Rejected + d.Dropped + d.Pending }

// delivery is a Delivery with its drops by the queue's reason.
type delivery struct {
	Delivery
	byReason map[string]int
}

// rejection reports whether a queue's drop reason means the endpoint (or
// the request) refused the items.
func rejection(reason string) bool { return reason == "non_retryable_4xx" || reason == "non_retryable" }

// deliveryOf sums the counters of the queues qs, named names, from reg,
// the registry of their private queue.Metrics.
func deliveryOf(reg *prometheus.Registry, qs []*queue.Queue, names []string) delivery {
	d := delivery{byReason: map[string]int{}}
	for _, q := range qs {
		d.Pending += q.Len()
	}
	// Queues of two endpoints on one host share a name, and so counters.
	mine := map[string]bool{}
	for _, n := range names {
		mine[n] = true
	}
	mfs, _ := reg.Gather() // private, consistent metrics: cannot fail
	for _, mf := range mfs {
		name := mf.GetName()
		if name != "goroscope_push_sent_items_total" && name != "goroscope_push_dropped_items_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			var endpoint, reason string
			for _, l := range m.GetLabel() {
				switch l.GetName() {
				case "endpoint":
					endpoint = l.GetValue()
				case "reason":
					reason = l.GetValue()
				}
			}
			if !mine[endpoint] {
				continue
			}
			n := int(m.GetCounter().GetValue())
			switch {
			case name == "goroscope_push_sent_items_total":
				d.Sent += n
			case rejection(reason):
				d.byReason[reason] += n
				d.Rejected += n
			default:
				d.byReason[reason] += n
				d.Dropped += n
			}
		}
	}
	return d
}

// kind is the delivery of one kind of item, named for Stop's error.
type kind struct {
	what string
	d    delivery
}

// lossError says what of each kind was lost, or nil. Items dropped at
// shutdown count only when stopping was to deliver them (flush): after
// Start's context ended they are dropped by design.
func lossError(flush bool, first string, kinds ...kind) error {
	var parts []string
	for _, k := range kinds {
		lost := k.d.lost()
		if !flush {
			lost -= k.d.byReason["shutdown"]
		}
		if lost <= 0 {
			continue
		}
		var why []string
		if k.d.Rejected > 0 {
			why = append(why, fmt.Sprintf("%d rejected by the endpoint", k.d.Rejected))
		}
		for _, r := range slices.Sorted(maps.Keys(k.d.byReason)) {
			if rejection(r) || r == "shutdown" && !flush || k.d.byReason[r] == 0 {
				continue
			}
			why = append(why, fmt.Sprintf("%d dropped (%s)", k.d.byReason[r], r))
		}
		parts = append(parts, fmt.Sprintf("%s: %d of %d (%s)", k.what, lost, k.d.total(), strings.Join(why, ", ")))
	}
	if len(parts) == 0 {
		return nil
	}
	msg := "lost " + strings.Join(parts, "; ")
	if first != "" {
		msg += "; first failure: " + first
	}
	return fmt.Errorf("%s (Stats has the counts; set Config.Logger to see every failure)", msg)
}

// lossLog is the slog.Handler the queues and pyroscope-go log through. It
// passes every record to the configured Logger's handler. Without a
// Logger, only the first failure (a record at Error level: an upload
// rejected, or data dropped) goes to slog's default logger, so that a
// server refusing every upload is never silent; the rest is discarded.
// Either way it keeps that first failure for Stop's error. Items dropped
// because Start's context ended are no failure.
type lossLog struct {
	st    *lossState
	next  slog.Handler // nil without a Logger
	attrs []slog.Attr  // from WithAttrs, for the default logger
	group string       // from WithGroup, for the default logger
}

type lossState struct {
	mu     sync.Mutex
	first  string // message and error of the first failure
	logged bool   // the first failure went to slog's default logger
}

func newLossLog(next *slog.Logger) *lossLog {
	l := &lossLog{st: &lossState{}}
	if next != nil {
		l.next = next.Handler()
	}
	return l
}

// firstFailure returns the first failure's message, or "".
func (l *lossLog) firstFailure() string {
	l.st.mu.Lock()
	defer l.st.mu.Unlock()
	return l.st.first
}

func (l *lossLog) Enabled(ctx context.Context, level slog.Level) bool {
	return level >= slog.LevelError || l.next != nil && l.next.Enabled(ctx, level)
}

func (l *lossLog) Handle(ctx context.Context, r slog.Record) error {
	if r.Level >= slog.LevelError && !isShutdownDrop(r) {
		l.st.mu.Lock()
		if l.st.first == "" {
			l.st.first = describe(l.attrs, r)
		}
		toDefault := l.next == nil && !l.st.logged
		l.st.logged = l.st.logged || toDefault
		l.st.mu.Unlock()
		if toDefault {
			h := slog.Default().Handler()
			if len(l.attrs) > 0 {
				h = h.WithAttrs(l.attrs)
			}
			if l.group != "" {
				h = h.WithGroup(l.group)
			}
			r = r.Clone()
			r.AddAttrs(slog.String("note", "goroscope inproc: further failures are not logged; set inproc.Config.Logger to see them, Profiler.Stats counts them"))
			if h.Enabled(ctx, r.Level) {
				return h.Handle(ctx, r)
			}
			return nil
		}
	}
	if l.next != nil && l.next.Enabled(ctx, r.Level) {
		return l.next.Handle(ctx, r)
	}
	return nil
}

func (l *lossLog) WithAttrs(attrs []slog.Attr) slog.Handler {
	c := *l
	c.attrs = append(slices.Clip(l.attrs), attrs...)
	if l.next != nil {
		c.next = l.next.WithAttrs(attrs)
	}
	return &c
}

func (l *lossLog) WithGroup(name string) slog.Handler {
	c := *l
	c.group = name
	if l.next != nil {
		c.next = l.next.WithGroup(name)
	}
	return &c
}

// isShutdownDrop reports whether r is the queue's drop of items still
// queued when it closed (reason "shutdown").
func isShutdownDrop(r slog.Record) bool {
	shutdown := false
	r.Attrs(func(a slog.Attr) bool {
		if a.Key == "reason" && a.Value.String() == "shutdown" {
			shutdown = true
			return false
		}
		return true
	})
	return shutdown
}

// describe renders a failure record as "message (endpoint ...): err".
func describe(attrs []slog.Attr, r slog.Record) string {
	var endpoint, err string
	find := func(a slog.Attr) bool {
		switch a.Key {
		case "endpoint":
			endpoint = a.Value.String()
		case "err":
			err = a.Value.String()
		}
		return true
	}
	for _, a := range attrs {
		find(a)
	}
	r.Attrs(find)
	s := r.Message
	if endpoint != "" {
		s += " (endpoint " + endpoint + ")"
	}
	if err != "" {
		s += ": " + err
	}
	return s
}
