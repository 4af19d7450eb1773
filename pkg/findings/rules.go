package findings

import (
	"cmp"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/goroscope/goroscope/pkg/snapshot"
)

// leak judges a group by its history: parked, large enough, grown by
// enough over the window and in each third of it, and few leaving.
func (t *Tracker) leak(g *Group, now time.Time) (Finding, bool) {
	r := t.cfg.Leak
	h := t.sites[g.Site]
	if h == nil || g.Site.State != snapshot.StateWaiting || len(h.points) < 3 {
		return Finding{}, false
	}
	first, last := h.points[0], h.points[len(h.points)-1]
	span := now.Sub(first.t)
	if span < r.MinSpan || last.count < r.MinGoroutines {
		return Finding{}, false
	}
	growth := last.count - first.count
	if growth < r.MinGrowth || !growsThroughout(h.points, span) {
		return Finding{}, false
	}
	// Its goroutines stay: the oldest has been in it for half the time
	// at least, and over the window fewer were away than in it. A lock
	// that more and more goroutines pass through grows too, but they
	// spend their time elsewhere.
	oldest := h.oldest()
	var away, all int
	for _, p := range h.points {
		away, all = away+p.away, all+p.count
	}
	if oldest.IsZero() || now.Sub(oldest) < span/2 || 2*away > all {
		return Finding{}, false
	}
	// Of those there at the window's start and those that joined since,
	// how many left.
	var joined, departed int
	for _, p := range h.points[1:] {
		joined += p.joined
		departed += p.departed
	}
	base := first.count + joined
	frac := 0.0
	if base > 0 {
		frac = float64(departed) / float64(base)
	}
	if frac > r.MaxDeparted {
		return Finding{}, false
	}
	f := t.base(KindLeak, g, now, findingID(KindLeak, g.Site.ID()))
	f.FirstSeen = h.firstSeen
	f.GrowthPerHour = float64(growth) / span.Hours()
	f.OldestSeconds = now.Sub(oldest).Seconds()
	f.OldestSeconds = max(f.OldestSeconds, g.MaxWait)
	f.Departed = frac
	f.ConfirmedByRuntime = g.Leaked > 0
	f.Goroutines = last.count
	f.Summary = fmt.Sprintf("%s goroutines %s, +%s/h, the oldest for %s, %s", count(last.count), waitText(g), count(int(f.GrowthPerHour+0.5)),
		duration(f.OldestSeconds), createdText(g.Site))
	if f.ConfirmedByRuntime {
		f.Summary += "; confirmed by the runtime's leak detector"
	}
	return f, true
}

// mergeLeaks makes one finding of the leaks of goroutines from one go
// statement: leaked goroutines that wait at several places (a ticker loop
// and the lock it takes each tick) are one leak. The largest group stands
// for it; the others' sites join its related sites. leaks are the largest
// first.
func mergeLeaks(leaks []Finding) []Finding {
	out := leaks[:0]
	byCreator := map[string]int{}
	for _, f := range leaks {
		i, ok := byCreator[f.Site.CreatedBy]
		if !ok || f.Site.CreatedBy == "" {
			byCreator[f.Site.CreatedBy] = len(out)
			out = append(out, f)
			continue
		}
		out[i].Related = append(out[i].Related, f.Site)
		out[i].Summary += fmt.Sprintf("; also %s in %s", count(f.Goroutines), f.Site.Frame)
	}
	return out
}

// growsThroughout reports whether the count grew in each third of the
// span: a pool that fills up, or a burst, grows for a while and stops.
func growsThroughout(points []point, span time.Duration) bool {
	first := points[0]
	at := func(d time.Duration) int { // the count at the last point by first+d
		c := first.count
		for _, p := range points {
			if p.t.Sub(first.t) <= d {
				c = p.count
			}
		}
		return c
	}
	prev := first.count
	for third := 1; third <= 3; third++ {
		c := at(span * time.Duration(third) / 3)
		if c <= prev {
			return false
		}
		prev = c
	}
	return true
}

