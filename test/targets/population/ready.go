package main

import (
	"bytes"
	"fmt"
	"runtime"
	"time"
)

// waitParked polls the process's own goroutine dump until no population
// goroutine is still on its way to parking: at most spin+1 (the spinners
// and the caller) are running or runnable, and every syscall goroutine is
// in its syscall.
func (p *population) waitParked(cfg config, timeout time.Duration) error {
	wantSyscall := cfg.capped(threadGroupCap)
	deadline := time.Now().Add(timeout)
	for i := 0; ; i++ {
		time.Sleep(time.Duration(10*(i+1)) * time.Millisecond)
		dump := allStacks()
		busy := bytes.Count(dump, []byte(" [running")) + bytes.Count(dump, []byte(" [runnable"))
		sys := bytes.Count(dump, []byte(" [syscall"))
		if busy <= cfg.spin+1 && sys >= wantSyscall {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("population not parked after %v: %d running/runnable (want <= %d), %d in syscall (want >= %d)",
				timeout, busy, cfg.spin+1, sys, wantSyscall)
		}
	}
}

// allStacks returns runtime.Stack(all=true), growing the buffer as needed
// (bounded at 1 GiB).
func allStacks() []byte {
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) || len(buf) >= 1<<30 {
			return buf[:n]
		}
		buf = make([]byte, 2*len(buf))
	}
}
