package ui

import (
	"io"
	"math"
	"slices"
	"strconv"
	"strings"

	"github.com/google/pprof/profile"

	"github.com/goroscope/goroscope/pkg/fold"

	"github.com/goroscope/goroscope/pkg/snapshot"
)

// maxFlameNodes bounds the nodes of one tree (a diff's, both sides
// together); frames past it are folded into their parent (the parent
// keeps their value).
const maxFlameNodes = 200_000

// Node is one frame of a flame graph: Value includes the children's.
// Values are exact sums of the profiles' int64 sample values, scaled once
// at the end (a range's average or scaled sum is fractional), so a child
// never exceeds its parent.
type Node struct {
	Name  string  `json:"name"`
	Value float64 `json:"value"`
	// Kind is empty for a function's frame; a grouped tree's frames under
	// the root naming the samples' state and wait reason (BuildFlameGrouped)
	// are of kind "state" and "wait_reason".
	Kind     string  `json:"kind,omitempty"`
	Children []*Node `json:"children,omitempty"`
}

// Frame kinds of a grouped tree (Node.Kind).
const (
	KindState      = "state"
	KindWaitReason = "wait_reason"
)

// Sides of a tree: a flame graph has one; a diff's comparison is side 0
// and its baseline side 1.
const (
	sideComparison = 0
	sideBase       = 1
)

// frame is a node of a tree being built: its value on each side as an
// exact int64 sum (saturating rather than wrapping).
type frame struct {
	name, kind string
	value      [2]int64
	children   []*frame
	index      map[string]*frame
}

// tree folds the samples of profiles, one profile at a time, into a call
// tree of at most maxFlameNodes frames. It holds no profile: a range is
// merged reading one profile after the other.
type tree struct {
	root      *frame
	f         Filter
	byState   bool
	budget    int
	truncated bool
	// unit and sampleType are those of the first profile added.
	unit, sampleType string
}

// sideSums is what one side's profiles add up to besides the tree.
type sideSums struct {
	// total is the value of the samples that passed the filter,
	// unfiltered that of every sample.
	total, unfiltered int64
	// facets, when not nil, counts the unfiltered values per label value.
	facets *facetSums
}

// newTree starts a tree rooted at a frame named root; byState puts the
// samples' state and wait reason frames under the root (BuildFlameGrouped).
func newTree(f Filter, root string, byState bool) *tree {
	return &tree{root: &frame{name: root}, f: f, byState: byState, budget: maxFlameNodes}
}

// child returns n's child named name of kind (see Node.Kind), creating it
// while the tree is under its node budget (nil past it). Frames of
// different kinds never merge, whatever their names.
func (t *tree) child(n *frame, name, kind string) *frame {
	key := name
	if kind != "" {
		key = kind + "\x00" + name
	}
	if c, ok := n.index[key]; ok {
		return c
	}
	if t.budget <= 0 {
		t.truncated = true
		return nil
	}
	t.budget--
	c := &frame{name: name, kind: kind}
	if n.index == nil {
		n.index = map[string]*frame{}
	}
	n.index[key] = c
	n.children = append(n.children, c)
	return c
}

// step adds v on side to n's child named name of kind and returns it, nil
// past the node budget.
func (t *tree) step(n *frame, name, kind string, v int64, side int) *frame {
	c := t.child(n, name, kind)
	if c != nil {
		c.value[side] = addSat(c.value[side], v)
	}
	return c
}

// add folds the samples of p, valued by the sample type sampleIndex picks,
// into side: all of them into sums' unfiltered total and facets, those
// that pass the filter into the tree and sums' total.
func (t *tree) add(p *profile.Profile, side int, sums *sideSums) {
	vi := sampleIndex(p)
	if t.unit == "" && t.sampleType == "" && len(p.SampleType) > 0 {
		t.unit, t.sampleType = p.SampleType[vi].Unit, p.SampleType[vi].Type
	}
	for _, s := range p.Sample {
		if len(s.Value) <= vi {
			continue
		}
		v := s.Value[vi]
		sums.unfiltered = addSat(sums.unfiltered, v)
		if sums.facets != nil {
			sums.facets.add(s.Label, v)
		}
		if !t.f.MatchLabels(s.Label) {
			continue
		}
		sums.total = addSat(sums.total, v)
		n := t.root
		n.value[side] = addSat(n.value[side], v)
		if t.byState {
			if n = t.groupFrames(n, s.Label, v, side); n == nil {
				continue
			}
		}
		t.addStack(n, s, v, side)
	}
}

// addStack adds v on side to the frames of s's stack under n, root first,
// inlined calls expanded (a location's lines are innermost first), as
// sampleFrames names them.
func (t *tree) addStack(n *frame, s *profile.Sample, v int64, side int) {
	for i := len(s.Location) - 1; i >= 0; i-- {
		loc := s.Location[i]
		if len(loc.Line) == 0 {
			if n = t.step(n, addressName(loc), "", v, side); n == nil {
				return
			}
			continue
		}
		for j := len(loc.Line) - 1; j >= 0; j-- {
			if n = t.step(n, lineName(loc.Line[j]), "", v, side); n == nil {
				return
			}
		}
	}
}

