package goroutinedump

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/goroscope/goroscope/pkg/snapshot"
)

func TestStateOf(t *testing.T) {
	tests := []struct {
		status string
		extra  []string
		state  snapshot.State
		reason string
		ok     bool
	}{
		{"running", nil, snapshot.StateRunning, "", true},
		{"copystack", nil, snapshot.StateRunning, "", true},
		{"runnable", nil, snapshot.StateRunnable, "", true},
		{"preempted", nil, snapshot.StateRunnable, "", true},
		{"syscall", nil, snapshot.StateSyscall, "", true},
		{"waiting", nil, snapshot.StateWaiting, "", true},
		{"chan receive", nil, snapshot.StateWaiting, "chan receive", true},
		{"select (no cases)", nil, snapshot.StateWaiting, "select (no cases)", true},
		{"chan receive (durable)", nil, snapshot.StateWaiting, "chan receive (durable)", true},
		{"sync.WaitGroup.Wait", []string{"leaked"}, snapshot.StateLeaked, "sync.WaitGroup.Wait", true},
		{"leaked", []string{"leaked"}, snapshot.StateLeaked, "", true},
		{"leaked", nil, snapshot.StateLeaked, "", true},
		{"idle", nil, "", "", false},
		{"dead", nil, "", "", false},
		{"waiting for cgo callback", nil, "", "", false},
	}
	for _, tt := range tests {
		st, reason, ok := stateOf(&Goroutine{Status: tt.status, Extra: tt.extra})
		if st != tt.state || reason != tt.reason || ok != tt.ok {
			t.Errorf("%q %v: got %q %q %v, want %q %q %v", tt.status, tt.extra, st, reason, ok, tt.state, tt.reason, tt.ok)
		}
	}
}

// TestToSnapshotRecordedDumps converts the parser's recorded dumps (go1.21
// to go1.26) and checks the snapshot against the dumps' own headers.
func TestToSnapshotRecordedDumps(t *testing.T) {
	files, err := filepath.Glob("testdata/go*-default.txt")
	if err != nil || len(files) < 6 {
		t.Fatalf("recorded dumps: %v, %v", files, err)
	}
	files = append(files, "testdata/go1.26.8-labels.txt")
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			raw, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			gs, err := Parse(strings.NewReader(string(raw)))
			if err != nil {
				t.Fatal(err)
			}
			var s snapshot.Snapshot
			ToSnapshot(&s, gs)
			if len(s.Goroutines) != len(gs) || s.Counts.Total() != len(gs) || len(gs) < 10 {
				t.Fatalf("%d goroutines, counts %+v, from %d in the dump", len(s.Goroutines), s.Counts, len(gs))
			}
			labelled := 0
			for i, g := range s.Goroutines {
				d := &gs[i]
				if g.ID != d.ID || g.ParentID != d.ParentID || g.LockedToThread != d.LockedToThread {
					t.Errorf("goroutine %d: ids or lock differ: %+v", d.ID, g)
				}
				switch d.Status {
				case "running", "runnable", "syscall":
					if string(g.State) != d.Status || g.WaitReason != "" {
						t.Errorf("goroutine %d [%s] became %s/%s", d.ID, d.Status, g.State, g.WaitReason)
					}
				default:
					if g.State != snapshot.StateWaiting || g.WaitReason != d.Status {
						t.Errorf("goroutine %d [%s] became %s/%s", d.ID, d.Status, g.State, g.WaitReason)
					}
				}
				if g.State == snapshot.StateRunning {
					if len(g.Frames) != 0 {
						t.Errorf("running goroutine %d has %d frames, want none as in a walk", d.ID, len(g.Frames))
					}
				} else if len(g.Frames) != len(d.Frames) || g.Frames[0].Function != d.Frames[0].Function || g.Frames[0].Line != d.Frames[0].Line {
					t.Errorf("goroutine %d: frames differ", d.ID)
				}
				if want := float64(d.WaitMinutes * 60); g.WaitingSeconds != want || (want > 0) != (g.WaitingSource == snapshot.WaitRuntime) {
					t.Errorf("goroutine %d: waiting %v (%s), want %v from the runtime", d.ID, g.WaitingSeconds, g.WaitingSource, want)
				}
				if (d.CreatedBy == nil) != (g.CreatedBy == nil) || d.CreatedBy != nil && g.CreatedBy.Function != d.CreatedBy.Function {
					t.Errorf("goroutine %d: created by %+v, want %+v", d.ID, g.CreatedBy, d.CreatedBy)
				}
				if len(g.Labels) > 0 {
					labelled++
				}
			}
			if strings.Contains(f, "labels") && labelled == 0 {
				t.Error("no goroutine kept its pprof labels")
			}
		})
	}
}
