package walk_test

import (
	"context"
	"testing"
	"time"

	"github.com/goroscope/goroscope/collect/process"
	"github.com/goroscope/goroscope/collect/walk"
	"github.com/goroscope/goroscope/pkg/snapshot"
	"github.com/goroscope/goroscope/test/targettest"
)

// TestChannelFactsFollowQueues: channel facts are kept for goroutines
// parked unchanged only while nobody joins or leaves their channel. The
// target adds receivers to one channel every second; in every snapshot,
// each goroutine in "chan receive" must report as many receivers on its
// channel as the snapshot holds goroutines receiving from it, old and new.
func TestChannelFactsFollowQueues(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a target")
	}
	bin := targettest.Build(t, "population", targettest.BuildOpts{})
	for _, w := range walkersUnderTest(t) {
		t.Run(w.Name(), func(t *testing.T) {
			tgt := targettest.Start(t, bin, "-grow", "7")
			at, err := process.Attach(tgt.PID)
			if err != nil {
				t.Fatal(err)
			}
			defer at.Close()
			sn := walk.NewSnapshotter(at, w)
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			largest := []int{}
			for i := range 4 {
				if i > 0 {
					time.Sleep(1100 * time.Millisecond) // the workload: snapshots a second apart, the target grows every second
				}
				s, err := sn.Snapshot(ctx)
				if err != nil {
					t.Fatal(err)
				}
				// Channels a select also waits on have receivers (or senders)
				// not in "chan receive": leave those out.
				receiving, inSelect := map[string]int{}, map[string]bool{}
				for _, g := range s.Goroutines {
					if g.WaitReason == "chan receive" && g.BlockedOn != nil {
						receiving[g.BlockedOn.Address]++
					}
					if g.WaitReason == "select" && g.BlockedOn != nil {
						inSelect[g.BlockedOn.Address] = true
						for _, o := range g.BlockedOn.Others {
							inSelect[o.Address] = true
						}
					}
				}
				most := 0
				for _, g := range s.Goroutines {
					b := g.BlockedOn
					if g.WaitReason != "chan receive" || b == nil || b.Kind != snapshot.BlockedOnChan || inSelect[b.Address] {
						continue
					}
					if b.Receivers != receiving[b.Address] {
						t.Errorf("snapshot %d: goroutine %d reports %d receivers on %s, the snapshot has %d", i, g.ID, b.Receivers, b.Address, receiving[b.Address])
					}
					most = max(most, receiving[b.Address])
				}
				largest = append(largest, most)
			}
			if largest[len(largest)-1] < largest[0]+14 {
				t.Errorf("largest receive queue per snapshot %v: the growing channel does not show", largest)
			}
		})
	}
}
