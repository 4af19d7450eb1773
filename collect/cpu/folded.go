package cpu

import (
	"io"
	"strings"

	"github.com/goroscope/goroscope/pkg/snapshot"
)

// WriteFolded writes a process's samples as folded stacks, one line per
// distinct stack: frames root first separated by ';', a space and the
// sample count (Brendan Gregg's format, for flamegraph.pl and speedscope).
// Kernel frames end in "_[k]"; labels and goroutines are not shown.
func WriteFolded(w io.Writer, p *Process) error {
	counts := snapshot.Folded{}
	var b strings.Builder
	for i := range p.Samples {
		s := &p.Samples[i]
		b.Reset()
		for j := len(s.Frames) - 1; j >= 0; j-- {
			f := &s.Frames[j]
			if b.Len() > 0 {
				b.WriteByte(';')
			}
			b.WriteString(snapshot.FoldedName(f.Function))
			if f.File == kernelFile {
				b.WriteString("_[k]")
			}
		}
		if b.Len() == 0 {
			b.WriteString("[no stack]")
		}
		counts[b.String()] += int64(s.Count)
	}
	return counts.Write(w)
}
