// Command population is a goroscope test target: it creates a known
// goroutine population in every common state, serves net/http/pprof and a
// /population description on 127.0.0.1, prints one JSON line to stdout once
// everything is parked, and exits when stdin closes or on SIGTERM/SIGINT.
//
// Ready line: {"pid":123,"pprof":"127.0.0.1:PORT","go":"go1.22.12","goroutines":N}
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	_ "net/http/pprof"
	"os"
	"os/signal"
	"runtime"
	"syscall"
	"time"
)

// readyLine is the single JSON line printed once the population is parked.
type readyLine struct {
	PID        int    `json:"pid"`
	Pprof      string `json:"pprof"`
	Go         string `json:"go"`
	Goroutines int    `json:"goroutines"`
}

func main() {
	if err := run(); err != nil {
		fmt.Fprintf(os.Stderr, "population: %v\n", err)
		os.Exit(1)
	}
}

func run() error {
	cfg := config{}
	flag.IntVar(&cfg.n, "n", 3, "goroutines per group")
	flag.IntVar(&cfg.scale, "scale", 1, "multiplies -n (fd- and thread-hungry groups are capped)")
	flag.IntVar(&cfg.spin, "spin", 1, "CPU-spinning goroutines")
	flag.IntVar(&cfg.depth, "depth", 50, "recursion depth of the deep-stack group")
	flag.IntVar(&cfg.grow, "grow", 0, "add this many chan-receive goroutines every second")
	flag.BoolVar(&cfg.stdin, "stdin", true, "exit when stdin reaches EOF")
	flag.Parse()
	if cfg.n < 0 || cfg.scale < 1 || cfg.spin < 0 || cfg.depth < 1 || cfg.grow < 0 {
		return fmt.Errorf("bad flags: need -n>=0 -scale>=1 -spin>=0 -depth>=1 -grow>=0")
	}

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return fmt.Errorf("listen for pprof: %w", err)
	}
	p := newPopulation()
	http.HandleFunc("/population", p.serveHTTP)
	go func() { _ = http.Serve(ln, nil) }()

	if err := p.build(cfg); err != nil {
		return fmt.Errorf("build population: %w", err)
	}
	if err := p.waitParked(cfg, 30*time.Second); err != nil {
		return err
	}
	line, err := json.Marshal(readyLine{
		PID:        os.Getpid(),
		Pprof:      ln.Addr().String(),
		Go:         runtime.Version(),
		Goroutines: runtime.NumGoroutine(),
	})
	if err != nil {
		return fmt.Errorf("encode ready line: %w", err)
	}
	fmt.Printf("%s\n", line)

	done := make(chan struct{})
	if cfg.stdin {
		go func() {
			_, _ = io.Copy(io.Discard, os.Stdin)
			close(done)
		}()
	}
	if cfg.grow > 0 {
		go p.growEverySecond(cfg.grow, done)
	}
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT)
	select {
	case <-done:
	case <-sigs:
	}
	return nil
}
