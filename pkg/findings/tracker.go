package findings

import (
	"slices"
	"time"

	"github.com/goroscope/goroscope/pkg/snapshot"
)

// Tracker follows the groups of one process from snapshot to snapshot and
// judges them. It is not safe for concurrent use: one per process, fed in
// time order.
type Tracker struct {
	cfg   Config
	sites map[Site]*history
}

// history is what the tracker remembers of one site.
type history struct {
	// firstSeen and lastSeen are when the group was first and last seen
	// with goroutines.
	firstSeen, lastSeen time.Time
	points              []point
	// members are the goroutine ids now in the group, with when each was
	// first seen in it; gen numbers the observations, to find who left.
	members map[uint64]*membership
	gen     uint64
	// moved are former members parked elsewhere, for maxAwayTime.
	moved map[uint64]*membership
	// lastIDs are the group's goroutines at the last observation.
	lastIDs []uint64
}

// membership is one goroutine's stay in a group.
type membership struct {
	since time.Time
	gen   uint64 // the last observation that saw it
	// away counts the observations in a row that saw it elsewhere, since
	// awaySince.
	away      uint8
	awaySince time.Time
}

// A member may be seen elsewhere (awake, or waiting on a lock on its way
// back) for maxAway observations in a row and maxAwayTime, and stay one:
// on a saturated host, goroutines that wake often are caught awake for
// seconds.
const (
	maxAway     = 3
	maxAwayTime = 30 * time.Second
)

// point is one snapshot of a group: its size (its members, those parked
// elsewhere for a moment included), how many of them were away, and how
// many goroutines joined and left it since the snapshot before.
type point struct {
	t                             time.Time
	count, away, joined, departed int
}

// NewTracker returns a tracker judging by cfg (zero fields: defaults).
func NewTracker(cfg Config) *Tracker {
	return &Tracker{cfg: cfg.withDefaults(), sites: map[Site]*history{}}
}

// Observe takes the next snapshot of the process and returns its groups
// (the largest first) and the findings that hold now (the worst first).
func (t *Tracker) Observe(s *snapshot.Snapshot) ([]*Group, []Finding) {
	now := s.Time
	groups := Groups(s)
	// Where each goroutine is now, made when a group first misses a
	// member: one elsewhere for a moment has not left it.
	var whereMap map[uint64]*Group
	where := func(id uint64) *Group {
		if whereMap == nil {
			whereMap = make(map[uint64]*Group, len(s.Goroutines))
			for _, g := range groups {
				for _, id := range g.ids {
					whereMap[id] = g
				}
			}
		}
		return whereMap[id]
	}
	w := s.Weight()
	for _, g := range groups {
		h := t.sites[g.Site]
		if h == nil {
			h = &history{firstSeen: now, members: map[uint64]*membership{}}
			t.sites[g.Site] = h
		}
		h.observe(now, g, where, w, t.cfg.Leak.Window)
		h.lastSeen = now
	}
	// Sites not seen for a whole window are forgotten; one that emptied
	// shows as a point of zero, so its departures count.
	for site, h := range t.sites {
		if h.lastSeen.Equal(now) {
			continue
		}
		if now.Sub(h.lastSeen) > t.cfg.Leak.Window {
			delete(t.sites, site)
			continue
		}
		h.observe(now, &Group{Site: site}, where, w, t.cfg.Leak.Window)
	}
	var leaks []Finding
	for _, g := range groups {
		if f, ok := t.leak(g, now); ok {
			leaks = append(leaks, f)
		}
	}
	out := mergeLeaks(leaks)
	out = append(out, t.stuck(s, groups)...)
	if f, ok := t.allAsleep(s, groups); ok {
		out = append(out, f)
	}
	sortFindings(out)
	return groups, out
}

// observe adds a snapshot of the group to the history, keeping the points
// of the last window. A member that is parked elsewhere stops being one
// but keeps its place for maxAwayTime: on a busy host, goroutines that
// wake often are caught on a lock on their way back, and when they come
// back they are the members they were. One awake (running, runnable, in
// a system call) stays a member for maxAway observations and maxAwayTime.
// A member departs when it ends, or is away for longer. The history
// counts the members, each weighing w.
func (h *history) observe(now time.Time, g *Group, where func(id uint64) *Group, w int, window time.Duration) {
	p := point{t: now}
	h.gen++
	if len(g.ids) > 0 && len(h.moved) == 0 && len(h.members) == len(g.ids) && slices.Equal(g.ids, h.lastIDs) {
		// The same goroutines as last time, none away: the common case
		// of a process at rest costs no lookup per goroutine.
		h.gen--
		p.count = len(h.members) * w
		h.addPoint(p, now, window)
		return
	}
	defer func() { h.lastIDs = append(h.lastIDs[:0], g.ids...) }()
	for _, id := range g.ids {
		if m := h.members[id]; m != nil {
			m.gen, m.away, m.awaySince = h.gen, 0, time.Time{}
			continue
		}
		if m, ok := h.moved[id]; ok { // back from elsewhere
			delete(h.moved, id)
			m.gen, m.away, m.awaySince = h.gen, 0, time.Time{}
			h.members[id] = m
			continue
		}
		h.members[id] = &membership{since: now, gen: h.gen}
		p.joined++
	}
	if len(h.members) > len(g.ids) { // someone left, or is awake
		for id, m := range h.members {
			if m.gen == h.gen {
				continue
			}
			if m.away == 0 {
				m.awaySince = now
			}
			cur := where(id)
			switch {
			case cur == nil: // ended
				delete(h.members, id)
				p.departed++
			case cur.Site.State == snapshot.StateWaiting: // parked elsewhere
				delete(h.members, id)
				if h.moved == nil {
					h.moved = map[uint64]*membership{}
				}
				h.moved[id] = m
			case m.away < maxAway || now.Sub(m.awaySince) < maxAwayTime: // awake
				m.gen = h.gen
				m.away = min(m.away+1, maxAway)
			default:
				delete(h.members, id)
				p.departed++
			}
		}
	}
	for id, m := range h.moved {
		if now.Sub(m.awaySince) >= maxAwayTime { // gone for good
			delete(h.moved, id)
			p.departed++
		}
	}
	p.count, p.away = (len(h.members)+len(h.moved))*w, len(h.moved)*w
	h.addPoint(p, now, window)
}

// addPoint appends p and forgets the points older than the window.
func (h *history) addPoint(p point, now time.Time, window time.Duration) {
	h.points = append(h.points, p)
	cut := 0
	for cut < len(h.points)-1 && now.Sub(h.points[cut].t) > window {
		cut++
	}
	h.points = h.points[cut:]
}

// oldest is when the group's longest-staying goroutine joined it.
func (h *history) oldest() time.Time {
	var o time.Time
	for _, m := range h.members {
		if o.IsZero() || m.since.Before(o) {
			o = m.since
		}
	}
	return o
}
