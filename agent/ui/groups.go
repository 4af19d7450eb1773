package ui

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/url"
	"reflect"
	"slices"
	"strings"

	"github.com/goroscope/goroscope/pkg/snapshot"
	"github.com/goroscope/goroscope/pkg/store"
)

// Goroutine groups: the goroutine table grouped as runtime/pprof's debug=1
// dump and panicparse group it.
//
//	GET /api/processes/{pid}/{start}/goroutines/groups?at=&q=&addr=&sort=count|wait&offset=&limit=&filters
//	    {entry, total, matched, groups_total, offset, sort, max_groups, cut,
//	     ungrouped, groups: [group]} where a group is {id, count, state,
//	    wait_reason, system, oldest_wait, min_wait, oldest_id, first_id,
//	    frames, truncated, created_by, labels, labels_vary, blocked,
//	    blocked_on, objects, objects_more}: the goroutines passing the
//	    filters, q and addr that share their stack, state, wait reason and
//	    creator. oldest_wait is their longest wait (seconds), oldest_id the
//	    goroutine waiting it; labels and blocked_on are the first member's
//	    (labels_vary says others differ; blocked counts the members blocked
//	    on an object, objects lists the first distinct addresses they are
//	    blocked on, objects_more says there are more). sort=count (the
//	    default) puts the largest groups first, sort=wait the longest
//	    waiting; offset and limit (at most 1000, default 100) page them.
//	    Only maxGroups groups are kept: the goroutines of later ones are
//	    counted in ungrouped and cut is set.
//
// The goroutines endpoint takes two more parameters for these: group=ID
// lists the members of a group (id as above), addr=ADDRESS the goroutines
// blocked on that channel or semaphore (blocked_on.address or one of
// blocked_on.others' is ADDRESS): its queue.

// maxGroups bounds the groups one answer keeps.
const maxGroups = 10000

// maxGroupObjects bounds the distinct blocked-on addresses a group lists.
const maxGroupObjects = 8

// maxAddrLen bounds the addr= parameter.
const maxAddrLen = 64

// Sort orders of the groups endpoint.
const (
	sortCount = "count"
	sortWait  = "wait"
)

// Group is the goroutines of a snapshot sharing stack, state, wait reason
// and creator: counters and one example.
type Group struct {
	// ID names the group in the goroutines endpoint's group= parameter.
	ID         string         `json:"id"`
	Count      int            `json:"count"`
	State      snapshot.State `json:"state"`
	WaitReason string         `json:"wait_reason,omitempty"`
	System     bool           `json:"system"`
	// OldestWait and MinWait are the longest and shortest WaitingSeconds
	// of the members; OldestID is the member waiting longest.
	OldestWait float64 `json:"oldest_wait"`
	MinWait    float64 `json:"min_wait"`
	OldestID   uint64  `json:"oldest_id"`
	// FirstID is the first member read (the example).
	FirstID   uint64           `json:"first_id"`
	Frames    []snapshot.Frame `json:"frames"`
	Truncated bool             `json:"truncated,omitempty"`
	CreatedBy *snapshot.Frame  `json:"created_by,omitempty"`
	// Labels are the first member's; LabelsVary is set when another
	// member's differ.
	Labels     map[string]string `json:"labels,omitempty"`
	LabelsVary bool              `json:"labels_vary,omitempty"`
	// Blocked counts the members blocked on an object; BlockedOn is the
	// first one's; Objects the first distinct addresses they are blocked
	// on (maxGroupObjects), ObjectsMore set when there are more.
	Blocked     int                 `json:"blocked"`
	BlockedOn   *snapshot.BlockedOn `json:"blocked_on,omitempty"`
	Objects     []string            `json:"objects"`
	ObjectsMore bool                `json:"objects_more,omitempty"`

	order int // the group's place in the snapshot, to break ties
}

// GroupPage is a page of the groups of the goroutines that match a search.
type GroupPage struct {
	// Total is every goroutine of the snapshot; Matched those that passed.
	Total   int `json:"total"`
	Matched int `json:"matched"`
	// GroupsTotal is the groups the matched goroutines make (at most
	// MaxGroups); Groups is the page of them asked for.
	GroupsTotal int    `json:"groups_total"`
	Offset      int    `json:"offset"`
	Sort        string `json:"sort"`
	MaxGroups   int    `json:"max_groups"`
	// Cut is set when the matched goroutines made more than MaxGroups
	// groups; Ungrouped counts the goroutines of those left out.
	Cut       bool    `json:"cut"`
	Ungrouped int     `json:"ungrouped"`
	Groups    []Group `json:"groups"`
}

// GroupsAnswer is the groups endpoint's answer.
type GroupsAnswer struct {
	Entry store.Meta `json:"entry"`
	GroupPage
}

// Narrow selects goroutines past a Filter: the members of one group, or
// those blocked on one address. Zero fields match everything.
type Narrow struct {
	Group string
	Addr  string
}

// groupIDLen is the length of a group id: 16 hex digits.
const groupIDLen = 16

