package snapshot

import (
	"bytes"
	"encoding/json"
	"testing"
	"time"
)

// TestWriteJSON: the streamed form equals encoding/json's.
func TestWriteJSON(t *testing.T) {
	g := Goroutine{ID: 17, State: StateWaiting, WaitReason: "chan receive", WaitingSeconds: 312.5, WaitingSource: WaitObserved,
		ParentID: 1, CreatedBy: &Frame{Function: "main.main", File: "/src/main.go", Line: 42}, Labels: map[string]string{"tenant": "acme"},
		BlockedOn: &BlockedOn{Kind: BlockedOnChan, Address: "0xc000123000", Receivers: 100},
		Frames:    []Frame{{Function: "runtime.gopark", File: "proc.go", Line: 435}}}
	for _, tc := range []struct {
		name string
		s    Snapshot
	}{
		{"empty", Snapshot{PID: 1, Time: time.Unix(5, 6).UTC()}},
		{"no goroutines", Snapshot{PID: 1, Goroutines: []Goroutine{}}},
		{"some", Snapshot{PID: 1234, Exe: "/usr/bin/app", GoVersion: "go1.26.8", Walker: "ebpf", Counts: Counts{Waiting: 2},
			Goroutines: []Goroutine{g, {ID: 2, State: StateRunning, Frames: []Frame{}}}}},
		{"dropped", Snapshot{PID: 1, Goroutines: []Goroutine{g}, Dropped: 3}},
		{"sampled", Snapshot{PID: 1, Counts: Counts{Waiting: 4}, Goroutines: []Goroutine{g}, Stride: 4}},
		{"sync", Snapshot{Goroutines: []Goroutine{{ID: 3, State: StateWaiting, WaitReason: "sync.Mutex.Lock", BlockedOn: &BlockedOn{Kind: BlockedOnSync, Address: "0x1"}}}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var got bytes.Buffer
			if err := WriteJSON(&got, &tc.s); err != nil {
				t.Fatal(err)
			}
			want, err := json.Marshal(&tc.s)
			if err != nil {
				t.Fatal(err)
			}
			if got.String() != string(want)+"\n" {
				t.Errorf("WriteJSON =\n%s\njson.Marshal =\n%s", got.String(), want)
			}
		})
	}
}
