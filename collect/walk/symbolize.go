package walk

import (
	"encoding/binary"
	"strings"

	"github.com/goroscope/goroscope/pkg/gobin"
	"github.com/goroscope/goroscope/pkg/snapshot"
)

// symbolizer turns run-time PCs into frames with inlined calls expanded,
// following the runtime's unwinder: a return address is looked up at pc-1,
// except after a frame the runtime injected a call into (sigpanic,
// asyncPreempt, debugCallV2), where pc is the faulting or interrupted
// instruction itself. Results are cached per (pc, injected) for the life of
// the target: a process has few distinct PCs and many goroutines.
type symbolizer struct {
	bin   *gobin.Binary
	ids   gobin.FuncIDs
	bias  uint64
	cache map[symKey]symEntry
	tmp   []gobin.Frame
	// stacks and oldStacks intern whole stacks by their PCs for this walk
	// and the one before, so goroutines parked at the same place share one
	// frame slice; key is the reused lookup buffer.
	stacks, oldStacks map[string][]snapshot.Frame
	key               []byte
}

type symKey struct {
	pc       uint64
	injected bool
}

type symEntry struct {
	frames []snapshot.Frame
	// injector is set when the physical function injects a call for the
	// frame below it.
	injector bool
	// goCode is set when pc is in a Go function of the executable.
	goCode bool
}

func newSymbolizer(bin *gobin.Binary, bias uint64) *symbolizer {
	return &symbolizer{bin: bin, ids: bin.FuncIDs(), bias: bias, cache: make(map[symKey]symEntry),
		stacks: make(map[string][]snapshot.Frame), oldStacks: make(map[string][]snapshot.Frame)}
}

// stack returns the frames of a stack of PCs (leaf first), shared with
// every goroutine of this walk and the last one with the same PCs: callers
// must not modify them.
func (s *symbolizer) stack(pcs []uint64) []snapshot.Frame {
	s.key = s.key[:0]
	for _, pc := range pcs {
		s.key = binary.LittleEndian.AppendUint64(s.key, pc)
	}
	if fr, ok := s.stacks[string(s.key)]; ok {
		return fr
	}
	fr, ok := s.oldStacks[string(s.key)]
	if !ok {
		fr = s.frames(make([]snapshot.Frame, 0, len(pcs)+4), pcs)
	}
	s.stacks[string(s.key)] = fr
	return fr
}

// endWalk ages the stack table: a stack no goroutine had for a whole walk
// is forgotten.
func (s *symbolizer) endWalk() {
	old := s.oldStacks
	clear(old)
	s.oldStacks, s.stacks = s.stacks, old
}

// injectsCall reports the functions after which the next pc is not a return address.
func injectsCall(name string) bool {
	switch name {
	case "runtime.sigpanic", "runtime.asyncPreempt", "runtime.debugCallV2":
		return true
	}
	return false
}

// frames appends the frames of a stack of PCs (leaf first) to dst.
func (s *symbolizer) frames(dst []snapshot.Frame, pcs []uint64) []snapshot.Frame {
	injected := false
	for _, pc := range pcs {
		e := s.lookup(pc, injected)
		dst = append(dst, e.frames...)
		injected = e.injector
	}
	return dst
}

func (s *symbolizer) lookup(pc uint64, injected bool) symEntry {
	k := symKey{pc, injected}
	if e, ok := s.cache[k]; ok {
		return e
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
	if !injected && lpc > f.Entry {
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

// createdBy describes the go statement at gopc the way the runtime's
// printcreatedby does: the physical function, named as printFuncName prints
// it (a generic function's shape as "[...]"), and the line of gopc-1.
func (s *symbolizer) createdBy(gopc uint64) *snapshot.Frame {
	if gopc == 0 {
		return nil
	}
	lpc := gopc - s.bias
	f, ok := s.bin.FuncForPC(lpc)
	if !ok {
		return nil
	}
	sym := lpc
	if lpc > f.Entry {
		sym = lpc - 1
	}
	s.tmp = s.bin.Frames(sym, s.tmp[:0])
	fr := &snapshot.Frame{Function: f.Name, PC: gopc, Offset: lpc - f.Entry}
	if n := len(s.tmp); n > 0 {
		// The innermost frame carries the pc's own file and line; the
		// outermost is the physical function under its printed name.
		fr.File, fr.Line = s.tmp[0].File, s.tmp[0].Line
		if !s.tmp[n-1].Inlined {
			fr.Function = s.tmp[n-1].Function
		}
	}
	return fr
}

// funcName names the physical function at a run-time pc ("" if none).
func (s *symbolizer) funcName(pc uint64) string {
	f, ok := s.bin.FuncForPC(pc - s.bias)
	if !ok {
		return ""
	}
	return f.Name
}

// isSystem follows the runtime's isSystemGoroutine: goroutines started in
// package runtime are internal, except runtime.main and the coroutine and
// async-event starters; the finalizer goroutine counts as internal.
func isSystem(startFn string) bool {
	switch startFn {
	case "runtime.main", "runtime.corostart", "runtime.handleAsyncEvent":
		return false
	}
	return strings.HasPrefix(startFn, "runtime.")
}
