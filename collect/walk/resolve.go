package walk

import (
	"github.com/goroscope/goroscope/pkg/gobin"
	"github.com/goroscope/goroscope/pkg/golayout"
	"github.com/goroscope/goroscope/pkg/snapshot"
)

// LabelReader reads the pprof label sets (g.labels values) of one process,
// for collectors other than the Snapshotter (the CPU sampler). Label sets
// are cached by address until Reset.
type LabelReader struct{ r *labelReader }

// NewLabelReader reads label sets from mem, laid out as l describes.
func NewLabelReader(mem Memory, l *golayout.Layout) *LabelReader {
	return &LabelReader{r: newLabelReader(mem, l)}
}

// Read returns the labels at a g.labels value (nil for 0).
func (l *LabelReader) Read(addr uint64) (map[string]string, error) { return l.r.read(addr) }

// Reset forgets the cached label sets: a freed set's address may be reused.
func (l *LabelReader) Reset() { clear(l.r.cache) }

// Symbolizer turns run-time PCs of one process into frames with inlined
// calls expanded, caching them for the life of the process.
type Symbolizer struct{ s *symbolizer }

// NewSymbolizer symbolises the PCs of a process running bin loaded at bias.
func NewSymbolizer(bin *gobin.Binary, bias uint64) *Symbolizer {
	return &Symbolizer{s: newSymbolizer(bin, bias)}
}

// Lookup returns the frames of pc, innermost first. exact says pc is the
// instruction itself (a sample's leaf pc, or a pc after an injected call),
// not a return address, which is looked up at pc-1. goCode is false when pc
// is in no Go function (frames is then one "?" frame); injects reports that
// pc's function injects a call (sigpanic, asyncPreempt) so that the pc of
// the frame below it is exact. The frames are shared: do not modify them.
func (s *Symbolizer) Lookup(pc uint64, exact bool) (frames []snapshot.Frame, goCode, injects bool) {
	e := s.s.lookup(pc, exact)
	return e.frames, e.goCode, e.injector
}
