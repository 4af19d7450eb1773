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
	"sync"
	_ "unsafe" // go:linkname
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
