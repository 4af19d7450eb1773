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

// maxWaitReasonSeries bounds the wait-reason series; the smaller ones are
// summed into "other".
const maxWaitReasonSeries = 12

// Series is goroutine counts over time, from the entries' summaries.
type Series struct {
	// Moments are the entries' times, oldest first.
	Moments []time.Time `json:"moments"`
	// Total is the goroutines per moment.
	Total []float64 `json:"total"`
	// States and WaitReasons are counts per moment by state and wait reason.
	States      map[string][]float64 `json:"states"`
	WaitReasons map[string][]float64 `json:"wait_reasons"`
	// Kinds are the profile kinds stored for the process in the range.
	Kinds []string `json:"kinds"`
}

// Summary keys (see store.Entry.Summary).
const (
	summaryGoroutines = "goroutines"
	summaryState      = "state/"
	summaryWaitReason = "wait_reason/"
)

// BuildSeries turns entries' summaries into series, oldest first; entries
// at the same moment are counted once.
func BuildSeries(ms []store.Meta) *Series {
	ms = slices.Clone(ms)
	slices.SortStableFunc(ms, func(a, b store.Meta) int { return a.Time.Compare(b.Time) })
	ms = slices.CompactFunc(ms, func(a, b store.Meta) bool { return a.Time.Equal(b.Time) })
	s := &Series{Moments: []time.Time{}, Total: []float64{}, States: map[string][]float64{}, WaitReasons: map[string][]float64{}}
	n := len(ms)
	put := func(m map[string][]float64, k string, i int, v float64) {
		vs := m[k]
		if vs == nil {
			vs = make([]float64, n)
			m[k] = vs
		}
		vs[i] = v
	}
	for i, m := range ms {
		s.Moments = append(s.Moments, m.Time)
		total, haveTotal := m.Summary[summaryGoroutines]
		var stateSum float64
		for k, v := range m.Summary {
			switch {
			case strings.HasPrefix(k, summaryState):
				put(s.States, strings.TrimPrefix(k, summaryState), i, v)
				stateSum += v
			case strings.HasPrefix(k, summaryWaitReason):
				put(s.WaitReasons, strings.TrimPrefix(k, summaryWaitReason), i, v)
			}
		}
		if !haveTotal {
			total = stateSum
		}
		s.Total = append(s.Total, total)
	}
	s.WaitReasons = topSeries(s.WaitReasons, maxWaitReasonSeries, n)
	return s
}

// topSeries keeps the limit-1 series with the largest peak and sums the
// others into "other".
func topSeries(m map[string][]float64, limit, n int) map[string][]float64 {
	if len(m) <= limit {
		return m
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
	for i, e := range all {
		if i < limit-1 {
			out[e.k] = m[e.k]
			continue
		}
		for j, v := range m[e.k] {
			other[j] += v
		}
	}
	out["other"] = other
	return out
}
