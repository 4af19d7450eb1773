package ui

import (
	"bytes"
	"cmp"
	"encoding/json"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/google/pprof/profile"

	"github.com/goroscope/goroscope/pkg/fold"
)

// summarize prints diff items as "delta from->to top-function labels".
func summarize(items []DiffItem) []string {
	var out []string
	for _, it := range items {
		top := ""
		if len(it.Stack) > 1 {
			top = strings.Fields(it.Stack[1])[0] // the frame under runtime.gopark
		}
		out = append(out, fmt.Sprintf("%+d %d->%d %s %v", it.Delta, it.From, it.To, top, it.Labels))
	}
	return out
}

func TestBuildDiff(t *testing.T) {
	a, b := fold.Goroutines(snapA()), fold.Goroutines(snapB())
	tests := []struct {
		name               string
		from, to           int
		f                  Filter
		appeared, vanished []string
	}{
		{
			name: "all", f: Filter{},
			appeared: []string{
				"+2 3->5 runtime.chanrecv1 map[handler:api state:waiting wait_reason:chan receive]",
				"+2 0->2 runtime.selectgo map[state:waiting wait_reason:select]",
			},
			vanished: []string{"-2 2->0 sync.(*Mutex).Lock map[state:waiting wait_reason:sync.Mutex.Lock]"},
		},
		{
			name: "wait reason", f: Filter{WaitReason: "chan receive"},
			appeared: []string{"+2 3->5 runtime.chanrecv1 map[handler:api state:waiting wait_reason:chan receive]"},
		},
		{
			// wait_duration is ignored: the waiters moved from <1s to 1s-10s.
			name: "wait duration ignored", f: Filter{WaitDuration: "<1s", Labels: []LabelFilter{{"handler", "api"}}},
			appeared: []string{"+2 3->5 runtime.chanrecv1 map[handler:api state:waiting wait_reason:chan receive]"},
		},
		{name: "running unchanged", f: Filter{State: "running"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := BuildDiff(a, b, tt.f)
			if got := summarize(d.Appeared); !reflect.DeepEqual(got, tt.appeared) {
				t.Errorf("appeared:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(tt.appeared, "\n"))
			}
			if got := summarize(d.Vanished); !reflect.DeepEqual(got, tt.vanished) {
				t.Errorf("vanished:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(tt.vanished, "\n"))
			}
		})
	}
	d := BuildDiff(a, b, Filter{})
	if d.FromTotal != 6 || d.ToTotal != 8 || d.Omitted != 0 {
		t.Errorf("totals %d -> %d, omitted %d; want 6 -> 8, 0", d.FromTotal, d.ToTotal, d.Omitted)
	}
	wantStack := []string{
		"runtime.gopark /go/src/runtime/proc.go:100",
		"runtime.chanrecv1 /go/src/runtime/chan.go:200",
		"main.worker /app/w.go:10",
		"main.loop /app/w.go:20",
		"main.start /app/w.go:30",
	}
	if !reflect.DeepEqual(d.Appeared[0].Stack, wantStack) {
		t.Errorf("stack %q, want %q", d.Appeared[0].Stack, wantStack)
	}
	// Same profile on both sides: nothing changed.
	if d := BuildDiff(a, a, Filter{}); len(d.Appeared)+len(d.Vanished) != 0 {
		t.Errorf("self diff has %d appeared, %d vanished", len(d.Appeared), len(d.Vanished))
	}
}

// refDiffKey groups samples by stack and labels, wait_duration left out.
func refDiffKey(s *profile.Sample, stack []string) (string, map[string]string) {
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

// refBuildDiff is BuildDiff as it was, holding every group whole: it compares the samples of from and to that pass f, grouped by
// stack and labels (the wait-duration bucket excluded: it changes as
// goroutines keep waiting).
func refBuildDiff(from, to *profile.Profile, f Filter) *Diff {
	f.WaitDuration = ""
	items := map[string]*DiffItem{}
	add := func(p *profile.Profile, isTo bool) int64 {
		var total int64
		for _, s := range p.Sample {
			if len(s.Value) == 0 || !f.MatchLabels(s.Label) {
				continue
			}
			stack := sampleFramesLines(s)
			k, labels := refDiffKey(s, stack)
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

// TestBuildDiffEqualsReference: the diff built from interned stacks and
// label sets answers as the diff of whole groups did, order of ties and
// the cut at maxDiffItems included.
func TestBuildDiffEqualsReference(t *testing.T) {
	from, to := bigSnapshot(3000), bigSnapshot(4000)
	for i := range from.Goroutines {
		if i%2 == 0 {
			from.Goroutines[i].Labels = map[string]string{"req": fmt.Sprint("r", i%700), "a=b": "c=d"}
		}
	}
	for i := range to.Goroutines {
		if i%3 == 0 {
			to.Goroutines[i].Labels = map[string]string{"req": fmt.Sprint("r", i%900)}
		}
	}
	pf, pt := fold.Goroutines(from), fold.Goroutines(to)
	cut := false
	for _, f := range []Filter{{}, {WaitReason: "select"}, {Labels: []LabelFilter{{"handler", "api"}}}, {State: "running"}} {
		for _, pair := range [][2]*profile.Profile{{pf, pt}, {pt, pf}, {pf, pf}} {
			d := BuildDiff(pair[0], pair[1], f)
			cut = cut || d.Omitted > 0
			got, err := json.Marshal(d)
			if err != nil {
				t.Fatal(err)
			}
			want, err := json.Marshal(refBuildDiff(pair[0], pair[1], f))
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("filter %+v: diff differs from the reference:\n got %.500s\nwant %.500s", f, got, want)
			}
		}
	}
	if !cut {
		t.Error("no case cut at maxDiffItems")
	}
}
