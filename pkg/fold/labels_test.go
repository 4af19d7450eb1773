package fold

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/goroscope/goroscope/pkg/label"
	"github.com/goroscope/goroscope/pkg/snapshot"
)

func TestLabelLimiter(t *testing.T) {
	long := strings.Repeat("v", 5<<10)
	truncated, _ := label.Truncate(long)
	tests := []struct {
		name   string
		limits LabelLimits
		in     []map[string]string
		want   []map[string]string
		over   []LabelOverflow
	}{
		{"within limits", LabelLimits{}, []map[string]string{{"a": "1"}, {"a": "1", "b": "2"}, nil},
			[]map[string]string{{"a": "1"}, {"a": "1", "b": "2"}, nil}, nil},
		{"values beyond the limit become other", LabelLimits{MaxValues: 2},
			[]map[string]string{{"a": "1"}, {"a": "2"}, {"a": "3"}, {"a": "1"}, {"a": "4"}, {"a": "other"}},
			[]map[string]string{{"a": "1"}, {"a": "2"}, {"a": OtherValue}, {"a": "1"}, {"a": OtherValue}, {"a": OtherValue}},
			[]LabelOverflow{{Key: "a", Reason: OverflowValues, N: 2}}},
		{"keys beyond the limit are left out, in sorted order", LabelLimits{MaxKeys: 1},
			[]map[string]string{{"b": "1", "a": "1"}, {"b": "2"}, {"a": "2"}},
			[]map[string]string{{"a": "1"}, {}, {"a": "2"}},
			[]LabelOverflow{{Key: "", Reason: OverflowKeys, N: 2}}},
		{"a 5 KiB value is truncated and counted", LabelLimits{},
			[]map[string]string{{"sql": long}, {"sql": long}},
			[]map[string]string{{"sql": truncated}, {"sql": truncated}},
			[]LabelOverflow{{Key: "sql", Reason: OverflowTruncated, N: 2}}},
		{"truncated values count toward the values", LabelLimits{MaxValues: 1},
			[]map[string]string{{"sql": "short"}, {"sql": long}},
			[]map[string]string{{"sql": "short"}, {"sql": OtherValue}},
			[]LabelOverflow{{Key: "sql", Reason: OverflowTruncated, N: 1}, {Key: "sql", Reason: OverflowValues, N: 1}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := NewLabelLimiter(tt.limits)
			for i, in := range tt.in {
				orig := fmt.Sprint(in)
				got := l.Labels(in)
				if fmt.Sprint(got) != fmt.Sprint(tt.want[i]) {
					t.Errorf("Labels(#%d) = %.80v, want %.80v", i, got, tt.want[i])
				}
				if fmt.Sprint(in) != orig {
					t.Errorf("Labels(#%d) modified its argument", i)
				}
			}
			if got := l.TakeOverflows(); fmt.Sprint(got) != fmt.Sprint(tt.over) {
				t.Errorf("TakeOverflows = %v, want %v", got, tt.over)
			}
			if got := l.TakeOverflows(); got != nil {
				t.Errorf("second TakeOverflows = %v, want none", got)
			}
		})
	}
}

func TestLabelLimiterNil(t *testing.T) {
	var l *LabelLimiter
	m := map[string]string{"a": strings.Repeat("x", 5<<10)}
	if got := l.Labels(m); len(got["a"]) != 5<<10 {
		t.Errorf("nil limiter changed the labels")
	}
	if got := l.TakeOverflows(); got != nil {
		t.Errorf("nil limiter TakeOverflows = %v", got)
	}
}

// TestProfilesLimitedCardinality folds 10,000 goroutines with distinct
// values of one key: the profiles hold at most MaxValues+1 values, "other"
// counts the rest, and so does the overflow counter, once per goroutine
// (not once per profile).
func TestProfilesLimitedCardinality(t *testing.T) {
	const n, maxValues = 10000, 100
	frames := []snapshot.Frame{{Function: "main.handle", File: "main.go", Line: 1, PC: 0x10}}
	s := &snapshot.Snapshot{Time: time.Unix(1000, 0)}
	for i := range n {
		s.Goroutines = append(s.Goroutines, snapshot.Goroutine{ID: uint64(i + 1), State: snapshot.StateWaiting, WaitReason: "select", Frames: frames,
			Labels: map[string]string{"request_id": fmt.Sprintf("req-%05d", i)}})
	}
	onCPU := []OnCPU{{Goid: 1, Frames: frames, Labels: map[string]string{"request_id": "cpu-only"}, Nanos: 1e6}}
	lim := NewLabelLimiter(LabelLimits{MaxValues: maxValues})
	g, w := ProfilesLimited(s, 10*time.Second, onCPU, lim)

	values := map[string]int64{}
	for _, smp := range g.Sample {
		values[smp.Label["request_id"][0]] += smp.Value[0]
	}
	if len(values) > maxValues+1 {
		t.Errorf("goroutine profile: %d distinct request_id values, want at most %d", len(values), maxValues+1)
	}
	if got, want := values[OtherValue], int64(n-maxValues); got != want {
		t.Errorf("goroutine profile: other = %d goroutines, want %d", got, want)
	}
	wallValues := map[string]bool{}
	for _, smp := range w.Sample {
		wallValues[smp.Label["request_id"][0]] = true
	}
	if len(wallValues) > maxValues+1 || !wallValues[OtherValue] || wallValues["cpu-only"] {
		t.Errorf("wall profile: %d distinct values (other %v, cpu-only %v), want at most %d with other and without cpu-only",
			len(wallValues), wallValues[OtherValue], wallValues["cpu-only"], maxValues+1)
	}
	// The goroutines overflow n-maxValues times, the on-CPU entry once.
	want := []LabelOverflow{{Key: "request_id", Reason: OverflowValues, N: n - maxValues + 1}}
	if got := lim.TakeOverflows(); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("overflows = %v, want %v", got, want)
	}
	if v := s.Goroutines[n-1].Labels["request_id"]; v != fmt.Sprintf("req-%05d", n-1) {
		t.Errorf("the snapshot was modified: %q", v)
	}

	// The next snapshot keeps the admitted values and adds none.
	g2, _ := ProfilesLimited(s, 10*time.Second, nil, lim)
	values2 := map[string]bool{}
	for _, smp := range g2.Sample {
		values2[smp.Label["request_id"][0]] = true
	}
	for v := range values2 {
		if _, ok := values[v]; !ok {
			t.Errorf("second profile has a new value %q", v)
		}
	}
}
