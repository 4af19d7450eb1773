package daemon

import (
	"strconv"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/goroscope/goroscope/pkg/fold"
)

// selfMetrics are the agent's own metrics, gathered in one registry with
// the per-process series.
type selfMetrics struct {
	reg       *prometheus.Registry
	duration  *prometheus.HistogramVec
	snapshots *prometheus.CounterVec
	errors    *prometheus.CounterVec
	skipped   *prometheus.CounterVec
	// labelOverflow counts the pprof labels bounded by the processes'
	// fold.LabelLimiters.
	labelOverflow *prometheus.CounterVec
	// sampled counts snapshots that kept only some goroutines.
	sampled *prometheus.CounterVec
	// exits counts the watched processes' ends by service and reason;
	// crashes those that crashed, by class.
	exits, crashes *prometheus.CounterVec
	// healthReads and healthSeconds count the reads of the processes'
	// runtime health and the time they took; healthSetup the time taken
	// to prepare them (once per process).
	healthReads                prometheus.Counter
	healthSeconds, healthSetup prometheus.Counter
}

// newSelfMetrics registers a's metrics and collectors in a new registry.
func newSelfMetrics(a *Agent) *selfMetrics {
	m := &selfMetrics{
		reg: prometheus.NewRegistry(),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "goroscope_snapshot_duration_seconds",
			Help:    "Time to walk and decode one process's goroutines.",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5},
		}, []string{"walker"}),
		snapshots: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "goroscope_snapshots_total",
			Help: "Snapshots taken.",
		}, []string{"walker"}),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "goroscope_errors_total",
			Help: "Failures by stage: discovery, discovery_sanitized (a target-chosen name cut or rewritten), exe_unreadable (an executable the agent may not read, such as an execute-only file without CAP_DAC_READ_SEARCH), attach (once per process and executable, however often it is retried), walk, process_gone, exec, layout_mismatch, store.",
		}, []string{"reason"}),
		skipped: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "goroscope_snapshot_skipped_total",
			Help: "Snapshots postponed: budget (no room left in the cycle budget), too_large (the process alone exceeds it and is sampled less often) or walker_loading (--walker ebpf before the walker loaded).",
		}, []string{"reason"}),
		labelOverflow: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "goroscope_label_values_overflow_total",
			Help: "Goroutines (and on-CPU sample stacks) whose pprof label was changed to bound the profiles, once per snapshot, by reason: values (the key had its limit of distinct values; the value became \"other\"), keys (the process had its limit of keys; the label was left out, key=\"\"), truncated (a value over the backends' byte limit was cut, ending in \"…[truncated]\").",
		}, []string{"service_name", "key", "reason"}),
		sampled: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "goroscope_snapshots_sampled_total",
			Help: "Snapshots of processes with more goroutines than limits.max_goroutines, which kept one goroutine in k (each counted k times in the profiles; per-state counts exact).",
		}, []string{"service_name"}),
		exits: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "goroscope_process_exits_total",
			Help: "Watched processes that ended, by reason: exit (any status), signal, oom_kill (killed by the kernel's OOM killer) or unknown (the status could not be read).",
		}, []string{"service_name", "reason"}),
		crashes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "goroscope_process_crashes_total",
			Help: "Watched processes that crashed (a signal, an OOM kill, or status 2: a Go panic or fatal error), by class (docs/crashes.md); each has a crash record in the store.",
		}, []string{"service_name", "class"}),
		healthReads: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "goroscope_runtime_health_reads_total",
			Help: "Reads of the watched processes' runtime health (their runtime's settings and figures, their cgroup's).",
		}),
		healthSeconds: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "goroscope_runtime_health_read_seconds_total",
			Help: "Time the reads of the processes' runtime health took; runtime_health.max_cost_percent bounds it against the walks' (goroscope_snapshot_duration_seconds_sum).",
		}),
		healthSetup: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "goroscope_runtime_health_setup_seconds_total",
			Help: "Time taken to prepare the reads of the processes' runtime health, once per process.",
		}),
	}
	m.reg.MustRegister(m.duration, m.snapshots, m.errors, m.skipped, m.labelOverflow, m.sampled, m.exits, m.crashes, m.healthReads, m.healthSeconds, m.healthSetup,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		&seriesCollector{a: a}, &storeCollector{a: a}, &bpfCollector{a: a})
	return m
}

