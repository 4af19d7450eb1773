package main

import (
	"fmt"
	"net"
	"os"
	"sync"
	"syscall"
	"time"

	"goroscope.test/targets/internal/ready"
)

// account is a balance under a mutex.
type account struct {
	mu      sync.Mutex
	balance int
}

// deadlock runs two transfers that take two accounts' locks in opposite
// orders, a reporter waiting for their results and main waiting for the
// transfers: every goroutine parked for ever where only another could
// wake it. ln is announced, never served.
func deadlock(cfg config, ln net.Listener) error {
	if cfg.stdin {
		if err := exitOnStdinEOF(time.Second); err != nil {
			return err
		}
	}
	a, b := &account{balance: 100}, &account{balance: 100}
	results := make(chan int)
	var held, wg sync.WaitGroup
	held.Add(2)
	wg.Add(2)
	go transfer(a, b, 10, &held, &wg, results)
	go transfer(b, a, 20, &held, &wg, results)
	go reportTransfers(results)
	held.Wait()
	if err := ready.Announce(ln); err != nil {
		return err
	}
	wg.Wait()
	return nil
}

// transfer moves amount from one account to the other, locking from first.
// held makes both transfers take their first lock before either takes its
// second: the inverted lock order then always deadlocks.
func transfer(from, to *account, amount int, held, wg *sync.WaitGroup, results chan<- int) {
	defer wg.Done()
	from.mu.Lock()
	defer from.mu.Unlock()
	held.Done()
	held.Wait()
	to.mu.Lock()
	defer to.mu.Unlock()
	from.balance -= amount
	to.balance += amount
	results <- amount
}

func reportTransfers(results <-chan int) {
	for r := range results {
		record(uint64(r))
	}
}

// exitOnStdinEOF exits the process once stdin reaches EOF, checking every
// period on a timer, without a goroutine waiting on stdin: such a reader
// sits in a system call, which the outside can end, and the program would
// no longer be all asleep.
func exitOnStdinEOF(period time.Duration) error {
	if err := syscall.SetNonblock(0, true); err != nil {
		return fmt.Errorf("make stdin non-blocking: %w", err)
	}
	var check func()
	check = func() {
		var buf [512]byte
		for {
			n, err := syscall.Read(0, buf[:])
			if n == 0 && err == nil {
				os.Exit(0)
			}
			if n <= 0 { // EAGAIN: nothing to read yet
				break
			}
		}
		time.AfterFunc(period, check)
	}
	time.AfterFunc(period, check)
	return nil
}