// parseNarrow reads the group= and addr= parameters.
func parseNarrow(q url.Values) (Narrow, error) {
	n := Narrow{Group: q.Get("group"), Addr: q.Get("addr")}
	if n.Group != "" {
		if _, err := hex.DecodeString(n.Group); err != nil || len(n.Group) != groupIDLen {
			return Narrow{}, badRequest("group=%q: want a group id, %d hex digits", n.Group, groupIDLen)
		}
	}
	if len(n.Addr) > maxAddrLen || strings.ContainsAny(n.Addr, " \t\r\n") {
		return Narrow{}, badRequest("addr=%.80q: want an address like 0xc000123000", n.Addr)
	}
	return n, nil
}

// blockedOnAddr reports whether g is blocked on addr: its blocked_on's
// address or one of its others' (case-insensitive).
func blockedOnAddr(g *snapshot.Goroutine, addr string) bool {
	b := g.BlockedOn
	if b == nil {
		return false
	}
	if strings.EqualFold(b.Address, addr) {
		return true
	}
	for i := range b.Others {
		if strings.EqualFold(b.Others[i].Address, addr) {
			return true
		}
	}
	return false
}

// predicate returns whether a goroutine passes n, for a loop over one
// snapshot's goroutines (group ids are kept in a bounded cache).
func (n Narrow) predicate() func(*snapshot.Goroutine) bool {
	if n.Group == "" && n.Addr == "" {
		return func(*snapshot.Goroutine) bool { return true }
	}
	var keys *grouper
	if n.Group != "" {
		keys = newGrouper()
	}
	return func(g *snapshot.Goroutine) bool {
		if n.Addr != "" && !blockedOnAddr(g, n.Addr) {
			return false
		}
		return keys == nil || keys.id(g) == n.Group
	}
}

// groupKey is what goroutines of one group share.
type groupKey struct {
	stack     [16]byte
	truncated bool
	state     snapshot.State
	reason    string
	system    bool
	hasBy     bool
	by        snapshot.Frame // Function, File and Line only
}

// grouper works out goroutines' group keys, keeping the digests of stacks
// (by identity, as the matcher does) and ids of keys in bounded caches.
type grouper struct {
	stacks map[stackKey][16]byte
	ids    map[groupKey]string
	buf    []byte
}

func newGrouper() *grouper {
	return &grouper{stacks: map[stackKey][16]byte{}, ids: map[groupKey]string{}}
}

// key is g's group key.
func (gr *grouper) key(g *snapshot.Goroutine) groupKey {
	k := groupKey{stack: gr.stackSum(g.Frames), truncated: g.Truncated, state: g.State, reason: g.WaitReason, system: g.System}
	if g.CreatedBy != nil {
		k.hasBy = true
		k.by = snapshot.Frame{Function: g.CreatedBy.Function, File: g.CreatedBy.File, Line: g.CreatedBy.Line}
	}
	return k
}

// id is the id of g's group.
func (gr *grouper) id(g *snapshot.Goroutine) string {
	k := gr.key(g)
	if id, ok := gr.ids[k]; ok {
		return id
	}
	if len(gr.ids) >= maxMatchCache {
		clear(gr.ids)
	}
	id := gr.keyID(k)
	gr.ids[k] = id
	return id
}

// keyID is the id of the group of key k: a digest of its fields.
func (gr *grouper) keyID(k groupKey) string {
	b := append(gr.buf[:0], k.stack[:]...)
	b = append(b, flagByte(k.truncated), flagByte(k.system), flagByte(k.hasBy))
	b = appendString(b, string(k.state))
	b = appendString(b, k.reason)
	b = appendString(b, k.by.Function)
	b = appendString(b, k.by.File)
	b = binary.AppendVarint(b, int64(k.by.Line))
	gr.buf = b
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:groupIDLen/2])
}

// stackSum is a digest of frames' functions, files, lines and inlining.
func (gr *grouper) stackSum(frames []snapshot.Frame) [16]byte {
	var key stackKey
	if len(frames) > 0 {
		key = stackKey{&frames[0], len(frames)}
		if s, ok := gr.stacks[key]; ok {
			return s
		}
	}
	b := gr.buf[:0]
	for i := range frames {
		f := &frames[i]
		b = appendString(b, f.Function)
		b = appendString(b, f.File)
		b = binary.AppendVarint(b, int64(f.Line))
		b = append(b, flagByte(f.Inlined))
	}
	gr.buf = b
	var s [16]byte
	full := sha256.Sum256(b)
	copy(s[:], full[:])
	if len(frames) > 0 {
		if len(gr.stacks) >= maxMatchCache {
			clear(gr.stacks)
		}
		gr.stacks[key] = s
	}
	return s
}

func appendString(b []byte, s string) []byte {
	return append(binary.AppendUvarint(b, uint64(len(s))), s...)
}

func flagByte(v bool) byte {
	if v {
		return 1
	}
	return 0
}

// GroupGoroutines groups the goroutines of s that pass f, n and query
// (as SearchGoroutines) and returns the page of groups offset and limit
// ask for, in the order sortBy names ("count" or "wait").
func GroupGoroutines(s *snapshot.Snapshot, f Filter, n Narrow, query, sortBy string, offset, limit int) GroupPage {
	p, _ := groupStream(context.Background(), sliceNext(s.Goroutines), f, n, query, sortBy, offset, limit, maxGroups)
	return p
}

