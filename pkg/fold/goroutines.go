package fold

import (
	"encoding/binary"
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

// Goroutines folds a snapshot into a "goroutines" profile (sample type
// goroutines/count): one sample per distinct stack, state, wait reason,
// wait-duration bucket and set of target pprof labels, valued by how many
// goroutines share them.
func Goroutines(s *snapshot.Snapshot) *profile.Profile {
	return group(s.Goroutines, nil).goroutines(s.Time, exeOf(s))
}

// Profiles folds a snapshot into its "goroutines" and "goroutine_wall"
// profiles at once, grouping the goroutines a single time; the result
// equals Goroutines(s) and GoroutineWall(s, interval).
func Profiles(s *snapshot.Snapshot, interval time.Duration) (goroutines, wall *profile.Profile) {
	gs := group(s.Goroutines, nil)
	return gs.goroutines(s.Time, exeOf(s)), gs.wall(s.Time, exeOf(s), interval, nil)
}

// OnCPU is time measured on CPU by sampling in one stack with one set of
// pprof labels, for the running part of the goroutine_wall profile.
type OnCPU struct {
	Frames []snapshot.Frame
	Labels map[string]string
	Nanos  int64
}

// ProfilesOnCPU is Profiles for a process whose on-CPU time over the
// interval was measured by sampling: in goroutine_wall, the running
// goroutines of the snapshot (which have no stack) give way to the sampled
// stacks, state "running", weighted by their CPU time, so that the wall
// flame graph shows on-CPU and off-CPU time together.
func ProfilesOnCPU(s *snapshot.Snapshot, interval time.Duration, onCPU []OnCPU) (goroutines, wall *profile.Profile) {
	gs := group(s.Goroutines, nil)
	cpu := make([]snapshot.Goroutine, len(onCPU))
	weights := make([]int64, len(onCPU))
	for i, c := range onCPU {
		cpu[i] = snapshot.Goroutine{State: snapshot.StateRunning, Labels: c.Labels, Frames: c.Frames}
		weights[i] = c.Nanos
	}
	return gs.goroutines(s.Time, exeOf(s)), gs.wall(s.Time, exeOf(s), interval, group(cpu, weights))
}

// groups are goroutines grouped by sample identity: stack, state, wait
// reason, wait-duration bucket and pprof labels.
type groups struct {
	// first is a representative goroutine of each group, count its size
	// (or the sum of its goroutines' weights).
	first []*snapshot.Goroutine
	count []int64
}

// group groups goroutines, each counting 1 or weights[i]. The identity key
// is built in one reused buffer from the labels and the stack's number in
// a snapshot.StackIndex.
func group(goroutines []snapshot.Goroutine, weights []int64) *groups {
	gs := &groups{}
	index := make(map[string]int, 64)
	var key []byte
	var names []string
	var stacks snapshot.StackIndex
	for i := range goroutines {
		g := &goroutines[i]
		w := int64(1)
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
		if len(g.Labels) > 0 {
			names = names[:0]
			for k := range g.Labels {
				names = append(names, k)
			}
			slices.Sort(names)
			for _, k := range names {
				key = append(key, k...)
				key = append(key, 0)
				key = append(key, g.Labels[k]...)
				key = append(key, 0)
			}
		}
		key = append(key, 1)
		id, _ := stacks.ID(g.Frames)
		key = binary.AppendUvarint(key, uint64(id))
		if n, ok := index[string(key)]; ok {
			gs.count[n] += w
			continue
		}
		index[string(key)] = len(gs.first)
		gs.first = append(gs.first, g)
		gs.count = append(gs.count, w)
	}
	return gs
}

// goroutines is the "goroutines" profile of the groups.
func (gs *groups) goroutines(t time.Time, exe Executable) *profile.Profile {
	b := newBuilder(t, exe, []*profile.ValueType{{Type: "goroutines", Unit: "count"}})
	for i, g := range gs.first {
		b.add(g, gs.count[i])
	}
	return b.p
}

// wall is the "goroutine_wall" profile of the groups: each goroutine
// counts for interval. With onCPU (groups weighted in nanoseconds), the
// running goroutines are replaced by onCPU's stacks.
func (gs *groups) wall(t time.Time, exe Executable, interval time.Duration, onCPU *groups) *profile.Profile {
	b := newBuilder(t, exe, []*profile.ValueType{{Type: "wall", Unit: "nanoseconds"}})
	b.p.Period = int64(interval)
	b.p.DurationNanos = int64(interval)
	if onCPU != nil {
		for i, g := range onCPU.first {
			b.add(g, onCPU.count[i])
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
		b.add(g, v)
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

// add appends the sample of goroutine g's group, valued v.
func (b *builder) add(g *snapshot.Goroutine, v int64) {
	labels := make(map[string][]string, 3+len(g.Labels))
	labels[LabelState] = []string{string(g.State)}
	if g.WaitReason != "" {
		labels[LabelWaitReason] = []string{g.WaitReason}
	}
	if bk := WaitBucket(g.WaitingSeconds); bk != "" {
		labels[LabelWaitBucket] = []string{bk}
	}
	for k, v := range g.Labels {
		if _, reserved := labels[k]; !reserved {
			labels[k] = []string{v}
		}
	}
	b.p.Sample = append(b.p.Sample, &profile.Sample{Location: b.locs.Of(g.Frames), Value: []int64{v}, Label: labels})
}
