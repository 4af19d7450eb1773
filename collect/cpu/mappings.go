package cpu

import (
	"bufio"
	"cmp"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

// maxMappings bounds the lines read from /proc/PID/maps.
const maxMappings = 1 << 16

// mappings names native code (outside the Go text) by the mapping holding
// it: "[libc.so.6]", "[vdso]", "[anon]". One frame per library keeps C
// stacks, which have no Go symbols, from splitting a profile by address.
type mappings struct {
	pid    int
	spans  []mapping
	loaded bool
	err    error
}

type mapping struct {
	lo, hi uint64
	name   string
}

// name returns the frame name of a native pc, reading the process's maps
// on first use.
func (m *mappings) name(pc uint64) string {
	if !m.loaded {
		m.loaded = true
		m.spans, m.err = readMappings(m.pid)
	}
	i, found := slices.BinarySearchFunc(m.spans, pc, func(s mapping, pc uint64) int {
		switch {
		case pc < s.lo:
			return 1
		case pc >= s.hi:
			return -1
		}
		return 0
	})
	if !found || i >= len(m.spans) {
		return "[unknown]"
	}
	return m.spans[i].name
}

// readMappings reads the executable mappings of pid, sorted by address.
func readMappings(pid int) ([]mapping, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/maps", pid))
	if err != nil {
		return nil, fmt.Errorf("read mappings of pid %d: %w", pid, err)
	}
	defer f.Close()
	var out []mapping
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 0, 4096), 1<<20)
	for n := 0; sc.Scan() && n < maxMappings; n++ {
		if m, ok := parseMapping(sc.Text()); ok {
			out = append(out, m)
		}
	}
	if err := sc.Err(); err != nil {
		return out, fmt.Errorf("read mappings of pid %d: %w", pid, err)
	}
	slices.SortFunc(out, func(a, b mapping) int { return cmp.Compare(a.lo, b.lo) })
	return out, nil
}

// parseMapping parses one executable line of /proc/PID/maps:
// "7f..-7f.. r-xp 00000000 08:01 1234   /usr/lib/libc.so.6".
func parseMapping(line string) (mapping, bool) {
	fields := strings.Fields(line)
	if len(fields) < 5 || len(fields[1]) < 3 || fields[1][2] != 'x' {
		return mapping{}, false
	}
	lo, hi, ok := strings.Cut(fields[0], "-")
	if !ok {
		return mapping{}, false
	}
	a, err1 := strconv.ParseUint(lo, 16, 64)
	b, err2 := strconv.ParseUint(hi, 16, 64)
	if err1 != nil || err2 != nil || b <= a {
		return mapping{}, false
	}
	name := "[anon]"
	if len(fields) >= 6 {
		p := strings.Join(fields[5:], " ")
		switch {
		case strings.HasPrefix(p, "["):
			name = p
		default:
			name = "[" + filepath.Base(strings.TrimSuffix(p, " (deleted)")) + "]"
		}
	}
	return mapping{lo: a, hi: b, name: name}, true
}