// bpfCollector exports which goroutine walker serves and whether CPU
// sampling runs, with the reason when eBPF does not serve.
type bpfCollector struct{ a *Agent }

var (
	descWalkerInfo = prometheus.NewDesc("goroscope_walker_info", "The goroutine walker that serves now (value 1): ebpf, procmem, or none (--walker ebpf while loading); reason says why not ebpf: loading, the kernel's rejection of it, a cached rejection, the configuration.", []string{"walker", "reason"}, nil)
	descCPUInfo    = prometheus.NewDesc("goroscope_cpu_sampler_info", "Whether the eBPF CPU sampler runs (value 1): state is sampling, loading, unavailable or off; reason says why it does not sample.", []string{"state", "reason"}, nil)
)

func (c *bpfCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- descWalkerInfo
	ch <- descCPUInfo
}

func (c *bpfCollector) Collect(ch chan<- prometheus.Metric) {
	a := c.a
	if a.walkers != nil { // nil only in tests of the metric names
		walker, reason := a.walkers.Status()
		ch <- prometheus.MustNewConstMetric(descWalkerInfo, prometheus.GaugeValue, 1, walker, reason)
	}
	a.mu.Lock()
	reason := a.cpuReason
	a.mu.Unlock()
	state := "unavailable"
	switch reason {
	case "":
		state = "sampling"
	case "loading", "off":
		state = reason
	}
	ch <- prometheus.MustNewConstMetric(descCPUInfo, prometheus.GaugeValue, 1, state, reason)
}

// seriesCollector exports the newest series of every watched process.
type seriesCollector struct{ a *Agent }

var (
	descInterval = prometheus.NewDesc("goroscope_snapshot_interval_seconds", "Effective snapshot interval of each process (longer than configured when it is too large for the cycle budget).", []string{"service_name", "pid"}, nil)
	descWatched  = prometheus.NewDesc("goroscope_processes_watched", "Go processes being watched.", nil, nil)
)

// Describe implements prometheus.Collector; the series are unchecked.
func (c *seriesCollector) Describe(ch chan<- *prometheus.Desc) {}

// Collect implements prometheus.Collector.
func (c *seriesCollector) Collect(ch chan<- prometheus.Metric) {
	a := c.a
	a.mu.Lock()
	defer a.mu.Unlock()
	ch <- prometheus.MustNewConstMetric(descWatched, prometheus.GaugeValue, float64(len(a.procs)))
	for _, w := range a.procs {
		l := w.labels()
		ch <- prometheus.MustNewConstMetric(descInterval, prometheus.GaugeValue,
			(a.cfg.SnapshotInterval.seconds())*float64(w.every), l["service_name"], l["pid"])
		hists := map[string]*constHist{}
		for _, s := range w.series {
			switch s.Name {
			case fold.MetricGoroutines:
				ch <- constMetric(s, "Goroutines by state and wait reason in the newest snapshot.")
			case fold.MetricProcessInfo:
				ch <- constMetric(s, "Watched Go processes (value 1).")
			case MetricGroupGoroutines:
				ch <- constMetric(s, "Goroutines per group in the newest snapshot: site is where they block and who created them, for the top findings.top_groups groups of each process; the rest are summed as site=\"other\".")
			case MetricFindings:
				ch <- constMetric(s, "Findings holding at the newest snapshot (kind leak, stuck, all-asleep, or a runtime finding: gomaxprocs-over-quota, no-memory-limit, gc-off-unbounded, runqueue-backlog, godebug-left-on), valued by the goroutines involved (1 for the runtime findings that involve none); see docs/findings-json.md.")
			case fold.MetricBlockedSeconds + "_bucket", fold.MetricBlockedSeconds + "_sum", fold.MetricBlockedSeconds + "_count":
				h := hists[s.Labels["wait_reason"]]
				if h == nil {
					h = &constHist{labels: s.Labels, buckets: map[float64]uint64{}}
					hists[s.Labels["wait_reason"]] = h
				}
				h.add(s)
			default:
				if hm, ok := healthMetrics[s.Name]; ok {
					ch <- constValue(s, hm.help, hm.kind)
				}
			}
		}
		for _, h := range hists {
			if m, err := h.metric(); err == nil {
				ch <- m
			}
		}
	}
}

func (d Duration) seconds() float64 { return float64(d) / 1e9 }

