package scrape

import (
	"time"

	"github.com/goroscope/goroscope/pkg/goroutinedump"
	"github.com/goroscope/goroscope/pkg/snapshot"
)

// WalkerPprof is the Snapshot.Walker of snapshots parsed from a target's
// /debug/pprof/goroutine?debug=2 dump.
const WalkerPprof = "pprof"

// Snapshot converts a parsed goroutine dump taken at at (in took) into the
// snapshot model the eBPF and procmem walkers produce, so the same folds
// (pkg/fold) apply; goroutinedump.ToSnapshot says what a dump cannot tell.
func Snapshot(gs []goroutinedump.Goroutine, at time.Time, took time.Duration) *snapshot.Snapshot {
	s := &snapshot.Snapshot{Time: at, Walker: WalkerPprof, Duration: took}
	goroutinedump.ToSnapshot(s, gs)
	return s
}
