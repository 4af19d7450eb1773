package fold

import (
	"time"

	"github.com/google/pprof/profile"

	"github.com/goroscope/goroscope/pkg/snapshot"
)

// GoroutineWall folds a snapshot into a "goroutine_wall" profile (sample
// type wall/nanoseconds): each goroutine contributes the interval it was
// observed in its state and stack, so summing profiles over time shows
// where wall-clock time goes, on-CPU and off-CPU together — the fgprof idea,
// measured from outside. interval is the time since the previous snapshot of
// the process (the snapshot interval for the first). Running goroutines
// have no stack in a walk's snapshot; they count under RunningFunction
// (ProfilesOnCPU puts sampled stacks there instead).
func GoroutineWall(s *snapshot.Snapshot, interval time.Duration) *profile.Profile {
	return group(s.Goroutines, s.Weight(), nil, nil, nil).wall(s.Time, exeOf(s), interval, nil, sampledComment(s))
}
