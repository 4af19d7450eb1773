package snapshot

import (
	"bytes"
	"strings"
	"testing"
)

// TestWriteTextHeader: the header line is the runtime's goroutineheader's:
// the wait reason in place of "waiting", " (leaked)" for a leaked
// goroutine, whole minutes for waiting goroutines and those in a system
// call only (never for leaked ones, whose wait the runtime does not time),
// then "locked to thread".
func TestWriteTextHeader(t *testing.T) {
	tests := []struct {
		name string
		g    Goroutine
		want string
	}{
		{"running", Goroutine{ID: 1, State: StateRunning}, "goroutine 1 [running]:"},
		{"runnable, long since", Goroutine{ID: 1, State: StateRunnable, WaitingSeconds: 600}, "goroutine 1 [runnable]:"},
		{"waiting under a minute", Goroutine{ID: 7, State: StateWaiting, WaitReason: "chan receive", WaitingSeconds: 59.999}, "goroutine 7 [chan receive]:"},
		{"waiting a minute", Goroutine{ID: 7, State: StateWaiting, WaitReason: "chan receive", WaitingSeconds: 60}, "goroutine 7 [chan receive, 1 minutes]:"},
		{"waiting, whole minutes", Goroutine{ID: 7, State: StateWaiting, WaitReason: "select", WaitingSeconds: 179.9}, "goroutine 7 [select, 2 minutes]:"},
		{"waiting with no reason", Goroutine{ID: 7, State: StateWaiting, WaitingSeconds: 120}, "goroutine 7 [waiting, 2 minutes]:"},
		{"syscall", Goroutine{ID: 9, State: StateSyscall, WaitingSeconds: 61}, "goroutine 9 [syscall, 1 minutes]:"},
		{"locked to thread", Goroutine{ID: 9, State: StateWaiting, WaitReason: "chan receive", WaitingSeconds: 3600, LockedToThread: true},
			"goroutine 9 [chan receive, 60 minutes, locked to thread]:"},
		{"leaked", Goroutine{ID: 21, State: StateLeaked, WaitReason: "chan send", WaitingSeconds: 300}, "goroutine 21 [chan send (leaked)]:"},
		{"leaked with no reason", Goroutine{ID: 21, State: StateLeaked}, "goroutine 21 [leaked (leaked)]:"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var b bytes.Buffer
			if err := WriteText(&b, &Snapshot{Goroutines: []Goroutine{tt.g}}, TextOptions{}); err != nil {
				t.Fatal(err)
			}
			if got, _, _ := strings.Cut(b.String(), "\n"); got != tt.want {
				t.Errorf("header %q, want %q", got, tt.want)
			}
		})
	}
}
