package fold

import (
	"bytes"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/google/pprof/profile"

	"github.com/goroscope/goroscope/pkg/snapshot"
)

func testSnapshot() *snapshot.Snapshot {
	park := []snapshot.Frame{
		{Function: "runtime.gopark", File: "proc.go", Line: 435, PC: 0x10},
		{Function: "main.inner", File: "main.go", Line: 7, PC: 0x20, Inlined: true},
		{Function: "main.worker", File: "main.go", Line: 12, PC: 0x20},
		{Function: "runtime.goexit", File: "asm.s", Line: 1, PC: 0x30},
	}
	return &snapshot.Snapshot{
		Time: time.Unix(1000, 0),
		Goroutines: []snapshot.Goroutine{
			{ID: 1, State: snapshot.StateWaiting, WaitReason: "chan receive", WaitingSeconds: 30, Frames: park},
			{ID: 2, State: snapshot.StateWaiting, WaitReason: "chan receive", WaitingSeconds: 45, Frames: park},
			{ID: 3, State: snapshot.StateWaiting, WaitReason: "chan receive", WaitingSeconds: 0.5, Frames: park},
			{ID: 4, State: snapshot.StateWaiting, WaitReason: "chan receive", WaitingSeconds: 30, Frames: park, Labels: map[string]string{"tenant": "acme"}},
			{ID: 5, State: snapshot.StateRunning, Frames: []snapshot.Frame{}},
		},
	}
}

// sampleKey renders a sample's labels and stack for comparisons.
func sampleKey(s *profile.Sample) string {
	var b bytes.Buffer
	for _, k := range []string{LabelState, LabelWaitReason, LabelWaitBucket, "tenant"} {
		if v := s.Label[k]; len(v) > 0 {
			b.WriteString(k + "=" + v[0] + " ")
		}
	}
	for _, l := range s.Location {
		for _, ln := range l.Line {
			b.WriteString(ln.Function.Name + ";")
		}
	}
	return b.String()
}

func TestFold(t *testing.T) {
	s := testSnapshot()
	for _, tc := range []struct {
		name string
		p    *profile.Profile
		typ  string
		want map[string]int64
	}{
		{"goroutine", Goroutines(s), "goroutine", map[string]int64{
			"state=waiting wait_reason=chan receive wait_duration=10s-1m runtime.gopark;main.inner;main.worker;runtime.goexit;":             2,
			"state=waiting wait_reason=chan receive wait_duration=<1s runtime.gopark;main.inner;main.worker;runtime.goexit;":                1,
			"state=waiting wait_reason=chan receive wait_duration=10s-1m tenant=acme runtime.gopark;main.inner;main.worker;runtime.goexit;": 1,
			"state=running (running: stack is live);": 1,
		}},
		{"goroutine_wall", GoroutineWall(s, 10*time.Second), "wall", map[string]int64{
			"state=waiting wait_reason=chan receive wait_duration=10s-1m runtime.gopark;main.inner;main.worker;runtime.goexit;":             2e10,
			"state=waiting wait_reason=chan receive wait_duration=<1s runtime.gopark;main.inner;main.worker;runtime.goexit;":                1e10,
			"state=waiting wait_reason=chan receive wait_duration=10s-1m tenant=acme runtime.gopark;main.inner;main.worker;runtime.goexit;": 1e10,
			"state=running (running: stack is live);": 1e10,
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			// Round-trip through the encoding to check the profile is valid.
			var buf bytes.Buffer
			if err := tc.p.Write(&buf); err != nil {
				t.Fatal(err)
			}
			p, err := profile.Parse(&buf)
			if err != nil {
				t.Fatal(err)
			}
			if p.SampleType[0].Type != tc.typ || p.PeriodType.Type != tc.typ || p.PeriodType.Unit != p.SampleType[0].Unit {
				t.Errorf("sample type %s, period type %s/%s; want %s for both", p.SampleType[0].Type, p.PeriodType.Type, p.PeriodType.Unit, tc.typ)
			}
			// Every sample has a stack: flame graphs show none for one
			// without, whatever its value.
			for _, x := range p.Sample {
				if len(x.Location) == 0 {
					t.Errorf("sample %s has no stack", sampleKey(x))
				}
			}
			got := map[string]int64{}
			for _, s := range p.Sample {
				got[sampleKey(s)] += s.Value[0]
			}
			if len(got) != len(tc.want) {
				t.Errorf("%d distinct samples, want %d: %v", len(got), len(tc.want), got)
			}
			for k, v := range tc.want {
				if got[k] != v {
					t.Errorf("sample %q = %d, want %d", k, got[k], v)
				}
			}
			// The inlined frame shares its caller's location: exactly one
			// location has two lines, main.inner inlined into main.worker,
			// and no location has main.inner alone.
			inlined := 0
			for _, l := range p.Location {
				var fns []string
				for _, ln := range l.Line {
					fns = append(fns, ln.Function.Name)
				}
				switch {
				case len(l.Line) > 1:
					inlined++
					if !slices.Equal(fns, []string{"main.inner", "main.worker"}) {
						t.Errorf("inlined location has lines %v, want main.inner then main.worker", fns)
					}
				case slices.Equal(fns, []string{"main.inner"}):
					t.Errorf("location %d holds the inlined main.inner alone", l.ID)
				}
			}
			if inlined != 1 {
				t.Errorf("%d locations with inlined lines, want 1 (main.inner in main.worker)", inlined)
			}
		})
	}
}

