package ui

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"time"

	"github.com/google/pprof/profile"

	"github.com/goroscope/goroscope/pkg/fold"
	"github.com/goroscope/goroscope/pkg/snapshot"
	"github.com/goroscope/goroscope/pkg/store"
)

func (s *server) processes(r *http.Request) (any, error) {
	stored, err := s.src.List(store.Query{Kind: store.KindGoroutines, Limit: maxStoredProcessEntries})
	if err != nil {
		return nil, fmt.Errorf("list stored processes: %w", err)
	}
	return MergeProcesses(s.src.Processes(), stored), nil
}

func (s *server) series(r *http.Request) (any, error) {
	k, err := processKey(r)
	if err != nil {
		return nil, err
	}
	from, to, err := parseRange(r)
	if err != nil {
		return nil, err
	}
	keepRuntime := false
	if v := r.URL.Query().Get("runtime"); v != "" {
		if keepRuntime, err = strconv.ParseBool(v); err != nil {
			return nil, badRequest("runtime=%q: want 1 (the runtime's own wait reasons apart) or 0 (summed into %q, the default)", v, RuntimeSeries)
		}
	}
	ms, err := s.src.List(store.Query{Process: k, Kind: store.KindGoroutines, From: from, To: to, Limit: maxSeriesPoints})
	if err != nil {
		return nil, fmt.Errorf("list entries of pid %d: %w", k.PID, err)
	}
	if len(ms) == 0 { // no profiles: the snapshots carry summaries too
		ms, err = s.src.List(store.Query{Process: k, Kind: store.KindSnapshot, From: from, To: to, Limit: maxSeriesPoints})
		if err != nil {
			return nil, fmt.Errorf("list entries of pid %d: %w", k.PID, err)
		}
	}
	out := BuildSeries(ms, keepRuntime)
	out.Kinds = []string{}
	for _, kind := range store.ProfileKinds {
		ms, err := s.src.List(store.Query{Process: k, Kind: kind, From: from, To: to, Limit: 1})
		if err != nil {
			return nil, fmt.Errorf("list %s entries of pid %d: %w", kind, k.PID, err)
		}
		if len(ms) > 0 {
			out.Kinds = append(out.Kinds, kind)
		}
	}
	return out, nil
}

// profileRequest is what the flame, diff and download endpoints share.
type profileRequest struct {
	key    store.ProcessKey
	kind   string
	filter Filter
}

func parseProfileRequest(r *http.Request, defaultKind string, allowed ...string) (profileRequest, error) {
	var pr profileRequest
	var err error
	if pr.key, err = processKey(r); err != nil {
		return pr, err
	}
	pr.kind = r.URL.Query().Get("kind")
	if pr.kind == "" {
		pr.kind = defaultKind
	}
	ok := false
	for _, a := range allowed {
		ok = ok || a == pr.kind
	}
	if !ok {
		return pr, badRequest("kind=%q: want one of %q", pr.kind, allowed)
	}
	if pr.filter, err = ParseFilter(r.URL.Query()); err != nil {
		return pr, err
	}
	if pr.filter.Site != "" && pr.kind != store.KindSnapshot {
		return pr, badRequest("site=%q: profile samples carry no site; it filters snapshots only (the goroutine table, kind=snapshot downloads)", pr.filter.Site)
	}
	return pr, nil
}

// FlameAnswer is the flame endpoint's answer.
type FlameAnswer struct {
	// Entry is the entry shown: the one at the moment asked, or the
	// newest merged of a range.
	Entry store.Meta `json:"entry"`
	*Flame
	// Range describes the range merged; nil for one moment (at=).
	Range *RangeInfo `json:"range,omitempty"`
}

func (s *server) flame(r *http.Request) (any, error) {
	pr, err := parseProfileRequest(r, store.KindGoroutines, store.ProfileKinds...)
	if err != nil {
		return nil, err
	}
	at, err := parseTime(r, "at")
	if err != nil {
		return nil, err
	}
	byState, err := parseGroup(r)
	if err != nil {
		return nil, err
	}
	from, to, isRange, err := flameRange.parse(r)
	if err != nil {
		return nil, err
	}
	if !isRange {
		m, p, err := s.profileAt(pr.key, pr.kind, at)
		if err != nil {
			return nil, err
		}
		return FlameAnswer{Entry: m, Flame: BuildFlameGrouped(p, pr.filter, "all", byState)}, nil
	}
	if !at.IsZero() {
		return nil, badRequest("at= and from= both given: at= picks one moment, from= (and to=) a range to merge; pass one of them")
	}
	t := newTree(pr.filter, "all", byState)
	mr, err := s.mergeRange(r.Context(), t, sideComparison, true, pr.key, pr.kind, from, to, maxRangeEntries, flameRange)
	if err != nil {
		return nil, err
	}
	sc := mr.info.applyRule(MergeRule(t.sampleType))
	return FlameAnswer{Entry: mr.entry, Flame: t.flame(sideComparison, &mr.sums, sc), Range: &mr.info}, nil
}