// constMetric builds a const gauge with the series' own label names.
func constMetric(s fold.Series, help string) prometheus.Metric {
	return constValue(s, help, prometheus.GaugeValue)
}

// constValue builds a const metric of type kind with the series' own label
// names.
func constValue(s fold.Series, help string, kind prometheus.ValueType) prometheus.Metric {
	names := make([]string, 0, len(s.Labels))
	values := make([]string, 0, len(s.Labels))
	for _, kv := range s.SortedLabels()[1:] {
		names = append(names, kv[0])
		values = append(values, kv[1])
	}
	return prometheus.MustNewConstMetric(prometheus.NewDesc(s.Name, help, names, nil), kind, s.Value, values...)
}

// constHist gathers a folded histogram back into one const histogram.
type constHist struct {
	labels  map[string]string
	buckets map[float64]uint64
	count   uint64
	sum     float64
}

func (h *constHist) add(s fold.Series) {
	switch s.Name {
	case fold.MetricBlockedSeconds + "_bucket":
		if le := s.Labels["le"]; le != "+Inf" {
			for _, b := range fold.BlockedBuckets {
				if strconv.FormatFloat(b, 'g', -1, 64) == le {
					h.buckets[b] = uint64(s.Value)
				}
			}
		}
	case fold.MetricBlockedSeconds + "_sum":
		h.sum = s.Value
	case fold.MetricBlockedSeconds + "_count":
		h.count = uint64(s.Value)
	}
}

func (h *constHist) metric() (prometheus.Metric, error) {
	var names, values []string
	for _, kv := range (fold.Series{Labels: h.labels}).SortedLabels()[1:] {
		if kv[0] == "le" {
			continue
		}
		names = append(names, kv[0])
		values = append(values, kv[1])
	}
	desc := prometheus.NewDesc(fold.MetricBlockedSeconds, "How long the goroutines waiting in the newest snapshot have waited, by wait reason (a distribution of this moment: it can go down).", names, nil)
	return prometheus.NewConstHistogram(desc, h.count, h.sum, h.buckets, values...)
}

// storeCollector exports the local store's state.
type storeCollector struct{ a *Agent }

var (
	descStoreBytes   = prometheus.NewDesc("goroscope_store_bytes", "Bytes of payload in the local store.", nil, nil)
	descStoreEntries = prometheus.NewDesc("goroscope_store_entries", "Entries in the local store.", nil, nil)
	descStoreDropped = prometheus.NewDesc("goroscope_store_dropped_total", "Entries dropped from the local store, by reason (age, size, disk_full, corrupt).", []string{"reason"}, nil)
	descStoreErrors  = prometheus.NewDesc("goroscope_store_write_errors_total", "Appends to the local store that failed.", nil, nil)
	descStoreCompact = prometheus.NewDesc("goroscope_store_compactions_total", "Sealed segments of the local store rewritten without the oldest entries of the process using most space (its fair share exceeded).", nil, nil)
)

func (c *storeCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- descStoreBytes
	ch <- descStoreEntries
	ch <- descStoreDropped
	ch <- descStoreErrors
	ch <- descStoreCompact
}

func (c *storeCollector) Collect(ch chan<- prometheus.Metric) {
	st := c.a.store.Stats()
	ch <- prometheus.MustNewConstMetric(descStoreBytes, prometheus.GaugeValue, float64(st.Bytes))
	ch <- prometheus.MustNewConstMetric(descStoreEntries, prometheus.GaugeValue, float64(st.Entries))
	for _, r := range []string{"age", "size", "disk_full", "corrupt"} {
		ch <- prometheus.MustNewConstMetric(descStoreDropped, prometheus.CounterValue, float64(st.Dropped[r]), r)
	}
	ch <- prometheus.MustNewConstMetric(descStoreErrors, prometheus.CounterValue, float64(st.WriteErrors))
	ch <- prometheus.MustNewConstMetric(descStoreCompact, prometheus.CounterValue, float64(st.Compactions))
}

// countLabelOverflows adds the overflows lim counted since the previous
// call to goroscope_label_values_overflow_total. The key label takes the
// process's admitted keys only (at most fold.DefaultMaxLabelKeys), never a
// value.
func (m *selfMetrics) countLabelOverflows(serviceName string, lim *fold.LabelLimiter) {
	for _, o := range lim.TakeOverflows() {
		m.labelOverflow.WithLabelValues(serviceName, o.Key, o.Reason).Add(float64(o.N))
	}
}
