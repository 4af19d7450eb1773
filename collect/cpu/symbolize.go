package cpu

import (
	"github.com/goroscope/goroscope/bpf"
	"github.com/goroscope/goroscope/collect/process"
	"github.com/goroscope/goroscope/pkg/gobin"
	"github.com/goroscope/goroscope/pkg/snapshot"
)

// symbolizer turns a sample's PCs into frames with a process.Symbolizer
// and adds what a sample needs: the leaf pc is exact, not a
// return address; the caller of a leaf that had not set up its frame comes
// from the word at sp; and PCs outside the Go text are native code, named
// by their mapping.
type symbolizer struct {
	ps        *process.Symbolizer
	bin       *gobin.Binary
	bias      uint64
	maps      *mappings
	frameless map[uint64]bool // by leaf pc
}

// symEntry is what the stack walk needs of one pc.
type symEntry struct {
	frames    []snapshot.Frame
	goCode    bool
	injector  bool
	frameless bool
}

func newSymbolizer(bin *gobin.Binary, bias uint64, maps *mappings) *symbolizer {
	return &symbolizer{ps: process.NewSymbolizer(bin, bias), bin: bin, bias: bias, maps: maps, frameless: map[uint64]bool{}}
}

// stack symbolises a sample's user stack, leaf first, and appends it to dst.
// truncated reports that PCs were dropped: a return address outside the Go
// text after the leaf is what a frame-pointer walk through code without
// frame pointers yields, so the walk of that stack segment ends there.
func (s *symbolizer) stack(dst []snapshot.Frame, smp *bpf.CPUSample) (out []snapshot.Frame, truncated bool) {
	user := smp.User
	if len(user) == 0 {
		return dst, false
	}
	nsys := len(user)
	if smp.Flags&bpf.SampleSwitched != 0 {
		nsys = smp.NSys
	}
	start := len(dst)
	// The system-stack segment (or the only one), leaf first.
	leaf := s.lookup(user[0], true)
	dst = append(dst, leaf.frames...)
	injected := leaf.injector
	if leaf.goCode && leaf.frameless && smp.Caller != 0 {
		// The leaf had not pushed a frame: the chain starts at its
		// caller's frame, so the caller's pc is the word at sp.
		e := s.lookup(smp.Caller, injected)
		dst = append(dst, e.frames...)
		injected = e.injector
	}
	dst, t1 := s.segment(dst, user[1:nsys], injected)
	if nsys < len(user) {
		// curg's saved pc is where it left for the system stack.
		var t2 bool
		dst, t2 = s.segment(dst, user[nsys:], false)
		t1 = t1 || t2
	}
	// A whole stack ends in the function its goroutine or thread started in.
	if len(dst) > start && !isRoot(dst[len(dst)-1].Function) {
		t1 = true
	}
	return dst, t1
}

// isRoot reports the functions a complete stack ends in: a goroutine's
// runtime.goexit, or the start of a thread's system stack.
func isRoot(fn string) bool {
	switch fn {
	case "runtime.goexit", "runtime.mstart", "runtime.mstart0", "runtime.rt0_go":
		return true
	}
	return false
}

// segment appends the frames of return addresses of one stack until the
// first one outside the Go text.
func (s *symbolizer) segment(dst []snapshot.Frame, pcs []uint64, injected bool) ([]snapshot.Frame, bool) {
	for _, pc := range pcs {
		e := s.lookup(pc, injected)
		if !e.goCode {
			return dst, true
		}
		dst = append(dst, e.frames...)
		injected = e.injector
	}
	return dst, false
}

func (s *symbolizer) lookup(pc uint64, exact bool) symEntry {
	frames, goCode, injects := s.ps.Lookup(pc, exact)
	if !goCode {
		return symEntry{frames: []snapshot.Frame{{Function: s.maps.name(pc), PC: pc}}}
	}
	e := symEntry{frames: frames, goCode: true, injector: injects}
	if exact {
		f, known := s.frameless[pc]
		if !known {
			// SP at its entry value: nothing pushed yet (prologue, frameless
			// leaf, or after the epilogue's POPQ BP).
			d, err := s.bin.SPDelta(pc - s.bias)
			f = err == nil && d == 0
			s.frameless[pc] = f
		}
		e.frameless = f
	}
	return e
}
