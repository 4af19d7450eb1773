// Package findings turns snapshots into answers: it groups a process's
// goroutines by site (where they were created, where they wait, in which
// state), follows each group over time, and judges the groups into
// findings with evidence: a leak (a group that keeps growing while its
// goroutines stay), a stuck group (many goroutines waiting on one object
// for long), or a process whose goroutines are all asleep. RuntimeTracker
// judges the runtime's settings and health against the process's cgroup
// the same way: GOMAXPROCS over the CPU quota, no GOMEMLIMIT under a memory
// limit, the GC off without a limit, a run queue backlog, GODEBUG debugging
// settings left on. It is pure: snapshots and reads in, groups and findings
// out, no I/O.
//
// It is internal to goroscope, not meant for import by other modules: its
// API may change at any time. The JSON form of Finding is a contract
// (docs/findings-json.md).
package findings

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"

	"github.com/goroscope/goroscope/pkg/snapshot"
)

// Site is where a group of goroutines is: the go statement that created
// them, the first frame of their stack outside the runtime and the sync
// package (the code that blocks), and their state and wait reason.
// Goroutines whose stacks differ below that frame share a site.
type Site struct {
	// CreatedBy is "function file:line" of the go statement, "" for the
	// main goroutine.
	CreatedBy string `json:"created_by"`
	// Frame is "function file:line" of the first frame outside the
	// runtime, "" when the stack has none (running goroutines).
	Frame string `json:"frame"`
	// State and WaitReason as in the snapshot; leaked goroutines (Go
	// 1.26's detector) count as waiting.
	State      snapshot.State `json:"state"`
	WaitReason string         `json:"wait_reason,omitempty"`
}

// SiteOf is the site of g.
func SiteOf(g *snapshot.Goroutine) Site {
	s := Site{State: g.State, WaitReason: g.WaitReason}
	if s.State == snapshot.StateLeaked {
		s.State = snapshot.StateWaiting
	}
	if g.CreatedBy != nil {
		s.CreatedBy = frameText(g.CreatedBy)
	}
	for i := range g.Frames {
		if !internalFunc(g.Frames[i].Function) {
			s.Frame = frameText(&g.Frames[i])
			break
		}
	}
	return s
}

func frameText(f *snapshot.Frame) string {
	return fmt.Sprintf("%s %s:%d", f.Function, f.File, f.Line)
}

// internalFunc reports whether a function belongs to the runtime or to
// the packages goroutines block through (sync, internal/...), whose frames
// say how a goroutine waits but not where in the program.
func internalFunc(fn string) bool {
	pkg := packageOf(fn)
	return pkg == "runtime" || pkg == "sync" || pkg == "sync/atomic" || pkg == "iter" ||
		strings.HasPrefix(pkg, "internal/") || strings.HasPrefix(pkg, "runtime/")
}

// packageOf is the import path of a function name: up to the first dot
// after the last slash ("net/http.(*conn).serve" is in "net/http").
func packageOf(fn string) string {
	slash := strings.LastIndexByte(fn, '/')
	dot := strings.IndexByte(fn[slash+1:], '.')
	if dot < 0 {
		return fn
	}
	return fn[:slash+1+dot]
}

// ID is a stable short identifier of the site: the same site has the same
// id in every snapshot, process and agent.
func (s Site) ID() string {
	h := sha256.Sum256([]byte(s.CreatedBy + "\x00" + s.Frame + "\x00" + string(s.State) + "\x00" + s.WaitReason))
	return hex.EncodeToString(h[:6])
}

// Label is the site as a short label value: the blocking frame's function
// and line, and the creator's.
func (s Site) Label() string {
	short := func(text string) string {
		fn, loc, ok := strings.Cut(text, " ")
		if !ok {
			return text
		}
		if i := strings.LastIndexByte(loc, ':'); i >= 0 {
			return fn + ":" + loc[i+1:]
		}
		return fn
	}
	var b strings.Builder
	if s.Frame != "" {
		b.WriteString(short(s.Frame))
	} else {
		b.WriteString(string(s.State))
	}
	if s.CreatedBy != "" {
		b.WriteString(" ← ")
		b.WriteString(short(s.CreatedBy))
	}
	return b.String()
}
