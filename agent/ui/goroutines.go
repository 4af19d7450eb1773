package ui

import (
	"strconv"
	"strings"

	"github.com/goroscope/goroscope/pkg/snapshot"
)

// Goroutine table paging.
const (
	defaultPageSize = 100
	maxPageSize     = 1000
	maxSearchWords  = 16
)

// Page is one page of the goroutines of a snapshot that match a search.
type Page struct {
	// Total is every goroutine of the snapshot; Matched those that passed.
	Total      int                  `json:"total"`
	Matched    int                  `json:"matched"`
	Offset     int                  `json:"offset"`
	Goroutines []snapshot.Goroutine `json:"goroutines"`
}

// SearchGoroutines returns the goroutines of s that pass f and contain
// every word of query (case-insensitive) in their id, state, wait reason,
// labels or any frame's function or file; offset and limit page the result.
func SearchGoroutines(s *snapshot.Snapshot, f Filter, query string, offset, limit int) Page {
	words := strings.Fields(strings.ToLower(query))
	if len(words) > maxSearchWords {
		words = words[:maxSearchWords]
	}
	if limit <= 0 {
		limit = defaultPageSize
	}
	limit = min(limit, maxPageSize)
	offset = max(offset, 0)
	p := Page{Total: len(s.Goroutines), Offset: offset, Goroutines: []snapshot.Goroutine{}}
	for i := range s.Goroutines {
		g := &s.Goroutines[i]
		if !f.MatchGoroutine(g) || !matchWords(g, words) {
			continue
		}
		if p.Matched >= offset && len(p.Goroutines) < limit {
			p.Goroutines = append(p.Goroutines, *g)
		}
		p.Matched++
	}
	return p
}

// matchWords reports whether every word occurs in g's searchable text.
func matchWords(g *snapshot.Goroutine, words []string) bool {
	if len(words) == 0 {
		return true
	}
	var b strings.Builder
	b.WriteString(strconv.FormatUint(g.ID, 10))
	b.WriteByte('\n')
	b.WriteString(string(g.State))
	b.WriteByte('\n')
	b.WriteString(g.WaitReason)
	b.WriteByte('\n')
	for k, v := range g.Labels {
		b.WriteString(k)
		b.WriteByte('=')
		b.WriteString(v)
		b.WriteByte('\n')
	}
	for _, fr := range g.Frames {
		b.WriteString(fr.Function)
		b.WriteByte(' ')
		b.WriteString(fr.File)
		b.WriteByte(':')
		b.WriteString(strconv.Itoa(fr.Line))
		b.WriteByte('\n')
	}
	if g.CreatedBy != nil {
		b.WriteString(g.CreatedBy.Function)
		b.WriteByte('\n')
	}
	text := strings.ToLower(b.String())
	for _, w := range words {
		if !strings.Contains(text, w) {
			return false
		}
	}
	return true
}
