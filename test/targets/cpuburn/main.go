// Command cpuburn is a goroscope test target for CPU profiling: it burns
// CPU in one known function (main.burnCPU, with main.mix inlined into it)
// in -burners goroutines, -labeled of them under pprof.Do labels, and
// optionally spins in assembly that uses BP and R14 as scratch registers
// (-asm), in C (-cgo, when built with cgo) and in read(2) system calls
// (-syscalls). It serves net/http/pprof and a /burners description on
// 127.0.0.1, prints one JSON line to stdout once every spinner runs, and
// exits when stdin closes or on SIGTERM/SIGINT.
//
// Ready line: {"pid":123,"pprof":"127.0.0.1:PORT","go":"go1.22.12","goroutines":N}
//
// Endpoints:
//
//	/burners          the spinners' goroutine ids, labels and work done so far (JSON)
//	/debug/pprof/...  net/http/pprof
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

// maxSpinners bounds each kind of spinner.
const maxSpinners = 256

func main() {
	if err := run(); err != nil {
		fmt.Fprintf(os.Stderr, "cpuburn: %v\n", err)
		os.Exit(1)
	}
}

func run() error {
	var cfg config
	flag.IntVar(&cfg.burners, "burners", 2, "goroutines burning CPU in main.burnCPU")
	flag.IntVar(&cfg.labeled, "labeled", 1, "how many of the burners run under pprof.Do labels {burner=labeled, index=N}")
	flag.IntVar(&cfg.asm, "asm", 0, "goroutines spinning in assembly that clobbers BP and R14 (spin.Asm)")
	flag.IntVar(&cfg.cgo, "cgo", 0, "goroutines spinning in C without frame pointers (needs a cgo build)")
	flag.IntVar(&cfg.syscalls, "syscalls", 0, "goroutines spending their time in read(2) system calls of /dev/zero")
	flag.IntVar(&cfg.chunk, "chunk", 200000, "iterations per burnCPU call (one unit of work)")
	flag.BoolVar(&cfg.stdin, "stdin", true, "exit when stdin reaches EOF")
	flag.Parse()
	switch {
	case cfg.burners < 0 || cfg.burners > maxSpinners || cfg.asm < 0 || cfg.asm > maxSpinners ||
		cfg.cgo < 0 || cfg.cgo > maxSpinners || cfg.syscalls < 0 || cfg.syscalls > maxSpinners:
		return fmt.Errorf("bad flags: -burners, -asm, -cgo and -syscalls must be in 0..%d", maxSpinners)
	case cfg.labeled < 0 || cfg.labeled > cfg.burners:
		return fmt.Errorf("bad flags: -labeled %d must be in 0..-burners (%d)", cfg.labeled, cfg.burners)
	case cfg.chunk < 1 || cfg.chunk > 1<<30:
		return fmt.Errorf("bad flags: -chunk must be in 1..2^30")
	case cfg.cgo > 0 && !haveCgo:
		return fmt.Errorf("bad flags: -cgo needs a build with CGO_ENABLED=1")
	}

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return fmt.Errorf("listen for pprof: %w", err)
	}
	b := newBurners()
	http.HandleFunc("/burners", b.serveHTTP)
	go func() { _ = http.Serve(ln, nil) }()

	if err := b.start(cfg, 30*time.Second); err != nil {
		return err
	}
	if err := ready.Announce(ln); err != nil {
		return err
	}
	<-ready.Done(cfg.stdin)
	return nil
}
