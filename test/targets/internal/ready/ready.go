// Package ready is how every test target starts and stops: it prints one
// JSON line once the target is ready, and tells when to exit (stdin closed,
// SIGTERM or SIGINT).
package ready

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"runtime"
	"syscall"
)

// Line is the ready line: {"pid":123,"pprof":"127.0.0.1:PORT","go":"go1.22.12","goroutines":N}.
type Line struct {
	PID        int    `json:"pid"`
	Pprof      string `json:"pprof"`
	Go         string `json:"go"`
	Goroutines int    `json:"goroutines"`
}

// Announce prints the ready line of this process, which serves
// net/http/pprof on ln.
func Announce(ln net.Listener) error {
	line, err := json.Marshal(Line{PID: os.Getpid(), Pprof: ln.Addr().String(), Go: runtime.Version(), Goroutines: runtime.NumGoroutine()})
	if err != nil {
		return fmt.Errorf("encode ready line: %w", err)
	}
	_, err = fmt.Printf("%s\n", line)
	return err
}

// Done returns a channel closed when the target should exit: on SIGTERM or
// SIGINT, and, with stdin set, when standard input reaches EOF (the test
// that started the target closed it or died).
func Done(stdin bool) <-chan struct{} {
	done := make(chan struct{})
	quit := make(chan struct{}, 2)
	if stdin {
		go func() {
			_, _ = io.Copy(io.Discard, os.Stdin)
			quit <- struct{}{}
		}()
	}
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT)
	go func() {
		select {
		case <-quit:
		case <-sigs:
		}
		close(done)
	}()
	return done
}
