// Command exiter is a goroscope test target that ends the way -mode says,
// for the exit detection's tests (collect/exits). It prints "ready" once
// set up, waits for a line on stdin, and then:
//
//	exit      os.Exit(-code)
//	return    returns from main (status 0)
//	panic     panic("exiter: x") (status 2)
//	nilderef  writes through a nil pointer: SIGSEGV, which the runtime
//	          turns into a panic (status 2)
//	fault     writes to an unmapped address: SIGSEGV, a fatal runtime
//	          error (status 2)
//	deadlock  blocks with no goroutine left to wake it: the runtime's
//	          fatal "all goroutines are asleep" (status 2)
//	oom       allocates and touches 1 MiB after 1 MiB until killed
//	threads   starts -threads locked OS threads and os.Exit(-code) from one
//	          that is not the main thread
//	exec      execs itself (same pid) with -mode exit -code -code, on a
//	          thread that is not the main one
//
// With GOTRACEBACK=crash the runtime ends panics and fatal errors with
// SIGABRT instead of status 2. Without a line (stdin closed) it exits 99.
package main

import (
	"bufio"
	"flag"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"syscall"
	"unsafe"
)

// nilInt is nil: writing through it faults at address 0.
var nilInt *int

func main() {
	mode := flag.String("mode", "exit", "how to end: exit, return, panic, nilderef, fault, deadlock, oom, threads, exec")
	code := flag.Int("code", 3, "exit status of -mode exit, threads and exec")
	threads := flag.Int("threads", 8, "locked OS threads of -mode threads and exec")
	now := flag.Bool("now", false, "end at once, without the ready line and stdin")
	flag.Parse()
	if *mode == "threads" || *mode == "exec" {
		for i := 0; i < *threads; i++ {
			go func() {
				runtime.LockOSThread()
				select {}
			}()
		}
		for !threadsAtLeast(*threads + 1) {
			runtime.Gosched()
		}
	}
	if !*now {
		fmt.Println("ready")
		if _, err := bufio.NewReader(os.Stdin).ReadString('\n'); err != nil {
			os.Exit(99)
		}
	}
	switch *mode {
	case "exit":
		os.Exit(*code)
	case "return":
		return
	case "panic":
		panic("exiter: x")
	case "nilderef":
		*nilInt = 1
	case "fault":
		*(*int)(unsafe.Add(unsafe.Pointer(nil), 0xdead0000)) = 1
	case "deadlock":
		block := make(chan struct{})
		<-block
	case "oom":
		var last *chunk
		for {
			c := &chunk{prev: last}
			for i := 0; i < len(c.b); i += 4096 {
				c.b[i] = 1
			}
			last = c
		}
	case "threads":
		done := make(chan struct{})
		go func() {
			runtime.LockOSThread() // a thread of its own, not the main one
			os.Exit(*code)
			close(done)
		}()
		<-done
	case "exec":
		exe, err := os.Executable()
		if err != nil {
			fmt.Fprintln(os.Stderr, "exiter:", err)
			os.Exit(98)
		}
		done := make(chan error)
		go func() {
			runtime.LockOSThread() // not the main thread: the kernel's de_thread moves the pid
			done <- syscall.Exec(exe, []string{exe, "-now", "-mode", "exit", "-code", strconv.Itoa(*code)}, os.Environ())
		}()
		fmt.Fprintln(os.Stderr, "exiter: exec:", <-done)
		os.Exit(97)
	}
	fmt.Fprintf(os.Stderr, "exiter: unknown -mode %q\n", *mode)
	os.Exit(96)
}

// chunk is a MiB held on to, and all the chunks before it.
type chunk struct {
	prev *chunk
	b    [1 << 20]byte
}

// threadsAtLeast says whether the process has n threads or more.
func threadsAtLeast(n int) bool {
	ents, err := os.ReadDir("/proc/self/task")
	return err == nil && len(ents) >= n
}
