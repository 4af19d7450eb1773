package targettest

import (
	"strconv"
	"strings"
)

// RuntimeMessage is the message a dying Go program's runtime printed on
// stderr: the lines from the first "panic: " or "fatal error: " up to the
// blank line before the traceback, without the "[signal ...]" line and
// without a second thread's fatal error. "" when there is none.
func RuntimeMessage(stderr string) string {
	var lines []string
	started := false
	for _, l := range strings.Split(stderr, "\n") {
		if !started && !strings.HasPrefix(l, "panic: ") && !strings.HasPrefix(l, "fatal error: ") {
			continue
		}
		if started && strings.HasPrefix(l, "fatal error: ") {
			break // a second thread's fatal error
		}
		started = true
		if l == "" || strings.HasPrefix(l, "[signal ") {
			break
		}
		lines = append(lines, l)
	}
	return strings.Join(lines, "\n")
}

// TraceFrame is one frame of a runtime traceback.
type TraceFrame struct {
	// Function as printed, without its arguments: "main.f",
	// "main.(*T).m", "panic" for runtime.gopanic.
	Function string
	File     string
	Line     int
}

// Traceback is the first goroutine's traceback in stderr (after the
// runtime's message and any "runtime stack:" of the system stack): its
// id and its frames, innermost first, up to its "created by" line or the
// blank line ending it. An "...additional frames elided..." line ends the
// frames too. ok is false when there is none.
func Traceback(stderr string) (goid uint64, frames []TraceFrame, ok bool) {
	lines := strings.Split(stderr, "\n")
	i := 0
	for ; i < len(lines); i++ {
		if rest, found := strings.CutPrefix(lines[i], "goroutine "); found {
			id, _, _ := strings.Cut(rest, " ")
			n, err := strconv.ParseUint(id, 10, 64)
			if err == nil {
				goid, ok = n, true
				break
			}
		}
	}
	if !ok {
		return 0, nil, false
	}
	for i++; i+1 < len(lines); i += 2 {
		fn, loc := lines[i], lines[i+1]
		if fn == "" || strings.HasPrefix(fn, "created by ") || strings.HasPrefix(fn, "...") || !strings.HasPrefix(loc, "\t") {
			break
		}
		if j := strings.LastIndex(fn, "("); j > 0 {
			fn = fn[:j]
		}
		loc = strings.TrimPrefix(loc, "\t")
		if j := strings.Index(loc, " +0x"); j > 0 {
			loc = loc[:j]
		}
		if j := strings.Index(loc, " fp="); j > 0 { // GOTRACEBACK=system
			loc = loc[:j]
		}
		f := TraceFrame{Function: fn, File: loc}
		if j := strings.LastIndexByte(loc, ':'); j > 0 {
			if n, err := strconv.Atoi(loc[j+1:]); err == nil {
				f.File, f.Line = loc[:j], n
			}
		}
		frames = append(frames, f)
	}
	return goid, frames, true
}
