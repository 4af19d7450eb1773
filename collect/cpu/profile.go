package cpu

import (
	"slices"
	"strings"
	"time"

	"github.com/google/pprof/profile"

	"github.com/goroscope/goroscope/pkg/fold"
)

// LabelGoid is the numeric sample label holding the goroutine id.
const LabelGoid = "goid"

// Profile builds the process_cpu profile of process pid in the interval,
// or nil if it has no samples. See BuildProfile.
func (iv *Interval) Profile(pid int) *profile.Profile {
	p := iv.Processes[pid]
	if p == nil {
		return nil
	}
	return BuildProfile(p, iv.Start, iv.End.Sub(iv.Start), iv.Frequency)
}

// BuildProfile folds a process's samples into a pprof CPU profile shaped
// like Go's own: sample types samples/count and cpu/nanoseconds, period
// type cpu/nanoseconds with Period 1e9/freq. Samples keep the goroutine's
// pprof labels as string labels, as runtime/pprof's CPU profile does, and
// its id as the numeric label "goid". Frames sharing a pc (a call and the
// calls inlined into it) become one location.
func BuildProfile(p *Process, start time.Time, d time.Duration, freq int) *profile.Profile {
	period := int64(time.Second) / int64(max(freq, 1))
	b := &cpuBuilder{
		p: &profile.Profile{
			SampleType: []*profile.ValueType{
				{Type: "samples", Unit: "count"},
				{Type: "cpu", Unit: "nanoseconds"},
			},
			DefaultSampleType: "cpu",
			PeriodType:        &profile.ValueType{Type: "cpu", Unit: "nanoseconds"},
			Period:            period,
			TimeNanos:         start.UnixNano(),
			DurationNanos:     int64(d),
		},
		samples: map[string]*profile.Sample{},
	}
	exe := fold.Executable{File: p.Exe, BuildID: p.buildID}
	if p.textHi > p.textLo {
		exe.Start, exe.Limit, exe.Offset = p.textLo, p.textHi, p.textOff
	}
	mapping := exe.Mapping()
	b.p.Mapping = []*profile.Mapping{mapping}
	b.locs = fold.NewLocations(b.p, mapping)
	for i := range p.Samples {
		b.add(&p.Samples[i], period)
	}
	return b.p
}

type cpuBuilder struct {
	p       *profile.Profile
	locs    *fold.Locations
	samples map[string]*profile.Sample
	key     strings.Builder
}

func (b *cpuBuilder) add(s *Sample, period int64) {
	keys := make([]string, 0, len(s.Labels))
	for k := range s.Labels {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	b.key.Reset()
	writeUint(&b.key, s.Goid)
	b.key.WriteByte(0)
	for _, k := range keys {
		b.key.WriteString(k)
		b.key.WriteByte('=')
		b.key.WriteString(s.Labels[k])
		b.key.WriteByte(0)
	}
	for _, f := range s.Frames {
		b.key.WriteString(f.Function)
		b.key.WriteByte(':')
		b.key.WriteString(f.File)
		b.key.WriteByte(':')
		writeUint(&b.key, uint64(f.Line))
		b.key.WriteByte(':')
		writeUint(&b.key, f.PC)
		b.key.WriteByte(1)
	}
	n := int64(s.Count)
	if ps, ok := b.samples[b.key.String()]; ok {
		ps.Value[0] += n
		ps.Value[1] += n * period
		return
	}
	ps := &profile.Sample{Location: b.locs.Of(s.Frames), Value: []int64{n, n * period}}
	if len(s.Labels) > 0 {
		ps.Label = make(map[string][]string, len(s.Labels))
		for k, v := range s.Labels {
			ps.Label[k] = []string{v}
		}
	}
	if s.Goid != 0 {
		ps.NumLabel = map[string][]int64{LabelGoid: {int64(s.Goid)}}
	}
	b.p.Sample = append(b.p.Sample, ps)
	b.samples[b.key.String()] = ps
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
