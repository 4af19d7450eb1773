// Package crash classifies why a Go program died, from the message its
// runtime printed ("panic: ...", "fatal error: ..."), into the categories
// people look up, each with a one-line hint. docs/crashes.md holds the
// table.
package crash

import "strings"

// Class is a kind of crash: its Name (one of the Class* constants) and a
// Hint saying where to look.
type Class struct {
	Name string `json:"class"`
	Hint string `json:"hint"`
}

// Crash classes.
const (
	ClassNilMapWrite     = "nil-map-write"
	ClassNilPointer      = "nil-pointer-dereference"
	ClassIndexOutOfRange = "index-out-of-range"
	ClassConcurrentMap   = "concurrent-map-access"
	ClassDeadlock        = "deadlock"
	ClassStackOverflow   = "stack-overflow"
	ClassOutOfMemory     = "out-of-memory"
	ClassBadSignal       = "unexpected-signal"
	ClassExplicitPanic   = "explicit-panic"
	ClassOtherFatal      = "other-fatal-error"
	ClassKilled          = "killed-by-signal"
	ClassExitStatus2     = "exit-status-2"
	ClassExitStatus      = "exit-status"
	ClassUnknown         = "unknown"
)

// rules are the classes by what their messages contain, in the order
// they are tried: the runtime's own wording (runtime/error.go, map.go,
// proc.go, stack.go, malloc.go, signal_unix.go).
var rules = []struct {
	contains []string
	class    Class
}{
	{[]string{"assignment to entry in nil map"}, Class{ClassNilMapWrite,
		"a map declared but never made: initialise it with make(map[K]V) or a literal before the first write"}},
	{[]string{"invalid memory address or nil pointer dereference"}, Class{ClassNilPointer,
		"a nil pointer, interface or func was used: the panicking frame's line names it; check the error that should have come with it"}},
	{[]string{"index out of range", "slice bounds out of range"}, Class{ClassIndexOutOfRange,
		"an index or slice bound past the length: check the length before indexing, the values are in the message"}},
	{[]string{"concurrent map writes", "concurrent map read and map write", "concurrent map iteration and map write", "concurrent map clone and map write"}, Class{ClassConcurrentMap,
		"a map used by goroutines at once: guard it with a sync.Mutex or sync.RWMutex, or use sync.Map; go test -race finds the culprits"}},
	{[]string{"all goroutines are asleep - deadlock"}, Class{ClassDeadlock,
		"every goroutine waits on another: the stacks show who holds and who waits; look for a missing close, send or Unlock"}},
	{[]string{"stack overflow", "stack exceeds"}, Class{ClassStackOverflow,
		"unbounded recursion: the repeating frames in the stack show the cycle; a String or Error method calling itself is a common one"}},
	{[]string{"out of memory", "cannot allocate memory"}, Class{ClassOutOfMemory,
		"the heap outgrew the memory available: look at the heap profile's growth and set GOMEMLIMIT under the container's limit"}},
	{[]string{"unexpected signal", "signal SIGSEGV", "signal SIGBUS", "signal SIGFPE", "signal SIGILL", "unexpected fault address", "fatal error: fault"}, Class{ClassBadSignal,
		"a fault outside Go's checks: usually cgo, unsafe or assembly; the signal's address and pc are in the message"}},
}

// Classify returns the class of a crash from the runtime's message: the
// line starting "panic: " or "fatal error: " (with or without that
// prefix, and with the lines after it). fatal tells a fatal error from a
// panic when the prefix is missing.
func Classify(message string, fatal bool) Class {
	m := message
	switch {
	case strings.HasPrefix(m, "fatal error: "):
		fatal = true
	case strings.HasPrefix(m, "panic: "):
		fatal = false
	}
	for _, r := range rules {
		for _, c := range r.contains {
			if strings.Contains(m, c) {
				return r.class
			}
		}
	}
	switch {
	case strings.TrimSpace(m) == "":
		return Class{ClassUnknown, "no message was seen: the process may have been killed, or exited with a status of its own"}
	case fatal:
		return Class{ClassOtherFatal, "the runtime stopped the program: the message names the broken invariant, often memory corruption through unsafe or cgo, or a data race"}
	}
	return Class{ClassExplicitPanic, "the program called panic: the panicking frame and the value say why; recover does not cross goroutines"}
}
