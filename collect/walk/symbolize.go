package walk

import (
	"encoding/binary"
	"strings"

	"github.com/goroscope/goroscope/collect/process"
	"github.com/goroscope/goroscope/pkg/gobin"
	"github.com/goroscope/goroscope/pkg/snapshot"
)

// symbolizer symbolises the stacks of one process's goroutines with a
// process.Symbolizer (whose per-pc cache lives as long as the target), and
// interns whole stacks.
type symbolizer struct {
	*process.Symbolizer
	bin  *gobin.Binary
	bias uint64
	tmp  []gobin.Frame
	// stacks and oldStacks intern whole stacks by their PCs for this walk
	// and the one before, so goroutines parked at the same place share one
	// frame slice; key is the reused lookup buffer.
	stacks, oldStacks map[string][]snapshot.Frame
	key               []byte
	// creators and oldCreators intern created-by frames by gopc the same
	// way: a million goroutines started by one go statement share one.
	creators, oldCreators map[uint64]*snapshot.Frame
}

func newSymbolizer(bin *gobin.Binary, bias uint64) *symbolizer {
	return &symbolizer{Symbolizer: process.NewSymbolizer(bin, bias), bin: bin, bias: bias,
		stacks: make(map[string][]snapshot.Frame), oldStacks: make(map[string][]snapshot.Frame),
		creators: make(map[uint64]*snapshot.Frame), oldCreators: make(map[uint64]*snapshot.Frame)}
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
	oldc := s.oldCreators
	clear(oldc)
	s.oldCreators, s.creators = s.creators, oldc
}

// frames appends the frames of a stack of PCs (leaf first) to dst: the
// leaf's saved pc and return addresses, each exact after a frame that
// injected a call.
func (s *symbolizer) frames(dst []snapshot.Frame, pcs []uint64) []snapshot.Frame {
	injected := false
	for _, pc := range pcs {
		frames, _, injects := s.Lookup(pc, injected)
		dst = append(dst, frames...)
		injected = injects
	}
	return dst
}

// createdBy describes the go statement at gopc the way the runtime's
// printcreatedby does: the physical function, named as printFuncName prints
// it (a generic function's shape as "[...]"), and the line of gopc-1.
// The frame is shared by every goroutine of this walk and the last one with
// the same gopc: callers must not modify it.
func (s *symbolizer) createdBy(gopc uint64) *snapshot.Frame {
	if gopc == 0 {
		return nil
	}
	if fr, ok := s.creators[gopc]; ok {
		return fr
	}
	fr, ok := s.oldCreators[gopc]
	if !ok {
		fr = s.lookupCreatedBy(gopc)
	}
	s.creators[gopc] = fr
	return fr
}

// lookupCreatedBy is createdBy without the interning.
func (s *symbolizer) lookupCreatedBy(gopc uint64) *snapshot.Frame {
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