// parseGroup reads group=: state (true) or nothing.
func parseGroup(r *http.Request) (byState bool, err error) {
	// group=state: the state and wait reason as frames under the root.
	group := r.URL.Query().Get("group")
	if group != "" && group != KindState {
		return false, badRequest("group=%q: want %q or nothing", group, KindState)
	}
	return group == KindState, nil
}

func (s *server) diff(r *http.Request) (any, error) {
	pr, err := parseProfileRequest(r, store.KindGoroutines, store.ProfileKinds...)
	if err != nil {
		return nil, err
	}
	byState, err := parseGroup(r)
	if err != nil {
		return nil, err
	}
	var bounds [2][2]time.Time
	var named [2]bool
	for i, rp := range []rangeParams{baseRange, comparisonRange} {
		from, to, ok, err := rp.parse(r)
		if err != nil {
			return nil, err
		}
		if !ok && rp == comparisonRange {
			return nil, badRequest("diff needs %s= (an RFC 3339 time like 2026-01-02T15:04:05Z): where the %s starts; %s= ends it (default: the newest entry)", rp.from, rp.what, rp.to)
		}
		bounds[i], named[i] = [2]time.Time{from, to}, ok
	}
	// One tree, one profile read at a time: the comparison's, then the
	// baseline's (whose default depends on the comparison's span).
	t := newTree(pr.filter, "all", byState)
	comp, err := s.mergeRange(r.Context(), t, sideComparison, false, pr.key, pr.kind, bounds[1][0], bounds[1][1], maxRangeEntries/2, comparisonRange)
	if err != nil {
		return nil, err
	}
	var base *merged
	var baseDefault string
	if named[0] {
		base, err = s.mergeRange(r.Context(), t, sideBase, false, pr.key, pr.kind, bounds[0][0], bounds[0][1], maxRangeEntries/2, baseRange)
	} else {
		base, baseDefault, err = s.mergeDefaultBase(r.Context(), t, pr, comp.info)
	}
	if err != nil {
		return nil, err
	}
	rule := MergeRule(t.sampleType)
	bs, cs := base.info.applyRule(rule), comp.info.applyRule(rule)
	return &Diff{Unit: t.unit, SampleType: t.sampleType, Merge: rule, Base: base.info, Comparison: comp.info, BaseDefault: baseDefault,
		BaseTotal: bs.apply(base.sums.total), Total: cs.apply(comp.sums.total), Truncated: t.truncated, Root: t.diffNodes(cs, bs)}, nil
}

// mergeDefaultBase merges the baseline a diff request names none of into
// the base side of t: the equally long range just before the comparison
// (BasePrevious); when nothing is stored there, the newest entry before
// the comparison (BasePreviousMoment); when there is none (a process
// younger than the range), the first quarter of the comparison's own
// span, at least its oldest entry (BaseFirstQuarter).
func (s *server) mergeDefaultBase(ctx context.Context, t *tree, pr profileRequest, comp RangeInfo) (*merged, string, error) {
	span := comp.To.Sub(comp.From)
	prevTo := comp.From.Add(-time.Nanosecond)
	base, err := s.mergeRange(ctx, t, sideBase, false, pr.key, pr.kind, prevTo.Add(-span), prevTo, maxRangeEntries/2, baseRange)
	if err == nil {
		return base, BasePrevious, nil
	}
	if statusOf(err) != http.StatusNotFound {
		return nil, "", err
	}
	// Nothing in it (a range of one moment has no span): the newest entry
	// stored before the comparison.
	if m, err := entryAt(s.src, pr.key, pr.kind, prevTo); err == nil && m.Time.Before(comp.From) {
		base, err = s.mergeRange(ctx, t, sideBase, false, pr.key, pr.kind, m.Time, m.Time, maxRangeEntries/2, baseRange)
		return base, BasePreviousMoment, err
	}
	to := comp.First.Add(comp.Last.Sub(comp.First) / 4)
	base, err = s.mergeRange(ctx, t, sideBase, false, pr.key, pr.kind, comp.First, to, maxRangeEntries/2, baseRange)
	return base, BaseFirstQuarter, err
}

// GoroutinesAnswer is the goroutines endpoint's answer.
type GoroutinesAnswer struct {
	Entry store.Meta `json:"entry"`
	Page
}

