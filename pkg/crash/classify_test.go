package crash

import (
	"os"
	"strings"
	"testing"
)

// TestClassify: the runtime's own messages, as Go 1.21 to 1.26 print them,
// fall in their classes.
func TestClassify(t *testing.T) {
	for _, tt := range []struct {
		msg   string
		fatal bool
		want  string
	}{
		{"panic: assignment to entry in nil map", false, ClassNilMapWrite},
		{"panic: runtime error: invalid memory address or nil pointer dereference\n[signal SIGSEGV: segmentation violation code=0x1 addr=0x0 pc=0x48f1d6]", false, ClassNilPointer},
		{"panic: runtime error: index out of range [5] with length 3", false, ClassIndexOutOfRange},
		{"panic: runtime error: slice bounds out of range [:7] with capacity 4", false, ClassIndexOutOfRange},
		{"fatal error: concurrent map writes", true, ClassConcurrentMap},
		{"fatal error: concurrent map read and map write", true, ClassConcurrentMap},
		{"fatal error: all goroutines are asleep - deadlock!", true, ClassDeadlock},
		{"runtime: goroutine stack exceeds 1000000000-byte limit\nfatal error: stack overflow", true, ClassStackOverflow},
		{"fatal error: runtime: out of memory", true, ClassOutOfMemory},
		{"unexpected fault address 0xdead0000\nfatal error: fault\n[signal SIGSEGV: segmentation violation code=0x1 addr=0xdead0000 pc=0x45a]", true, ClassBadSignal},
		{"fatal error: fault", true, ClassBadSignal},
		{"panic: boom", false, ClassExplicitPanic},
		{"panic: main.myErr{code:3} [recovered]", false, ClassExplicitPanic},
		{"fatal error: sync: unlock of unlocked mutex", true, ClassOtherFatal},
		{"checkptr: pointer arithmetic result points to invalid allocation", true, ClassOtherFatal},
		{"", false, ClassUnknown},
	} {
		got := Classify(tt.msg, tt.fatal)
		if got.Name != tt.want || got.Hint == "" {
			t.Errorf("Classify(%q, %v) = %+v, want class %s with a hint", tt.msg, tt.fatal, got, tt.want)
		}
	}
}

// TestDocsTable: docs/crashes.md has a row for every class, with its
// hint.
func TestDocsTable(t *testing.T) {
	b, err := os.ReadFile("../../docs/crashes.md")
	if err != nil {
		t.Fatal(err)
	}
	doc := strings.ReplaceAll(string(b), "`", "")
	classes := []Class{Classify("", false), Classify("panic: x", false), Classify("fatal error: x", true)}
	for _, r := range rules {
		classes = append(classes, r.class)
	}
	classes = append(classes, ClassOf("oom_kill", 0, "killed", ""), ClassOf("exit", 2, "", ""), ClassOf("exit", 3, "", ""))
	for _, c := range classes {
		if !strings.Contains(doc, "| "+c.Name+" |") || !strings.Contains(doc, c.Hint) {
			t.Errorf("docs/crashes.md has no row for %s with its hint %q", c.Name, c.Hint)
		}
	}
}

// TestClassOf: without a message, how a process ended classifies it; a
// message wins.
func TestClassOf(t *testing.T) {
	for _, tt := range []struct {
		reason, signal, message string
		code                    int
		crashed                 bool
		want                    string
	}{
		{"oom_kill", "killed", "", 0, true, ClassOutOfMemory},
		{"signal", "terminated", "", 0, false, ClassKilled},
		{"signal", "killed", "", 0, true, ClassKilled},
		{"signal", "aborted", "", 0, true, ClassKilled},
		{"exit", "", "", 2, true, ClassExitStatus2},
		{"exit", "", "panic: assignment to entry in nil map", 2, true, ClassNilMapWrite},
		{"exit", "", "", 1, true, ClassExitStatus},
		{"exit", "", "", 3, true, ClassExitStatus},
		{"exit", "", "", 0, false, ClassUnknown},
		{"unknown", "", "", 0, false, ClassUnknown},
	} {
		got := ClassOf(tt.reason, tt.code, tt.signal, tt.message)
		if got.Name != tt.want || got.Hint == "" || Crashed(tt.reason, tt.code, tt.signal) != tt.crashed {
			t.Errorf("%s %d %q %q: %+v, crashed %v; want %s, crashed %v", tt.reason, tt.code, tt.signal, tt.message, got, Crashed(tt.reason, tt.code, tt.signal), tt.want, tt.crashed)
		}
	}
}
