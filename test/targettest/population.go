package targettest

import (
	"fmt"
	"os/exec"
	"reflect"
	"strings"
	"testing"

	"github.com/goroscope/goroscope/pkg/goroutinedump"
)

// Population is the description served by the population target at
// /population.
type Population struct {
	PID    int     `json:"pid"`
	Go     string  `json:"go"`
	Groups []Group `json:"groups"`
}

// Group is one set of goroutines the population target parked the same way.
type Group struct {
	Name  string `json:"name"`
	Count int    `json:"count"`
	// Status is the most likely header status for the target's toolchain;
	// Statuses lists every acceptable one (spinners may be running,
	// runnable or preempted).
	Status   string   `json:"status"`
	Statuses []string `json:"statuses"`
	// Labels are the pprof labels set on the group's goroutines.
	Labels map[string]string `json:"labels"`
	// LockedToThread is true for goroutines that called runtime.LockOSThread.
	LockedToThread bool `json:"locked_to_thread"`
	// Frame is a function name, as printed in tracebacks, found in every stack.
	Frame string `json:"frame"`
	// MinFrames is a lower bound of printed plus elided frames.
	MinFrames int `json:"min_frames"`
	// Elided is true when the traceback must report elided frames.
	Elided bool `json:"elided"`
	// IDs are the goroutine ids of the group.
	IDs []uint64 `json:"ids"`
}

// Group returns the group with the given name.
func (p Population) Group(name string) (Group, bool) {
	for _, g := range p.Groups {
		if g.Name == name {
			return g, true
		}
	}
	return Group{}, false
}

// Total returns the number of goroutines in all groups.
func (p Population) Total() int {
	n := 0
	for _, g := range p.Groups {
		n += len(g.IDs)
	}
	return n
}

// Check compares a parsed goroutine dump of the target with the
// population: every goroutine of every group must be present with an
// acceptable status, the group's frame, its lock and elision, and its
// labels when the dump carries labels (go1.26+ GODEBUG=tracebacklabels=1).
// It returns an error listing the first mismatches.
func (p Population) Check(gs []goroutinedump.Goroutine) error {
	byID := make(map[uint64]*goroutinedump.Goroutine, len(gs))
	for i := range gs {
		byID[gs[i].ID] = &gs[i]
	}
	var bad []string
	const maxReported = 20
	report := func(format string, args ...any) {
		if len(bad) < maxReported {
			bad = append(bad, fmt.Sprintf(format, args...))
		}
	}
	for _, grp := range p.Groups {
		if len(grp.IDs) != grp.Count {
			report("group %s: %d ids, count %d", grp.Name, len(grp.IDs), grp.Count)
		}
		for _, id := range grp.IDs {
			g := byID[id]
			if g == nil {
				report("group %s: goroutine %d missing from the dump", grp.Name, id)
				continue
			}
			if problem := grp.mismatch(g); problem != "" {
				report("group %s: goroutine %d: %s", grp.Name, id, problem)
			}
		}
	}
	if len(bad) > 0 {
		return fmt.Errorf("dump does not match the population (%s):\n  %s", p.Go, strings.Join(bad, "\n  "))
	}
	return nil
}

// mismatch returns what is wrong with g as a member of grp, or "".
func (grp Group) mismatch(g *goroutinedump.Goroutine) string {
	statuses := grp.Statuses
	if len(statuses) == 0 {
		statuses = []string{grp.Status}
	}
	if !contains(statuses, g.Status) {
		return fmt.Sprintf("status %q, want one of %q", g.Status, statuses)
	}
	if grp.LockedToThread != g.LockedToThread {
		return fmt.Sprintf("locked to thread %v, want %v", g.LockedToThread, grp.LockedToThread)
	}
	if grp.Frame != "" && !hasFrame(g, grp.Frame) {
		return fmt.Sprintf("no frame %s in %s", grp.Frame, frameNames(g))
	}
	if n := len(g.Frames) + max(g.ElidedFrames, 0); n < grp.MinFrames {
		return fmt.Sprintf("%d frames, want at least %d", n, grp.MinFrames)
	}
	if grp.Elided != (g.ElidedFrames != 0) {
		return fmt.Sprintf("elided frames %d, want elision %v", g.ElidedFrames, grp.Elided)
	}
	if g.Labels != nil && len(grp.Labels) > 0 && !reflect.DeepEqual(g.Labels, grp.Labels) {
		return fmt.Sprintf("labels %v, want %v", g.Labels, grp.Labels)
	}
	if g.CreatedBy == nil || g.ParentID == 0 {
		return "no \"created by ... in goroutine N\" line"
	}
	return ""
}

func hasFrame(g *goroutinedump.Goroutine, fn string) bool {
	for _, f := range g.Frames {
		if f.Function == fn {
			return true
		}
	}
	return false
}

func frameNames(g *goroutinedump.Goroutine) string {
	names := make([]string, 0, len(g.Frames))
	for _, f := range g.Frames {
		names = append(names, f.Function)
	}
	return "[" + strings.Join(names, " ") + "]"
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// StartNotGo starts a long-running process that is not a Go program
// (/bin/sleep), for tests that must reject non-Go targets, and registers a
// cleanup that kills it. It skips the test when sleep is not installed.
func StartNotGo(tb testing.TB) *exec.Cmd {
	tb.Helper()
	path, err := exec.LookPath("sleep")
	if err != nil {
		tb.Skipf("no sleep binary for a non-Go target: %v", err)
	}
	cmd := exec.Command(path, "3600")
	if err := cmd.Start(); err != nil {
		tb.Fatalf("start non-Go target %s: %v", path, err)
	}
	tb.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	return cmd
}
