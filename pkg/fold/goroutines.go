package fold

import (
	"slices"
	"strings"
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
	b := newBuilder(s.Time, []*profile.ValueType{{Type: "goroutines", Unit: "count"}})
	for i := range s.Goroutines {
		g := &s.Goroutines[i]
		b.add(g, 1)
	}
	return b.finish()
}

// builder accumulates samples with shared locations and functions.
type builder struct {
	p       *profile.Profile
	funcs   map[funcKey]*profile.Function
	locs    map[locKey]*profile.Location
	samples map[string]*profile.Sample
	key     strings.Builder
}

type funcKey struct{ name, file string }

type locKey struct {
	name, file string
	line       int
	pc         uint64
}

func newBuilder(t time.Time, types []*profile.ValueType) *builder {
	return &builder{
		p: &profile.Profile{
			SampleType:        types,
			TimeNanos:         t.UnixNano(),
			PeriodType:        types[0],
			Period:            1,
			DefaultSampleType: types[0].Type,
		},
		funcs:   map[funcKey]*profile.Function{},
		locs:    map[locKey]*profile.Location{},
		samples: map[string]*profile.Sample{},
	}
}

func (b *builder) function(f *snapshot.Frame) *profile.Function {
	k := funcKey{f.Function, f.File}
	if fn, ok := b.funcs[k]; ok {
		return fn
	}
	fn := &profile.Function{ID: uint64(len(b.p.Function) + 1), Name: f.Function, SystemName: f.Function, Filename: f.File}
	b.p.Function = append(b.p.Function, fn)
	b.funcs[k] = fn
	return fn
}

// locations maps frames to pprof locations: the frames sharing one PC (a
// physical call and the calls inlined into it) become one location with
// several lines, innermost first, as pprof expects.
func (b *builder) locations(frames []snapshot.Frame) []*profile.Location {
	out := make([]*profile.Location, 0, len(frames))
	for i := 0; i < len(frames); {
		j := i + 1
		for j < len(frames) && frames[j].PC == frames[i].PC && frames[j-1].Inlined {
			j++
		}
		group := frames[i:j]
		k := locKey{group[0].Function, group[0].File, group[0].Line, group[0].PC}
		loc, ok := b.locs[k]
		if !ok {
			loc = &profile.Location{ID: uint64(len(b.p.Location) + 1), Address: group[0].PC}
			for _, f := range group {
				loc.Line = append(loc.Line, profile.Line{Function: b.function(&f), Line: int64(f.Line)})
			}
			b.p.Location = append(b.p.Location, loc)
			b.locs[k] = loc
		}
		out = append(out, loc)
		i = j
	}
	return out
}

func (b *builder) add(g *snapshot.Goroutine, values ...int64) {
	labels := map[string][]string{LabelState: {string(g.State)}}
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
	// The sample key: labels in order, then the stack.
	b.key.Reset()
	keys := make([]string, 0, len(labels))
	for k := range labels {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		b.key.WriteString(k)
		b.key.WriteByte('=')
		b.key.WriteString(labels[k][0])
		b.key.WriteByte(0)
	}
	for _, f := range g.Frames {
		b.key.WriteString(f.Function)
		b.key.WriteByte(':')
		b.key.WriteString(f.File)
		b.key.WriteByte(':')
		writeUint(&b.key, uint64(f.Line))
		b.key.WriteByte(':')
		writeUint(&b.key, f.PC)
		b.key.WriteByte(1)
	}
	k := b.key.String()
	if s, ok := b.samples[k]; ok {
		for i, v := range values {
			s.Value[i] += v
		}
		return
	}
	s := &profile.Sample{Location: b.locations(g.Frames), Value: slices.Clone(values), Label: labels}
	b.p.Sample = append(b.p.Sample, s)
	b.samples[k] = s
}

func writeUint(b *strings.Builder, v uint64) {
	var buf [20]byte
	i := len(buf)
	for {
		i--
		buf[i] = byte('0' + v%10)
		v /= 10
		if v == 0 {
			break
		}
	}
	b.Write(buf[i:])
}

func (b *builder) finish() *profile.Profile { return b.p }
