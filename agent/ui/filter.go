package ui

import (
	"net/url"
	"slices"
	"strings"

	"github.com/goroscope/goroscope/pkg/findings"
	"github.com/goroscope/goroscope/pkg/fold"
	"github.com/goroscope/goroscope/pkg/snapshot"
)

// maxLabelFilters bounds the label=k=v parameters of one request.
const maxLabelFilters = 16

// Filter selects goroutines (or profile samples) by state, wait reason,
// wait-duration bucket and pprof labels, and goroutines by site. Zero
// fields match everything.
type Filter struct {
	State        string
	WaitReason   string
	WaitDuration string
	// Labels must all be present with these values.
	Labels []LabelFilter
	// Site is a site id (findings.Site.ID, a finding's site_id): the
	// goroutines of exactly that group, as pkg/findings groups them
	// (system goroutines never belong to one). Profile samples carry no
	// site: only snapshots can be filtered by it.
	Site string
}

// siteIDLen is the length of a site id: 12 hex digits.
const siteIDLen = 12

// LabelFilter is one label=k=v condition.
type LabelFilter struct{ Key, Value string }

// ParseFilter reads the filter parameters of a request.
func ParseFilter(q url.Values) (Filter, error) {
	f := Filter{
		State:        q.Get("state"),
		WaitReason:   q.Get("wait_reason"),
		WaitDuration: q.Get("wait_duration"),
		Site:         q.Get("site"),
	}
	if f.Site != "" && !isSiteID(f.Site) {
		return Filter{}, badRequest("site=%q: want a site id, 12 hex digits (a finding's site_id)", f.Site)
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
	return f.State == "" && f.WaitReason == "" && f.WaitDuration == "" && len(f.Labels) == 0 && f.Site == ""
}

// isSiteID reports whether s looks like a site id: 12 lowercase hex digits.
func isSiteID(s string) bool {
	if len(s) != siteIDLen {
		return false
	}
	for _, c := range []byte(s) {
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return true
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
	if f.Site != "" {
		q.Set("site", f.Site)
	}
	return q
}

// MatchLabels reports whether a profile sample with these labels passes f.
// A sample has no site: f.Site is not looked at (the handlers refuse it
// for profiles).
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

// MatchGoroutine reports whether a snapshot goroutine passes f. It works
// out g's site anew each time: a loop over a snapshot uses f.predicate.
func (f Filter) MatchGoroutine(g *snapshot.Goroutine) bool {
	return f.matchFields(g) && (f.Site == "" || !g.System && findings.SiteOf(g).ID() == f.Site)
}

// predicate returns MatchGoroutine for a loop over one snapshot's
// goroutines: the site of a stack, creator, state and wait reason is
// worked out once, in a bounded cache. Stacks are keyed by identity (the
// snapshot decoders share a frame slice among the goroutines of a stack,
// and never reuse one), creators by content (the stream decoder reuses
// one Frame for every goroutine's).
func (f Filter) predicate() func(*snapshot.Goroutine) bool {
	if f.Site == "" {
		return f.matchFields
	}
	type key struct {
		frames        *snapshot.Frame
		n             int
		by            snapshot.Frame
		hasBy         bool
		state, reason string
	}
	sites := map[key]bool{}
	return func(g *snapshot.Goroutine) bool {
		if g.System || !f.matchFields(g) {
			return false
		}
		k := key{n: len(g.Frames), state: string(g.State), reason: g.WaitReason}
		if len(g.Frames) > 0 {
			k.frames = &g.Frames[0]
		}
		if g.CreatedBy != nil {
			k.by = snapshot.Frame{Function: g.CreatedBy.Function, File: g.CreatedBy.File, Line: g.CreatedBy.Line}
			k.hasBy = true
		}
		in, ok := sites[k]
		if !ok {
			if len(sites) >= maxMatchCache {
				clear(sites)
			}
			in = findings.SiteOf(g).ID() == f.Site
			sites[k] = in
		}
		return in
	}
}

// matchFields is MatchGoroutine but for the site.
func (f Filter) matchFields(g *snapshot.Goroutine) bool {
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
