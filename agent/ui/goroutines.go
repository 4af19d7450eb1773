package ui

import (
	"bytes"
	"context"
	"io"
	"reflect"
	"strconv"
	"strings"
	"unsafe"

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
// labels, any frame's "function file:line" or their creator's function; a
// word that is an address (0x and at least 4 hex digits) also matches the
// address of what they are blocked on (blocked_on and blocked_on.others);
// offset and limit page the result. Words cannot tell a group of
// pkg/findings (a site) from goroutines passing through the same code: f.Site
// can.
func SearchGoroutines(s *snapshot.Snapshot, f Filter, query string, offset, limit int) Page {
	p, _ := searchStream(context.Background(), sliceNext(s.Goroutines), f, query, offset, limit)
	return p
}

// checkEvery is how many goroutines a loop over a snapshot reads between
// looks at its request's context.
const checkEvery = 1 << 12

// searchStream is SearchGoroutines over the goroutines next returns until
// io.EOF: it keeps the requested page only. It stops with ctx's error
// when ctx is done.
func searchStream(ctx context.Context, next func() (*snapshot.Goroutine, error), f Filter, query string, offset, limit int) (Page, error) {
	return searchNarrowed(ctx, next, f, Narrow{}, query, offset, limit)
}

// searchNarrowed is searchStream keeping the goroutines that pass n too:
// a group's members, or the queue of a channel or semaphore.
func searchNarrowed(ctx context.Context, next func() (*snapshot.Goroutine, error), f Filter, n Narrow, query string, offset, limit int) (Page, error) {
	if limit <= 0 {
		limit = defaultPageSize
	}
	limit = min(limit, maxPageSize)
	offset = max(offset, 0)
	m := newMatcher(query)
	pass, narrow := f.predicate(), n.predicate()
	p := Page{Offset: offset, Goroutines: []snapshot.Goroutine{}}
	for ; ; p.Total++ {
		g, err := next()
		if err == io.EOF {
			return p, nil
		}
		if err != nil {
			return Page{}, err
		}
		if p.Total%checkEvery == 0 && ctx.Err() != nil {
			return Page{}, context.Cause(ctx)
		}
		if !pass(g) || !narrow(g) || !m.match(g) {
			continue
		}
		if p.Matched >= offset && len(p.Goroutines) < limit {
			p.Goroutines = append(p.Goroutines, snapshot.KeepGoroutine(g))
		}
		p.Matched++
	}
}

// sliceNext returns the goroutines of gs one at a time, then io.EOF.
func sliceNext(gs []snapshot.Goroutine) func() (*snapshot.Goroutine, error) {
	i := 0
	return func() (*snapshot.Goroutine, error) {
		if i == len(gs) {
			return nil, io.EOF
		}
		i++
		return &gs[i-1], nil
	}
}

// maxMatchCache bounds each cache of a matcher; a full one starts over.
// The caches keep their stacks and label sets alive: a JSON snapshot's
// goroutines each have their own, so this bounds what a search holds.
const maxMatchCache = 1 << 12

// matcher decides whether a goroutine holds every word of a search in its
// searchable text: lines of its id, state, wait reason, each label as
// k=v, each frame as "function file:line", and its creator's function.
// Words hold no white space, so a word is found in the text if and only
// if it is found in one of its lines; the words each line holds are a bit
// set, and those of stacks, label sets and repeated strings are kept, so
// that goroutines sharing them (the decoders intern them) cost a lookup.
type matcher struct {
	words     []string
	wordBytes [][]byte
	// all has a bit per word; addrs one per word that is an address.
	all, addrs uint32
	// stacks and labels are keyed by identity (which keeps the key
	// alive: an address cannot be reused while cached); lines by text.
	stacks map[stackKey]uint32
	labels map[unsafe.Pointer]uint32
	lines  map[string]uint32
	buf    []byte
}

// stackKey identifies a frame slice by its first element and length.
type stackKey struct {
	first *snapshot.Frame
	n     int
}

// newMatcher returns the matcher of query's words (at most maxSearchWords).
func newMatcher(query string) *matcher {
	words := strings.Fields(strings.ToLower(query))
	if len(words) > maxSearchWords {
		words = words[:maxSearchWords]
	}
	m := &matcher{words: words, all: 1<<len(words) - 1,
		stacks: map[stackKey]uint32{}, labels: map[unsafe.Pointer]uint32{}, lines: map[string]uint32{}}
	for i, w := range words {
		m.wordBytes = append(m.wordBytes, []byte(w))
		if isAddrWord(w) {
			m.addrs |= 1 << i
		}
	}
	return m
}

// match reports whether every word occurs in g's searchable text.
func (m *matcher) match(g *snapshot.Goroutine) bool {
	if len(m.words) == 0 {
		return true
	}
	bits := m.idBits(g.ID) | m.cachedLine(string(g.State)) | m.cachedLine(g.WaitReason)
	if g.CreatedBy != nil {
		bits |= m.cachedLine(g.CreatedBy.Function)
	}
	if bits == m.all {
		return true
	}
	if g.BlockedOn != nil && m.addrs&^bits != 0 {
		bits |= m.blockedBits(g.BlockedOn)
	}
	return bits|m.labelBits(g.Labels)|m.stackBits(g.Frames) == m.all
}

// isAddrWord reports whether a search word (lower case) is an address:
// 0x and at least 4 hex digits.
func isAddrWord(w string) bool {
	if len(w) < 6 || !strings.HasPrefix(w, "0x") {
		return false
	}
	for _, c := range []byte(w[2:]) {
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return true
}

// blockedBits is the set of address words the addresses of what a
// goroutine is blocked on hold. Addresses are not cached: most are seen
// by a few goroutines only.
func (m *matcher) blockedBits(b *snapshot.BlockedOn) uint32 {
	bits := m.lineBits(b.Address) & m.addrs
	for i := range b.Others {
		bits |= m.lineBits(b.Others[i].Address) & m.addrs
	}
	return bits
}

// idBits is the set of words a goroutine id holds.
func (m *matcher) idBits(id uint64) uint32 {
	m.buf = strconv.AppendUint(m.buf[:0], id, 10)
	var bits uint32
	for i, w := range m.wordBytes {
		if bytes.Contains(m.buf, w) {
			bits |= 1 << i
		}
	}
	return bits
}

// lineBits is the set of words line holds, case-insensitively.
func (m *matcher) lineBits(line string) uint32 {
	if line == "" {
		return 0
	}
	line = strings.ToLower(line)
	var bits uint32
	for i, w := range m.words {
		if strings.Contains(line, w) {
			bits |= 1 << i
		}
	}
	return bits
}

// cachedLine is lineBits, kept for lines seen again (states, wait
// reasons, creators).
func (m *matcher) cachedLine(line string) uint32 {
	if bits, ok := m.lines[line]; ok {
		return bits
	}
	if len(m.lines) >= maxMatchCache {
		clear(m.lines)
	}
	bits := m.lineBits(line)
	m.lines[line] = bits
	return bits
}

// labelBits is the set of words a label set holds, one k=v line each.
func (m *matcher) labelBits(labels map[string]string) uint32 {
	if len(labels) == 0 {
		return 0
	}
	id := reflect.ValueOf(labels).UnsafePointer()
	if bits, ok := m.labels[id]; ok {
		return bits
	}
	var bits uint32
	for k, v := range labels {
		bits |= m.lineBits(k + "=" + v)
	}
	if len(m.labels) >= maxMatchCache {
		clear(m.labels)
	}
	m.labels[id] = bits
	return bits
}

// stackBits is the set of words a stack holds, one line per frame.
func (m *matcher) stackBits(frames []snapshot.Frame) uint32 {
	if len(frames) == 0 {
		return 0
	}
	key := stackKey{&frames[0], len(frames)}
	if bits, ok := m.stacks[key]; ok {
		return bits
	}
	var bits uint32
	for _, fr := range frames {
		bits |= m.lineBits(fr.Function + " " + fr.File + ":" + strconv.Itoa(fr.Line))
	}
	if len(m.stacks) >= maxMatchCache {
		clear(m.stacks)
	}
	m.stacks[key] = bits
	return bits
}
