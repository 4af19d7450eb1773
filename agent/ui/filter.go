package ui

import (
	"net/url"
	"slices"
	"strings"

	"github.com/goroscope/goroscope/pkg/fold"
	"github.com/goroscope/goroscope/pkg/snapshot"
)

// maxLabelFilters bounds the label=k=v parameters of one request.
const maxLabelFilters = 16

// Filter selects goroutines (or profile samples) by state, wait reason,
// wait-duration bucket and pprof labels. Zero fields match everything.
type Filter struct {
	State        string
	WaitReason   string
	WaitDuration string
	// Labels must all be present with these values.
	Labels []LabelFilter
}

// LabelFilter is one label=k=v condition.
type LabelFilter struct{ Key, Value string }

// ParseFilter reads the filter parameters of a request.
func ParseFilter(q url.Values) (Filter, error) {
	f := Filter{
		State:        q.Get("state"),
		WaitReason:   q.Get("wait_reason"),
		WaitDuration: q.Get("wait_duration"),
	}
	if f.State != "" && !slices.Contains(snapshot.States[:], snapshot.State(f.State)) {
		return Filter{}, badRequest("state=%q: want one of %v", f.State, snapshot.States)
	}
	if f.WaitDuration != "" && !slices.Contains(fold.WaitBuckets[:], f.WaitDuration) {
		return Filter{}, badRequest("wait_duration=%q: want one of %q", f.WaitDuration, fold.WaitBuckets)
	}
	labels := q["label"]
	if len(labels) > maxLabelFilters {
		return Filter{}, badRequest("%d label filters: at most %d", len(labels), maxLabelFilters)
	}
	for _, l := range labels {
		if l == "" {
			continue
		}
		k, v, ok := strings.Cut(l, "=")
		if !ok || k == "" {
			return Filter{}, badRequest("label=%q: want key=value", l)
		}
		f.Labels = append(f.Labels, LabelFilter{k, v})
	}
	return f, nil
}

// IsZero reports whether f matches everything.
func (f Filter) IsZero() bool {
	return f.State == "" && f.WaitReason == "" && f.WaitDuration == "" && len(f.Labels) == 0
}

// Query encodes f as URL parameters (the inverse of ParseFilter).
func (f Filter) Query() url.Values {
	q := url.Values{}
	if f.State != "" {
		q.Set("state", f.State)
	}
	if f.WaitReason != "" {
		q.Set("wait_reason", f.WaitReason)
	}
	if f.WaitDuration != "" {
		q.Set("wait_duration", f.WaitDuration)
	}
	for _, l := range f.Labels {
		q.Add("label", l.Key+"="+l.Value)
	}
	return q
}

// MatchLabels reports whether a profile sample with these labels passes f.
func (f Filter) MatchLabels(labels map[string][]string) bool {
	get := func(k string) string {
		if v := labels[k]; len(v) > 0 {
			return v[0]
		}
		return ""
	}
	if f.State != "" && get(fold.LabelState) != f.State {
		return false
	}
	if f.WaitReason != "" && get(fold.LabelWaitReason) != f.WaitReason {
		return false
	}
	if f.WaitDuration != "" && get(fold.LabelWaitBucket) != f.WaitDuration {
		return false
	}
	for _, l := range f.Labels {
		if vs, ok := labels[l.Key]; !ok || !slices.Contains(vs, l.Value) {
			return false
		}
	}
	return true
}

// MatchGoroutine reports whether a snapshot goroutine passes f.
func (f Filter) MatchGoroutine(g *snapshot.Goroutine) bool {
	if f.State != "" && string(g.State) != f.State {
		return false
	}
	if f.WaitReason != "" && g.WaitReason != f.WaitReason {
		return false
	}
	if f.WaitDuration != "" && fold.WaitBucket(g.WaitingSeconds) != f.WaitDuration {
		return false
	}
	for _, l := range f.Labels {
		if v, ok := g.Labels[l.Key]; !ok || v != l.Value {
			return false
		}
	}
	return true
}
