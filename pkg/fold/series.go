package fold

import (
	"cmp"
	"maps"
	"slices"
	"strconv"

	"github.com/goroscope/goroscope/pkg/label"
	"github.com/goroscope/goroscope/pkg/snapshot"
)

// Series names. They follow Prometheus conventions: base units, _seconds,
// and histograms as _bucket/_sum/_count.
const (
	MetricGoroutines     = "goroscope_goroutines"
	MetricBlockedSeconds = "goroscope_goroutine_blocked_seconds"
	MetricProcessInfo    = "goroscope_process_info"
)

// Bounds on goroscope_process_info's labels, which the target chooses: a
// path (PATH_MAX is 4096) and the Go version its build info claims.
const (
	MaxExeLabelBytes       = 512
	MaxGoVersionLabelBytes = 64
)

// WithLabels returns a copy of labels with the name/value pairs of extra
// added; pairs with an empty value are left out.
func WithLabels(labels map[string]string, extra ...string) map[string]string {
	m := maps.Clone(labels)
	if m == nil {
		m = make(map[string]string, len(extra)/2)
	}
	for i := 0; i+1 < len(extra); i += 2 {
		if extra[i+1] != "" {
			m[extra[i]] = extra[i+1]
		}
	}
	return m
}

// BlockedBuckets are the upper bounds of the blocked-time distribution.
var BlockedBuckets = []float64{1, 10, 60, 600, 3600}

// Series is one time series value: a metric name, its labels and a value.
type Series struct {
	Name   string
	Labels map[string]string
	Value  float64
}

// SortedLabels returns the labels as sorted name/value pairs, __name__ first.
func (s Series) SortedLabels() [][2]string {
	out := make([][2]string, 0, len(s.Labels)+1)
	out = append(out, [2]string{"__name__", s.Name})
	for _, k := range slices.Sorted(maps.Keys(s.Labels)) {
		out = append(out, [2]string{k, s.Labels[k]})
	}
	return out
}

// ProcessSeries folds one snapshot into series. target labels identify the
// process (service_name, pid) and are added to every series.
//   - goroscope_goroutines{state, wait_reason}: goroutines now, by state and
//     wait reason (wait_reason only for waiting goroutines).
//   - goroscope_goroutine_blocked_seconds{wait_reason}: the distribution of
//     how long the goroutines waiting now have waited (a histogram of this
//     moment, like a gauge histogram: it can go down).
//   - goroscope_process_info{exe, go_version} = 1.
func ProcessSeries(s *snapshot.Snapshot, target map[string]string) []Series {
	with := func(extra ...string) map[string]string { return WithLabels(target, extra...) }
	type stateKey struct{ state, reason string }
	counts := map[stateKey]int{}
	type hist struct {
		buckets []int
		count   int
		sum     float64
	}
	blocked := map[string]*hist{}
	w := s.Weight() // each goroutine of a sampled snapshot stands for w
	for i := range s.Goroutines {
		g := &s.Goroutines[i]
		counts[stateKey{string(g.State), g.WaitReason}] += w
		if g.State != snapshot.StateWaiting {
			continue
		}
		h := blocked[g.WaitReason]
		if h == nil {
			h = &hist{buckets: make([]int, len(BlockedBuckets))}
			blocked[g.WaitReason] = h
		}
		h.count += w
		h.sum += g.WaitingSeconds * float64(w)
		for j, le := range BlockedBuckets {
			if g.WaitingSeconds <= le {
				h.buckets[j] += w
			}
		}
	}
	var out []Series
	// The executable's path and its build info's Go version are the
	// target's choice: bounded like any label value from a target.
	exe, _ := label.Printable(s.Exe, MaxExeLabelBytes)
	goVersion, _ := label.Printable(s.GoVersion, MaxGoVersionLabelBytes)
	out = append(out, Series{Name: MetricProcessInfo, Labels: with("exe", exe, "go_version", goVersion), Value: 1})
	// Every state appears, zero or not, so that a state that empties
	// drops to 0 rather than vanishing.
	for _, st := range snapshot.States {
		if st != snapshot.StateWaiting && st != snapshot.StateLeaked && counts[stateKey{string(st), ""}] == 0 {
			out = append(out, Series{Name: MetricGoroutines, Labels: with("state", string(st)), Value: 0})
		}
	}
	keys := slices.SortedFunc(maps.Keys(counts), func(a, b stateKey) int {
		if a.state != b.state {
			return cmp.Compare(a.state, b.state)
		}
		return cmp.Compare(a.reason, b.reason)
	})
	for _, k := range keys {
		out = append(out, Series{Name: MetricGoroutines, Labels: with("state", k.state, "wait_reason", k.reason), Value: float64(counts[k])})
	}
	for _, reason := range slices.Sorted(maps.Keys(blocked)) {
		h := blocked[reason]
		for j, le := range BlockedBuckets {
			out = append(out, Series{Name: MetricBlockedSeconds + "_bucket", Labels: with("wait_reason", reason, "le", strconv.FormatFloat(le, 'g', -1, 64)), Value: float64(h.buckets[j])})
		}
		out = append(out,
			Series{Name: MetricBlockedSeconds + "_bucket", Labels: with("wait_reason", reason, "le", "+Inf"), Value: float64(h.count)},
			Series{Name: MetricBlockedSeconds + "_sum", Labels: with("wait_reason", reason), Value: h.sum},
			Series{Name: MetricBlockedSeconds + "_count", Labels: with("wait_reason", reason), Value: float64(h.count)},
		)
	}
	return out
}

// Summary condenses a snapshot into the numbers charts need:
// "goroutines", "state/<state>" and "wait_reason/<reason>".
func Summary(s *snapshot.Snapshot) map[string]float64 {
	m := map[string]float64{"goroutines": float64(len(s.Goroutines) * s.Weight())}
	if s.Stride > 1 {
		m["goroutines"] = float64(s.Counts.Total())
	}
	for _, st := range snapshot.States {
		if n := s.Counts.Get(st); n > 0 || st != snapshot.StateLeaked {
			m["state/"+string(st)] = float64(n)
		}
	}
	for i := range s.Goroutines {
		if r := s.Goroutines[i].WaitReason; r != "" {
			m["wait_reason/"+r] += float64(s.Weight())
		}
	}
	return m
}
