// Command panicker is a goroscope test target that dies of the panic or
// fatal error -mode says, for the panic probe's tests (collect/panics). It
// prints "ready" once set up, waits for a line on stdin, and then:
//
//	string     panic("panicker: boom")
//	multiline  panic("line one\nline two")
//	error      panic(errors.New("panicker: an error"))
//	index      indexes a 3-element slice at 5: a runtime error
//	nilmap     writes to a nil map
//	nilderef   writes through a nil pointer (SIGSEGV turned into a panic)
//	int        panic(42)
//	mapwrites  writes to one map from two goroutines until the runtime's
//	           fatal "concurrent map writes"
//	deadlock   blocks with no goroutine left to wake it: the runtime's
//	           fatal "all goroutines are asleep - deadlock!"
//	unlock     unlocks an unlocked sync.Mutex: the runtime's fatal
//	           "sync: unlock of unlocked mutex"
//	throw      calls runtime.throw("panicker: thrown") (linkname): an
//	           internal fatal error
//	stackoverflow  recurses without end: the runtime's fatal "stack
//	           overflow", found on the system stack (newstack)
//	fault      writes through an unsafe pointer to an unmapped address:
//	           SIGSEGV, the runtime's fatal "unexpected fault address"
//	exit       os.Exit(3)
//	oom        allocates and touches 1 MiB after 1 MiB until the kernel's
//	           OOM killer ends it (run it in a memory cgroup with a limit)
//	wait       waits for a second line (to be killed meanwhile)
//	namedint   panic(code(-5)), type code int: "main.code(-5)"
//	namedstring  panic(label("x\ny")), type label string
//	namedfloat panic(celsius(21.5)), type celsius float64
//	float      panic(4.2)
//	complex    panic(complex(1, 2))
//	struct     panic(point{1, 2}): "(main.point) 0x..."
//	pointer    panic(&point{1, 2}): "(*main.point) 0x..."
//	stringer   panic(temp(3)), temp with a String method: its string
//	customerror  panic(&myError{7}), *myError an error: its message
//	chain      panic("panicker: first"), and a deferred function panics
//	           anew: the runtime prints both, the first one above
//	recovered  panic("panicker: first"), and a deferred function recovers
//	           it and panics with a new value: "panic: panicker: first
//	           [recovered]", then the new one
//	repanic    panic(errors.New(...)), and a deferred function recovers
//	           it and panics with it again: since Go 1.25 printed once,
//	           "[recovered, repanicked]"
//	goexit     panic("panicker: before goexit"), a deferred runtime.Goexit,
//	           and a function deferred before it panics: the Goexit in
//	           the chain is not printed
//	samevalue  panic(err), and a deferred function panics with err again
//	           without recover: printed twice before Go 1.25, once since,
//	           "[recovered, repanicked]" in Go 1.25 only
//	fataldefer panic("panicker: before the fatal error"), and a deferred
//	           function unlocks an unlocked sync.Mutex: a fatal error
//	           while panicking, printed after the panic since Go 1.26
//
// The panicking functions are not inlined, so the first frame of the
// runtime's traceback is main.die<Mode>. Without a line (stdin closed) it
// exits 99.
package main

import (
	"bufio"
	"errors"
	"flag"
	"fmt"
	"os"
	"runtime"
	"sync"
	"unsafe"
)

var (
	nilInt  *int
	nilMap  map[string]int
	idx     = 5
	sharedM = map[int]int{}
)

func main() {
	mode := flag.String("mode", "string", "how to die")
	flag.Parse()
	fmt.Println("ready")
	if _, err := bufio.NewReader(os.Stdin).ReadString('\n'); err != nil {
		os.Exit(99)
	}
	switch *mode {
	case "string":
		dieString()
	case "multiline":
		dieMultiline()
	case "error":
		dieError()
	case "index":
		dieIndex([]int{1, 2, 3})
	case "nilmap":
		dieNilMap()
	case "nilderef":
		dieNilDeref()
	case "int":
		dieInt()
	case "mapwrites":
		dieMapWrites()
	case "deadlock":
		dieDeadlock()
	case "unlock":
		dieUnlock()
	case "throw":
		dieThrow()
	case "stackoverflow":
		dieStackOverflow(0)
	case "fault":
		dieFault()
	case "exit":
		os.Exit(3)
	case "oom":
		dieOOM()
	case "wait":
		_, _ = bufio.NewReader(os.Stdin).ReadString('\n')
		os.Exit(0)
	case "namedint":
		dieNamedInt()
	case "namedstring":
		dieNamedString()
	case "namedfloat":
		dieNamedFloat()
	case "float":
		dieFloat()
	case "complex":
		dieComplex()
	case "struct":
		dieStruct()
	case "pointer":
		diePointer()
	case "stringer":
		dieStringer()
	case "customerror":
		dieCustomError()
	case "chain":
		dieChain()
	case "recovered":
		dieRecovered()
	case "repanic":
		dieRepanic()
	case "goexit":
		dieGoexit()
	case "samevalue":
		dieSameValue()
	case "fataldefer":
		dieFatalInDefer()
	}
	fmt.Fprintf(os.Stderr, "panicker: unknown -mode %q\n", *mode)
	os.Exit(96)
}

