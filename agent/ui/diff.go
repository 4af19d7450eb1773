package ui

import (
	"cmp"
	"maps"
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

// diffKey groups samples by stack and labels, wait_duration left out.
func diffKey(s *profile.Sample, stack []string) (string, map[string]string) {
	labels := map[string]string{}
	for k, vs := range s.Label {
		if k != fold.LabelWaitBucket && len(vs) > 0 {
			labels[k] = vs[0]
		}
	}
	var b strings.Builder
	for _, k := range slices.Sorted(maps.Keys(labels)) {
		b.WriteString(k)
		b.WriteByte('=')
		b.WriteString(labels[k])
		b.WriteByte(0)
	}
	b.WriteByte(1)
	for _, f := range stack {
		b.WriteString(f)
		b.WriteByte(0)
	}
	return b.String(), labels
}

// BuildDiff compares the samples of from and to that pass f, grouped by
// stack and labels (the wait-duration bucket excluded: it changes as
// goroutines keep waiting).
func BuildDiff(from, to *profile.Profile, f Filter) *Diff {
	f.WaitDuration = ""
	items := map[string]*DiffItem{}
	add := func(p *profile.Profile, isTo bool) int64 {
		var total int64
		for _, s := range p.Sample {
			if len(s.Value) == 0 || !f.MatchLabels(s.Label) {
				continue
			}
			stack := sampleFramesLines(s)
			k, labels := diffKey(s, stack)
			it := items[k]
			if it == nil {
				it = &DiffItem{Stack: stack, Labels: labels}
				items[k] = it
			}
			if isTo {
				it.To += s.Value[0]
			} else {
				it.From += s.Value[0]
			}
			total += s.Value[0]
		}
		return total
	}
	d := &Diff{Appeared: []DiffItem{}, Vanished: []DiffItem{}}
	d.FromTotal = add(from, false)
	d.ToTotal = add(to, true)
	for _, k := range slices.Sorted(maps.Keys(items)) {
		it := items[k]
		it.Delta = it.To - it.From
		switch {
		case it.Delta > 0:
			d.Appeared = append(d.Appeared, *it)
		case it.Delta < 0:
			d.Vanished = append(d.Vanished, *it)
		}
	}
	byChange := func(a, b DiffItem) int {
		return cmp.Compare(abs(b.Delta), abs(a.Delta)) // stable sort keeps key order on ties
	}
	slices.SortStableFunc(d.Appeared, byChange)
	slices.SortStableFunc(d.Vanished, byChange)
	if len(d.Appeared) > maxDiffItems {
		d.Omitted += len(d.Appeared) - maxDiffItems
		d.Appeared = d.Appeared[:maxDiffItems]
	}
	if len(d.Vanished) > maxDiffItems {
		d.Omitted += len(d.Vanished) - maxDiffItems
		d.Vanished = d.Vanished[:maxDiffItems]
	}
	return d
}

func abs(v int64) int64 {
	if v < 0 {
		return -v
	}
	return v
}
