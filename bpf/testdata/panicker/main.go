// Command panicker prints "ready", waits for a line on stdin and then dies
// as -mode says. It is the target of the bpf package's TestPanicTracer:
//
//	panic          panic(Message) in main.dieString: runtime.fatalpanic
//	stackoverflow  recurses without end under a 256 KiB stack limit:
//	               runtime.throw("stack overflow") on the system stack
//	mapwrites      writes one map from two goroutines: runtime.fatal
//	               ("concurrent map writes")
//
// The dying functions are not inlined. Without a line (stdin closed) it
// exits 99.
package main

import (
	"bufio"
	"flag"
	"fmt"
	"os"
	"runtime/debug"
)

// Message is the panic value of -mode panic; the test expects it.
const Message = "goroscope panic probe: boom"

func main() {
	mode := flag.String("mode", "panic", "how to die: panic, stackoverflow or mapwrites")
	flag.Parse()
	fmt.Println("ready")
	if _, err := bufio.NewReader(os.Stdin).ReadString('\n'); err != nil {
		os.Exit(99)
	}
	switch *mode {
	case "panic":
		dieString()
	case "stackoverflow":
		// A small limit: the overflow comes at once, not after growing
		// the stack to 1 GB (slow in an emulated guest).
		debug.SetMaxStack(256 << 10)
		dieStackOverflow(0)
	case "mapwrites":
		dieMapWrites()
	}
	fmt.Fprintf(os.Stderr, "panicker: unknown -mode %q\n", *mode)
	os.Exit(96)
}

//go:noinline
func dieString() { panic(Message) }

// sink keeps dieStackOverflow's frames from being optimised away.
var sink int

//go:noinline
func dieStackOverflow(n int) int {
	var pad [64]byte
	pad[n&63] = byte(n)
	sink += int(pad[0])
	return dieStackOverflow(n+1) + 1
}

var shared = map[int]int{}

//go:noinline
func dieMapWrites() {
	for i := 0; i < 2; i++ {
		go func() {
			for j := 0; ; j++ {
				shared[j&1023] = j
			}
		}()
	}
	select {}
}
