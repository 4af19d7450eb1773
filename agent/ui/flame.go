package ui

import (
	"io"
	"slices"
	"strconv"
	"strings"

	"github.com/google/pprof/profile"

	"github.com/goroscope/goroscope/pkg/fold"

	"github.com/goroscope/goroscope/pkg/snapshot"
)

// maxFlameNodes bounds the nodes of one flame tree; frames past it are
// folded into their parent (the parent keeps their value).
const maxFlameNodes = 200_000

// Node is one frame of a flame graph: Value includes the children's.
type Node struct {
	Name  string `json:"name"`
	Value int64  `json:"value"`
	// Kind is empty for a function's frame; a grouped tree's frames under
	// the root naming the samples' state and wait reason (BuildFlameGrouped)
	// are of kind "state" and "wait_reason".
	Kind     string  `json:"kind,omitempty"`
	Children []*Node `json:"children,omitempty"`

	index map[string]*Node
}

// child returns n's child named name, creating it while the tree is under
// its node budget (nil past it).
func (n *Node) child(name string, budget *int) *Node {
	return n.childOf(name, "", budget)
}

// childOf is child for a frame of kind (see Node.Kind): frames of
// different kinds never merge, whatever their names.
func (n *Node) childOf(name, kind string, budget *int) *Node {
	key := name
	if kind != "" {
		key = kind + "\x00" + name
	}
	if c, ok := n.index[key]; ok {
		return c
	}
	if *budget <= 0 {
		return nil
	}
	*budget--
	c := &Node{Name: name, Kind: kind}
	if n.index == nil {
		n.index = map[string]*Node{}
	}
	n.index[key] = c
	n.Children = append(n.Children, c)
	return c
}

// Frame kinds of a grouped tree (Node.Kind).
const (
	KindState      = "state"
	KindWaitReason = "wait_reason"
)

// sortTree orders children by name, as flame graphs show them, recursively.
func sortTree(n *Node) {
	stack := []*Node{n}
	for len(stack) > 0 {
		x := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		slices.SortFunc(x.Children, func(a, b *Node) int { return strings.Compare(a.Name, b.Name) })
		stack = append(stack, x.Children...)
	}
}

// sampleFrames returns a sample's function names root first, inlined calls
// expanded (a location's lines are innermost first).
func sampleFrames(s *profile.Sample) []string {
	var out []string
	for i := len(s.Location) - 1; i >= 0; i-- {
		loc := s.Location[i]
		for j := len(loc.Line) - 1; j >= 0; j-- {
			name := "?"
			if fn := loc.Line[j].Function; fn != nil && fn.Name != "" {
				name = fn.Name
			}
			out = append(out, name)
		}
		if len(loc.Line) == 0 {
			out = append(out, "0x"+strconv.FormatUint(loc.Address, 16))
		}
	}
	return out
}

// sampleFramesLines returns a sample's frames leaf first as "func file:line".
func sampleFramesLines(s *profile.Sample) []string {
	var out []string
	for _, loc := range s.Location {
		for _, ln := range loc.Line {
			name, file := "?", ""
			if fn := ln.Function; fn != nil {
				name, file = fn.Name, fn.Filename
			}
			out = append(out, name+" "+file+":"+strconv.FormatInt(ln.Line, 10))
		}
		if len(loc.Line) == 0 {
			out = append(out, "0x"+strconv.FormatUint(loc.Address, 16))
		}
	}
	return out
}

// Flame is a profile folded into a call tree, with what it can be filtered by.
type Flame struct {
	// Unit is the unit of the values ("count", "nanoseconds"), of the
	// profile's sample type SampleType.
	Unit       string `json:"unit"`
	SampleType string `json:"sample_type"`
	// Total is the value of the samples that passed the filter.
	Total int64 `json:"total"`
	// UnfilteredTotal is the value of every sample.
	UnfilteredTotal int64 `json:"unfiltered_total"`
	Root            *Node `json:"root"`
	// Truncated is set when the tree hit maxFlameNodes.
	Truncated bool   `json:"truncated,omitempty"`
	Facets    Facets `json:"facets"`
}

// Facets counts the value of the unfiltered profile per filterable label
// value, so the UI can offer only values that exist.
type Facets struct {
	States        map[string]int64            `json:"states"`
	WaitReasons   map[string]int64            `json:"wait_reasons"`
	WaitDurations map[string]int64            `json:"wait_durations"`
	Labels        map[string]map[string]int64 `json:"labels"`
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
	fl := &Flame{
		Root: &Node{Name: root},
		Facets: Facets{
			States: map[string]int64{}, WaitReasons: map[string]int64{},
			WaitDurations: map[string]int64{}, Labels: map[string]map[string]int64{},
		},
	}
	vi := sampleIndex(p)
	if len(p.SampleType) > 0 {
		fl.Unit = p.SampleType[vi].Unit
		fl.SampleType = p.SampleType[vi].Type
	}
	budget := maxFlameNodes
	for _, s := range p.Sample {
		if len(s.Value) <= vi {
			continue
		}
		v := s.Value[vi]
		fl.UnfilteredTotal += v
		fl.Facets.add(s.Label, v)
		if !f.MatchLabels(s.Label) {
			continue
		}
		fl.Total += v
		n := fl.Root
		n.Value += v
		if byState {
			n = groupFrames(n, s.Label, v, &budget)
			if n == nil {
				fl.Truncated = true
				continue
			}
		}
		for _, name := range sampleFrames(s) {
			c := n.child(name, &budget)
			if c == nil {
				fl.Truncated = true
				break
			}
			c.Value += v
			n = c
		}
	}
	sortTree(fl.Root)
	return fl
}

// groupFrames adds v to n's state and wait reason frames of a sample
// labelled labels (none when it has no state) and returns the innermost,
// nil past the node budget.
func groupFrames(n *Node, labels map[string][]string, v int64, budget *int) *Node {
	st := labels[fold.LabelState]
	if len(st) == 0 {
		return n
	}
	if n = n.childOf(st[0], KindState, budget); n == nil {
		return nil
	}
	n.Value += v
	if wr := labels[fold.LabelWaitReason]; len(wr) > 0 && wr[0] != "" {
		if n = n.childOf(wr[0], KindWaitReason, budget); n == nil {
			return nil
		}
		n.Value += v
	}
	return n
}

func (fc *Facets) add(labels map[string][]string, v int64) {
	for k, vs := range labels {
		if len(vs) == 0 {
			continue
		}
		switch k {
		case fold.LabelState:
			fc.States[vs[0]] += v
		case fold.LabelWaitReason:
			fc.WaitReasons[vs[0]] += v
		case fold.LabelWaitBucket:
			fc.WaitDurations[vs[0]] += v
		default:
			m := fc.Labels[k]
			if m == nil {
				if len(fc.Labels) >= maxFacetKeys {
					continue
				}
				m = map[string]int64{}
				fc.Labels[k] = m
			}
			if _, ok := m[vs[0]]; ok || len(m) < maxFacetValues {
				m[vs[0]] += v
			}
		}
	}
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
