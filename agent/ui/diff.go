package ui

import "slices"

// DiffNode is one frame of a diff flame graph: the union of the baseline's
// and the comparison's trees, each frame valued on both sides (0 on a side
// without it). Value and Base include the children's, as Node.Value does.
type DiffNode struct {
	Name string `json:"name"`
	// Value is the comparison's merged value, Base the baseline's.
	Value float64 `json:"value"`
	Base  float64 `json:"base"`
	// Kind is as Node.Kind.
	Kind     string      `json:"kind,omitempty"`
	Children []*DiffNode `json:"children,omitempty"`
}

// Diff is a diff flame graph: a baseline range against a comparison range
// of one profile kind, each merged by the kind's rule (MergeRule).
type Diff struct {
	// Unit and SampleType are as Flame's.
	Unit       string `json:"unit"`
	SampleType string `json:"sample_type"`
	// Merge is how each range was merged: "average" or "sum".
	Merge string `json:"merge"`
	// Base and Comparison describe the ranges merged.
	Base       RangeInfo `json:"base"`
	Comparison RangeInfo `json:"comparison"`
	// BaseDefault says how the baseline was chosen when the request named
	// none: BasePrevious or BaseFirstQuarter; empty when it was named.
	BaseDefault string `json:"base_default,omitempty"`
	// BaseTotal and Total are the values of the samples that passed the
	// filter, in the baseline and the comparison.
	BaseTotal float64 `json:"base_total"`
	Total     float64 `json:"total"`
	// Truncated is set when the tree (both sides together) hit maxFlameNodes.
	Truncated bool      `json:"truncated"`
	Root      *DiffNode `json:"root"`
}

// Default baselines (Diff.BaseDefault).
const (
	// BasePrevious: the equally long range just before the comparison.
	BasePrevious = "previous"
	// BasePreviousMoment: the equally long range before held nothing (a
	// comparison of one moment has no length): the newest entry before it.
	BasePreviousMoment = "previous_moment"
	// BaseFirstQuarter: nothing is stored before the comparison (a young
	// process), so the first quarter of the comparison's own span, at
	// least its oldest entry.
	BaseFirstQuarter = "first_quarter"
)

// diffNodes returns both sides of the tree as DiffNodes: the comparison
// (sideComparison) valued by cmp, the baseline (sideBase) by base;
// children by name.
func (t *tree) diffNodes(cmp, base scale) *DiffNode {
	type pair struct {
		f *frame
		n *DiffNode
	}
	node := func(f *frame) *DiffNode {
		return &DiffNode{Name: f.name, Kind: f.kind, Value: cmp.apply(f.value[sideComparison]), Base: base.apply(f.value[sideBase])}
	}
	root := node(t.root)
	stack := []pair{{t.root, root}}
	for len(stack) > 0 {
		x := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		slices.SortFunc(x.f.children, byName)
		if len(x.f.children) > 0 {
			x.n.Children = make([]*DiffNode, len(x.f.children))
		}
		for i, c := range x.f.children {
			n := node(c)
			x.n.Children[i] = n
			stack = append(stack, pair{c, n})
		}
	}
	return root
}
