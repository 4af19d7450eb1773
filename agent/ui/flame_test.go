package ui

import (
	"bytes"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/goroscope/goroscope/pkg/fold"
	"github.com/goroscope/goroscope/pkg/snapshot"
)

// paths lists a tree's root-to-leaf paths with their values: "a;b 3".
func paths(n *Node) []string {
	var out []string
	var walk func(n *Node, prefix string)
	walk = func(n *Node, prefix string) {
		p := prefix + n.Name
		var childSum float64
		for _, c := range n.Children {
			childSum += c.Value
			walk(c, p+";")
		}
		if self := n.Value - childSum; self > 0 {
			out = append(out, p+" "+strconv.FormatFloat(self, 'f', -1, 64))
		}
	}
	walk(n, "")
	slices.Sort(out)
	return out
}

func TestBuildFlame(t *testing.T) {
	p := fold.Goroutines(snapA())
	recv := "all;main.start;main.loop;main.worker;runtime.chanrecv1;runtime.gopark 3"
	mutex := "all;main.start;main.handle;sync.(*Mutex).Lock;runtime.gopark 2"
	running := "all;" + fold.RunningFunction + " 1" // a running goroutine's stack is not read
	tests := []struct {
		name  string
		f     Filter
		total float64
		paths []string
	}{
		{"all", Filter{}, 6, []string{running, mutex, recv}},
		{"state", Filter{State: "waiting"}, 5, []string{mutex, recv}},
		{"running", Filter{State: "running"}, 1, []string{running}},
		{"wait reason", Filter{WaitReason: "chan receive"}, 3, []string{recv}},
		{"wait duration", Filter{WaitDuration: "10s-1m"}, 2, []string{mutex}},
		{"label", Filter{Labels: []LabelFilter{{"handler", "api"}}}, 3, []string{recv}},
		{"nothing", Filter{WaitReason: "select"}, 0, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fl := BuildFlame(p, tt.f, "all")
			if fl.Total != tt.total || fl.UnfilteredTotal != 6 || fl.Root.Value != tt.total {
				t.Errorf("total %v, unfiltered %v, root %v; want %v, 6, %v", fl.Total, fl.UnfilteredTotal, fl.Root.Value, tt.total, tt.total)
			}
			if got := paths(fl.Root); !reflect.DeepEqual(got, tt.paths) {
				t.Errorf("paths:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(tt.paths, "\n"))
			}
			if fl.Unit != "count" {
				t.Errorf("unit %q, want count", fl.Unit)
			}
		})
	}
	fl := BuildFlame(p, Filter{State: "running"}, "all") // facets ignore the filter
	want := Facets{
		States:        map[string]float64{"waiting": 5, "running": 1},
		WaitReasons:   map[string]float64{"chan receive": 3, "sync.Mutex.Lock": 2},
		WaitDurations: map[string]float64{"<1s": 3, "10s-1m": 2},
		Labels:        map[string]map[string]float64{"handler": {"api": 3}},
	}
	if !reflect.DeepEqual(fl.Facets, want) {
		t.Errorf("facets %+v, want %+v", fl.Facets, want)
	}
}

func TestBuildFlameNodeBudget(t *testing.T) {
	// Distinct deep stacks past the node budget are cut, values kept.
	s := &snapshot.Snapshot{}
	const n, depth = 100, maxFlameNodes/100 + 10
	for i := range n {
		frames := make([]snapshot.Frame, depth)
		for j := range frames {
			frames[j] = snapshot.Frame{Function: "f" + strconv.Itoa(i) + "_" + strconv.Itoa(j), PC: uint64(i*depth + j + 1)}
		}
		s.Goroutines = append(s.Goroutines, snapshot.Goroutine{ID: uint64(i + 1), State: snapshot.StateWaiting, Frames: frames})
	}
	fl := BuildFlame(fold.Goroutines(s), Filter{}, "all")
	if fl.Total != n || fl.Root.Value != n {
		t.Errorf("total %v root %v, want %d", fl.Total, fl.Root.Value, n)
	}
	count := 0
	var walk func(*Node)
	walk = func(x *Node) {
		count++
		for _, c := range x.Children {
			walk(c)
		}
	}
	walk(fl.Root)
	if !fl.Truncated || count > maxFlameNodes+1 {
		t.Errorf("truncated %v with %d nodes, want truncated at most %d", fl.Truncated, count, maxFlameNodes+1)
	}
}

func TestWriteFoldedMatchesSnapshot(t *testing.T) {
	for _, s := range []*snapshot.Snapshot{snapA(), snapB()} {
		var got, want bytes.Buffer
		if err := WriteFolded(&got, fold.Goroutines(s), Filter{}); err != nil {
			t.Fatal(err)
		}
		if err := snapshot.WriteFolded(&want, s); err != nil {
			t.Fatal(err)
		}
		// The profile gives running goroutines, which have no stack in a
		// snapshot, the frame fold.RunningFunction.
		wantFolded := strings.ReplaceAll("\n"+want.String(), "\nrunning ", "\nrunning;"+fold.RunningFunction+" ")[1:]
		if got.String() != wantFolded {
			t.Errorf("folded from pprof:\n%s\nfrom the snapshot:\n%s", got.String(), wantFolded)
		}
	}
	var got bytes.Buffer
	if err := WriteFolded(&got, fold.Goroutines(snapA()), Filter{WaitReason: "sync.Mutex.Lock"}); err != nil {
		t.Fatal(err)
	}
	if want := "waiting: sync.Mutex.Lock;main.start;main.handle;sync.(*Mutex).Lock;runtime.gopark 2\n"; got.String() != want {
		t.Errorf("filtered folded %q, want %q", got.String(), want)
	}
}

func TestFilterProfile(t *testing.T) {
	p := fold.Goroutines(snapA())
	q := FilterProfile(p, Filter{WaitReason: "chan receive"})
	if len(q.Sample) != 1 || q.Sample[0].Value[0] != 3 || len(p.Sample) != 3 {
		t.Errorf("filtered %d samples (first value %v), original %d; want 1 (3), 3", len(q.Sample), q.Sample[0].Value, len(p.Sample))
	}
	// The download filters its own parsed copy in place: the same file.
	var want, got bytes.Buffer
	if err := q.Write(&want); err != nil {
		t.Fatal(err)
	}
	filterSamples(p, Filter{WaitReason: "chan receive"})
	if err := p.Write(&got); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got.Bytes(), want.Bytes()) {
		t.Errorf("filtering in place writes %d bytes, FilterProfile's copy %d", got.Len(), want.Len())
	}
}