// stuck finds objects that at least MinGoroutines goroutines have waited
// on for at least MinWait.
func (t *Tracker) stuck(s *snapshot.Snapshot, groups []*Group) []Finding {
	r := t.cfg.Stuck
	minWait := r.MinWait.Seconds()
	type waiters struct {
		obj     snapshot.BlockedOn
		n       int
		longest float64
		sites   map[Site]int
	}
	w := s.Weight()
	byObj := map[string]*waiters{}
	for i := range s.Goroutines {
		g := &s.Goroutines[i]
		if g.BlockedOn == nil || g.System || g.WaitingSeconds < minWait || !stuckReasons[g.WaitReason] {
			continue
		}
		o := byObj[g.BlockedOn.Address]
		if o == nil {
			o = &waiters{obj: *g.BlockedOn, sites: map[Site]int{}}
			o.obj.Others = nil
			byObj[g.BlockedOn.Address] = o
		}
		o.n += w
		o.longest = max(o.longest, g.WaitingSeconds)
		o.sites[SiteOf(g)] += w
	}
	bySite := map[Site]*Group{}
	for _, g := range groups {
		bySite[g.Site] = g
	}
	var out []Finding
	for addr, o := range byObj {
		if o.n < r.MinGoroutines {
			continue
		}
		// The largest site waiting on it stands for the finding.
		var site Site
		best := -1
		for st, n := range o.sites {
			if n > best || n == best && st.ID() < site.ID() {
				site, best = st, n
			}
		}
		g := bySite[site]
		f := t.base(KindStuck, g, s.Time, findingID(KindStuck, o.obj.Kind, addr))
		f.Goroutines = o.n
		f.OldestSeconds = o.longest
		f.FirstSeen = s.Time.Add(-time.Duration(o.longest * float64(time.Second)))
		f.Objects = []Object{{BlockedOn: o.obj, Goroutines: o.n}}
		f.DistinctObjects = 1
		f.Related = related(groups, minWait, o.longest, func(gr *Group) bool { return o.sites[gr.Site] == 0 })
		f.Summary = fmt.Sprintf("%s goroutines wait %s %s for %s", count(o.n), verbOf(site.WaitReason), objectText(&o.obj), duration(o.longest))
		if len(f.Related) > 0 {
			f.Summary += fmt.Sprintf("; parked as long: %s", siteList(f.Related))
		}
		out = append(out, f)
	}
	slices.SortFunc(out, func(a, b Finding) int { return cmp.Compare(a.ID, b.ID) })
	return out
}

// stuckReasons are the waits that are wrong when long: a lock, a send
// nobody takes, a wait group that never reaches zero. Receivers waiting
// long on an open channel are idle workers, as often as not.
var stuckReasons = map[string]bool{
	"sync.Mutex.Lock": true, "sync.RWMutex.RLock": true, "sync.RWMutex.Lock": true, "semacquire": true,
	"chan send": true, "chan send (nil chan)": true, "sync.WaitGroup.Wait": true,
}

// asleepReasons are the waits only another goroutine can end: nothing
// outside the program (a timer, the network, a signal, the kernel) wakes
// them. A channel receive may be a timer's; MinWait has to cover timers.
var asleepReasons = map[string]bool{
	"chan receive": true, "chan send": true, "chan receive (nil chan)": true, "chan send (nil chan)": true,
	"select": true, "select (no cases)": true, "sync.Cond.Wait": true, "sync.Mutex.Lock": true,
	"sync.RWMutex.RLock": true, "sync.RWMutex.Lock": true, "sync.WaitGroup.Wait": true, "semacquire": true,
}

// allAsleep holds when every goroutine of the program (the runtime's own
// aside) is parked in an asleepReasons wait for at least MinWait.
func (t *Tracker) allAsleep(s *snapshot.Snapshot, groups []*Group) (Finding, bool) {
	minWait := t.cfg.AllAsleep.MinWait.Seconds()
	if s.Stride > 1 && s.Counts.Running+s.Counts.Runnable+s.Counts.Syscall > 0 {
		return Finding{}, false // the sample may not show the one awake
	}
	n, shortest := 0, 0.0
	for i := range s.Goroutines {
		g := &s.Goroutines[i]
		if g.System {
			continue
		}
		if (g.State != snapshot.StateWaiting && g.State != snapshot.StateLeaked) || !asleepReasons[g.WaitReason] || g.WaitingSeconds < minWait {
			return Finding{}, false
		}
		if n == 0 || g.WaitingSeconds < shortest {
			shortest = g.WaitingSeconds
		}
		n++
	}
	if n == 0 || len(groups) == 0 {
		return Finding{}, false
	}
	g := groups[0]
	f := t.base(KindAllAsleep, g, s.Time, findingID(KindAllAsleep))
	f.Goroutines = n * s.Weight()
	f.OldestSeconds = shortest
	f.FirstSeen = s.Time.Add(-time.Duration(shortest * float64(time.Second)))
	f.Related = related(groups, minWait, shortest, func(gr *Group) bool { return gr != g })
	f.Summary = fmt.Sprintf("all %s goroutines have been asleep for at least %s, none can wake another: a deadlock the runtime does not report (largest group: %s %s)",
		count(f.Goroutines), duration(shortest), count(g.Goroutines), waitText(g))
	return f, true
}

