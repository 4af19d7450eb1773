package process

import (
	"github.com/goroscope/goroscope/pkg/gobin"
	"github.com/goroscope/goroscope/pkg/snapshot"
)

// Symbolizer turns run-time PCs of one process into frames of its
// executable with inlined calls expanded, following the runtime's unwinder:
// a return address is looked up at pc-1, except after a frame the runtime
// injected a call into (sigpanic, asyncPreempt, debugCallV2), where pc is
// the faulting or interrupted instruction itself. Results are cached per
// (pc, exact) for the life of the process: a process has few distinct PCs
// and many goroutines.
type Symbolizer struct {
	bin   *gobin.Binary
	ids   gobin.FuncIDs
	bias  uint64
	cache map[symKey]symEntry
	tmp   []gobin.Frame
}

type symKey struct {
	pc    uint64
	exact bool
}

type symEntry struct {
	frames []snapshot.Frame
	// injector is set when the physical function injects a call for the
	// frame below it.
	injector bool
	// goCode is set when pc is in a Go function of the executable.
	goCode bool
}

// NewSymbolizer symbolises the PCs of a process running bin loaded at bias.
func NewSymbolizer(bin *gobin.Binary, bias uint64) *Symbolizer {
	return &Symbolizer{bin: bin, ids: bin.FuncIDs(), bias: bias, cache: make(map[symKey]symEntry)}
}

// injectsCall reports the functions after which the next pc is not a return address.
func injectsCall(name string) bool {
	switch name {
	case "runtime.sigpanic", "runtime.asyncPreempt", "runtime.debugCallV2":
		return true
	}
	return false
}

// Lookup returns the frames of pc, innermost first. exact says pc is the
// instruction itself (a sample's leaf pc, or a pc after an injected call),
// not a return address, which is looked up at pc-1. goCode is false when pc
// is in no Go function (frames is then one "?" frame); injects reports that
// pc's function injects a call (sigpanic, asyncPreempt) so that the pc of
// the frame below it is exact. The frames are shared: do not modify them.
func (s *Symbolizer) Lookup(pc uint64, exact bool) (frames []snapshot.Frame, goCode, injects bool) {
	e := s.lookup(pc, exact)
	return e.frames, e.goCode, e.injector
}

// maxSymbolized bounds a Symbolizer's cache: about 200 bytes a pc, so
// 2^14 pcs (far more than the distinct return addresses of a process's
// parked stacks) take 3 MB at most.
const maxSymbolized = 1 << 14

func (s *Symbolizer) lookup(pc uint64, exact bool) symEntry {
	k := symKey{pc, exact}
	if e, ok := s.cache[k]; ok {
		return e
	}
	if len(s.cache) >= maxSymbolized {
		// A process that shows ever new pcs (JIT-like code, a long life
		// of rare paths) starts over rather than growing without bound.
		clear(s.cache)
	}
	var e symEntry
	lpc := pc - s.bias
	f, ok := s.bin.FuncForPC(lpc)
	if !ok {
		e.frames = []snapshot.Frame{{Function: "?", PC: pc}}
		s.cache[k] = e
		return e
	}
	e.goCode = true
	sym := lpc
	if !exact && lpc > f.Entry {
		sym = lpc - 1
	}
	s.tmp = s.bin.Frames(sym, s.tmp[:0])
	e.frames = make([]snapshot.Frame, 0, len(s.tmp))
	for _, fr := range s.tmp {
		e.frames = append(e.frames, snapshot.Frame{
			Function: fr.Function, File: fr.File, Line: fr.Line, Inlined: fr.Inlined,
			Wrapper: fr.FuncID == s.ids.Wrapper,
			PC:      pc, Offset: lpc - f.Entry,
		})
	}
	if len(e.frames) == 0 {
		e.frames = []snapshot.Frame{{Function: f.Name, PC: pc, Offset: lpc - f.Entry}}
	}
	e.injector = injectsCall(f.Name)
	s.cache[k] = e
	return e
}
