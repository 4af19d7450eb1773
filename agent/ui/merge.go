package ui

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/goroscope/goroscope/pkg/fold"
	"github.com/goroscope/goroscope/pkg/store"
)

// maxRangeEntries bounds the profiles one request merges: a flame graph's
// range, a diff's two ranges together (half each). A range holding more
// is read at that many entries spread evenly over it.
const maxRangeEntries = 240

// rangeListChunk is how many entries listing a range asks the store's
// index for at a time.
const rangeListChunk = 10_000

// Merge rules (RangeInfo.Merge, MergeRule).
const (
	// MergeAverage: the range's value is the mean of its profiles.
	MergeAverage = "average"
	// MergeSum: the range's value is the total of its profiles.
	MergeSum = "sum"
)

// gaugeTypes are the pprof sample types that count a population at one
// moment (goroscope's goroutine profile, older stores' "goroutines", the
// runtime's goroutineleak profile); so do the heap's inuse_* types.
var gaugeTypes = map[string]bool{fold.ProfileGoroutine: true, "goroutines": true, "goroutineleak": true}

// MergeRule says how the profiles of a range merge, by the sample type a
// flame graph shows (sampleIndex): a population at a moment (goroutines,
// goroutineleak, the heap in use) is averaged over the profiles; a total
// over each profile's interval (goroutine_wall's and process_cpu's time,
// mutex and block delays and contentions, the heap's allocations) is summed.
func MergeRule(sampleType string) string {
	if gaugeTypes[sampleType] || strings.HasPrefix(sampleType, "inuse_") {
		return MergeAverage
	}
	return MergeSum
}

// RangeInfo describes a range of entries merged into one profile: the
// flame answer's "range", the diff's "base" and "comparison".
type RangeInfo struct {
	// From and To are the range asked; To, when not given, is the newest
	// entry's time.
	From time.Time `json:"from"`
	To   time.Time `json:"to"`
	// First and Last are the times of the oldest and newest entries merged.
	First time.Time `json:"first"`
	Last  time.Time `json:"last"`
	// Entries counts the kind's entries in the range; Merged those read
	// and merged (at most maxRangeEntries, spread evenly over the range);
	// Skipped those read but left out: larger than Options.MaxProfileBytes
	// decompressed, or unreadable.
	Entries int `json:"entries"`
	Merged  int `json:"merged"`
	Skipped int `json:"skipped"`
	// Merge is MergeRule's rule: "average" or "sum".
	Merge string `json:"merge"`
	// Scale is what the merged profiles' summed values were multiplied by:
	// 1/Merged for an average; Entries/Merged for a sum, which estimates
	// the whole range's when not every entry was merged (1 when all were).
	Scale float64 `json:"scale"`
}

// applyRule sets Merge and Scale for the range merged by rule and returns
// the scale of its values.
func (ri *RangeInfo) applyRule(rule string) scale {
	ri.Merge = rule
	sc := scale{float64(ri.Entries), float64(ri.Merged)}
	if rule == MergeAverage {
		sc.num = 1
	}
	if ri.Merged == 0 {
		sc = unitScale
	}
	ri.Scale = sc.factor()
	return sc
}

// rangeParams names the query parameters of a range: from= and to=, or
// base_from= and base_to=.
type rangeParams struct{ from, to, what string }

var (
	flameRange      = rangeParams{"from", "to", "range"}
	comparisonRange = rangeParams{"from", "to", "comparison range"}
	baseRange       = rangeParams{"base_from", "base_to", "baseline range"}
)

// parse reads the range's bounds; ok is false when from is absent (an
// error when to is given without it).
func (rp rangeParams) parse(r *http.Request) (from, to time.Time, ok bool, err error) {
	if from, err = parseTime(r, rp.from); err != nil {
		return from, to, false, err
	}
	if to, err = parseTime(r, rp.to); err != nil {
		return from, to, false, err
	}
	switch {
	case from.IsZero() && !to.IsZero():
		return from, to, false, badRequest("%s=%q needs %s= (an RFC 3339 time): a %s is %s=..%s=, %s= empty for the newest entry",
			rp.to, r.URL.Query().Get(rp.to), rp.from, rp.what, rp.from, rp.to, rp.to)
	case from.IsZero():
		return from, to, false, nil
	case !to.IsZero() && to.Before(from):
		return from, to, false, badRequest("%s=%s is before %s=%s: want %s <= %s",
			rp.to, to.Format(time.RFC3339Nano), rp.from, from.Format(time.RFC3339Nano), rp.from, rp.to)
	}
	return from, to, true, nil
}

// merged is a range merged into one side of a tree.
type merged struct {
	info RangeInfo
	// entry is the newest entry merged.
	entry store.Meta
	sums  sideSums
}