// groupFrames adds v on side to n's state and wait reason frames of a
// sample labelled labels (none when it has no state) and returns the
// innermost, nil past the node budget.
func (t *tree) groupFrames(n *frame, labels map[string][]string, v int64, side int) *frame {
	st := labels[fold.LabelState]
	if len(st) == 0 {
		return n
	}
	if n = t.step(n, st[0], KindState, v, side); n == nil {
		return nil
	}
	if wr := labels[fold.LabelWaitReason]; len(wr) > 0 && wr[0] != "" {
		n = t.step(n, wr[0], KindWaitReason, v, side)
	}
	return n
}

// byName orders frames as flame graphs show them: by name, then kind.
func byName(a, b *frame) int {
	if c := strings.Compare(a.name, b.name); c != 0 {
		return c
	}
	return strings.Compare(a.kind, b.kind)
}

// nodes returns the tree's side as Nodes valued by sc, children by name.
func (t *tree) nodes(side int, sc scale) *Node {
	type pair struct {
		f *frame
		n *Node
	}
	root := &Node{Name: t.root.name, Kind: t.root.kind, Value: sc.apply(t.root.value[side])}
	stack := []pair{{t.root, root}}
	for len(stack) > 0 {
		x := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		slices.SortFunc(x.f.children, byName)
		if len(x.f.children) > 0 {
			x.n.Children = make([]*Node, len(x.f.children))
		}
		for i, c := range x.f.children {
			n := &Node{Name: c.name, Kind: c.kind, Value: sc.apply(c.value[side])}
			x.n.Children[i] = n
			stack = append(stack, pair{c, n})
		}
	}
	return root
}

// flame returns the tree's side as a Flame, values (sums' too) scaled by sc.
func (t *tree) flame(side int, sums *sideSums, sc scale) *Flame {
	fl := &Flame{Unit: t.unit, SampleType: t.sampleType, Total: sc.apply(sums.total), UnfilteredTotal: sc.apply(sums.unfiltered),
		Root: t.nodes(side, sc), Truncated: t.truncated}
	if sums.facets != nil {
		fl.Facets = sums.facets.scaled(sc)
	}
	return fl
}

// scale turns a tree's exact sums into the values answered: v * num / den.
type scale struct{ num, den float64 }

// unitScale leaves values as they are.
var unitScale = scale{1, 1}

// apply returns v scaled; it is monotonic, so a child's value never
// exceeds its parent's.
func (s scale) apply(v int64) float64 {
	if s.num == s.den || s.den == 0 {
		return float64(v)
	}
	return float64(v) * s.num / s.den
}

// factor is the scale as one number.
func (s scale) factor() float64 {
	if s.den == 0 {
		return 1
	}
	return s.num / s.den
}

// addSat returns a+b, held at the int64 bounds instead of wrapping.
func addSat(a, b int64) int64 {
	c := a + b
	switch {
	case a > 0 && b > 0 && c < 0:
		return math.MaxInt64
	case a < 0 && b < 0 && c >= 0:
		return math.MinInt64
	}
	return c
}

// lineName is the function name of a location's line, "?" when unknown.
func lineName(ln profile.Line) string {
	if fn := ln.Function; fn != nil && fn.Name != "" {
		return fn.Name
	}
	return "?"
}

// addressName names a location without lines by its address.
func addressName(loc *profile.Location) string {
	return "0x" + strconv.FormatUint(loc.Address, 16)
}

// sampleFrames returns a sample's function names root first, inlined calls
// expanded (a location's lines are innermost first).
func sampleFrames(s *profile.Sample) []string {
	var out []string
	for i := len(s.Location) - 1; i >= 0; i-- {
		loc := s.Location[i]
		for j := len(loc.Line) - 1; j >= 0; j-- {
			out = append(out, lineName(loc.Line[j]))
		}
		if len(loc.Line) == 0 {
			out = append(out, addressName(loc))
		}
	}
	return out
}

// Flame is a profile (or a range's profiles merged) folded into a call
// tree, with what it can be filtered by.
type Flame struct {
	// Unit is the unit of the values ("count", "nanoseconds"), of the
	// profile's sample type SampleType.
	Unit       string `json:"unit"`
	SampleType string `json:"sample_type"`
	// Total is the value of the samples that passed the filter.
	Total float64 `json:"total"`
	// UnfilteredTotal is the value of every sample.
	UnfilteredTotal float64 `json:"unfiltered_total"`
	Root            *Node   `json:"root"`
	// Truncated is set when the tree hit maxFlameNodes.
	Truncated bool   `json:"truncated,omitempty"`
	Facets    Facets `json:"facets"`
}

// Facets counts the value of the unfiltered profile per filterable label
// value, so the UI can offer only values that exist.
type Facets struct {
	States        map[string]float64            `json:"states"`
	WaitReasons   map[string]float64            `json:"wait_reasons"`
	WaitDurations map[string]float64            `json:"wait_durations"`
	Labels        map[string]map[string]float64 `json:"labels"`
}

