package findings

import (
	"cmp"
	"encoding/json"
	"slices"
	"strconv"
	"unsafe"

	"github.com/goroscope/goroscope/pkg/snapshot"
)

// Bounds on what a group keeps.
const (
	// maxObjects bounds the objects a group lists (the most waited on).
	maxObjects = 8
	// maxLabelValues bounds the values kept per pprof label key, and
	// maxLabelKeys the keys.
	maxLabelValues = 8
	maxLabelKeys   = 8
)

// WaitBounds are the upper bounds, in seconds, of the wait-time
// distribution of a group (the last bucket is unbounded).
var WaitBounds = []float64{1, 10, 60, 600, 3600}

// Group is the goroutines of one snapshot at one site.
type Group struct {
	Site Site `json:"site"`
	// Goroutines counts the group's goroutines (each counted Weight times
	// in a sampled snapshot).
	Goroutines int `json:"goroutines"`
	// Leaked counts those Go 1.26's leak detector proved unreachable.
	Leaked int `json:"leaked,omitempty"`
	// Waits is the distribution of their observed wait times over
	// WaitBounds (and one bucket beyond); MaxWait the longest.
	Waits   []int   `json:"waits"`
	MaxWait float64 `json:"max_wait_seconds"`
	// Objects are the objects they wait on, the most waited on first, at
	// most maxObjects; DistinctObjects counts them all.
	Objects         []Object `json:"objects,omitempty"`
	DistinctObjects int      `json:"distinct_objects,omitempty"`
	// Example is one goroutine's stack; Labels the pprof label values
	// seen (a few per key).
	Example []snapshot.Frame    `json:"example"`
	Labels  map[string][]string `json:"labels,omitempty"`
	// ids are the goroutine ids of the group (kept ones only in a sampled
	// snapshot), for the tracker to see who stays; id is Site.ID().
	ids []uint64
	id  string
	// lastBo and lastObj are the object the last goroutine waited on.
	lastBo  *snapshot.BlockedOn
	lastObj *Object
}

// Object is one object goroutines wait on, with its facts as the newest
// goroutine read them, and how many of the group wait on it.
type Object struct {
	snapshot.BlockedOn
	Goroutines int `json:"goroutines"`
}

// MarshalJSON writes the object's facts as a snapshot does, and
// goroutines: BlockedOn's own MarshalJSON would otherwise be promoted and
// leave the count out.
func (o Object) MarshalJSON() ([]byte, error) {
	b, err := json.Marshal(o.BlockedOn)
	if err != nil {
		return nil, err
	}
	n := strconv.Itoa(o.Goroutines)
	if len(b) <= 2 {
		return []byte(`{"goroutines":` + n + `}`), nil
	}
	return append(b[:len(b)-1], `,"goroutines":`+n+`}`...), nil
}

// Groups groups the goroutines of s by site, the largest group first.
func Groups(s *snapshot.Snapshot) []*Group {
	w := s.Weight()
	bySite := map[Site]*Group{}
	// Objects are found by the walker's BlockedOn (one per object and
	// walk, shared by its waiters), else by address.
	objects := map[*Group]map[*snapshot.BlockedOn]*Object{}
	byAddr := map[*Group]map[string]*Object{}
	// Walkers share one frame slice among the goroutines of a stack and
	// one created-by frame among those of a go statement: the site of a
	// goroutine is found once per such pair.
	// The strings are keyed by their bytes' address: the walkers take
	// states and wait reasons from tables, and a string that is equal but
	// elsewhere only costs another SiteOf.
	type stackKey struct {
		frames        *snapshot.Frame
		n             int
		by            *snapshot.Frame
		state, reason *byte
		nState, nRsn  int
	}
	known := map[stackKey]*Group{}
	var last *Group // runs of goroutines of one stack are common
	var lastKey stackKey
	var out []*Group
	for i := range s.Goroutines {
		g := &s.Goroutines[i]
		if g.System {
			continue
		}
		k := stackKey{n: len(g.Frames), by: g.CreatedBy,
			state: unsafe.StringData(string(g.State)), nState: len(g.State),
			reason: unsafe.StringData(g.WaitReason), nRsn: len(g.WaitReason)}
		if len(g.Frames) > 0 {
			k.frames = &g.Frames[0]
		}
		var grp *Group
		if last != nil && k == lastKey {
			grp = last
		} else {
			grp = known[k]
		}
		if grp == nil {
			site := SiteOf(g)
			grp = bySite[site]
			if grp == nil {
				grp = &Group{Site: site, Waits: make([]int, len(WaitBounds)+1), Example: g.Frames, id: site.ID()}
				bySite[site] = grp
				objects[grp] = map[*snapshot.BlockedOn]*Object{}
				byAddr[grp] = map[string]*Object{}
				out = append(out, grp)
			}
			known[k] = grp
		}
		last, lastKey = grp, k
		grp.Goroutines += w
		if g.State == snapshot.StateLeaked {
			grp.Leaked += w
		}
		grp.ids = append(grp.ids, g.ID)
		b := 0
		for b < len(WaitBounds) && g.WaitingSeconds > WaitBounds[b] {
			b++
		}
		grp.Waits[b] += w
		grp.MaxWait = max(grp.MaxWait, g.WaitingSeconds)
		if bo := g.BlockedOn; bo != nil {
			o := grp.lastObj // waiters of one object often come in a row
			if grp.lastBo != bo {
				o = objects[grp][bo]
			}
			if o == nil {
				if o = byAddr[grp][bo.Address]; o == nil {
					o = &Object{BlockedOn: *bo}
					o.Others = nil
					byAddr[grp][bo.Address] = o
				}
				objects[grp][bo] = o
			}
			o.Goroutines += w
			grp.lastBo, grp.lastObj = bo, o
		}
		addLabels(grp, g.Labels)
	}
	for _, grp := range out {
		grp.DistinctObjects = len(byAddr[grp])
		grp.Objects = topObjects(byAddr[grp], maxObjects)
	}
	slices.SortStableFunc(out, func(a, b *Group) int {
		if c := cmp.Compare(b.Goroutines, a.Goroutines); c != 0 {
			return c
		}
		return cmp.Compare(a.id, b.id)
	})
	return out
}

// topObjects returns the n objects most waited on, the most first (by
// address among equals), choosing among all without sorting them all.
func topObjects(objs map[string]*Object, n int) []Object {
	byCount := func(a, b *Object) int {
		if c := cmp.Compare(b.Goroutines, a.Goroutines); c != 0 {
			return c
		}
		return cmp.Compare(a.Address, b.Address)
	}
	top := make([]*Object, 0, n+1)
	for _, o := range objs {
		if len(top) == n && byCount(o, top[n-1]) >= 0 {
			continue
		}
		i, _ := slices.BinarySearchFunc(top, o, byCount)
		top = slices.Insert(top, i, o)
		if len(top) > n {
			top = top[:n]
		}
	}
	out := make([]Object, len(top))
	for i, o := range top {
		out[i] = *o
	}
	return out
}

// addLabels notes a few values of each of a few pprof label keys.
func addLabels(grp *Group, labels map[string]string) {
	for k, v := range labels {
		vals, ok := grp.Labels[k]
		if !ok && len(grp.Labels) >= maxLabelKeys {
			continue
		}
		if len(vals) >= maxLabelValues || slices.Contains(vals, v) {
			continue
		}
		if grp.Labels == nil {
			grp.Labels = map[string][]string{}
		}
		grp.Labels[k] = append(vals, v)
	}
}