// base is a finding about group g, its evidence filled from the group.
func (t *Tracker) base(kind string, g *Group, now time.Time, id string) Finding {
	f := Finding{ID: id, Kind: kind, Time: now}
	if g == nil {
		return f
	}
	f.Site, f.SiteID = g.Site, g.Site.ID()
	f.Goroutines = g.Goroutines
	f.Objects, f.DistinctObjects = g.Objects, g.DistinctObjects
	f.Example, f.Labels = g.Example, g.Labels
	return f
}

// related lists the sites of other groups whose goroutines have waited at
// least minWait, at most three: those whose longest wait began nearest to
// the finding's (wait seconds ago), as the holder of a lock began to wait
// just before its waiters queued.
func related(groups []*Group, minWait, wait float64, other func(*Group) bool) []Site {
	var cands []*Group
	for _, g := range groups {
		if g.Site.State == snapshot.StateWaiting && g.MaxWait >= minWait && other(g) {
			cands = append(cands, g)
		}
	}
	slices.SortStableFunc(cands, func(a, b *Group) int {
		return cmp.Compare(math.Abs(a.MaxWait-wait), math.Abs(b.MaxWait-wait))
	})
	out := make([]Site, 0, 3)
	for _, g := range cands[:min(len(cands), 3)] {
		out = append(out, g.Site)
	}
	return out
}

// waitText says what a group waits on: "wait to receive on chan 0x… (…)".
func waitText(g *Group) string {
	text := "wait " + verbOf(g.Site.WaitReason)
	switch {
	case g.DistinctObjects == 1:
		text += " " + objectText(&g.Objects[0].BlockedOn)
	case g.DistinctObjects > 1:
		text += fmt.Sprintf(" %s distinct objects, such as %s", count(g.DistinctObjects), objectText(&g.Objects[0].BlockedOn))
	case g.Site.WaitReason != "":
		text += " (" + g.Site.WaitReason + ")"
	}
	if g.Site.Frame != "" {
		text += " in " + g.Site.Frame
	}
	return text
}

// verbOf turns a wait reason into what the goroutine waits to do.
func verbOf(reason string) string {
	switch {
	case strings.HasPrefix(reason, "chan receive"):
		return "to receive on"
	case strings.HasPrefix(reason, "chan send"):
		return "to send on"
	case strings.HasPrefix(reason, "select"):
		return "in select on"
	case strings.HasPrefix(reason, "sync.") || reason == "semacquire":
		return "for"
	}
	return "on"
}

// objectText describes an object the way a person checks it.
func objectText(o *snapshot.BlockedOn) string {
	if o.Kind != snapshot.BlockedOnChan {
		return "the semaphore at " + o.Address
	}
	buf := "unbuffered"
	if o.Capacity > 0 {
		buf = fmt.Sprintf("buffer %d of %d", o.Length, o.Capacity)
	}
	closed := "not closed"
	if o.Closed {
		closed = "closed"
	}
	return fmt.Sprintf("chan %s (%s, %d senders, %d receivers, %s)", o.Address, buf, o.Senders, o.Receivers, closed)
}

func createdText(s Site) string {
	if s.CreatedBy == "" {
		return "in the main goroutine"
	}
	return "created by " + s.CreatedBy
}

func siteList(sites []Site) string {
	parts := make([]string, len(sites))
	for i, s := range sites {
		parts[i] = s.Label()
	}
	return strings.Join(parts, "; ")
}

// count writes n with thousands separators: 18,000.
func count(n int) string {
	s := fmt.Sprint(n)
	if n < 0 {
		return "-" + count(-n)
	}
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}

// duration writes seconds the way a person says them: "17 min", "45 s".
func duration(sec float64) string {
	switch {
	case sec >= 2*3600:
		return fmt.Sprintf("%.0f h", sec/3600)
	case sec >= 120:
		return fmt.Sprintf("%.0f min", sec/60)
	}
	return fmt.Sprintf("%.0f s", sec)
}
