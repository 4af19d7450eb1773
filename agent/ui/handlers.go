package ui

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"

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
	out := BuildSeries(ms)
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
	return pr, nil
}

// FlameAnswer is the flame endpoint's answer.
type FlameAnswer struct {
	Entry store.Meta `json:"entry"`
	*Flame
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
	m, p, err := profileAt(s.src, pr.key, pr.kind, at)
	if err != nil {
		return nil, err
	}
	return FlameAnswer{Entry: m, Flame: BuildFlame(p, pr.filter, "all")}, nil
}

// DiffAnswer is the diff endpoint's answer.
type DiffAnswer struct {
	From store.Meta `json:"from"`
	To   store.Meta `json:"to"`
	*Diff
}

func (s *server) diff(r *http.Request) (any, error) {
	pr, err := parseProfileRequest(r, store.KindGoroutines, store.KindGoroutines)
	if err != nil {
		return nil, err
	}
	from, to, err := parseRange(r)
	if err != nil {
		return nil, err
	}
	if from.IsZero() {
		return nil, badRequest("diff needs from= (an RFC 3339 time); to= defaults to the newest entry")
	}
	mf, pf, err := profileAt(s.src, pr.key, pr.kind, from)
	if err != nil {
		return nil, err
	}
	mt, pt, err := profileAt(s.src, pr.key, pr.kind, to)
	if err != nil {
		return nil, err
	}
	return DiffAnswer{From: mf, To: mt, Diff: BuildDiff(pf, pt, pr.filter)}, nil
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
	at, err := parseTime(r, "at")
	if err != nil {
		return nil, err
	}
	offset, err := intParam(r, "offset", 0)
	if err != nil {
		return nil, err
	}
	limit, err := intParam(r, "limit", defaultPageSize)
	if err != nil {
		return nil, err
	}
	m, err := entryAt(s.src, k, store.KindSnapshot, at)
	if err != nil {
		return nil, err
	}
	snap, err := loadSnapshot(s.src, m)
	if err != nil {
		return nil, err
	}
	return GoroutinesAnswer{Entry: m, Page: SearchGoroutines(snap, f, r.URL.Query().Get("q"), offset, limit)}, nil
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

// download answers an entry as a file: pprof, folded or JSON.
func (s *server) download(w http.ResponseWriter, r *http.Request) {
	body, name, ctype, err := s.downloadBody(r)
	if err != nil {
		s.logError(r, err)
		writeError(w, err)
		return
	}
	w.Header().Set("Content-Type", ctype)
	w.Header().Set("Content-Disposition", fmt.Sprintf("attachment; filename=%q", name))
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	_, _ = w.Write(body)
}

func (s *server) downloadBody(r *http.Request) (body []byte, name, ctype string, err error) {
	pr, err := parseProfileRequest(r, store.KindGoroutines, downloadKinds()...)
	if err != nil {
		return nil, "", "", err
	}
	format := r.URL.Query().Get("format")
	if format == "" {
		format = "pprof"
	}
	ext := map[string]string{"pprof": "pb.gz", "folded": "folded.txt", "json": "json"}[format]
	if ext == "" {
		return nil, "", "", badRequest("format=%q: want pprof, folded or json", format)
	}
	at, err := parseTime(r, "at")
	if err != nil {
		return nil, "", "", err
	}
	m, err := entryAt(s.src, pr.key, pr.kind, at)
	if err != nil {
		return nil, "", "", err
	}
	name = fmt.Sprintf("%s-%d-%s.%s", m.Kind, m.Process.PID, m.Time.UTC().Format("20060102T150405Z"), ext)
	var buf bytes.Buffer
	if pr.kind == store.KindSnapshot {
		snap, err := loadSnapshot(s.src, m)
		if err != nil {
			return nil, "", "", err
		}
		keep := snap.Goroutines[:0]
		for i := range snap.Goroutines {
			if pr.filter.MatchGoroutine(&snap.Goroutines[i]) {
				keep = append(keep, snap.Goroutines[i])
			}
		}
		snap.Goroutines = keep
		switch format {
		case "pprof":
			err = fold.Goroutines(snap).Write(&buf)
		case "folded":
			err = snapshot.WriteFolded(&buf, snap)
		case "json":
			err = snapshot.WriteJSON(&buf, snap)
		}
		if err != nil {
			return nil, "", "", fmt.Errorf("encode snapshot entry %d as %s: %w", m.ID, format, err)
		}
		return buf.Bytes(), name, contentType(format), nil
	}
	if format == "pprof" && pr.filter.IsZero() {
		data, err := s.src.Read(m.ID)
		if err != nil {
			return nil, "", "", fmt.Errorf("read %s entry %d: %w", m.Kind, m.ID, err)
		}
		return data, name, contentType(format), nil
	}
	p, err := loadProfile(s.src, m)
	if err != nil {
		return nil, "", "", err
	}
	switch format {
	case "pprof":
		err = FilterProfile(p, pr.filter).Write(&buf)
	case "folded":
		err = WriteFolded(&buf, p, pr.filter)
	case "json":
		err = json.NewEncoder(&buf).Encode(FlameAnswer{Entry: m, Flame: BuildFlame(p, pr.filter, "all")})
	}
	if err != nil {
		return nil, "", "", fmt.Errorf("encode %s entry %d as %s: %w", m.Kind, m.ID, format, err)
	}
	return buf.Bytes(), name, contentType(format), nil
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
