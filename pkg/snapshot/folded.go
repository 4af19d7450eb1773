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
	counts := map[string]int{}
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
			b.WriteString(strings.ReplaceAll(g.Frames[j].Function, ";", ":"))
		}
		counts[b.String()]++
	}
	bw := bufio.NewWriter(w)
	for _, k := range slices.Sorted(maps.Keys(counts)) {
		bw.WriteString(k)
		bw.WriteByte(' ')
		bw.WriteString(strconv.Itoa(counts[k]))
		bw.WriteByte('\n')
	}
	return bw.Flush()
}

func sortedKeys(m map[string]string) []string {
	return slices.Sorted(maps.Keys(m))
}
