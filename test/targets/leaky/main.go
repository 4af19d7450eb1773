// Command leaky is a goroscope test target for the findings: it runs one
// workload, chosen by -mode, written the way people write it, that either
// leaks goroutines, blocks them for good, or is healthy and must not be
// reported.
//
// Leaks (one per simulated request, -rate requests a second):
//
//   - send-after-timeout: a handler starts a lookup goroutine that sends
//     its result on an unbuffered channel, gives up after a timeout, and
//     the lookup blocks on its send for ever.
//   - range-unclosed: a consumer ranges over a channel its producer never
//     closes.
//   - ctx-never-cancelled: a watcher waits on ctx.Done() of a context whose
//     cancel function nobody calls.
//   - mutex-holder-waits: one goroutine holds a mutex while it waits on a
//     channel nobody sends on; updaters arrive at -rate and queue on the
//     mutex (stuck, and growing).
//   - ticker-per-request: a poller loops over a ticker nobody stops: woken
//     every 100 ms (each tick takes -tick-work of CPU), it never leaves.
//
// Healthy:
//
//   - pool: -workers workers receive jobs from one channel, fed at -rate
//     jobs a second.
//   - churn: -rate short goroutines a second, each parked 1-50 ms on a
//     timer or on a channel another goroutine fills.
//   - burst: every -every, a fan-out of -fanout goroutines that wait on a
//     timer about -park, then all finish (a wait group).
//   - readers: -conns loopback TCP connections, each read by a goroutine
//     blocked in conn.Read, written to now and then.
//
// And deadlock: every goroutine, main included, parked on mutexes, a wait
// group and a channel, for ever; a pending timer (as most programs have)
// keeps the runtime's own deadlock detector silent.
//
// It serves net/http/pprof on 127.0.0.1 (except in deadlock mode, whose
// listener is open but never served: its accept loop would be a goroutine
// the outside can wake), prints one JSON ready line once the workload is
// in place, and exits when stdin closes or on SIGTERM/SIGINT. In deadlock
// mode nothing may wait on stdin (a reader sits in a system call, awake),
// so a timer polls it, non-blocking, every second, and SIGTERM/SIGINT
// kill the process by default. That timer is the only one: with
// -stdin=false the runtime finds the deadlock itself and exits.
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
	"sort"
	"strings"
	"time"

	"goroscope.test/targets/internal/ready"
)

// config is the command line.
type config struct {
	mode    string
	rate    float64
	workers int
	conns   int
	fanout  int
	every   time.Duration
	park    time.Duration
	stdin   bool
}

// tickWork is -tick-work.
var tickWork time.Duration

// mode starts one workload; it returns once the workload is in place.
type mode func(cfg config, done <-chan struct{}) error

var modes = map[string]mode{
	"send-after-timeout":  requests(handleWithTimeout),
	"range-unclosed":      requests(handleRange),
	"ctx-never-cancelled": requests(handleWithContext),
	"mutex-holder-waits":  mutexHolderWaits,
	"ticker-per-request":  requests(handleWithTicker),
	"pool":                pool,
	"churn":               churn,
	"burst":               burst,
	"readers":             readers,
}

func main() {
	if err := run(); err != nil {
		fmt.Fprintf(os.Stderr, "leaky: %v\n", err)
		os.Exit(1)
	}
}

func run() error {
	var cfg config
	flag.StringVar(&cfg.mode, "mode", "", "the workload: "+strings.Join(modeNames(), ", "))
	flag.Float64Var(&cfg.rate, "rate", 5, "requests, jobs or goroutines a second (leaks, pool, churn)")
	flag.IntVar(&cfg.workers, "workers", 2000, "workers of the pool")
	flag.IntVar(&cfg.conns, "conns", 200, "loopback connections of readers")
	flag.IntVar(&cfg.fanout, "fanout", 1000, "goroutines of a burst")
	flag.DurationVar(&cfg.every, "every", 20*time.Second, "time between the starts of two bursts")
	flag.DurationVar(&cfg.park, "park", 5*time.Second, "how long the goroutines of a burst wait")
	flag.DurationVar(&tickWork, "tick-work", 0, "CPU time each tick of ticker-per-request takes")
	flag.BoolVar(&cfg.stdin, "stdin", true, "exit when stdin reaches EOF")
	flag.Parse()
	if cfg.rate <= 0 || cfg.rate > 1e6 || cfg.workers < 1 || cfg.workers > 1<<20 || cfg.conns < 1 || cfg.conns > 10000 ||
		cfg.fanout < 1 || cfg.fanout > 1<<20 || cfg.park <= 0 || cfg.every <= cfg.park {
		return fmt.Errorf("bad flags: need 0<-rate<=1e6, 1<=-workers<=%d, 1<=-conns<=10000, 1<=-fanout<=%d, 0<-park<-every", 1<<20, 1<<20)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return fmt.Errorf("listen on 127.0.0.1: %w", err)
	}
	if cfg.mode == "deadlock" {
		return deadlock(cfg, ln)
	}
	start, ok := modes[cfg.mode]
	if !ok {
		return fmt.Errorf("unknown -mode %q: want deadlock or one of %s", cfg.mode, strings.Join(modeNames(), ", "))
	}
	go func() { _ = http.Serve(ln, nil) }()
	// Set up the exit signals before the ready line, so that the
	// runtime's signal watcher is in place when a test takes its first look.
	done := ready.Done(cfg.stdin)
	if err := start(cfg, done); err != nil {
		return err
	}
	if err := ready.Announce(ln); err != nil {
		return err
	}
	<-done
	return nil
}

func modeNames() []string {
	names := make([]string, 0, len(modes))
	for name := range modes {
		names = append(names, name)
	}
	sort.Strings(names)
	return names
}

// paced calls f every 10 ms with the number of events due since the last
// call at rate events a second, until done.
func paced(rate float64, done <-chan struct{}, f func(n int)) {
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	start := time.Now()
	emitted := 0
	for {
		select {
		case <-done:
			return
		case now := <-tick.C:
			if due := int(rate * now.Sub(start).Seconds()); due > emitted {
				f(due - emitted)
				emitted = due
			}
		}
	}
}

// requests is a mode that serves -rate requests a second, each in its own
// goroutine as net/http does, with handle.
func requests(handle func(id int)) mode {
	return func(cfg config, done <-chan struct{}) error {
		id := 0
		go paced(cfg.rate, done, func(n int) {
			for i := 0; i < n; i++ {
				id++
				go handle(id)
			}
		})
		return nil
	}
}
