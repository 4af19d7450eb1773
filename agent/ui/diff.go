package ui

import (
	"cmp"
	"encoding/binary"
	"slices"
	"strings"

	"github.com/google/pprof/profile"

	"github.com/goroscope/goroscope/pkg/fold"
)

// maxDiffItems bounds each list of a diff; the rest is counted in Omitted.
const maxDiffItems = 500

// Diff is what changed between two goroutine profiles.
type Diff struct {
	FromTotal int64 `json:"from_total"`
	ToTotal   int64 `json:"to_total"`
	// Appeared are groups with more goroutines at To, largest change first.
	Appeared []DiffItem `json:"appeared"`
	// Vanished are groups with fewer goroutines at To, largest change first.
	Vanished []DiffItem `json:"vanished"`
	// Omitted counts groups left out past maxDiffItems.
	Omitted int `json:"omitted"`
}

// DiffItem is one group of goroutines sharing a stack and labels.
type DiffItem struct {
	// Stack is "function file:line", leaf first.
	Stack  []string          `json:"stack"`
	Labels map[string]string `json:"labels"`
	From   int64             `json:"from"`
	To     int64             `json:"to"`
	Delta  int64             `json:"delta"`
}

// BuildDiff compares the samples of from and to that pass f, grouped by
// stack and labels (the wait-duration bucket excluded: it changes as
// goroutines keep waiting).
func BuildDiff(from, to *profile.Profile, f Filter) *Diff {
	b := newDiffBuilder(f)
	b.add(from, false)
	b.add(to, true)
	return b.diff()
}

// diffBuilder builds a Diff one profile at a time, so that a caller need
// not hold both. It keeps each distinct stack and label set once and a
// pair of counts per group; the groups' labels are made into maps only
// for the groups reported.
type diffBuilder struct {
	f Filter
	// stackIDs numbers stacks by their key: each "function file:line"
	// line followed by a 0 byte; stackKeys[id] is the key, stacks[id]
	// the lines, leaf first.
	stackIDs  map[string]int
	stackKeys []string
	stacks    [][]string
	// labelIDs numbers label sets by their key: each "k=v" (sorted by k)
	// followed by a 0 byte; labelPairs[id] are k, v, k, v, ...
	labelIDs   map[string]int
	labelKeys  []string
	labelPairs [][]string
	counts     map[diffGroup]diffCount
	d          *Diff
	// buf and names are reused scratch space.
	buf   []byte
	names []string
}

// diffGroup is a group of samples: their label set and stack.
type diffGroup struct{ labels, stack int }

// diffCount is a group's value on each side.
type diffCount struct{ from, to int64 }

func newDiffBuilder(f Filter) *diffBuilder {
	f.WaitDuration = ""
	return &diffBuilder{f: f, stackIDs: map[string]int{}, labelIDs: map[string]int{}, counts: map[diffGroup]diffCount{},
		d: &Diff{Appeared: []DiffItem{}, Vanished: []DiffItem{}}}
}

// add counts the samples of p that pass the filter on the from side, or
// on the to side when isTo.
func (b *diffBuilder) add(p *profile.Profile, isTo bool) {
	byLocations := map[string]int{} // stack ids of p's location sequences
	for _, s := range p.Sample {
		if len(s.Value) == 0 || !b.f.MatchLabels(s.Label) {
			continue
		}
		g := diffGroup{labels: b.labelID(s.Label), stack: b.stackID(s, byLocations)}
		c := b.counts[g]
		if isTo {
			c.to += s.Value[0]
			b.d.ToTotal += s.Value[0]
		} else {
			c.from += s.Value[0]
			b.d.FromTotal += s.Value[0]
		}
		b.counts[g] = c
	}
}

// stackID numbers the stack of s; byLocations keeps the numbers of the
// location sequences seen in s's profile, so each is named once.
func (b *diffBuilder) stackID(s *profile.Sample, byLocations map[string]int) int {
	b.buf = b.buf[:0]
	for _, loc := range s.Location {
		b.buf = binary.AppendUvarint(b.buf, loc.ID)
	}
	if id, ok := byLocations[string(b.buf)]; ok {
		return id
	}
	locs := string(b.buf)
	lines := sampleFramesLines(s)
	b.buf = b.buf[:0]
	for _, l := range lines {
		b.buf = append(append(b.buf, l...), 0)
	}
	id, ok := b.stackIDs[string(b.buf)]
	if !ok {
		id = len(b.stacks)
		key := string(b.buf)
		b.stackIDs[key] = id
		b.stackKeys = append(b.stackKeys, key)
		b.stacks = append(b.stacks, lines)
	}
	byLocations[locs] = id
	return id
}

