package fold

import (
	"encoding/binary"
	"fmt"
	"math"
	"slices"
	"time"

	"github.com/google/pprof/profile"

	"github.com/goroscope/goroscope/pkg/snapshot"
)

// Sample label keys of goroscope's goroutine profiles. Target pprof labels
// keep their own keys.
const (
	LabelState      = "state"
	LabelWaitReason = "wait_reason"
	LabelWaitBucket = "wait_duration"
)

// Profile names (Pyroscope's __name__) the goroutine profiles are pushed
// under. The count profile takes the name, sample type and period type of
// Go's own goroutine profile as Grafana Alloy's pyroscope.scrape publishes
// it, so Grafana lists it as goroutine:goroutine:count:goroutine:count next
// to (and comparable with) scraped ones.
const (
	ProfileGoroutine     = "goroutine"
	ProfileGoroutineWall = "goroutine_wall"
)

// RunningFunction is the one frame of a running goroutine whose stack is
// not known: a walk from outside cannot read the stack of a goroutine that
// runs on a CPU (it changes while it is read), and no CPU sample of that
// goroutine was taken in the interval. Without it such goroutines would be
// samples without a stack, which flame graphs show as empty.
const RunningFunction = "(running: stack is live)"

// Goroutines folds a snapshot into a "goroutine" profile (sample type
// goroutine/count, like Go's own goroutine profile): one sample per
// distinct stack, state, wait reason, wait-duration bucket and set of
// target pprof labels, valued by how many goroutines share them. Running
// goroutines without a stack get RunningFunction.
func Goroutines(s *snapshot.Snapshot) *profile.Profile {
	return group(s.Goroutines, s.Weight(), nil, nil, nil).goroutines(s.Time, exeOf(s), sampledComment(s))
}

// sampledComment says, in a profile's comments, that a snapshot kept only
// every Stride-th goroutine; nil when it kept all.
func sampledComment(s *snapshot.Snapshot) []string {
	if s.Stride <= 1 {
		return nil
	}
	return []string{fmt.Sprintf("goroscope: sampled snapshot of %d goroutines: one in %d kept, each counted %d times", s.Counts.Total(), s.Stride, s.Stride)}
}

// Profiles folds a snapshot into its "goroutine" and "goroutine_wall"
// profiles at once, grouping the goroutines a single time; the result
// equals Goroutines(s) and GoroutineWall(s, interval).
func Profiles(s *snapshot.Snapshot, interval time.Duration) (goroutines, wall *profile.Profile) {
	return ProfilesLimited(s, interval, nil, nil)
}

// OnCPU is time measured on CPU by sampling in one stack with one set of
// pprof labels, for the running part of the goroutine_wall profile.
type OnCPU struct {
	// Goid is the goroutine the samples found on CPU; 0 when none (the
	// scheduler, a C thread) or unknown.
	Goid   uint64
	Frames []snapshot.Frame
	Labels map[string]string
	Nanos  int64
}

// ProfilesOnCPU is Profiles for a process whose on-CPU time over the
// interval was measured by sampling: in goroutine_wall, the running
// goroutines of the snapshot (which have no stack) give way to the sampled
// stacks, state "running", weighted by their CPU time, so that the wall
// flame graph shows on-CPU and off-CPU time together. In the goroutine
// profile, a running goroutine without a stack gets the stack it was
// sampled in most often in the interval (the samples carry no time, so
// the latest one is not known), or RunningFunction when it was not sampled.
func ProfilesOnCPU(s *snapshot.Snapshot, interval time.Duration, onCPU []OnCPU) (goroutines, wall *profile.Profile) {
	return ProfilesLimited(s, interval, onCPU, nil)
}

