// Command execer is a goroscope test target for a process that replaces
// its program with exec under the same pid: it parks -n goroutines in
// execerParkedBeforeExec and, on SIGUSR1, calls syscall.Exec on -exec
// (with the same standard input, so that the new program can exit when it
// closes). It serves net/http/pprof on 127.0.0.1, prints one JSON line once
// the goroutines are parked, and exits when stdin closes or on
// SIGTERM/SIGINT.
//
// Ready line: {"pid":123,"pprof":"127.0.0.1:PORT","go":"go1.22.12","goroutines":N}
package main

import (
	"flag"
	"fmt"
	"net"
	"net/http"
	_ "net/http/pprof"
	"os"
	"os/signal"
	"runtime"
	"syscall"
	"time"

	"goroscope.test/targets/internal/ready"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintf(os.Stderr, "execer: %v\n", err)
		os.Exit(1)
	}
}

func run() error {
	var (
		n    = flag.Int("n", 20, "goroutines parked in execerParkedBeforeExec")
		next = flag.String("exec", "", "program to exec on SIGUSR1 (with no arguments)")
	)
	flag.Parse()
	if *next == "" || *n < 0 || *n > 1<<16 {
		return fmt.Errorf("need -exec PATH and 0 <= -n <= %d", 1<<16)
	}
	stop := make(chan struct{})
	for i := 0; i < *n; i++ {
		go execerParkedBeforeExec(stop)
	}
	for runtime.NumGoroutine() < *n {
		time.Sleep(time.Millisecond)
	}
	usr1 := make(chan os.Signal, 1)
	signal.Notify(usr1, syscall.SIGUSR1)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	go func() { _ = http.Serve(ln, nil) }()
	done := ready.Done(true)
	if err := ready.Announce(ln); err != nil {
		return err
	}
	select {
	case <-done:
		close(stop)
		return nil
	case <-usr1:
		signal.Reset(syscall.SIGUSR1)
		err := syscall.Exec(*next, []string{*next}, os.Environ())
		return fmt.Errorf("exec %s: %w", *next, err)
	}
}

//go:noinline
func execerParkedBeforeExec(stop chan struct{}) { <-stop }
