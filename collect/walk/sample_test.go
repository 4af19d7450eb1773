package walk_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/goroscope/goroscope/collect/process"
	"github.com/goroscope/goroscope/collect/walk"
	"github.com/goroscope/goroscope/pkg/snapshot"
	"github.com/goroscope/goroscope/test/targettest"
)

// TestKeepAtMost: a snapshot bounded to fewer goroutines than the process
// has keeps one in k of them, each exactly as a whole snapshot shows it,
// with the per-state counts of the whole process and the channel facts of
// whole queues (receivers the sample left out counted too).
func TestKeepAtMost(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a target")
	}
	const n, keep = 20_000, 2_000
	bin := targettest.Build(t, "latency", targettest.BuildOpts{})
	tgt := targettest.Start(t, bin, "-goroutines", "20000", "-perchan", "64", "-probe-interval", "0")
	for _, w := range walkersUnderTest(t) {
		t.Run(w.Name(), func(t *testing.T) {
			at, err := process.Attach(tgt.PID)
			if err != nil {
				t.Fatal(err)
			}
			defer at.Close()
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			full, err := walk.NewSnapshotter(at, w).Snapshot(ctx)
			if err != nil {
				t.Fatal(err)
			}
			sn := walk.NewSnapshotter(at, w)
			sn.KeepAtMost(keep)
			for round := range 2 { // the second walk reuses what the first learnt
				s, err := sn.Snapshot(ctx)
				if err != nil {
					t.Fatal(err)
				}
				total := full.Counts.Total()
				if s.Counts.Waiting < n || abs(s.Counts.Total()-total) > 5 {
					t.Errorf("round %d: counts %+v, the whole snapshot's %+v", round, s.Counts, full.Counts)
				}
				if want := (total + keep - 1) / keep; abs(s.Stride-want) > 1 {
					t.Errorf("round %d: stride %d, want about %d", round, s.Stride, want)
				}
				if len(s.Goroutines) > keep+10 || len(s.Goroutines) < keep*9/10 {
					t.Errorf("round %d: kept %d goroutines, want about %d", round, len(s.Goroutines), keep)
				}
				byID := map[uint64]*snapshot.Goroutine{}
				for i := range full.Goroutines {
					byID[full.Goroutines[i].ID] = &full.Goroutines[i]
				}
				checked := 0
				for _, g := range s.Goroutines {
					f, ok := byID[g.ID]
					if !ok || g.WaitReason != "chan receive" || f.BlockedOn == nil || f.BlockedOn.Receivers < 2 {
						continue // not one of the parked population
					}
					checked++
					if f.State != g.State || !slices.Equal(f.Frames, g.Frames) || (f.CreatedBy == nil) != (g.CreatedBy == nil) || (f.CreatedBy != nil && *f.CreatedBy != *g.CreatedBy) {
						t.Fatalf("round %d: goroutine %d differs from the whole snapshot:\n%+v\n%+v", round, g.ID, g, *f)
					}
					if b := g.BlockedOn; b == nil || b.Receivers != f.BlockedOn.Receivers {
						t.Fatalf("round %d: goroutine %d blocked on %+v, the whole snapshot says %+v", round, g.ID, b, f.BlockedOn)
					}
				}
				if checked < keep*9/10 {
					t.Errorf("round %d: %d kept goroutines checked, want most of %d", round, checked, keep)
				}
			}
		})
	}
}

func abs(v int) int { return max(v, -v) }
