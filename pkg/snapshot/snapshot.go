// Package snapshot is goroscope's model of one moment of a Go process: every
// goroutine with its state, wait reason, time blocked, stack, creator and
// pprof labels. Walkers produce it; folders, encoders and the UI consume it.
//
// The JSON encoding of Snapshot is a contract other tools rely on; field names
// and meanings only ever grow.
//
// It is internal to goroscope, not meant for import by other modules: its
// API may change at any time. The one public API is pkg/inproc.
package snapshot

import "time"

// State is a goroutine's scheduling state, named as the runtime names it.
type State string

// The states a snapshot reports. Idle and dead goroutines are never reported.
const (
	StateRunning  State = "running"
	StateRunnable State = "runnable"
	StateSyscall  State = "syscall"
	StateWaiting  State = "waiting"
	// StateLeaked marks goroutines Go 1.26's leak detector proved unreachable.
	StateLeaked State = "leaked"
)

// States lists every reportable state in display order.
var States = [...]State{StateRunning, StateRunnable, StateSyscall, StateWaiting, StateLeaked}

// Snapshot is every live goroutine of one process at one moment.
type Snapshot struct {
	PID       int    `json:"pid"`
	Exe       string `json:"exe"`
	GoVersion string `json:"go_version"`
	// Time is when the walk started.
	Time time.Time `json:"time"`
	// Walker names the reader that produced the snapshot: "ebpf" or "procmem".
	Walker string `json:"walker"`
	// Duration is how long the walk and decoding took.
	Duration time.Duration `json:"duration_ns"`
	// Counts is the number of goroutines per state.
	Counts     Counts      `json:"counts"`
	Goroutines []Goroutine `json:"goroutines"`
	// Dropped counts goroutines seen but left out because their memory changed
	// under the walk twice in a row (torn reads) or could not be read.
	Dropped int `json:"dropped,omitempty"`
	// Stride is set above 1 when the process had more goroutines than the
	// walker keeps in detail: Goroutines then holds every Stride-th goroutine
	// (in the runtime's allgs order), each standing for Stride goroutines,
	// while Counts still counts every goroutine. 0 and 1 mean all are kept.
	Stride int `json:"sample_stride,omitempty"`
}

// Weight is how many goroutines each goroutine of s stands for: Stride, or
// 1 when every goroutine was kept.
func (s *Snapshot) Weight() int {
	if s.Stride > 1 {
		return s.Stride
	}
	return 1
}

// Counts is the number of goroutines in each state.
type Counts struct {
	Running  int `json:"running"`
	Runnable int `json:"runnable"`
	Syscall  int `json:"syscall"`
	Waiting  int `json:"waiting"`
	Leaked   int `json:"leaked,omitempty"`
}

// Add counts one goroutine in state s.
func (c *Counts) Add(s State) {
	switch s {
	case StateRunning:
		c.Running++
	case StateRunnable:
		c.Runnable++
	case StateSyscall:
		c.Syscall++
	case StateWaiting:
		c.Waiting++
	case StateLeaked:
		c.Leaked++
	}
}

// Get returns the count for state s.
func (c Counts) Get(s State) int {
	switch s {
	case StateRunning:
		return c.Running
	case StateRunnable:
		return c.Runnable
	case StateSyscall:
		return c.Syscall
	case StateWaiting:
		return c.Waiting
	case StateLeaked:
		return c.Leaked
	}
	return 0
}

// Total is the number of goroutines counted.
func (c Counts) Total() int {
	return c.Running + c.Runnable + c.Syscall + c.Waiting + c.Leaked
}

// Wait-time sources: where a goroutine's WaitingSeconds comes from.
const (
	// WaitObserved: goroscope saw the goroutine parked at the same place,
	// unchanged, in earlier snapshots; the value is a lower bound.
	WaitObserved = "observed"
	// WaitRuntime: from the runtime's g.waitsince, which the first GC to find
	// the goroutine blocked sets to the previous cycle's mark termination
	// (runtime/mgcmark.go: work.tstart), the value the runtime's own dump
	// prints as ", N minutes": it may overstate the wait by up to one GC
	// interval.
	WaitRuntime = "runtime"
)

// Goroutine is one goroutine as seen in a snapshot.
type Goroutine struct {
	ID    uint64 `json:"id"`
	State State  `json:"state"`
	// WaitReason is the runtime's own string ("chan receive", "select", ...);
	// empty unless the goroutine is waiting or leaked.
	WaitReason string `json:"wait_reason,omitempty"`
	// WaitingSeconds is how long the goroutine has been in its current wait
	// (or syscall), at least; 0 when unknown. WaitingSource says how it was known.
	WaitingSeconds float64 `json:"waiting_seconds,omitempty"`
	WaitingSource  string  `json:"waiting_source,omitempty"`
	// System marks runtime-internal goroutines that crash tracebacks hide.
	System bool `json:"system"`
	// LockedToThread is set for goroutines wired to their thread (runtime.LockOSThread).
	LockedToThread bool              `json:"locked_to_thread,omitempty"`
	ParentID       uint64            `json:"parent_id,omitempty"`
	CreatedBy      *Frame            `json:"created_by,omitempty"`
	Labels         map[string]string `json:"labels,omitempty"`
	BlockedOn      *BlockedOn        `json:"blocked_on,omitempty"`
	// Frames are leaf first and complete: runtime frames included, inlined
	// calls expanded. Running goroutines have none.
	Frames []Frame `json:"frames"`
	// Truncated is set when the stack was deeper than the walker's limit.
	Truncated bool `json:"truncated,omitempty"`
	// Addr is the address of the runtime's g; useful to correlate dumps.
	Addr uint64 `json:"-"`
}

// Frame is one call frame.
type Frame struct {
	Function string `json:"function"`
	File     string `json:"file"`
	Line     int    `json:"line"`
	// Inlined is set for frames the compiler inlined into their caller.
	Inlined bool `json:"inlined,omitempty"`
	// Wrapper marks compiler-generated wrappers (method value and interface
	// wrappers), which tracebacks hide.
	Wrapper bool `json:"wrapper,omitempty"`
	// PC is the program counter (run-time address) the frame was symbolised from.
	PC uint64 `json:"-"`
	// Offset is PC minus the entry of the physical function, as "+0x.." in tracebacks.
	Offset uint64 `json:"-"`
}

// Kinds of object a goroutine can be blocked on.
const (
	BlockedOnChan = "chan"
	BlockedOnSync = "sync"
)

// BlockedOn describes the object a waiting goroutine is blocked on. Grouping
// goroutines by Address finds, for example, the channel nobody closes.
type BlockedOn struct {
	// Kind is "chan" or "sync".
	Kind    string `json:"kind"`
	Address string `json:"address"`
	// Channel facts (Kind "chan").
	Capacity  uint64 `json:"capacity"`
	Length    uint64 `json:"length"`
	Closed    bool   `json:"closed"`
	Senders   int    `json:"senders"`
	Receivers int    `json:"receivers"`
	// Others lists further channels of a select, if any.
	Others []BlockedOn `json:"others,omitempty"`
}