// groupStream is GroupGoroutines over the goroutines next returns until
// io.EOF, keeping at most most groups: counters and one example each.
func groupStream(ctx context.Context, next func() (*snapshot.Goroutine, error), f Filter, n Narrow, query, sortBy string, offset, limit, most int) (GroupPage, error) {
	if limit <= 0 {
		limit = defaultPageSize
	}
	limit = min(limit, maxPageSize)
	offset = max(offset, 0)
	sortBy = cmp.Or(sortBy, sortCount)
	m := newMatcher(query)
	pass, narrow := f.predicate(), n.predicate()
	gr := newGrouper()
	groups := map[groupKey]*Group{}
	p := GroupPage{Offset: offset, Sort: sortBy, MaxGroups: most, Groups: []Group{}}
	for ; ; p.Total++ {
		g, err := next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return GroupPage{}, err
		}
		if p.Total%checkEvery == 0 && ctx.Err() != nil {
			return GroupPage{}, context.Cause(ctx)
		}
		if !pass(g) || !narrow(g) || !m.match(g) {
			continue
		}
		p.Matched++
		k := gr.key(g)
		grp := groups[k]
		if grp == nil {
			if len(groups) >= most {
				p.Cut = true
				p.Ungrouped++
				continue
			}
			grp = newGroup(g, gr.keyID(k), len(groups))
			groups[k] = grp
		}
		grp.add(g)
	}
	p.GroupsTotal = len(groups)
	all := slices.Collect(maps.Values(groups))
	slices.SortFunc(all, func(a, b *Group) int {
		var c int
		if sortBy == sortWait {
			c = cmp.Or(cmp.Compare(b.OldestWait, a.OldestWait), cmp.Compare(b.Count, a.Count))
		} else {
			c = cmp.Or(cmp.Compare(b.Count, a.Count), cmp.Compare(b.OldestWait, a.OldestWait))
		}
		return cmp.Or(c, cmp.Compare(a.order, b.order))
	})
	for _, grp := range all[min(offset, len(all)):min(offset+limit, len(all))] {
		p.Groups = append(p.Groups, *grp)
	}
	return p, nil
}

// newGroup starts the group of id with g as its example.
func newGroup(g *snapshot.Goroutine, id string, order int) *Group {
	k := snapshot.KeepGoroutine(g)
	grp := &Group{ID: id, State: g.State, WaitReason: g.WaitReason, System: g.System, Frames: k.Frames, Truncated: g.Truncated,
		CreatedBy: k.CreatedBy, Labels: g.Labels, FirstID: g.ID, OldestID: g.ID, OldestWait: g.WaitingSeconds, MinWait: g.WaitingSeconds,
		Objects: []string{}, order: order}
	if grp.Frames == nil {
		grp.Frames = []snapshot.Frame{}
	}
	return grp
}

// add counts g, a goroutine of the group, in it.
func (grp *Group) add(g *snapshot.Goroutine) {
	grp.Count++
	if g.WaitingSeconds > grp.OldestWait {
		grp.OldestWait, grp.OldestID = g.WaitingSeconds, g.ID
	}
	grp.MinWait = min(grp.MinWait, g.WaitingSeconds)
	if !grp.LabelsVary && grp.Count > 1 && !sameLabels(grp.Labels, g.Labels) {
		grp.LabelsVary = true
	}
	b := g.BlockedOn
	if b == nil {
		return
	}
	grp.Blocked++
	if grp.BlockedOn == nil {
		k := *b
		grp.BlockedOn = &k
	}
	if slices.Contains(grp.Objects, b.Address) {
		return
	}
	if len(grp.Objects) >= maxGroupObjects {
		grp.ObjectsMore = true
		return
	}
	grp.Objects = append(grp.Objects, b.Address)
}

// sameLabels reports whether two label sets are equal; the decoders share
// one map among the goroutines of a label set.
func sameLabels(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	if len(a) == 0 || reflect.ValueOf(a).UnsafePointer() == reflect.ValueOf(b).UnsafePointer() {
		return true
	}
	return maps.Equal(a, b)
}

func (s *server) goroutineGroups(r *http.Request) (any, error) {
	k, err := processKey(r)
	if err != nil {
		return nil, err
	}
	q := r.URL.Query()
	f, err := ParseFilter(q)
	if err != nil {
		return nil, err
	}
	n, err := parseNarrow(q)
	if err != nil {
		return nil, err
	}
	sortBy := cmp.Or(q.Get("sort"), sortCount)
	if sortBy != sortCount && sortBy != sortWait {
		return nil, badRequest("sort=%q: want count or wait", sortBy)
	}
	at, offset, limit, err := parsePage(r)
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
	p, err := groupStream(r.Context(), st.Next, f, n, q.Get("q"), sortBy, offset, limit, maxGroups)
	if err != nil {
		return nil, fmt.Errorf("read %s entry %d: %w", m.Kind, m.ID, err)
	}
	return GroupsAnswer{Entry: m, GroupPage: p}, nil
}
