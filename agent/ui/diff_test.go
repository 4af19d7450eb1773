package ui

import (
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/goroscope/goroscope/pkg/fold"
	"github.com/goroscope/goroscope/pkg/snapshot"
)

// diffPaths lists every frame of a diff tree as "root;...;frame value/base",
// a frame of a kind written "kind:name".
func diffPaths(n *DiffNode) []string {
	var out []string
	var walk func(n *DiffNode, prefix string)
	walk = func(n *DiffNode, prefix string) {
		name := n.Name
		if n.Kind != "" {
			name = n.Kind + ":" + name
		}
		p := prefix + name
		out = append(out, fmt.Sprintf("%s %v/%v", p, n.Value, n.Base))
		for _, c := range n.Children {
			walk(c, p+";")
		}
	}
	walk(n, "")
	slices.Sort(out)
	return out
}

// TestDiffTree: the diff tree is the union of both sides' trees, a frame
// absent on one side 0 there; filters and grouping apply to both sides.
func TestDiffTree(t *testing.T) {
	base, cmp := fold.Goroutines(snapA()), fold.Goroutines(snapB())
	for _, tt := range []struct {
		name        string
		f           Filter
		byState     bool
		base, total int64
		want        []string
	}{
		{
			name: "wait reason", f: Filter{WaitReason: "sync.Mutex.Lock"}, base: 2, total: 0,
			want: []string{
				"all 0/2",
				"all;main.start 0/2",
				"all;main.start;main.handle 0/2",
				"all;main.start;main.handle;sync.(*Mutex).Lock 0/2",
				"all;main.start;main.handle;sync.(*Mutex).Lock;runtime.gopark 0/2",
			},
		},
		{
			// wait_duration filters each side: the chan receive waiters were
			// under 1s in the baseline, 1s-10s in the comparison.
			name: "wait duration", f: Filter{WaitDuration: "<1s"}, base: 3, total: 0,
			want: []string{
				"all 0/3",
				"all;main.start 0/3",
				"all;main.start;main.loop 0/3",
				"all;main.start;main.loop;main.worker 0/3",
				"all;main.start;main.loop;main.worker;runtime.chanrecv1 0/3",
				"all;main.start;main.loop;main.worker;runtime.chanrecv1;runtime.gopark 0/3",
			},
		},
		{
			name: "grouped", f: Filter{State: "running"}, byState: true, base: 1, total: 1,
			want: []string{"all 1/1", "all;state:running 1/1", "all;state:running;" + fold.RunningFunction + " 1/1"},
		},
		{
			name: "grouped waiting", f: Filter{Labels: []LabelFilter{{"handler", "api"}}}, byState: true, base: 3, total: 5,
			want: []string{
				"all 5/3",
				"all;state:waiting 5/3",
				"all;state:waiting;wait_reason:chan receive 5/3",
				"all;state:waiting;wait_reason:chan receive;main.start 5/3",
				"all;state:waiting;wait_reason:chan receive;main.start;main.loop 5/3",
				"all;state:waiting;wait_reason:chan receive;main.start;main.loop;main.worker 5/3",
				"all;state:waiting;wait_reason:chan receive;main.start;main.loop;main.worker;runtime.chanrecv1 5/3",
				"all;state:waiting;wait_reason:chan receive;main.start;main.loop;main.worker;runtime.chanrecv1;runtime.gopark 5/3",
			},
		},
	} {
		t.Run(tt.name, func(t *testing.T) {
			tr := newTree(tt.f, "all", tt.byState)
			var bs, cs sideSums
			tr.add(base, sideBase, &bs)
			tr.add(cmp, sideComparison, &cs)
			if bs.total != tt.base || cs.total != tt.total || bs.unfiltered != 6 || cs.unfiltered != 8 {
				t.Errorf("totals %d -> %d (unfiltered %d -> %d), want %d -> %d (6 -> 8)", bs.total, cs.total, bs.unfiltered, cs.unfiltered, tt.base, tt.total)
			}
			if got := diffPaths(tr.diffNodes(unitScale, unitScale)); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("paths:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(tt.want, "\n"))
			}
		})
	}
	// Each side scaled by its own scale.
	tr := newTree(Filter{State: "running"}, "all", false)
	var bs, cs sideSums
	tr.add(base, sideBase, &bs)
	tr.add(base, sideBase, &bs)
	tr.add(cmp, sideComparison, &cs)
	got := diffPaths(tr.diffNodes(scale{3, 1}, scale{1, 2}))
	if want := []string{"all 3/1", "all;" + fold.RunningFunction + " 3/1"}; !reflect.DeepEqual(got, want) {
		t.Errorf("scaled paths %q, want %q", got, want)
	}
}

// TestDiffNodeBudget: both sides together stay within maxFlameNodes; the
// values of the frames left out stay in their parents.
func TestDiffNodeBudget(t *testing.T) {
	deep := func(prefix string) *snapshot.Snapshot {
		s := &snapshot.Snapshot{}
		const n, depth = 60, maxFlameNodes / 100
		for i := range n {
			frames := make([]snapshot.Frame, depth)
			for j := range frames {
				frames[j] = snapshot.Frame{Function: fmt.Sprintf("%s%d_%d", prefix, i, j), PC: uint64(i*depth + j + 1)}
			}
			s.Goroutines = append(s.Goroutines, snapshot.Goroutine{ID: uint64(i + 1), State: snapshot.StateWaiting, Frames: frames})
		}
		return s
	}
	tr := newTree(Filter{}, "all", false)
	var bs, cs sideSums
	tr.add(fold.Goroutines(deep("a")), sideBase, &bs)
	tr.add(fold.Goroutines(deep("b")), sideComparison, &cs)
	root := tr.diffNodes(unitScale, unitScale)
	count := 0
	var walk func(*DiffNode)
	walk = func(x *DiffNode) {
		count++
		for _, c := range x.Children {
			if c.Value > x.Value || c.Base > x.Base {
				t.Errorf("%s (%v/%v) exceeds its parent (%v/%v)", c.Name, c.Value, c.Base, x.Value, x.Base)
			}
			walk(c)
		}
	}
	walk(root)
	if !tr.truncated || count > maxFlameNodes+1 || root.Value != 60 || root.Base != 60 {
		t.Errorf("truncated %v with %d nodes, root %v/%v; want truncated, at most %d nodes, 60/60", tr.truncated, count, root.Value, root.Base, maxFlameNodes+1)
	}
}
