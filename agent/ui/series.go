package ui

import (
	"cmp"
	"slices"
	"strings"
	"time"

	"github.com/goroscope/goroscope/pkg/store"
)

// maxSeriesPoints bounds the moments of one series answer (the newest kept).
const maxSeriesPoints = 5000

// maxWaitReasonSeries bounds the wait-reason series, RuntimeSeries and
// OtherSeries included.
const maxWaitReasonSeries = 12

// Series that sum others (Series.Folded lists what they sum).
const (
	// RuntimeSeries sums the wait reasons only the runtime's own goroutines
	// wait with (IsRuntimeReason), unless the runtime's are asked apart.
	RuntimeSeries = "runtime (system)"
	// OtherSeries sums the wait reasons past the maxWaitReasonSeries-1
	// series of largest peak.
	OtherSeries = "other (smaller wait reasons)"
)

// Series is goroutine counts over time, from the entries' summaries.
type Series struct {
	// Moments are the entries' times, oldest first.
	Moments []time.Time `json:"moments"`
	// Total is the goroutines per moment.
	Total []float64 `json:"total"`
	// States and WaitReasons are counts per moment by state and wait reason.
	States      map[string][]float64 `json:"states"`
	WaitReasons map[string][]float64 `json:"wait_reasons"`
	// Folded names, for each series of WaitReasons that sums others
	// (RuntimeSeries, OtherSeries), the wait reasons it sums, the largest
	// peak first.
	Folded map[string][]string `json:"folded"`
	// StepSeconds is the median time between two moments (0 with fewer
	// than two): the collection interval.
	StepSeconds float64 `json:"step_seconds"`
	// Kinds are the profile kinds stored for the process in the range.
	Kinds []string `json:"kinds"`
	// Runtime are the series of the process's runtime health, by the
	// summary key without summaryRuntime ("go_gomaxprocs",
	// "cgroup_memory_limit_bytes", ...): the value per moment, nil where
	// the moment has none (the health was not read then, or the series
	// does not apply: no cgroup limit). Empty when no moment has any.
	Runtime map[string][]*float64 `json:"runtime"`
}

// Summary keys (see store.Entry.Summary).
const (
	summaryGoroutines = "goroutines"
	summaryState      = "state/"
	summaryWaitReason = "wait_reason/"
	// summaryRuntime starts the keys of the runtime health: the prefix
	// and a series' name without "goroscope_" (agent/daemon/health.go:
	// "rt/go_gomaxprocs", "rt/cgroup_cpu_throttled_seconds_total"), on
	// the entries of the snapshots the health was read at.
	summaryRuntime = "rt/"
)

// BuildSeries turns entries' summaries into series, oldest first; entries
// at the same moment are counted once. The wait reasons only the runtime's
// goroutines wait with are summed into RuntimeSeries unless keepRuntime;
// past maxWaitReasonSeries series, the smallest are summed into OtherSeries.
// The runtime health's keys are series of their own (Series.Runtime).
func BuildSeries(ms []store.Meta, keepRuntime bool) *Series {
	ms = slices.Clone(ms)
	slices.SortStableFunc(ms, func(a, b store.Meta) int { return a.Time.Compare(b.Time) })
	ms = slices.CompactFunc(ms, func(a, b store.Meta) bool { return a.Time.Equal(b.Time) })
	s := &Series{Moments: []time.Time{}, Total: []float64{}, States: map[string][]float64{}, WaitReasons: map[string][]float64{},
		Folded: map[string][]string{}, Runtime: map[string][]*float64{}}
	n := len(ms)
	put := func(m map[string][]float64, k string, i int, v float64) {
		vs := m[k]
		if vs == nil {
			vs = make([]float64, n)
			m[k] = vs
		}
		vs[i] = v
	}
	system := map[string][]float64{} // the runtime's own wait reasons
	for i, m := range ms {
		s.Moments = append(s.Moments, m.Time)
		total, haveTotal := m.Summary[summaryGoroutines]
		var stateSum float64
		for k, v := range m.Summary {
			switch {
			case strings.HasPrefix(k, summaryState):
				put(s.States, strings.TrimPrefix(k, summaryState), i, v)
				stateSum += v
			case strings.HasPrefix(k, summaryRuntime):
				vs := s.Runtime[k[len(summaryRuntime):]]
				if vs == nil {
					vs = make([]*float64, n)
					s.Runtime[k[len(summaryRuntime):]] = vs
				}
				vs[i] = &v
			case strings.HasPrefix(k, summaryWaitReason):
				reason := strings.TrimPrefix(k, summaryWaitReason)
				if !keepRuntime && IsRuntimeReason(reason) {
					put(system, reason, i, v)
				} else {
					put(s.WaitReasons, reason, i, v)
				}
			}
		}
		if !haveTotal {
			total = stateSum
		}
		s.Total = append(s.Total, total)
	}
	limit := maxWaitReasonSeries
	if len(system) > 0 {
		limit-- // the runtime's series is always shown
	}
	var other []string
	s.WaitReasons, other = topSeries(s.WaitReasons, limit, n, OtherSeries)
	if len(other) > 0 {
		s.Folded[OtherSeries] = other
	}
	if len(system) > 0 {
		sum, folded := topSeries(system, 0, n, RuntimeSeries)
		s.WaitReasons[RuntimeSeries] = sum[RuntimeSeries]
		s.Folded[RuntimeSeries] = folded
	}
	s.StepSeconds = medianStep(s.Moments)
	return s
}

// topSeries keeps the limit-1 series with the largest peak and sums the
// others into one named sum; it returns the series and the names summed,
// the largest peak first (none when there are at most limit series).
func topSeries(m map[string][]float64, limit, n int, sum string) (map[string][]float64, []string) {
	if len(m) <= limit {
		return m, nil
	}
	type kv struct {
		k    string
		peak float64
	}
	var all []kv
	for k, vs := range m {
		all = append(all, kv{k, slices.Max(vs)})
	}
	slices.SortFunc(all, func(a, b kv) int {
		if c := cmp.Compare(b.peak, a.peak); c != 0 {
			return c
		}
		return strings.Compare(a.k, b.k)
	})
	out := map[string][]float64{}
	other := make([]float64, n)
	var folded []string
	for i, e := range all {
		if i < limit-1 {
			out[e.k] = m[e.k]
			continue
		}
		folded = append(folded, e.k)
		for j, v := range m[e.k] {
			other[j] += v
		}
	}
	out[sum] = other
	return out, folded
}

// medianStep is the median time between consecutive moments, in seconds;
// 0 with fewer than two.
func medianStep(moments []time.Time) float64 {
	if len(moments) < 2 {
		return 0
	}
	steps := make([]time.Duration, len(moments)-1)
	for i := range steps {
		steps[i] = moments[i+1].Sub(moments[i])
	}
	slices.Sort(steps)
	return steps[len(steps)/2].Seconds()
}
