package queue

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics holds every queue metric, labelled by endpoint. Create one per
// process with NewMetrics and pass it to every New; each Queue curries it
// with its Client's Name.
type Metrics struct {
	EnqueuedItems   *prometheus.CounterVec   // goroscope_push_enqueued_items_total
	SentItems       *prometheus.CounterVec   // goroscope_push_sent_items_total
	SentBatches     *prometheus.CounterVec   // goroscope_push_sent_batches_total
	SentBytes       *prometheus.CounterVec   // goroscope_push_sent_bytes_total (item bytes)
	FailedRequests  *prometheus.CounterVec   // goroscope_push_failed_requests_total{class}
	Retries         *prometheus.CounterVec   // goroscope_push_retries_total
	DroppedItems    *prometheus.CounterVec   // goroscope_push_dropped_items_total{reason}
	QueueItems      *prometheus.GaugeVec     // goroscope_push_queue_items
	SpoolBytes      *prometheus.GaugeVec     // goroscope_push_spool_bytes
	LastSuccess     *prometheus.GaugeVec     // goroscope_push_last_success_timestamp_seconds
	RequestDuration *prometheus.HistogramVec // goroscope_push_request_duration_seconds
}

// NewMetrics creates the metrics and registers them with reg (nil: not registered).
func NewMetrics(reg prometheus.Registerer) (*Metrics, error) {
	const ns, sub = "goroscope", "push"
	ep := []string{"endpoint"}
	counter := func(name, help string, labels ...string) *prometheus.CounterVec {
		return prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: name, Help: help}, append(ep, labels...))
	}
	gauge := func(name, help string) *prometheus.GaugeVec {
		return prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: ns, Subsystem: sub, Name: name, Help: help}, ep)
	}
	m := &Metrics{
		EnqueuedItems:  counter("enqueued_items_total", "Items offered to the queue; each is then sent, dropped (dropped_items_total) or still queued (queue_items, which includes what a previous run spooled)."),
		SentItems:      counter("sent_items_total", "Items delivered to the endpoint."),
		SentBatches:    counter("sent_batches_total", "Requests that succeeded."),
		SentBytes:      counter("sent_bytes_total", "Item bytes delivered (before the wire client's encoding)."),
		FailedRequests: counter("failed_requests_total", "Requests that failed, by class (429, 5xx, 4xx, timeout, error).", "class"),
		Retries:        counter("retries_total", "Requests retried after a retryable failure."),
		DroppedItems:   counter("dropped_items_total", "Items given up on, by reason (non_retryable_4xx, non_retryable, invalid, spool_full, corrupt_spool, queue_full, too_large, spool_error, shutdown); corrupt_spool counts the items in corrupt spool regions (one per region when a region's framing is too damaged to count them).", "reason"),
		QueueItems:     gauge("queue_items", "Items enqueued and not yet delivered or dropped."),
		SpoolBytes:     gauge("spool_bytes", "Live bytes in the on-disk spool."),
		LastSuccess:    gauge("last_success_timestamp_seconds", "Unix time of the last successful request."),
		RequestDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: ns, Subsystem: sub, Name: "request_duration_seconds",
			Help:    "Duration of one Send, successful or not.",
			Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
		}, ep),
	}
	if reg != nil {
		for _, c := range []prometheus.Collector{m.EnqueuedItems, m.SentItems, m.SentBatches, m.SentBytes, m.FailedRequests, m.Retries,
			m.DroppedItems, m.QueueItems, m.SpoolBytes, m.LastSuccess, m.RequestDuration} {
			if err := reg.Register(c); err != nil {
				return nil, fmt.Errorf("queue: register metrics (call NewMetrics once per registry): %w", err)
			}
		}
	}
	return m, nil
}

// endpointMetrics are the Metrics curried with one endpoint name.
type endpointMetrics struct {
	enqueued, sentItems, sentBatches, sentBytes, retries prometheus.Counter
	failed, dropped                                      *prometheus.CounterVec
	queueItems, spoolBytes, lastSuccess                  prometheus.Gauge
	duration                                             prometheus.Observer
}

func (m *Metrics) forEndpoint(name string) endpointMetrics {
	l := prometheus.Labels{"endpoint": name}
	return endpointMetrics{
		enqueued:    m.EnqueuedItems.With(l),
		sentItems:   m.SentItems.With(l),
		sentBatches: m.SentBatches.With(l),
		sentBytes:   m.SentBytes.With(l),
		retries:     m.Retries.With(l),
		failed:      m.FailedRequests.MustCurryWith(l),
		dropped:     m.DroppedItems.MustCurryWith(l),
		queueItems:  m.QueueItems.With(l),
		spoolBytes:  m.SpoolBytes.With(l),
		lastSuccess: m.LastSuccess.With(l),
		duration:    m.RequestDuration.With(l),
	}
}