func TestWaitBucket(t *testing.T) {
	for _, tc := range []struct {
		s    float64
		want string
	}{{0, ""}, {0.2, "<1s"}, {1, "1s-10s"}, {9.99, "1s-10s"}, {10, "10s-1m"}, {60, "1m-10m"}, {599, "1m-10m"}, {600, ">10m"}, {1e6, ">10m"}} {
		if got := WaitBucket(tc.s); got != tc.want {
			t.Errorf("WaitBucket(%v) = %q, want %q", tc.s, got, tc.want)
		}
	}
}

// TestProfilesMatchSeparateFolds checks that folding both profiles at once
// gives the same samples as folding each alone.
func TestProfilesMatchSeparateFolds(t *testing.T) {
	s := testSnapshot()
	g, w := Profiles(s, 10*time.Second)
	for _, tc := range []struct {
		name      string
		got, want *profile.Profile
	}{{"goroutines", g, Goroutines(s)}, {"goroutine_wall", w, GoroutineWall(s, 10*time.Second)}} {
		got, want := map[string]int64{}, map[string]int64{}
		for _, x := range tc.got.Sample {
			got[sampleKey(x)] += x.Value[0]
		}
		for _, x := range tc.want.Sample {
			want[sampleKey(x)] += x.Value[0]
		}
		if len(got) != len(want) || len(got) != 4 {
			t.Errorf("%s: %d samples, separate fold %d, want 4", tc.name, len(got), len(want))
		}
		for k, v := range want {
			if got[k] != v {
				t.Errorf("%s: sample %q = %d, want %d", tc.name, k, got[k], v)
			}
		}
	}
}

// TestGroupWithoutPCs checks that frames parsed from text dumps (no PCs)
// are told apart by their names and lines.
func TestGroupWithoutPCs(t *testing.T) {
	frame := func(fn string, line int) []snapshot.Frame {
		return []snapshot.Frame{{Function: "runtime.gopark", File: "proc.go", Line: 435}, {Function: fn, File: "main.go", Line: line}}
	}
	s := &snapshot.Snapshot{Goroutines: []snapshot.Goroutine{
		{ID: 1, State: snapshot.StateWaiting, WaitReason: "select", Frames: frame("main.a", 7)},
		{ID: 2, State: snapshot.StateWaiting, WaitReason: "select", Frames: frame("main.a", 7)},
		{ID: 3, State: snapshot.StateWaiting, WaitReason: "select", Frames: frame("main.b", 7)},
		{ID: 4, State: snapshot.StateWaiting, WaitReason: "select", Frames: frame("main.a", 8)},
	}}
	got := map[string]int64{}
	for _, x := range Goroutines(s).Sample {
		got[sampleKey(x)+x.Location[1].Line[0].Function.Name+":"+fmt.Sprint(x.Location[1].Line[0].Line)] += x.Value[0]
	}
	want := map[string]int64{
		"state=waiting wait_reason=select runtime.gopark;main.a;main.a:7": 2,
		"state=waiting wait_reason=select runtime.gopark;main.b;main.b:7": 1,
		"state=waiting wait_reason=select runtime.gopark;main.a;main.a:8": 1,
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("groups %v, want %v", got, want)
	}
}

