package main

import (
	"net"
	"sync"
	"syscall"
	"time"
)

// The park* functions block forever in one specific way. They are marked
// noinline so that each appears as its own frame in tracebacks; the inl*
// chain is meant to be inlined.

//go:noinline
func parkChanRecv(ch chan int) { <-ch }

//go:noinline
func parkChanRecvNil() {
	var ch chan int
	<-ch
}

//go:noinline
func parkChanSend(ch chan int) { ch <- 1 }

//go:noinline
func parkSelect(a chan int, b chan string) {
	select {
	case <-a:
	case <-b:
	}
}

//go:noinline
func parkSelectNoCases() { select {} }

//go:noinline
func parkMutex(mu *sync.Mutex) { mu.Lock() }

//go:noinline
func parkRLock(rw *sync.RWMutex) { rw.RLock() }

//go:noinline
func parkWLock(rw *sync.RWMutex) { rw.Lock() }

//go:noinline
func parkWaitGroup(wg *sync.WaitGroup) { wg.Wait() }

//go:noinline
func parkCond(c *sync.Cond) {
	c.L.Lock()
	for {
		c.Wait()
	}
}

//go:noinline
func parkSleep() {
	for {
		time.Sleep(1000 * time.Hour)
	}
}

//go:noinline
func parkAccept(ln net.Listener) {
	for {
		c, err := ln.Accept()
		if err != nil {
			select {}
		}
		c.Close()
	}
}

//go:noinline
func parkConnRead(c net.Conn) {
	var buf [1]byte
	for {
		if _, err := c.Read(buf[:]); err != nil {
			select {}
		}
	}
}

// parkSyscallRead blocks in a raw read(2) on a blocking pipe fd; the
// goroutine shows as "syscall" and holds an OS thread.
//
//go:noinline
func parkSyscallRead(fd int) {
	var buf [1]byte
	for {
		_, err := syscall.Read(fd, buf[:])
		if err == syscall.EINTR {
			continue
		}
		select {}
	}
}

//go:noinline
func parkLocked(ch chan int) { <-ch }

//go:noinline
func parkLabeled(ch chan int) { <-ch }

//go:noinline
func parkGeneric[T any](ch chan T) { <-ch }

// closureBody returns a closure that parks inside a nested closure
// (main.closureBody.func1.1).
//
//go:noinline
func closureBody(ch chan int) func() {
	return func() {
		func() { <-ch }()
	}
}

// worker's park is started as a method value (main.(*worker).park-fm).
type worker struct{ ch chan int }

//go:noinline
func (w *worker) park() { <-w.ch }

// spinSink keeps the spin loop from being optimized away.
var spinSink uint64

//go:noinline
func spin() {
	x := uint64(0)
	for {
		x++
		if x == 0 {
			spinSink++
		}
	}
}

//go:noinline
func recurse(n int, ch chan int) int {
	if n <= 0 {
		<-ch
		return 0
	}
	return recurse(n-1, ch) + 1
}

// inlA -> inlB -> inlC are small enough to be inlined into their caller
// (check with go build -gcflags=-m); they print as "(...)" frames.
func inlA(ch chan int) int { return inlB(ch) + 1 }
func inlB(ch chan int) int { return inlC(ch) + 1 }
func inlC(ch chan int) int { return <-ch }