//go:noinline
func dieString() { panic("panicker: boom") }

//go:noinline
func dieMultiline() { panic("line one\nline two") }

//go:noinline
func dieError() { panic(errors.New("panicker: an error")) }

//go:noinline
func dieIndex(s []int) { fmt.Println(s[idx]) }

//go:noinline
func dieNilMap() { nilMap["x"] = 1 }

//go:noinline
func dieNilDeref() { *nilInt = 1 }

//go:noinline
func dieInt() { panic(42) }

//go:noinline
func dieMapWrites() {
	for i := 0; i < 2; i++ {
		go func() {
			for j := 0; ; j++ {
				sharedM[j&1023] = j
			}
		}()
	}
	select {}
}

//go:noinline
func dieDeadlock() {
	block := make(chan struct{})
	<-block
}

//go:noinline
func dieUnlock() {
	var mu sync.Mutex
	mu.Unlock()
}

//go:linkname throw runtime.throw
func throw(s string)

//go:noinline
func dieThrow() { throw("panicker: thrown") }

// sink keeps dieStackOverflow's frames from being optimised away.
var sink int

//go:noinline
func dieStackOverflow(n int) int {
	var pad [64]byte
	pad[n&63] = byte(n)
	sink += int(pad[0])
	return dieStackOverflow(n+1) + 1
}

// faultAddr is mapped by no process: a user address below the first page
// the kernel lets a process map (vm.mmap_min_addr, 64 KiB by default), so
// not nil but as sure to fault.
var faultAddr = 0x1000

//go:noinline
func dieFault() { *(*int)(unsafe.Add(nil, faultAddr)) = 1 }

// hold keeps the allocated memory live.
var hold [][]byte

//go:noinline
func dieOOM() {
	for {
		b := make([]byte, 1<<20)
		for i := 0; i < len(b); i += 4096 {
			b[i] = 1
		}
		hold = append(hold, b)
	}
}

// Types of panic values printed with their type's name.
type (
	code    int
	label   string
	celsius float64
	point   struct{ x, y int }
	temp    float64
	myError struct{ code int }
)

func (t temp) String() string { return fmt.Sprintf("%.1f degrees", float64(t)) }

func (e *myError) Error() string { return fmt.Sprintf("panicker: my error %d", e.code) }

//go:noinline
func dieNamedInt() { panic(code(-5)) }

//go:noinline
func dieNamedString() { panic(label("x\ny")) }

//go:noinline
func dieNamedFloat() { panic(celsius(21.5)) }

//go:noinline
func dieFloat() { panic(4.2) }

//go:noinline
func dieComplex() { panic(complex(1, 2)) }

//go:noinline
func dieStruct() { panic(point{1, 2}) }

//go:noinline
func diePointer() { panic(&point{1, 2}) }

//go:noinline
func dieStringer() { panic(temp(3)) }

//go:noinline
func dieCustomError() { panic(&myError{7}) }

// Panics in deferred functions while panicking: the runtime prints the
// chain, the oldest first (printpanics).

//go:noinline
func dieChain() {
	defer func() { panic("panicker: second") }()
	panic("panicker: first")
}

//go:noinline
func dieRecovered() {
	defer func() {
		r := recover()
		panic(fmt.Sprint("panicker: again after ", r))
	}()
	panic("panicker: first")
}

//go:noinline
func dieRepanic() {
	defer func() {
		r := recover()
		panic(r)
	}()
	panic(errors.New("panicker: an error, repanicked"))
}

//go:noinline
func dieGoexit() {
	defer func() { panic("panicker: after goexit") }()
	defer runtime.Goexit()
	panic("panicker: before goexit")
}

var errSame = errors.New("panicker: the same error")

//go:noinline
func dieSameValue() {
	defer func() { panic(errSame) }()
	panic(errSame)
}

//go:noinline
func dieFatalInDefer() {
	var mu sync.Mutex
	defer mu.Unlock() // never locked
	panic("panicker: before the fatal error")
}