// ProfilesLimited is ProfilesOnCPU (Profiles when onCPU is nil) with the
// target pprof labels of the goroutines and of onCPU bounded by lim (nil:
// as they are), which counts what it changes: once per goroutine and per
// onCPU entry. The snapshot is not modified.
func ProfilesLimited(s *snapshot.Snapshot, interval time.Duration, onCPU []OnCPU, lim *LabelLimiter) (goroutines, wall *profile.Profile) {
	if onCPU == nil {
		gs := group(s.Goroutines, s.Weight(), nil, nil, lim)
		return gs.goroutines(s.Time, exeOf(s), sampledComment(s)), gs.wall(s.Time, exeOf(s), interval, nil, sampledComment(s))
	}
	gs := group(s.Goroutines, s.Weight(), nil, sampledStacks(onCPU), lim)
	cpu := make([]snapshot.Goroutine, len(onCPU))
	weights := make([]int64, len(onCPU))
	for i, c := range onCPU {
		cpu[i] = snapshot.Goroutine{ID: c.Goid, State: snapshot.StateRunning, Labels: c.Labels, Frames: c.Frames}
		weights[i] = c.Nanos
	}
	return gs.goroutines(s.Time, exeOf(s), sampledComment(s)), gs.wall(s.Time, exeOf(s), interval, group(cpu, 1, weights, nil, lim), sampledComment(s))
}

// sampledStacks returns, for every goroutine id of onCPU, its stack with
// the most CPU time (the first of equals, in onCPU's order).
func sampledStacks(onCPU []OnCPU) map[uint64][]snapshot.Frame {
	best := make(map[uint64]int, len(onCPU))
	for i, c := range onCPU {
		if c.Goid == 0 || len(c.Frames) == 0 {
			continue
		}
		if j, ok := best[c.Goid]; !ok || c.Nanos > onCPU[j].Nanos {
			best[c.Goid] = i
		}
	}
	out := make(map[uint64][]snapshot.Frame, len(best))
	for id, i := range best {
		out[id] = onCPU[i].Frames
	}
	return out
}

// groups are goroutines grouped by sample identity: stack, state, wait
// reason, wait-duration bucket and pprof labels.
type groups struct {
	// first is a representative goroutine of each group, frames its stack
	// as folded (a running goroutine's may be stand-ins), count its size
	// (or the sum of its goroutines' weights), labels its pprof labels as
	// bounded by the LabelLimiter.
	first  []*snapshot.Goroutine
	frames [][]snapshot.Frame
	count  []int64
	labels []map[string]string
}

// stackOf is the stack g is folded with: its own, or for a running
// goroutine without one the sampled stack of its id, else running (the
// stack of RunningFunction).
func stackOf(g *snapshot.Goroutine, sampled map[uint64][]snapshot.Frame, running []snapshot.Frame) []snapshot.Frame {
	if len(g.Frames) > 0 || g.State != snapshot.StateRunning {
		return g.Frames
	}
	if f, ok := sampled[g.ID]; ok && g.ID != 0 {
		return f
	}
	return running
}

// group groups goroutines, each counting each or weights[i]; sampled gives
// stackless running goroutines a stack (see stackOf); lim bounds the
// pprof labels (nil: as they are) before grouping, so that the values it
// replaces merge under OtherValue. The identity key is
// built in one reused buffer from the labels and the stack's number in a
// snapshot.StackIndex.
func group(goroutines []snapshot.Goroutine, each int, weights []int64, sampled map[uint64][]snapshot.Frame, lim *LabelLimiter) *groups {
	gs := &groups{}
	running := []snapshot.Frame{{Function: RunningFunction}}
	index := make(map[string]int, 64)
	var key []byte
	var names []string
	var stacks snapshot.StackIndex
	for i := range goroutines {
		g := &goroutines[i]
		w := int64(each)
		if weights != nil {
			w = weights[i]
		}
		key = key[:0]
		key = append(key, g.State...)
		key = append(key, 0)
		key = append(key, g.WaitReason...)
		key = append(key, 0)
		key = append(key, WaitBucket(g.WaitingSeconds)...)
		key = append(key, 0)
		labels := lim.Labels(g.Labels)
		if len(labels) > 0 {
			names = names[:0]
			for k := range labels {
				names = append(names, k)
			}
			slices.Sort(names)
			for _, k := range names {
				key = append(key, k...)
				key = append(key, 0)
				key = append(key, labels[k]...)
				key = append(key, 0)
			}
		}
		key = append(key, 1)
		frames := stackOf(g, sampled, running)
		id, _ := stacks.ID(frames)
		key = binary.AppendUvarint(key, uint64(id))
		if n, ok := index[string(key)]; ok {
			gs.count[n] += w
			continue
		}
		index[string(key)] = len(gs.first)
		gs.first = append(gs.first, g)
		gs.frames = append(gs.frames, frames)
		gs.count = append(gs.count, w)
		gs.labels = append(gs.labels, labels)
	}
	return gs
}

