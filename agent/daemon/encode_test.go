package daemon

import (
	"fmt"
	"io"
	"testing"
	"time"

	"github.com/goroscope/goroscope/pkg/fold"
	"github.com/goroscope/goroscope/pkg/snapshot"
)

// benchSnapshot is n goroutines parked on channels in a few distinct
// stacks, like the benchmark's latency target.
func benchSnapshot(n int) *snapshot.Snapshot {
	s := &snapshot.Snapshot{PID: 1, Time: time.Unix(1700000000, 0), GoVersion: "go1.26.8", Walker: "ebpf"}
	stacks := make([][]snapshot.Frame, 8)
	for i := range stacks {
		for d := range 12 {
			pc := uint64(0x400000 + i*0x1000 + d*0x40)
			stacks[i] = append(stacks[i], snapshot.Frame{Function: fmt.Sprintf("main.shape%d.level%d", i, d), File: "/src/app/worker.go", Line: 10 + d, PC: pc, Offset: 0x20})
		}
	}
	for i := range n {
		s.Goroutines = append(s.Goroutines, snapshot.Goroutine{
			ID: uint64(i + 10), State: snapshot.StateWaiting, WaitReason: "chan receive", WaitingSeconds: float64(i%600) + 0.5,
			WaitingSource: snapshot.WaitObserved, ParentID: 1, CreatedBy: &stacks[0][11],
			BlockedOn: &snapshot.BlockedOn{Kind: snapshot.BlockedOnChan, Address: fmt.Sprintf("%#x", 0xc000100000+i/64*0x60), Receivers: 64},
			Frames:    stacks[i%len(stacks)],
		})
	}
	s.Counts.Waiting = n
	return s
}

// BenchmarkSnapshotSinks measures what the agent does with each snapshot
// after the walk: fold both profiles, gzip them and the binary snapshot.
func BenchmarkSnapshotSinks(b *testing.B) {
	for _, n := range []int{1000, 10000} {
		s := benchSnapshot(n)
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			var enc encoder
			var buf []byte
			b.ReportAllocs()
			for b.Loop() {
				g, w := fold.Profiles(s, 10*time.Second)
				for _, p := range []interface{ WriteUncompressed(w io.Writer) error }{g, w} {
					if _, err := enc.gzip("profile", p.WriteUncompressed); err != nil {
						b.Fatal(err)
					}
				}
				if _, err := enc.gzip("snapshot", func(w io.Writer) error {
					buf = snapshot.AppendBinary(buf[:0], s)
					_, err := w.Write(buf)
					return err
				}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
