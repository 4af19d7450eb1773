package snapshot

import (
	"bufio"
	"io"
	"maps"
	"slices"
	"strconv"
	"strings"
)

// WriteFolded writes s as folded stacks ("root;...;leaf count"), the input
// of flamegraph.pl and speedscope, one line per distinct stack. Each stack
// is rooted at a frame naming the goroutines' state and wait reason, so the
// flame graph splits by them first.
func WriteFolded(w io.Writer, s *Snapshot) error {
	counts := Folded{}
	var b strings.Builder
	for i := range s.Goroutines {
		g := &s.Goroutines[i]
		b.Reset()
		b.WriteString(string(g.State))
		if g.WaitReason != "" {
			b.WriteString(": ")
			b.WriteString(g.WaitReason)
		}
		for j := len(g.Frames) - 1; j >= 0; j-- {
			b.WriteByte(';')
			b.WriteString(FoldedName(g.Frames[j].Function))
		}
		counts[b.String()]++
	}
	return counts.Write(w)
}

// Folded counts folded stacks: "root;...;leaf" keys, with ';' in names
// replaced (FoldedName).
type Folded map[string]int64

// FoldedName is a frame name fit for a folded stack.
func FoldedName(name string) string { return strings.ReplaceAll(name, ";", ":") }

// Write writes one "stack count" line per stack, sorted by stack.
func (f Folded) Write(w io.Writer) error {
	bw := bufio.NewWriter(w)
	for _, k := range slices.Sorted(maps.Keys(f)) {
		bw.WriteString(k)
		bw.WriteByte(' ')
		bw.WriteString(strconv.FormatInt(f[k], 10))
		bw.WriteByte('\n')
	}
	return bw.Flush()
}

func sortedKeys(m map[string]string) []string {
	return slices.Sorted(maps.Keys(m))
}