func (s *server) goroutines(r *http.Request) (any, error) {
	k, err := processKey(r)
	if err != nil {
		return nil, err
	}
	f, err := ParseFilter(r.URL.Query())
	if err != nil {
		return nil, err
	}
	at, offset, limit, err := parsePage(r)
	if err != nil {
		return nil, err
	}
	n, err := parseNarrow(r.URL.Query()) // group= and addr= (groups.go)
	if err != nil {
		return nil, err
	}
	m, err := entryAt(s.src, k, store.KindSnapshot, at)
	if err != nil {
		return nil, err
	}
	st, err := s.openSnapshot(m)
	if err != nil {
		return nil, err
	}
	p, err := searchNarrowed(r.Context(), st.Next, f, n, r.URL.Query().Get("q"), offset, limit)
	if err != nil {
		return nil, fmt.Errorf("read %s entry %d: %w", m.Kind, m.ID, err)
	}
	return GoroutinesAnswer{Entry: m, Page: p}, nil
}

func intParam(r *http.Request, name string, def int) (int, error) {
	v := r.URL.Query().Get(name)
	if v == "" {
		return def, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 0 {
		return 0, badRequest("%s=%q: want a number >= 0", name, v)
	}
	return n, nil
}

// download answers an entry as a file: pprof, folded or JSON. Snapshots
// are read a goroutine at a time and JSON is written as it is read; an
// error after the first bytes went out aborts the response.
func (s *server) download(w http.ResponseWriter, r *http.Request) {
	d, err := s.openDownload(r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	cw := &countingWriter{w: w}
	h := w.Header()
	h.Set("Content-Type", contentType(d.format))
	h.Set("Content-Disposition", fmt.Sprintf("attachment; filename=%q", d.name))
	if d.size >= 0 {
		h.Set("Content-Length", strconv.Itoa(d.size))
	}
	if err := d.write(cw); err != nil {
		if cw.n == 0 { // nothing sent yet: still time for an error status
			h.Del("Content-Disposition")
			h.Del("Content-Length")
			s.fail(w, r, err)
			return
		}
		err = fmt.Errorf("download cut after %d bytes: %w", cw.n, err)
		if r.Context().Err() != nil { // the client left
			s.log.Debug("ui: download canceled", "path", r.URL.Path, "err", err)
		} else {
			s.logError(r, err)
		}
		panic(http.ErrAbortHandler) // the client sees a failed transfer, not a short file
	}
}

// countingWriter counts the bytes written through it.
type countingWriter struct {
	w io.Writer
	n int64
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

// aDownload is a download ready to be written.
type aDownload struct {
	name, format string
	// size is the length of what write writes, -1 when not known ahead.
	size  int
	write func(w io.Writer) error
}

// openDownload finds and opens the entry a download asks for; what fails
// here fails before anything is written.
func (s *server) openDownload(r *http.Request) (*aDownload, error) {
	pr, err := parseProfileRequest(r, store.KindGoroutines, downloadKinds()...)
	if err != nil {
		return nil, err
	}
	format := r.URL.Query().Get("format")
	if format == "" {
		format = "pprof"
	}
	ext := map[string]string{"pprof": "pb.gz", "folded": "folded.txt", "json": "json"}[format]
	if ext == "" {
		return nil, badRequest("format=%q: want pprof, folded or json", format)
	}
	at, err := parseTime(r, "at")
	if err != nil {
		return nil, err
	}
	m, err := entryAt(s.src, pr.key, pr.kind, at)
	if err != nil {
		return nil, err
	}
	d := &aDownload{name: fmt.Sprintf("%s-%d-%s.%s", m.Kind, m.Process.PID, m.Time.UTC().Format("20060102T150405Z"), ext), format: format, size: -1}
	switch {
	case pr.kind == store.KindSnapshot:
		d.write, err = s.snapshotDownload(r.Context(), m, format, pr.filter)
	case format == "pprof" && pr.filter.IsZero(): // the stored payload itself
		var data []byte
		if data, err = s.src.Read(m.ID); err != nil {
			return nil, fmt.Errorf("read %s entry %d: %w", m.Kind, m.ID, err)
		}
		d.size = len(data)
		d.write = func(w io.Writer) error {
			_, err := w.Write(data)
			return err
		}
	default:
		d.write, err = s.profileDownload(m, format, pr.filter)
	}
	return d, err
}

// snapshotDownload opens snapshot entry m and returns what writes it in
// format, keeping the goroutines that pass f.
func (s *server) snapshotDownload(ctx context.Context, m store.Meta, format string, f Filter) (func(io.Writer) error, error) {
	st, err := s.openSnapshot(m)
	if err != nil {
		return nil, err
	}
	next := filtered(ctx, st, f)
	wrap := func(err error) error {
		if err != nil {
			return fmt.Errorf("write %s entry %d as %s: %w", m.Kind, m.ID, format, err)
		}
		return nil
	}
	switch format {
	case "json":
		return func(w io.Writer) error { return wrap(snapshot.WriteJSONStream(w, st.Header(), next)) }, nil
	case "folded":
		return func(w io.Writer) error { return wrap(snapshot.WriteFoldedStream(w, next)) }, nil
	}
	head, err := s.completeHeader(st, m)
	if err != nil {
		return nil, err
	}
	p, err := foldStream(head, next)
	if err != nil {
		return nil, wrap(err)
	}
	return func(w io.Writer) error { return wrap(p.Write(w)) }, nil
}

// completeHeader returns st's header complete. A JSON snapshot may hold
// members after its goroutines (sample_stride): it is read through once
// more, from a second reader, to find them.
func (s *server) completeHeader(st snapshot.Stream, m store.Meta) (*snapshot.Snapshot, error) {
	if _, ok := st.(*snapshot.JSONReader); !ok {
		return st.Header(), nil
	}
	again, err := s.openSnapshot(m)
	if err != nil {
		return nil, err
	}
	for {
		if _, err := again.Next(); err == io.EOF {
			break
		} else if err != nil {
			return nil, fmt.Errorf("read %s entry %d: %w", m.Kind, m.ID, err)
		}
	}
	head := *again.Header()
	head.Goroutines = st.Header().Goroutines
	return &head, nil
}

// profileDownload reads and parses profile entry m and returns what
// writes it in format, keeping the samples that pass f.
func (s *server) profileDownload(m store.Meta, format string, f Filter) (func(io.Writer) error, error) {
	p, err := s.loadProfile(m)
	if err != nil {
		return nil, err
	}
	return func(w io.Writer) error {
		var err error
		switch format {
		case "pprof":
			filterSamples(p, f)
			err = p.Write(w)
		case "folded":
			err = WriteFolded(w, p, f)
		case "json":
			err = json.NewEncoder(w).Encode(FlameAnswer{Entry: m, Flame: BuildFlame(p, f, "all")})
		}
		if err != nil {
			return fmt.Errorf("write %s entry %d as %s: %w", m.Kind, m.ID, format, err)
		}
		return nil
	}, nil
}

// filtered returns the goroutines of st that pass f one at a time, then
// io.EOF; or ctx's error once ctx is done.
func filtered(ctx context.Context, st snapshot.Stream, f Filter) func() (*snapshot.Goroutine, error) {
	n := 0
	pass := f.predicate()
	return func() (*snapshot.Goroutine, error) {
		for {
			g, err := st.Next()
			if err != nil {
				return nil, err
			}
			if n++; n%checkEvery == 0 && ctx.Err() != nil {
				return nil, context.Cause(ctx)
			}
			if pass(g) {
				return g, nil
			}
		}
	}
}

// foldChunk is how many goroutines foldStream folds at a time.
const foldChunk = 1 << 14

// foldStream returns the profile fold.Goroutines makes of the snapshot
// with head's fields and the goroutines next returns, folding a chunk of
// them at a time and merging the chunks' profiles, so that only a chunk is
// held. A snapshot of one chunk gives fold.Goroutines' very profile.
func foldStream(head *snapshot.Snapshot, next func() (*snapshot.Goroutine, error)) (*profile.Profile, error) {
	chunk := *head
	chunk.Goroutines = make([]snapshot.Goroutine, 0, foldChunk)
	var acc *profile.Profile
	for done := false; !done; {
		chunk.Goroutines = chunk.Goroutines[:0]
		for len(chunk.Goroutines) < foldChunk {
			g, err := next()
			if err == io.EOF {
				done = true
				break
			}
			if err != nil {
				return nil, err
			}
			chunk.Goroutines = append(chunk.Goroutines, snapshot.KeepGoroutine(g))
		}
		if len(chunk.Goroutines) == 0 && acc != nil {
			break
		}
		p := fold.Goroutines(&chunk)
		if acc == nil {
			acc = p
			continue
		}
		merged, err := profile.Merge([]*profile.Profile{acc, p})
		if err != nil {
			return nil, fmt.Errorf("merge the profiles of %d goroutines at a time: %w", foldChunk, err)
		}
		acc = merged
	}
	return acc, nil
}

func contentType(format string) string {
	switch format {
	case "json":
		return "application/json"
	case "folded":
		return "text/plain; charset=utf-8"
	}
	return "application/octet-stream"
}

// parsePage reads the moment (at=) and the page (offset=, limit=) of a
// paged answer.
func parsePage(r *http.Request) (at time.Time, offset, limit int, err error) {
	if at, err = parseTime(r, "at"); err != nil {
		return at, 0, 0, err
	}
	if offset, err = intParam(r, "offset", 0); err != nil {
		return at, 0, 0, err
	}
	limit, err = intParam(r, "limit", defaultPageSize)
	return at, offset, limit, err
}
