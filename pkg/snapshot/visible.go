package snapshot

import "strings"

// Visible reports, for each frame of a stack (leaf first), whether the Go
// runtime's tracebacks at the default level — panics, runtime.Stack and
// /debug/pprof/goroutine?debug=2 — print it. It follows the runtime's
// showfuncinfo: unexported runtime functions and wrappers are hidden, except
// runtime.gopanic below the first printed frame, wrappers that called a
// panic function, and the finalizer and cleanup runners.
func Visible(frames []Frame) []bool {
	out := make([]bool, len(frames))
	printed := 0
	callee := ""
	for i := range frames {
		f := &frames[i]
		out[i] = showFunc(f, printed == 0, callee)
		if out[i] {
			printed++
		}
		callee = f.Function
	}
	return out
}

func showFunc(f *Frame, firstFrame bool, callee string) bool {
	if f.Wrapper && !(callee == "runtime.gopanic" || callee == "runtime.sigpanic" || callee == "runtime.panicwrap") {
		return false
	}
	name := f.Function
	switch name {
	case "runtime.runFinalizers", "runtime.runCleanups":
		return true
	case "runtime.gopanic":
		if !firstFrame {
			return true
		}
	}
	return strings.IndexByte(name, '.') >= 0 && (!strings.HasPrefix(name, "runtime.") || isExportedRuntime(name))
}

// isExportedRuntime is the runtime's own test for exported runtime
// functions and exported methods on exported runtime types.
func isExportedRuntime(name string) bool {
	name, found := strings.CutPrefix(name, "runtime.")
	if !found {
		return false
	}
	rcvr := ""
	if i := strings.LastIndexByte(name, '.'); i >= 0 {
		rcvr, name = name[:i], name[i+1:]
		if len(rcvr) >= 3 && rcvr[0] == '(' && rcvr[1] == '*' && rcvr[len(rcvr)-1] == ')' {
			rcvr = rcvr[2 : len(rcvr)-1]
		}
	}
	return len(name) > 0 && 'A' <= name[0] && name[0] <= 'Z' && (len(rcvr) == 0 || 'A' <= rcvr[0] && rcvr[0] <= 'Z')
}

// VisibleFrames returns the frames the runtime's default tracebacks print.
func VisibleFrames(frames []Frame) []Frame {
	vis := Visible(frames)
	out := make([]Frame, 0, len(frames))
	for i, v := range vis {
		if v {
			out = append(out, frames[i])
		}
	}
	return out
}
