//go:build linux

package bpf

import (
	"fmt"
	"maps"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/rlimit"
	"golang.org/x/sys/unix"
)

// VerifierBudget is the most instructions the kernel verifier may process
// for any of goroscope's programs: 15% of the kernel's limit of 1,000,000.
// Each kernel explores a program differently, so a program that passes near
// the limit on one kernel build is rejected by the next; the tests hold
// every program to this budget on every kernel of the test matrix.
const VerifierBudget = 150_000

// loadOptions makes one load attempt that asks the verifier for its
// statistics only. Without a log level, cilium/ebpf loads a rejected program
// a second time to fetch the verifier's log, which doubles the cost of every
// rejection; the statistics level keeps the log short and still carries the
// verifier's error message and its "processed N insns" line.
func loadOptions() *ebpf.CollectionOptions {
	return &ebpf.CollectionOptions{Programs: ebpf.ProgramOptions{LogLevel: ebpf.LogLevelStats}}
}

// ProgramLoad is what loading one BPF program cost the kernel.
type ProgramLoad struct {
	Object  string // "goroutines", "cpu", "exits" or "panics"
	Program string // the program's section function, e.g. "walk_goroutines"
	// Insns is the number of instructions the verifier processed, from its
	// statistics line ("processed N insns"); States is its total_states.
	Insns, States int
	// Verification is the verifier's own "verification time".
	Verification time.Duration
	// Wall and CPU are the elapsed and the calling thread's CPU time (user
	// and system) of loading the whole object: maps, BTF and programs.
	Wall, CPU time.Duration
}

var (
	processedRE = regexp.MustCompile(`processed (\d+) insns \(limit \d+\).*?total_states (\d+)`)
	verifTimeRE = regexp.MustCompile(`verification time (\d+) usec`)
)

// parseVerifierStats reads the statistics lines of a verifier log.
func parseVerifierStats(log []string, l *ProgramLoad) error {
	found := false
	for _, line := range log {
		if m := processedRE.FindStringSubmatch(line); m != nil {
			l.Insns, _ = strconv.Atoi(m[1])
			l.States, _ = strconv.Atoi(m[2])
			found = true
		}
		if m := verifTimeRE.FindStringSubmatch(line); m != nil {
			us, _ := strconv.Atoi(m[1])
			l.Verification = time.Duration(us) * time.Microsecond
		}
	}
	if !found {
		return fmt.Errorf("program %s/%s: the verifier log has no \"processed N insns\" line", l.Object, l.Program)
	}
	return nil
}

// MeasureLoads loads each of goroscope's BPF objects once, with the
// verifier's statistics, and unloads them again. It needs the privileges
// the walker and the sampler need. A rejected object is an error.
func MeasureLoads() ([]ProgramLoad, error) {
	if err := rlimit.RemoveMemlock(); err != nil {
		return nil, fmt.Errorf("measure BPF loads: raise RLIMIT_MEMLOCK: %w", err)
	}
	objects := []struct {
		name string
		load func() (*ebpf.CollectionSpec, error)
	}{
		{"goroutines", loadGoroutines},
		{"cpu", loadCpu},
		{"exits", loadExits},
		{"panics", loadPanics},
	}
	var out []ProgramLoad
	for _, o := range objects {
		spec, err := o.load()
		if err != nil {
			return nil, fmt.Errorf("measure BPF loads: parse embedded object %s: %w", o.name, err)
		}
		if m, ok := spec.Maps["events"]; ok {
			m.MaxEntries = ringSize
		}
		loads, err := measureLoad(o.name, spec)
		if err != nil {
			return nil, err
		}
		out = append(out, loads...)
	}
	return out, nil
}

// measureLoad loads spec on a locked thread and reports each program's cost.
func measureLoad(object string, spec *ebpf.CollectionSpec) ([]ProgramLoad, error) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	cpu0 := threadCPU()
	start := time.Now()
	coll, err := ebpf.NewCollectionWithOptions(spec, *loadOptions())
	wall, cpu := time.Since(start), threadCPU()-cpu0
	if err != nil {
		return nil, fmt.Errorf("measure BPF loads: object %s was rejected after %v (%v CPU): %w", object, wall.Round(time.Millisecond), cpu.Round(time.Millisecond), err)
	}
	defer coll.Close()
	var out []ProgramLoad
	for _, name := range slices.Sorted(maps.Keys(coll.Programs)) {
		p := coll.Programs[name]
		l := ProgramLoad{Object: object, Program: name, Wall: wall, CPU: cpu}
		if err := parseVerifierStats(strings.Split(p.VerifierLog, "\n"), &l); err != nil {
			return nil, fmt.Errorf("measure BPF loads: %w", err)
		}
		out = append(out, l)
	}
	return out, nil
}

// threadCPU is the calling thread's user plus system CPU time.
func threadCPU() time.Duration {
	var ru unix.Rusage
	if err := unix.Getrusage(unix.RUSAGE_THREAD, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
