package ui

import (
	"fmt"
	"reflect"
	"strings"
	"testing"

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