// TestProfilesOnCPU: measured on-CPU stacks replace the stackless running
// goroutines in goroutine_wall; in the goroutine profile a running
// goroutine gets the stack it was sampled in most, by goroutine id, or
// RunningFunction when it was not sampled.
func TestProfilesOnCPU(t *testing.T) {
	burn := []snapshot.Frame{{Function: "main.burn", File: "main.go", Line: 3, PC: 0x50}, {Function: "runtime.goexit", File: "asm.s", Line: 1, PC: 0x30}}
	hash := []snapshot.Frame{{Function: "main.hash", File: "main.go", Line: 9, PC: 0x60}, {Function: "runtime.goexit", File: "asm.s", Line: 1, PC: 0x30}}
	waiting := map[string]int64{
		"state=waiting wait_reason=chan receive wait_duration=10s-1m runtime.gopark;main.inner;main.worker;runtime.goexit;":             2e10,
		"state=waiting wait_reason=chan receive wait_duration=<1s runtime.gopark;main.inner;main.worker;runtime.goexit;":                1e10,
		"state=waiting wait_reason=chan receive wait_duration=10s-1m tenant=acme runtime.gopark;main.inner;main.worker;runtime.goexit;": 1e10,
	}
	counts := map[string]int64{}
	for k, v := range waiting {
		counts[k] = v / 1e10
	}
	with := func(m map[string]int64, more map[string]int64) map[string]int64 {
		out := map[string]int64{}
		for k, v := range m {
			out[k] = v
		}
		for k, v := range more {
			out[k] += v
		}
		return out
	}
	tests := []struct {
		name              string
		onCPU             []OnCPU
		wantWall, wantCnt map[string]int64
	}{
		{
			name: "running goroutine sampled",
			onCPU: []OnCPU{
				{Goid: 5, Frames: burn, Nanos: 3e9},
				{Goid: 5, Frames: hash, Nanos: 4e9}, // its most sampled stack
				{Goid: 7, Frames: burn, Nanos: 2e9}, // another goroutine, same stack: one sample
				{Goid: 8, Frames: burn, Labels: map[string]string{"tenant": "acme"}, Nanos: 1e9},
			},
			wantWall: with(waiting, map[string]int64{
				"state=running main.burn;runtime.goexit;":             5e9,
				"state=running main.hash;runtime.goexit;":             4e9,
				"state=running tenant=acme main.burn;runtime.goexit;": 1e9,
			}),
			wantCnt: with(counts, map[string]int64{"state=running main.hash;runtime.goexit;": 1}),
		},
		{
			name:     "running goroutine not sampled",
			onCPU:    []OnCPU{{Goid: 9, Frames: burn, Nanos: 1e9}, {Goid: 0, Frames: hash, Nanos: 1e9}},
			wantWall: with(waiting, map[string]int64{"state=running main.burn;runtime.goexit;": 1e9, "state=running main.hash;runtime.goexit;": 1e9}),
			wantCnt:  with(counts, map[string]int64{"state=running (running: stack is live);": 1}),
		},
		{
			name:     "a sample without a stack",
			onCPU:    []OnCPU{{Goid: 5, Nanos: 1e9}},
			wantWall: with(waiting, map[string]int64{"state=running (running: stack is live);": 1e9}),
			wantCnt:  with(counts, map[string]int64{"state=running (running: stack is live);": 1}),
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := testSnapshot() // four waiting goroutines, goroutine 5 running
			g, w := ProfilesOnCPU(s, 10*time.Second, tc.onCPU)
			for _, p := range []struct {
				name string
				p    *profile.Profile
				want map[string]int64
			}{{"goroutine_wall", w, tc.wantWall}, {"goroutine", g, tc.wantCnt}} {
				got := map[string]int64{}
				for _, x := range p.p.Sample {
					got[sampleKey(x)] += x.Value[0]
					if len(x.Location) == 0 {
						t.Errorf("%s: sample %s has no stack", p.name, sampleKey(x))
					}
				}
				if fmt.Sprint(got) != fmt.Sprint(p.want) || len(p.p.Sample) != len(p.want) {
					t.Errorf("%s samples %v (%d), want %v", p.name, got, len(p.p.Sample), p.want)
				}
			}
			if len(s.Goroutines[4].Frames) != 0 {
				t.Errorf("folding changed the snapshot: running goroutine has frames %v", s.Goroutines[4].Frames)
			}
		})
	}
}