// mergeRange merges into side of t the profile entries of kind for
// process k with from <= time <= to (to zero: up to the newest), at most
// limit of them spread evenly over the range, read one at a time within
// Options.MaxProfileBytes. One that is too large or unreadable is skipped
// and counted; the range fails only when every one read is. It stops with
// ctx's error between two profiles once ctx is done. The RangeInfo's
// Merge and Scale are left to the caller (RangeInfo.applyRule), which knows
// the sample type once every side is merged.
func (s *server) mergeRange(ctx context.Context, t *tree, side int, facets bool, k store.ProcessKey, kind string,
	from, to time.Time, limit int, rp rangeParams) (*merged, error) {
	ms, total, newest, err := listRange(ctx, s.src, k, kind, from, to, limit, rangeListChunk)
	if err != nil {
		return nil, err
	}
	if total == 0 {
		until := "the newest entry"
		if !to.IsZero() {
			until = rp.to + "=" + to.Format(time.RFC3339Nano)
		}
		return nil, notFound("no %s entry stored for pid %d (start %d) in the %s %s=%s to %s",
			kind, k.PID, k.StartTime, rp.what, rp.from, from.Format(time.RFC3339Nano), until)
	}
	out := &merged{info: RangeInfo{From: from, To: to, Entries: total}}
	if to.IsZero() {
		out.info.To = newest
	}
	if facets {
		out.sums.facets = newFacetSums()
	}
	var firstErr error
	for _, m := range ms {
		if err := ctx.Err(); err != nil {
			return nil, context.Cause(ctx)
		}
		p, err := s.loadProfile(m)
		if err != nil {
			if errors.Is(err, store.ErrClosed) {
				return nil, err
			}
			switch {
			case errors.Is(err, store.ErrNotFound): // dropped by retention since it was listed
				s.log.Debug("ui: entry left out of a merged range", "kind", kind, "pid", k.PID, "id", m.ID, "err", err)
			case statusOf(err) != http.StatusRequestEntityTooLarge:
				s.log.Warn("ui: entry left out of a merged range", "kind", kind, "pid", k.PID, "id", m.ID, "err", err)
			}
			out.info.Skipped++
			firstErr = cmp.Or(firstErr, err)
			continue
		}
		t.add(p, side, &out.sums)
		if out.info.Merged == 0 {
			out.info.First = m.Time
		}
		out.info.Merged++
		out.info.Last, out.entry = m.Time, m
	}
	if out.info.Merged == 0 {
		msg := fmt.Sprintf("none of the %d %s entries read in the %s could be merged; the first: %v", out.info.Skipped, kind, rp.what, firstErr)
		return nil, &httpError{statusOf(firstErr), msg}
	}
	return out, nil
}

// listRange lists the entries of kind for process k with from <= Time <=
// to (no upper bound when to is zero): how many there are (total), the
// newest one's time, and at most limit of them, oldest first, spread
// evenly over the range (its oldest and newest included) when there are
// more. It reads the store's index chunk entries at a time, newest first,
// and keeps only what it returns: a range of more than limit entries is
// counted in a first pass and picked from in a second.
func listRange(ctx context.Context, src Source, k store.ProcessKey, kind string, from, to time.Time, limit, chunk int) (picked []store.Meta, total int, newest time.Time, err error) {
	var end time.Time
	if !to.IsZero() {
		end = to.Add(time.Nanosecond) // the store's To is exclusive
	}
	var pages [][]store.Meta // newest first, while total <= limit
	err = eachPage(ctx, src, k, kind, from, end, chunk, func(ms []store.Meta) bool {
		if total == 0 && len(ms) > 0 {
			newest = ms[len(ms)-1].Time
		}
		total += len(ms)
		pages = append(pages, ms)
		if total > limit {
			pages = nil
		}
		return true
	})
	if err != nil || total == 0 {
		return nil, total, newest, err
	}
	if total <= limit {
		for _, ms := range slices.Backward(pages) {
			picked = append(picked, ms...)
		}
		return picked, total, newest, nil
	}
	want := spread(total, limit) // positions from the newest, ascending
	picked = make([]store.Meta, 0, len(want))
	pos := 0
	// Up to the newest entry counted: entries appended since are not.
	err = eachPage(ctx, src, k, kind, from, newest.Add(time.Nanosecond), chunk, func(ms []store.Meta) bool {
		for i := len(ms) - 1; i >= 0 && len(picked) < len(want); i-- {
			if want[len(picked)] == pos {
				picked = append(picked, ms[i])
			}
			pos++
		}
		return len(picked) < len(want)
	})
	slices.Reverse(picked)
	return picked, total, newest, err
}

// spread picks limit of n positions evenly, the first and last included
// (only the first when limit is 1), each a position counted from the
// end, ascending. With n <= limit it picks all.
func spread(n, limit int) []int {
	if n <= limit {
		limit = n
	}
	if limit <= 0 {
		return nil
	}
	if limit == 1 {
		return []int{0}
	}
	out := make([]int, limit)
	for i := range limit {
		// Position i*(n-1)/(limit-1) from the start, taken from the end:
		// distinct and increasing, since n-1 >= limit-1.
		out[limit-1-i] = n - 1 - int(int64(i)*int64(n-1)/int64(limit-1))
	}
	return out
}

// eachPage calls fn with the entries of kind for process k with from <=
// Time < end (no upper bound when end is zero), a page of at most chunk at
// a time (oldest first within it), the newest page first, until fn returns
// false or none are left. Entries sharing a time are never split between
// two pages (unless a whole page shares one).
func eachPage(ctx context.Context, src Source, k store.ProcessKey, kind string, from, end time.Time, chunk int, fn func([]store.Meta) bool) error {
	for {
		if err := ctx.Err(); err != nil {
			return context.Cause(ctx)
		}
		ms, err := src.List(store.Query{Process: k, Kind: kind, From: from, To: end, Limit: chunk})
		if err != nil {
			return fmt.Errorf("list %s entries of pid %d: %w", kind, k.PID, err)
		}
		full := len(ms) >= chunk
		next := end
		if full {
			// The oldest time's entries may go on past the page: leave them
			// to the next one, which then ends just after that time.
			oldest := ms[0].Time
			i := 0
			for i < len(ms) && ms[i].Time.Equal(oldest) {
				i++
			}
			if i < len(ms) {
				ms, next = ms[i:], oldest.Add(time.Nanosecond)
			} else {
				next = oldest
			}
		}
		ms = slices.DeleteFunc(ms, func(m store.Meta) bool { return m.Process.Key() != k || m.Kind != kind })
		if !fn(ms) || !full {
			return nil
		}
		end = next
	}
}