// labelID numbers the label set of a sample, wait_duration left out.
func (b *diffBuilder) labelID(labels map[string][]string) int {
	b.names = b.names[:0]
	for k, vs := range labels {
		if k != fold.LabelWaitBucket && len(vs) > 0 {
			b.names = append(b.names, k)
		}
	}
	slices.Sort(b.names)
	b.buf = b.buf[:0]
	for _, k := range b.names {
		b.buf = append(append(append(append(b.buf, k...), '='), labels[k][0]...), 0)
	}
	if id, ok := b.labelIDs[string(b.buf)]; ok {
		return id
	}
	id := len(b.labelPairs)
	key := string(b.buf)
	b.labelIDs[key] = id
	b.labelKeys = append(b.labelKeys, key)
	pairs := make([]string, 0, 2*len(b.names))
	for _, k := range b.names {
		pairs = append(pairs, k, labels[k][0])
	}
	b.labelPairs = append(b.labelPairs, pairs)
	return id
}

// diff returns the groups that changed, largest change first; among
// equal changes, by labels, then stack.
func (b *diffBuilder) diff() *Diff {
	type change struct {
		g     diffGroup
		c     diffCount
		delta int64
	}
	var appeared, vanished []change
	for g, c := range b.counts {
		switch delta := c.to - c.from; {
		case delta > 0:
			appeared = append(appeared, change{g, c, delta})
		case delta < 0:
			vanished = append(vanished, change{g, c, delta})
		}
	}
	byChange := func(x, y change) int {
		if c := cmp.Compare(abs(y.delta), abs(x.delta)); c != 0 {
			return c
		}
		return b.compareGroups(x.g, y.g)
	}
	d := b.d
	for _, side := range []struct {
		changes []change
		out     *[]DiffItem
	}{{appeared, &d.Appeared}, {vanished, &d.Vanished}} {
		slices.SortFunc(side.changes, byChange)
		if len(side.changes) > maxDiffItems {
			d.Omitted += len(side.changes) - maxDiffItems
			side.changes = side.changes[:maxDiffItems]
		}
		for _, ch := range side.changes {
			labels := make(map[string]string, len(b.labelPairs[ch.g.labels])/2)
			for i, kv := 0, b.labelPairs[ch.g.labels]; i < len(kv); i += 2 {
				labels[kv[i]] = kv[i+1]
			}
			*side.out = append(*side.out, DiffItem{Stack: b.stacks[ch.g.stack], Labels: labels, From: ch.c.from, To: ch.c.to, Delta: ch.delta})
		}
	}
	return d
}

// compareGroups orders groups as their keys would sort joined into one
// string: the label set's key, a 1 byte, the stack's key.
func (b *diffBuilder) compareGroups(x, y diffGroup) int {
	return compareJoined(b.labelKeys[x.labels], b.stackKeys[x.stack], b.labelKeys[y.labels], b.stackKeys[y.stack])
}

// compareJoined compares a1+"\x01"+a2 with b1+"\x01"+b2, as strings,
// without making them.
func compareJoined(a1, a2, b1, b2 string) int {
	if a1 == b1 {
		return strings.Compare(a2, b2)
	}
	for i := 0; ; i++ {
		x, okx := joinedByte(a1, a2, i)
		y, oky := joinedByte(b1, b2, i)
		switch {
		case !okx || !oky:
			return cmp.Compare(boolByte(okx), boolByte(oky))
		case x != y:
			return cmp.Compare(x, y)
		}
	}
}

// joinedByte returns byte i of p+"\x01"+q, if there is one.
func joinedByte(p, q string, i int) (byte, bool) {
	switch {
	case i < len(p):
		return p[i], true
	case i == len(p):
		return 1, true
	case i-len(p)-1 < len(q):
		return q[i-len(p)-1], true
	}
	return 0, false
}

func boolByte(v bool) int {
	if v {
		return 1
	}
	return 0
}

func abs(v int64) int64 {
	if v < 0 {
		return -v
	}
	return v
}
