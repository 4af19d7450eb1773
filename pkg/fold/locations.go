package fold

import (
	"github.com/google/pprof/profile"

	"github.com/goroscope/goroscope/pkg/snapshot"
)

// Locations turns frames into the locations and functions of one pprof
// profile, each made once and shared by every sample that uses it. Frames
// sharing a PC (a physical call and the calls inlined into it) become one
// location with several lines, innermost first, as pprof expects.
type Locations struct {
	p       *profile.Profile
	mapping *profile.Mapping
	funcs   map[funcKey]*profile.Function
	locs    map[locKey]*profile.Location
}

type funcKey struct{ name, file string }

type locKey struct {
	name, file string
	line       int
	pc         uint64
}

// NewLocations adds locations and functions to p. Locations whose address
// falls in mapping (which may be nil) point to it.
func NewLocations(p *profile.Profile, mapping *profile.Mapping) *Locations {
	return &Locations{p: p, mapping: mapping, funcs: map[funcKey]*profile.Function{}, locs: map[locKey]*profile.Location{}}
}

func (l *Locations) function(f *snapshot.Frame) *profile.Function {
	k := funcKey{f.Function, f.File}
	if fn, ok := l.funcs[k]; ok {
		return fn
	}
	fn := &profile.Function{ID: uint64(len(l.p.Function) + 1), Name: f.Function, SystemName: f.Function, Filename: f.File}
	l.p.Function = append(l.p.Function, fn)
	l.funcs[k] = fn
	return fn
}

// Of returns the locations of a stack of frames, leaf first.
func (l *Locations) Of(frames []snapshot.Frame) []*profile.Location {
	out := make([]*profile.Location, 0, len(frames))
	for i := 0; i < len(frames); {
		j := i + 1
		for j < len(frames) && frames[j].PC == frames[i].PC && frames[j-1].Inlined {
			j++
		}
		group := frames[i:j]
		k := locKey{group[0].Function, group[0].File, group[0].Line, group[0].PC}
		loc, ok := l.locs[k]
		if !ok {
			loc = &profile.Location{ID: uint64(len(l.p.Location) + 1), Address: group[0].PC}
			if m := l.mapping; m != nil && group[0].PC >= m.Start && group[0].PC < m.Limit {
				loc.Mapping = m
			}
			for _, f := range group {
				loc.Line = append(loc.Line, profile.Line{Function: l.function(&f), Line: int64(f.Line)})
			}
			l.p.Location = append(l.p.Location, loc)
			l.locs[k] = loc
		}
		out = append(out, loc)
		i = j
	}
	return out
}
