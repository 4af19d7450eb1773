package scrape

import (
	"encoding/binary"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/google/pprof/profile"
)

// baseline is what the scraper keeps of the previous cumulative profile of
// one kind of one target: per sample (stack and labels), the values of the
// cumulative sample types, and the identity of the main executable mapping.
type baseline struct {
	values  map[string][]int64
	mapping mappingID
	time    time.Time
}

// mappingID identifies the process image a profile came from: a new build
// or, for position-independent executables, a new process (ASLR) changes it.
type mappingID struct {
	file, buildID string
	start         uint64
}

func mainMapping(p *profile.Profile) mappingID {
	if len(p.Mapping) == 0 {
		return mappingID{}
	}
	m := p.Mapping[0]
	return mappingID{file: m.File, buildID: m.BuildID, start: m.Start}
}

// aggregate is a cumulative profile's samples by key (the runtime can write
// one stack and label set twice): the key of each sample, the first sample
// of each key, and the summed values of all sample types per key.
type aggregate struct {
	keys  []string
	first map[string]*profile.Sample
	sums  map[string][]int64
}

func aggregateSamples(p *profile.Profile) *aggregate {
	a := &aggregate{
		keys:  make([]string, len(p.Sample)),
		first: make(map[string]*profile.Sample, len(p.Sample)),
		sums:  make(map[string][]int64, len(p.Sample)),
	}
	var kb keyBuilder
	for i, s := range p.Sample {
		k := kb.key(s)
		a.keys[i] = k
		if v, ok := a.sums[k]; ok {
			for j := range v {
				v[j] += s.Value[j]
			}
			continue
		}
		a.first[k] = s
		a.sums[k] = slices.Clone(s.Value)
	}
	return a
}

// newBaseline keeps the cumulative values of p (indices idx of its sample
// types), collected at t.
func newBaseline(p *profile.Profile, a *aggregate, idx []int, t time.Time) *baseline {
	b := &baseline{values: make(map[string][]int64, len(a.sums)), mapping: mainMapping(p), time: t}
	for k, v := range a.sums {
		c := make([]int64, len(idx))
		for j, i := range idx {
			c[j] = v[i]
		}
		b.values[k] = c
	}
	return b
}

// restartEvidence compares a new cumulative profile with the baseline and
// says why they cannot come from the same process, or "" if they can. In
// one process the runtime's cumulative profiles only grow: every bucket
// stays and its counts never go down, and the executable stays mapped
// where it was.
func (b *baseline) restartEvidence(p *profile.Profile, a *aggregate, idx []int, types []valueType) string {
	if m := mainMapping(p); m != b.mapping {
		switch {
		case m.buildID != b.mapping.buildID:
			return fmt.Sprintf("the executable's build ID changed (%q to %q)", b.mapping.buildID, m.buildID)
		case m.file != b.mapping.file:
			return fmt.Sprintf("the executable changed (%s to %s)", b.mapping.file, m.file)
		default:
			return fmt.Sprintf("the executable moved (mapped at %#x, now %#x)", b.mapping.start, m.start)
		}
	}
	for k, prev := range b.values {
		cur, ok := a.sums[k]
		if !ok {
			if slices.ContainsFunc(prev, func(v int64) bool { return v != 0 }) {
				return "a stack seen before is gone from the profile"
			}
			continue
		}
		for j, i := range idx {
			if cur[i] < prev[j] {
				return fmt.Sprintf("%s of a stack went down from %d to %d (leaf %s)", types[j], prev[j], cur[i], leafName(a.first[k]))
			}
		}
	}
	return ""
}

// delta turns p, a cumulative profile, into the difference from the
// baseline: the cumulative sample types (indices idx) minus their previous
// values, the others as they are; samples left all zero are dropped. p is
// modified and returned compacted, stamped with time t and the duration
// since the baseline.
func (b *baseline) delta(p *profile.Profile, a *aggregate, idx []int, t time.Time) *profile.Profile {
	for k, s := range a.first {
		copy(s.Value, a.sums[k])
		if prev, ok := b.values[k]; ok {
			for j, i := range idx {
				s.Value[i] -= prev[j]
			}
		}
	}
	// Duplicates were summed into the first sample of their key.
	kept := p.Sample[:0]
	for i, s := range p.Sample {
		if a.first[a.keys[i]] == s {
			kept = append(kept, s)
		}
	}
	p.Sample = kept
	p = p.Compact() // drops all-zero samples and what only they referenced
	p.TimeNanos = t.UnixNano()
	p.DurationNanos = int64(t.Sub(b.time))
	return p
}

// keyBuilder makes sample keys: the location addresses of the stack (or,
// for locations without an address, their function names and lines), then
// the string and numeric labels in sorted order. Location IDs are not used:
// they are numbered afresh in every profile.
type keyBuilder struct {
	b    strings.Builder
	keys []string
}

func (kb *keyBuilder) key(s *profile.Sample) string {
	kb.b.Reset()
	var buf [binary.MaxVarintLen64]byte
	for _, l := range s.Location {
		if l.Address != 0 {
			kb.b.Write(buf[:binary.PutUvarint(buf[:], l.Address)])
		} else {
			kb.b.WriteByte(0)
			for _, ln := range l.Line {
				if ln.Function != nil {
					kb.b.WriteString(ln.Function.Name)
				}
				kb.b.WriteByte(':')
				kb.b.Write(buf[:binary.PutVarint(buf[:], ln.Line)])
			}
		}
		kb.b.WriteByte(0xff)
	}
	kb.b.WriteByte(0xfe)
	kb.keys = sortedKeys(kb.keys, s.Label)
	for _, k := range kb.keys {
		kb.b.WriteString(k)
		for _, v := range s.Label[k] {
			kb.b.WriteByte(0)
			kb.b.WriteString(v)
		}
		kb.b.WriteByte(0xfd)
	}
	kb.keys = sortedKeys(kb.keys, s.NumLabel)
	for _, k := range kb.keys {
		kb.b.WriteString(k)
		for i, v := range s.NumLabel[k] {
			kb.b.WriteByte(0)
			kb.b.Write(buf[:binary.PutVarint(buf[:], v)])
			if i < len(s.NumUnit[k]) {
				kb.b.WriteString(s.NumUnit[k][i])
			}
		}
		kb.b.WriteByte(0xfc)
	}
	return kb.b.String()
}

// sortedKeys returns m's keys in order, reusing keys' storage.
func sortedKeys[V any](keys []string, m map[string]V) []string {
	keys = keys[:0]
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// leafName names the innermost function of a sample, for messages.
func leafName(s *profile.Sample) string {
	if s == nil || len(s.Location) == 0 || len(s.Location[0].Line) == 0 || s.Location[0].Line[0].Function == nil {
		return "unknown"
	}
	return s.Location[0].Line[0].Function.Name
}
