package ui

import (
	"reflect"
	"strings"
	"testing"

	"github.com/goroscope/goroscope/pkg/fold"
)

// kindPaths is paths with each frame of a kind written "kind:name".
func kindPaths(n *Node) []string {
	var rename func(n *Node) *Node
	rename = func(n *Node) *Node {
		c := &Node{Name: n.Name, Value: n.Value}
		if n.Kind != "" {
			c.Name = n.Kind + ":" + n.Name
		}
		for _, x := range n.Children {
			c.Children = append(c.Children, rename(x))
		}
		return c
	}
	return paths(rename(n))
}

func TestBuildFlameGrouped(t *testing.T) {
	p := fold.Goroutines(snapA())
	fl := BuildFlameGrouped(p, Filter{}, "all", true)
	want := []string{
		"all;state:running;" + fold.RunningFunction + " 1",
		"all;state:waiting;wait_reason:chan receive;main.start;main.loop;main.worker;runtime.chanrecv1;runtime.gopark 3",
		"all;state:waiting;wait_reason:sync.Mutex.Lock;main.start;main.handle;sync.(*Mutex).Lock;runtime.gopark 2",
	}
	if got := kindPaths(fl.Root); !reflect.DeepEqual(got, want) {
		t.Errorf("grouped paths:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if fl.Total != 6 || fl.Root.Value != 6 || fl.Root.Kind != "" {
		t.Errorf("total %v root %v kind %q; want 6, 6, none", fl.Total, fl.Root.Value, fl.Root.Kind)
	}
	// Filters apply as ungrouped; the facets are the same.
	g := BuildFlameGrouped(p, Filter{WaitReason: "chan receive"}, "all", true)
	u := BuildFlame(p, Filter{WaitReason: "chan receive"}, "all")
	if g.Total != 3 || !reflect.DeepEqual(g.Facets, u.Facets) {
		t.Errorf("filtered grouped total %v facets %+v; want 3, %+v", g.Total, g.Facets, u.Facets)
	}
	// Ungrouped trees have no kinds: the JSON is as before.
	var kinds []string
	var walk func(*Node)
	walk = func(n *Node) {
		if n.Kind != "" {
			kinds = append(kinds, n.Kind)
		}
		for _, c := range n.Children {
			walk(c)
		}
	}
	walk(BuildFlame(p, Filter{}, "all").Root)
	if len(kinds) != 0 {
		t.Errorf("ungrouped tree has frames of kinds %q", kinds)
	}
}

// TestBuildFlameGroupedNoStates: profiles without state labels (CPU,
// memory, ...) are the same tree grouped or not.
func TestBuildFlameGroupedNoStates(t *testing.T) {
	p := fold.Goroutines(snapA())
	for _, s := range p.Sample {
		s.Label = nil
	}
	if g, u := kindPaths(BuildFlameGrouped(p, Filter{}, "all", true).Root), paths(BuildFlame(p, Filter{}, "all").Root); !reflect.DeepEqual(g, u) {
		t.Errorf("grouped without states:\n%s\nungrouped:\n%s", strings.Join(g, "\n"), strings.Join(u, "\n"))
	}
}

func TestAPIFlameGroup(t *testing.T) {
	srv := newTestServer(t)
	f := getJSON[FlameAnswer](t, srv, procPath+"/flame?group=state&state=waiting")
	var names []string
	for _, c := range f.Root.Children {
		names = append(names, c.Kind+":"+c.Name)
		for _, w := range c.Children {
			names = append(names, w.Kind+":"+w.Name)
		}
	}
	if want := []string{"state:waiting", "wait_reason:chan receive", "wait_reason:select"}; !reflect.DeepEqual(names, want) || f.Total != 7 || f.SampleType != "goroutine" {
		t.Errorf("group=state: frames %q total %v sample type %q; want %q, 7, goroutine", names, f.Total, f.SampleType, want)
	}
	f = getJSON[FlameAnswer](t, srv, procPath+"/flame")
	if len(f.Root.Children) == 0 || f.Root.Children[0].Kind != "" {
		t.Errorf("ungrouped flame's first frame %+v, want a function", f.Root.Children)
	}
	body := string(get(t, srv, procPath+"/flame?group=package", 400))
	if !strings.Contains(body, "group=") {
		t.Errorf("group=package: %s", body)
	}
}
