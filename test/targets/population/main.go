// Command population is a goroscope test target: it creates a known
// goroutine population in every common state, serves net/http/pprof and a
// /population description on 127.0.0.1, prints one JSON line to stdout once
// everything is parked, and exits when stdin closes or on SIGTERM/SIGINT.
// With -stdin=false (make demo) it ignores stdin and says on stderr how to
// stop it.
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
	"time"

	"goroscope.test/targets/internal/ready"
)

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
	// Set up the exit signals before the ready line: signal.Notify runs
	// on the main goroutine and starts the runtime's signal watcher, which
	// would otherwise still be moving when a test takes its first look.
	done := ready.Done(cfg.stdin)
	if err := p.waitParked(cfg, 30*time.Second); err != nil {
		return err
	}
	if err := ready.Announce(ln); err != nil {
		return err
	}
	if !cfg.stdin {
		// Run by hand (make demo): say how it ends.
		fmt.Fprintf(os.Stderr, "population: pid %d runs until SIGINT or SIGTERM (Ctrl-C, or kill %d); net/http/pprof at http://%s/debug/pprof/\n",
			os.Getpid(), os.Getpid(), ln.Addr())
	}
	if cfg.grow > 0 {
		go p.growEverySecond(cfg.grow, done)
	}
	<-done
	return nil
}