// facetSums is Facets being counted, as exact sums.
type facetSums struct {
	states, waitReasons, waitDurations map[string]int64
	labels                             map[string]map[string]int64
}

func newFacetSums() *facetSums {
	return &facetSums{states: map[string]int64{}, waitReasons: map[string]int64{},
		waitDurations: map[string]int64{}, labels: map[string]map[string]int64{}}
}

// sampleIndex is the sample value a flame graph shows, as go tool pprof
// picks it: the profile's default sample type, else the last one (CPU
// time rather than sample counts).
func sampleIndex(p *profile.Profile) int {
	for i, st := range p.SampleType {
		if st.Type == p.DefaultSampleType {
			return i
		}
	}
	return max(len(p.SampleType)-1, 0)
}

// BuildFlame folds the samples of p that pass f into a tree rooted at a
// node named root, valued by the sample type sampleIndex picks.
func BuildFlame(p *profile.Profile, f Filter, root string) *Flame {
	return BuildFlameGrouped(p, f, root, false)
}

// BuildFlameGrouped is BuildFlame; byState puts a frame (of kind
// KindState) naming the sample's state under the root, and under it one
// (KindWaitReason) naming its wait reason when it has one, above the
// stack, so a goroutine profile's tree shows them. Samples without a state
// label (other profiles) hang from the root as in BuildFlame.
func BuildFlameGrouped(p *profile.Profile, f Filter, root string, byState bool) *Flame {
	t := newTree(f, root, byState)
	sums := &sideSums{facets: newFacetSums()}
	t.add(p, sideComparison, sums)
	return t.flame(sideComparison, sums, unitScale)
}

func (fc *facetSums) add(labels map[string][]string, v int64) {
	for k, vs := range labels {
		if len(vs) == 0 {
			continue
		}
		switch k {
		case fold.LabelState:
			fc.states[vs[0]] = addSat(fc.states[vs[0]], v)
		case fold.LabelWaitReason:
			fc.waitReasons[vs[0]] = addSat(fc.waitReasons[vs[0]], v)
		case fold.LabelWaitBucket:
			fc.waitDurations[vs[0]] = addSat(fc.waitDurations[vs[0]], v)
		default:
			m := fc.labels[k]
			if m == nil {
				if len(fc.labels) >= maxFacetKeys {
					continue
				}
				m = map[string]int64{}
				fc.labels[k] = m
			}
			if _, ok := m[vs[0]]; ok || len(m) < maxFacetValues {
				m[vs[0]] = addSat(m[vs[0]], v)
			}
		}
	}
}

// scaled returns the facets counted, scaled by sc.
func (fc *facetSums) scaled(sc scale) Facets {
	one := func(m map[string]int64) map[string]float64 {
		out := make(map[string]float64, len(m))
		for k, v := range m {
			out[k] = sc.apply(v)
		}
		return out
	}
	f := Facets{States: one(fc.states), WaitReasons: one(fc.waitReasons), WaitDurations: one(fc.waitDurations),
		Labels: make(map[string]map[string]float64, len(fc.labels))}
	for k, m := range fc.labels {
		f.Labels[k] = one(m)
	}
	return f
}

// Facet bounds: label keys and values per key reported.
const (
	maxFacetKeys   = 64
	maxFacetValues = 256
)

// FilterProfile returns a copy of p keeping the samples that pass f.
func FilterProfile(p *profile.Profile, f Filter) *profile.Profile {
	q := p.Copy()
	filterSamples(q, f)
	return q
}

// filterSamples drops the samples of p that do not pass f, in place.
func filterSamples(p *profile.Profile, f Filter) {
	p.Sample = slices.DeleteFunc(p.Sample, func(s *profile.Sample) bool { return !f.MatchLabels(s.Label) })
}

// WriteFolded writes the samples of p that pass f as folded stacks, rooted
// at a frame naming state and wait reason like snapshot.WriteFolded:
// "waiting: chan receive;main.main;main.worker 12", one line per distinct
// stack, sorted.
func WriteFolded(w io.Writer, p *profile.Profile, f Filter) error {
	counts := snapshot.Folded{}
	var b strings.Builder
	vi := sampleIndex(p)
	for _, s := range p.Sample {
		if len(s.Value) <= vi || !f.MatchLabels(s.Label) {
			continue
		}
		b.Reset()
		if st := s.Label[fold.LabelState]; len(st) > 0 {
			b.WriteString(st[0])
			if wr := s.Label[fold.LabelWaitReason]; len(wr) > 0 {
				b.WriteString(": ")
				b.WriteString(wr[0])
			}
		} else {
			b.WriteString("all")
		}
		for _, name := range sampleFrames(s) {
			b.WriteByte(';')
			b.WriteString(snapshot.FoldedName(name))
		}
		counts[b.String()] += s.Value[vi]
	}
	return counts.Write(w)
}
