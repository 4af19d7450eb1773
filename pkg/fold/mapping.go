package fold

import (
	"github.com/google/pprof/profile"

	"github.com/goroscope/goroscope/pkg/gobin"
	"github.com/goroscope/goroscope/pkg/snapshot"
)

// Executable describes the profiled process's executable. Its Mapping is the
// main (first) mapping of the profile: with none, pprof tools add an empty
// one and warn "Main binary filename not available".
type Executable struct {
	// File is the executable's path.
	File string
	// BuildID is the GNU build ID in hex, else the Go build ID; "" if unknown.
	BuildID string
	// Start and Limit bound the executable's Go text at run time and Offset
	// is the file offset of Start; all 0 when unknown.
	Start, Limit, Offset uint64
}

// ExecutableOf describes the executable bin, run from file and loaded at
// bias (run-time minus link-time addresses).
func ExecutableOf(file string, bin *gobin.Binary, bias uint64) Executable {
	e := Executable{File: file, BuildID: bin.BuildID()}
	first, ok1 := bin.FuncByIndex(0)
	last, ok2 := bin.FuncByIndex(bin.NumFuncs() - 1)
	if !ok1 || !ok2 || last.End <= first.Entry {
		return e
	}
	if off, ok := bin.FileOffset(first.Entry); ok {
		e.Start, e.Limit, e.Offset = first.Entry+bias, last.End+bias, off
	}
	return e
}

// Mapping returns e as a pprof mapping with ID 1. Its locations carry
// functions, file names, line numbers and inlined frames already, so pprof
// never tries to symbolize them.
func (e Executable) Mapping() *profile.Mapping {
	return &profile.Mapping{
		ID: 1, Start: e.Start, Limit: e.Limit, Offset: e.Offset, File: e.File, BuildID: e.BuildID,
		HasFunctions: true, HasFilenames: true, HasLineNumbers: true, HasInlineFrames: true,
	}
}

// contains reports whether run-time address pc is in e's text.
func (e Executable) contains(pc uint64) bool { return pc >= e.Start && pc < e.Limit }

// SetExecutable makes e the main mapping of p, a profile of this package or
// of collect/cpu (one mapping at most), and points every location in e's
// text at it.
func SetExecutable(p *profile.Profile, e Executable) {
	m := e.Mapping()
	p.Mapping = []*profile.Mapping{m}
	for _, l := range p.Location {
		l.Mapping = nil
		if e.contains(l.Address) {
			l.Mapping = m
		}
	}
}

// exeOf is what a snapshot tells of its executable: the path alone.
func exeOf(s *snapshot.Snapshot) Executable { return Executable{File: s.Exe} }
