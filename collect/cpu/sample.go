package cpu

import (
	"time"

	"github.com/goroscope/goroscope/bpf"
	"github.com/goroscope/goroscope/pkg/snapshot"
)

// Interval is what one Drain collected: the on-CPU samples of every watched
// process since the previous Drain.
type Interval struct {
	Start time.Time `json:"start"`
	End   time.Time `json:"end"`
	// Frequency is the sampling rate in Hz; each sample stands for
	// Period of CPU time.
	Frequency int           `json:"frequency_hz"`
	Period    time.Duration `json:"period_ns"`
	// Processes holds the processes with samples, by pid.
	Processes map[int]*Process `json:"processes"`
	// Dropped counts samples lost in the kernel since the previous Drain
	// (its maps were full, or the registers could not be read).
	Dropped uint64 `json:"dropped,omitempty"`
}

// Process is the CPU samples of one process in an interval.
type Process struct {
	PID       int    `json:"pid"`
	Exe       string `json:"exe"`
	GoVersion string `json:"go_version"`
	// Samples are aggregated by goroutine, labels and stack, in no order.
	Samples []Sample `json:"samples"`
	// Total is the sum of the samples' counts.
	Total uint64 `json:"total"`
	// Exited is set when the process was gone at the drain: its samples
	// up to its exit are kept, but their labels could not be read.
	Exited bool `json:"exited,omitempty"`
	// Errors lists what went wrong resolving this process's samples
	// (at most maxErrors, then a count).
	Errors []string `json:"errors,omitempty"`

	textLo, textHi uint64 // run-time Go text, for the profile's mapping
	textOff        uint64 // file offset of textLo
	buildID        string // the executable's (gobin.Binary.BuildID)
}

// Sample is one goroutine, label set and stack with how often the CPU was
// found there.
type Sample struct {
	// Goid is the goroutine on CPU; 0 when the thread ran no goroutine
	// (the scheduler, a C thread) or it could not be found.
	Goid uint64 `json:"goid"`
	// Labels are the goroutine's pprof labels (runtime/pprof.Do).
	Labels map[string]string `json:"labels,omitempty"`
	// Frames are leaf first: kernel frames (File kernelFile) if the CPU was
	// in the kernel and kernel frames were asked for, then the user stack
	// with inlined calls expanded. Native code outside the Go text is one
	// frame named by its mapping, like "[libc.so.6]".
	Frames []snapshot.Frame `json:"frames"`
	Count  uint64           `json:"count"`
	// Flags are bpf.Sample* bits: how the goroutine was found, which stack.
	Flags bpf.SampleFlags `json:"flags"`
	// Truncated is set when the stack was cut: deeper than the walk's limit,
	// unreadable, or through native code without frame pointers.
	Truncated bool `json:"truncated,omitempty"`
}

// GoroutineCPU is the on-CPU time of one goroutine in an interval.
type GoroutineCPU struct {
	// Samples is how many samples found the goroutine on CPU; times the
	// interval's Period it estimates its CPU time.
	Samples uint64
	// Stacks are the goroutine's samples (pointers into Process.Samples).
	Stacks []*Sample
}

// Goroutines groups the process's samples by goroutine id, for the running
// part of the goroutine_wall profile. Samples with no goroutine (Goid 0)
// are under key 0.
func (p *Process) Goroutines() map[uint64]*GoroutineCPU {
	out := make(map[uint64]*GoroutineCPU)
	for i := range p.Samples {
		s := &p.Samples[i]
		g := out[s.Goid]
		if g == nil {
			g = &GoroutineCPU{}
			out[s.Goid] = g
		}
		g.Samples += s.Count
		g.Stacks = append(g.Stacks, s)
	}
	return out
}

// maxErrors bounds Process.Errors.
const maxErrors = 8

func (p *Process) addError(err error) {
	switch {
	case len(p.Errors) < maxErrors:
		p.Errors = append(p.Errors, err.Error())
	case len(p.Errors) == maxErrors:
		p.Errors = append(p.Errors, "(more errors not shown)")
	}
}
