// Command latency is a goroscope benchmark target: it parks N goroutines on
// channels with a few distinct stacks, runs a latency probe (small work
// items whose completion latency it records), and serves control endpoints
// and net/http/pprof on 127.0.0.1. It prints one JSON ready line once every
// goroutine is parked and exits when stdin closes or on SIGTERM/SIGINT.
//
// Ready line: {"pid":123,"pprof":"127.0.0.1:PORT","go":"go1.22.12","goroutines":N}
//
// Endpoints:
//
//	/latency[?reset=1][&raw=1]  probe percentiles since the last reset (JSON), raw=1 adds every sample
//	/churn               wake every parked goroutine and wait until all re-parked
//	/goroutineprofile    one runtime.GoroutineProfile call, timed
//	/debug/pprof/...     net/http/pprof
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
		fmt.Fprintf(os.Stderr, "latency: %v\n", err)
		os.Exit(1)
	}
}

func run() error {
	var (
		n        = flag.Int("goroutines", 1000, "goroutines parked on channels")
		shapes   = flag.Int("shapes", 4, "distinct parked stacks (1..8)")
		perChan  = flag.Int("perchan", 64, "goroutines parked on each channel")
		interval = flag.Duration("probe-interval", time.Millisecond, "one probe work item per interval; 0 disables the probe")
		work     = flag.Int("probe-work", 4096, "bytes hashed by each probe work item")
		gpEvery  = flag.Duration("goroutineprofile", 0, "call runtime.GoroutineProfile in-process at this cadence; 0 disables")
		stdin    = flag.Bool("stdin", true, "exit when stdin reaches EOF")
	)
	flag.Parse()
	if *n < 0 || *n > maxGoroutines || *shapes < 1 || *shapes > len(shapeFuncs) || *perChan < 1 || *interval < 0 || *work < 1 || *work > 1<<20 || *gpEvery < 0 {
		return fmt.Errorf("bad flags: need 0<=-goroutines<=%d, 1<=-shapes<=%d, -perchan>=1, -probe-interval>=0, 1<=-probe-work<=1MiB, -goroutineprofile>=0",
			maxGoroutines, len(shapeFuncs))
	}

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return fmt.Errorf("listen on 127.0.0.1: %w", err)
	}
	pk := newParked(*n, *shapes, *perChan)
	pr := newProbe(*interval, *work)
	http.HandleFunc("/latency", pr.serveHTTP)
	http.HandleFunc("/churn", pk.serveChurn)
	http.HandleFunc("/goroutineprofile", serveGoroutineProfile)
	go func() { _ = http.Serve(ln, nil) }()

	if err := pk.start(30 * time.Second); err != nil {
		return err
	}
	done := make(chan struct{})
	if *interval > 0 {
		go pr.run(done)
	}
	if *gpEvery > 0 {
		go goroutineProfileEvery(*gpEvery, done)
	}
	if err := ready.Announce(ln); err != nil {
		return err
	}
	<-ready.Done(*stdin)
	close(done)
	return nil
}
