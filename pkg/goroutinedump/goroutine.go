// Package goroutinedump parses the text goroutine dumps printed by the Go
// runtime: runtime.Stack(buf, true), /debug/pprof/goroutine?debug=2 and the
// goroutine part of a crash traceback, in the formats of go1.21 to go1.26.
//
// It is internal to goroscope, not meant for import by other modules: its
// API may change at any time. The one public API is pkg/inproc.
package goroutinedump

// Goroutine is one goroutine of a dump, as printed by the runtime's
// goroutineheader and traceback functions.
type Goroutine struct {
	// ID is the goroutine id ("goroutine 18 [...]").
	ID uint64
	// GAddr is the address of the runtime.g, printed as " gp=0x..." at
	// traceback level 2 (GOTRACEBACK=system) since go1.22; 0 when absent.
	GAddr uint64
	// MID is the id of the M running the goroutine (" m=3"), -1 when the
	// header has no m= field or says "m=nil".
	MID int64
	// MAddr is the address of the runtime.m (" mp=0x..."), 0 when absent.
	MAddr uint64

	// Status is the bracket's first field without the runtime-added
	// annotations: a wait reason ("chan receive", "select (no cases)",
	// "sync.Mutex.Lock", "IO wait", ...) or a scheduler state ("running",
	// "runnable", "syscall", "waiting", ...).
	Status string
	// ScanBit is set when the header says " (scan)" (the GC holds the
	// goroutine's scan bit).
	ScanBit bool
	// WaitMinutes is the ", N minutes" field: how long it has been blocked.
	WaitMinutes int
	// LockedToThread is the ", locked to thread" field (runtime.LockOSThread).
	LockedToThread bool
	// SynctestBubble is the id of the ", synctest bubble N" field (go1.25+).
	SynctestBubble uint64
	// Labels are the pprof labels of a " labels:{...}" field, printed only
	// with GODEBUG=tracebacklabels=1 (go1.26+); nil when absent.
	Labels map[string]string
	// Extra lists the other bracket annotations verbatim without
	// parentheses ("durable", "leaked") and unknown comma fields.
	Extra []string

	// Frames are the printed frames, leaf first.
	Frames []Frame
	// ElidedFrames is the N of a "...N frames elided..." line, or -1 for
	// "...additional frames elided..." (count unknown); 0 when nothing was elided.
	ElidedFrames int
	// ElidedAt is the index in Frames where the elision happened (the
	// frames before it are the innermost ones); meaningful when ElidedFrames != 0.
	ElidedAt int
	// CreatedBy is the function that started the goroutine (its "go"
	// statement), nil for goroutine 1 and runtime-created goroutines.
	CreatedBy *Frame
	// ParentID is the N of "created by f in goroutine N" (go1.21+), 0 when absent.
	ParentID uint64
	// Ancestors are the "[originating from goroutine N]:" tracebacks
	// printed with GODEBUG=tracebackancestors=N, nearest first.
	Ancestors []Ancestor
	// Notes are runtime diagnostic lines found inside the goroutine's
	// block ("runtime: ...", "stack: ...", "goroutine running on other
	// thread; stack unavailable"), kept verbatim without leading tabs.
	Notes []string
}

// Frame is one printed frame: a function line and its location line.
type Frame struct {
	// Function is the function name as printed, without the argument
	// list: "main.(*T).m", "main.F[...]", "main.main.func1.2",
	// "main.(*T).m-fm", "panic" (runtime.gopanic), "non-Go function".
	Function string
	// Args is the raw text between the parentheses: "0xc000012345, 0x1",
	// "{0x4b3a80, 0xc000010018}", "...", "" (no arguments).
	Args string
	// Inlined is true when Args is "...": the runtime prints inlined
	// frames (and every ancestor frame) that way, without a PC offset.
	Inlined bool
	// File and Line locate the call; File is "?" when the runtime does not know.
	File string
	Line int
	// PCOffset is the "+0x.." value: the PC's offset from the function
	// entry. HasPCOffset tells whether it was printed (inlined frames and
	// PCs at a function entry have none).
	PCOffset    uint64
	HasPCOffset bool
	// FP, SP and PC are printed at traceback level 2 (GOTRACEBACK=system)
	// as " fp=0x.. sp=0x.. pc=0x..", and PC also for cgo frames; 0 when absent.
	FP, SP, PC uint64
	// NonGo marks frames of C code ("non-Go function at pc=0x..." or a
	// cgo symbolizer's frame).
	NonGo bool
}

// Ancestor is a traceback of an ancestor goroutine, recorded when it
// created the next goroutine of the chain (GODEBUG=tracebackancestors=N).
type Ancestor struct {
	// ID is the ancestor's goroutine id.
	ID uint64
	// Frames are its frames at the time of the go statement, leaf first.
	Frames []Frame
	// Truncated is set by an "...additional frames elided..." line.
	Truncated bool
	// CreatedBy is the function that created the ancestor, if printed.
	CreatedBy *Frame
}