// goroutines is the "goroutine" profile of the groups.
func (gs *groups) goroutines(t time.Time, exe Executable, comments []string) *profile.Profile {
	b := newBuilder(t, exe, []*profile.ValueType{{Type: "goroutine", Unit: "count"}})
	b.p.Comments = comments
	for i, g := range gs.first {
		b.add(g, gs.labels[i], gs.frames[i], gs.count[i])
	}
	return b.p
}

// wall is the "goroutine_wall" profile of the groups: each goroutine
// counts for interval. With onCPU (groups weighted in nanoseconds), the
// running goroutines are replaced by onCPU's stacks.
func (gs *groups) wall(t time.Time, exe Executable, interval time.Duration, onCPU *groups, comments []string) *profile.Profile {
	b := newBuilder(t, exe, []*profile.ValueType{{Type: "wall", Unit: "nanoseconds"}})
	b.p.Comments = comments
	b.p.Period = int64(interval)
	b.p.DurationNanos = int64(interval)
	if onCPU != nil {
		for i, g := range onCPU.first {
			b.add(g, onCPU.labels[i], onCPU.frames[i], onCPU.count[i])
		}
	}
	for i, g := range gs.first {
		if onCPU != nil && g.State == snapshot.StateRunning {
			continue
		}
		v := gs.count[i] * int64(interval)
		if interval > 0 && gs.count[i] > math.MaxInt64/int64(interval) {
			v = math.MaxInt64
		}
		b.add(g, gs.labels[i], gs.frames[i], v)
	}
	return b.p
}

// builder makes one profile, sharing locations and functions between samples.
type builder struct {
	p    *profile.Profile
	locs *Locations
}

// newBuilder starts a profile whose main mapping is exe's.
func newBuilder(t time.Time, exe Executable, types []*profile.ValueType) *builder {
	m := exe.Mapping()
	p := &profile.Profile{
		SampleType:        types,
		TimeNanos:         t.UnixNano(),
		PeriodType:        types[0],
		Period:            1,
		DefaultSampleType: types[0].Type,
		Mapping:           []*profile.Mapping{m},
	}
	return &builder{p: p, locs: NewLocations(p, m)}
}

// add appends the sample of goroutine g's group, with pprof labels
// target (g's, bounded) and stack frames, valued v.
func (b *builder) add(g *snapshot.Goroutine, target map[string]string, frames []snapshot.Frame, v int64) {
	labels := make(map[string][]string, 3+len(target))
	labels[LabelState] = []string{string(g.State)}
	if g.WaitReason != "" {
		labels[LabelWaitReason] = []string{g.WaitReason}
	}
	if bk := WaitBucket(g.WaitingSeconds); bk != "" {
		labels[LabelWaitBucket] = []string{bk}
	}
	for k, v := range target {
		if _, reserved := labels[k]; !reserved {
			labels[k] = []string{v}
		}
	}
	b.p.Sample = append(b.p.Sample, &profile.Sample{Location: b.locs.Of(frames), Value: []int64{v}, Label: labels})
}
