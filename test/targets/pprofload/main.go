// Command pprofload is a goroscope test target for pprof scraping: it
// serves net/http/pprof on 127.0.0.1, records every allocation, mutex
// contention and blocking event (MemProfileRate=1, mutex fraction 1, block
// rate 1 by default), generates them at controllable background rates, and
// does an exact amount of known work on request so that the deltas between
// two collections can be checked exactly. It prints one JSON line when
// ready and exits when stdin closes, on SIGTERM/SIGINT, or after -max-run.
//
// Ready line: {"pid":123,"pprof":"127.0.0.1:PORT","go":"go1.26.8","goroutines":N}
//
// Endpoints besides /debug/pprof/:
//
//	POST /work?allocs=K&size=S&retain=1&mutex=M&block=B
//	    K allocations of S bytes in main.allocObject (kept alive until the
//	    next /work with retain=1 when retain=1), M mutex contentions whose
//	    unlock is in main.mutexWork (the waiter blocks in main.mutexWaiter;
//	    with -mutexfraction 1 the count is checked against the runtime's
//	    own profile), B channel receives that block in main.blockRecv;
//	    then runtime.GC() so the heap profile includes the allocations.
//	    Answers the totals.
//	GET /stats
//	    totals of all work done so far, background load included.
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"net"
	"net/http"
	_ "net/http/pprof"
	"os"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"goroscope.test/targets/internal/ready"
)

// Limits of one /work request, so a bad request cannot run away.
const (
	maxAllocs    = 1 << 20
	maxSize      = 1 << 20
	maxEvents    = 10000
	maxAllocByte = 1 << 30
)

// eventGap is how long a holder waits before releasing a waiter that
// announced itself: long enough for the waiter to have parked (a waiter
// that gets the lock without parking records no event), and the least
// delay each event records.
const eventGap = 2 * time.Millisecond

func main() {
	if err := run(); err != nil {
		fmt.Fprintf(os.Stderr, "pprofload: %v\n", err)
		os.Exit(1)
	}
}

type config struct {
	addr          string
	memRate       int
	mutexFraction int
	blockProfRate int
	spin          int
	allocRate     int
	mutexRate     int
	blockRate     int
	leak          int
	maxRun        time.Duration
	stdin         bool
}

func run() error {
	var cfg config
	flag.StringVar(&cfg.addr, "addr", "127.0.0.1:0", "listen address of the pprof server (127.0.0.1 only)")
	flag.IntVar(&cfg.memRate, "memrate", 1, "runtime.MemProfileRate (1: every allocation)")
	flag.IntVar(&cfg.mutexFraction, "mutexfraction", 1, "runtime.SetMutexProfileFraction (1: every contention)")
	flag.IntVar(&cfg.blockProfRate, "blockrate", 1, "runtime.SetBlockProfileRate (1: every blocking event)")
	flag.IntVar(&cfg.spin, "spin", 1, "CPU-spinning goroutines (main.spin)")
	flag.IntVar(&cfg.allocRate, "alloc-rate", 0, "background 1KiB allocations per second (main.backgroundAlloc)")
	flag.IntVar(&cfg.mutexRate, "mutex-rate", 0, "background mutex contentions per second (at most 200)")
	flag.IntVar(&cfg.blockRate, "block-rate", 0, "background blocking receives per second (at most 200)")
	flag.IntVar(&cfg.leak, "leak", 0, "goroutines leaked on unreachable channels (main.leakForever)")
	flag.DurationVar(&cfg.maxRun, "max-run", 10*time.Minute, "exit after this long whatever happens")
	flag.BoolVar(&cfg.stdin, "stdin", true, "exit when stdin reaches EOF")
	flag.Parse()
	if cfg.spin < 0 || cfg.allocRate < 0 || cfg.allocRate > 1e6 || cfg.mutexRate < 0 || cfg.mutexRate > 200 ||
		cfg.blockRate < 0 || cfg.blockRate > 200 || cfg.leak < 0 || cfg.leak > 100000 || cfg.maxRun <= 0 {
		return fmt.Errorf("bad flags: need -spin>=0, 0<=-alloc-rate<=1e6, 0<=-mutex-rate<=200, 0<=-block-rate<=200, 0<=-leak<=100000, -max-run>0")
	}
	host, _, err := net.SplitHostPort(cfg.addr)
	if err != nil || host != "127.0.0.1" {
		return fmt.Errorf("-addr %q: want 127.0.0.1:PORT", cfg.addr)
	}
	runtime.MemProfileRate = cfg.memRate
	runtime.SetMutexProfileFraction(cfg.mutexFraction)
	runtime.SetBlockProfileRate(cfg.blockProfRate)

	ln, err := net.Listen("tcp", cfg.addr)
	if err != nil {
		return fmt.Errorf("listen for pprof: %w", err)
	}
	w := &worker{exactMutex: cfg.mutexFraction == 1}
	http.HandleFunc("/work", w.serveWork)
	http.HandleFunc("/stats", w.serveStats)
	go func() { _ = http.Serve(ln, nil) }()

	done := make(chan struct{})
	for i := 0; i < cfg.spin; i++ {
		go spin(done)
	}
	for i := 0; i < cfg.leak; i++ {
		go leakForever()
	}
	if cfg.allocRate > 0 || cfg.mutexRate > 0 || cfg.blockRate > 0 {
		go w.background(cfg, done)
	}

	if err := ready.Announce(ln); err != nil {
		return err
	}
	select {
	case <-ready.Done(cfg.stdin):
	case <-time.After(cfg.maxRun):
	}
	close(done)
	return nil
}

// totals counts the work done so far.
type totals struct {
	Allocs     int64 `json:"allocs"`
	AllocBytes int64 `json:"alloc_bytes"`
	Mutex      int64 `json:"mutex"`
	Block      int64 `json:"block"`
	Background struct {
		Allocs int64 `json:"allocs"`
		Mutex  int64 `json:"mutex"`
		Block  int64 `json:"block"`
	} `json:"background"`
}

// worker does the requested work; one /work request at a time.
type worker struct {
	// exactMutex is set when every contention is recorded (fraction 1), so
	// mutexWork can check its own events.
	exactMutex bool
	mu         sync.Mutex // serialises /work
	retained   [][]byte
	allocs     atomic.Int64
	bytes      atomic.Int64
	mutex      atomic.Int64
	block      atomic.Int64
	bgAllocs   atomic.Int64
	bgMutex    atomic.Int64
	bgBlock    atomic.Int64
}

func (w *worker) totals() totals {
	var t totals
	t.Allocs, t.AllocBytes = w.allocs.Load(), w.bytes.Load()
	t.Mutex, t.Block = w.mutex.Load(), w.block.Load()
	t.Background.Allocs, t.Background.Mutex, t.Background.Block = w.bgAllocs.Load(), w.bgMutex.Load(), w.bgBlock.Load()
	return t
}

func (w *worker) serveStats(rw http.ResponseWriter, _ *http.Request) {
	writeJSON(rw, w.totals())
}

func (w *worker) serveWork(rw http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		http.Error(rw, "use POST", http.StatusMethodNotAllowed)
		return
	}
	q := r.URL.Query()
	allocs, err1 := intParam(q.Get("allocs"), maxAllocs)
	size, err2 := intParam(q.Get("size"), maxSize)
	mutex, err3 := intParam(q.Get("mutex"), maxEvents)
	block, err4 := intParam(q.Get("block"), maxEvents)
	for _, err := range []error{err1, err2, err3, err4} {
		if err != nil {
			http.Error(rw, err.Error(), http.StatusBadRequest)
			return
		}
	}
	if allocs > 0 && size == 0 {
		size = 4096
	}
	if int64(allocs)*int64(size) > maxAllocByte {
		http.Error(rw, fmt.Sprintf("allocs*size above %d bytes", maxAllocByte), http.StatusBadRequest)
		return
	}
	retain := q.Get("retain") == "1"

	w.mu.Lock()
	defer w.mu.Unlock()
	if allocs > 0 {
		objs := allocWork(allocs, size)
		if retain {
			w.retained = objs
		}
		w.allocs.Add(int64(allocs))
		w.bytes.Add(int64(allocs) * int64(size))
	}
	if mutex > 0 {
		made := mutexWork(mutex, w.exactMutex)
		w.mutex.Add(int64(made))
		if made < mutex {
			http.Error(rw, fmt.Sprintf("made %d of %d mutex contentions (waiters kept getting the lock unparked)", made, mutex), http.StatusInternalServerError)
			return
		}
	}
	if block > 0 {
		blockWork(block)
		w.block.Add(int64(block))
	}
	// The heap profile shows allocations as of the last completed GC cycle;
	// runtime.GC publishes everything allocated before it.
	runtime.GC()
	writeJSON(rw, w.totals())
}

func intParam(s string, limit int) (int, error) {
	if s == "" {
		return 0, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 0 || n > limit {
		return 0, fmt.Errorf("parameter %q: want an integer in [0, %d]", s, limit)
	}
	return n, nil
}

func writeJSON(rw http.ResponseWriter, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		http.Error(rw, err.Error(), http.StatusInternalServerError)
		return
	}
	rw.Header().Set("Content-Type", "application/json")
	_, _ = rw.Write(b)
}

// allocWork allocates n objects of size bytes, each on the heap in
// main.allocObject, and returns them.
//
//go:noinline
func allocWork(n, size int) [][]byte {
	objs := make([][]byte, 0, n)
	for i := 0; i < n; i++ {
		objs = append(objs, allocObject(size))
	}
	return objs
}

// allocObject is the one allocation site of /work: one heap object of
// size bytes per call.
//
//go:noinline
func allocObject(size int) []byte {
	return make([]byte, size)
}

// mutexWork makes n contentions on a mutex: each time it holds the lock
// while a waiter (main.mutexWaiter) comes to take it, waits eventGap for
// the waiter to park, then unlocks. The mutex profile charges the
// contention to the unlocking stack (this function); the block profile
// charges the wait to main.mutexWaiter.
//
// A waiter that was not yet parked when the lock was released takes it
// without a contention; when every event is recorded (exact), such an
// attempt is seen in the runtime's own mutex profile and repeated, so that
// exactly n contentions are made. It returns how many were made.
//
//go:noinline
func mutexWork(n int, exact bool) int {
	var mu sync.Mutex
	made := 0
	for attempt := 0; made < n && attempt < 10*n; attempt++ {
		before := profileEvents(runtime.MutexProfile, "main.mutexWork", exact)
		mu.Lock()
		ready, done := make(chan struct{}), make(chan struct{})
		go mutexWaiter(&mu, ready, done)
		<-ready
		time.Sleep(eventGap)
		mu.Unlock()
		<-done
		if !exact || profileEvents(runtime.MutexProfile, "main.mutexWork", exact) > before {
			made++
		}
	}
	return made
}

//go:noinline
func mutexWaiter(mu *sync.Mutex, ready, done chan<- struct{}) {
	close(ready)
	mu.Lock()
	mu.Unlock()
	close(done)
}

// blockWork makes n blocking channel receives in main.blockRecv. It sends
// eventGap after the receiver announced itself, and only once the receiver
// is parked on the channel (a non-blocking send succeeds only then), so
// every receive blocks: exactly n block events.
//
//go:noinline
func blockWork(n int) {
	for i := 0; i < n; i++ {
		ch := make(chan int)
		ready, done := make(chan struct{}), make(chan struct{})
		go blockRecv(ch, ready, done)
		<-ready
		time.Sleep(eventGap)
		for sent := false; !sent; {
			select {
			case ch <- i:
				sent = true
			default:
				time.Sleep(50 * time.Microsecond)
			}
		}
		<-done
	}
}

//go:noinline
func blockRecv(ch <-chan int, ready, done chan<- struct{}) {
	close(ready)
	<-ch
	close(done)
}

// profileEvents counts the events of a block-style profile (mutex or block)
// whose stacks include fn; 0 unless exact.
func profileEvents(read func([]runtime.BlockProfileRecord) (int, bool), fn string, exact bool) int64 {
	if !exact {
		return 0
	}
	n, _ := read(nil)
	for tries := 0; tries < 10; tries++ {
		records := make([]runtime.BlockProfileRecord, n+16)
		m, ok := read(records)
		if !ok {
			n = m
			continue
		}
		var total int64
		for _, r := range records[:m] {
			frames := runtime.CallersFrames(r.Stack())
			for {
				f, more := frames.Next()
				if f.Function == fn {
					total += r.Count
					break
				}
				if !more {
					break
				}
			}
		}
		return total
	}
	return -1
}

// spinSink keeps the spin loop's result alive.
var spinSink atomic.Uint64

// spin burns CPU until done closes.
//
//go:noinline
func spin(done <-chan struct{}) {
	x := uint64(1)
	for i := 0; ; i++ {
		x = x*6364136223846793005 + 1442695040888963407
		if i%(1<<16) == 0 {
			select {
			case <-done:
				spinSink.Store(x)
				return
			default:
			}
		}
	}
}

// leakForever blocks on a channel only it can reach: Go 1.26's leak
// detector (GOEXPERIMENT=goroutineleakprofile) reports it.
//
//go:noinline
func leakForever() {
	ch := make(chan int)
	<-ch
}

// background makes the configured background load, in ticks of 100ms.
func (w *worker) background(cfg config, done <-chan struct{}) {
	t := time.NewTicker(100 * time.Millisecond)
	defer t.Stop()
	var mu sync.Mutex
	var kept [][]byte
	for tick := 0; ; tick++ {
		select {
		case <-done:
			return
		case <-t.C:
		}
		if n := perTick(cfg.allocRate, tick); n > 0 {
			kept = backgroundAlloc(n, kept[:0])
			w.bgAllocs.Add(int64(n))
		}
		for i := perTick(cfg.mutexRate, tick); i > 0; i-- {
			mu.Lock()
			go func() { mu.Lock(); mu.Unlock() }()
			time.Sleep(100 * time.Microsecond)
			mu.Unlock()
			w.bgMutex.Add(1)
		}
		for i := perTick(cfg.blockRate, tick); i > 0; i-- {
			ch := make(chan int)
			go func() { ch <- 1 }()
			<-ch
			w.bgBlock.Add(1)
		}
	}
}

// perTick spreads rate events per second over ten ticks exactly.
func perTick(rate, tick int) int {
	t := tick % 10
	return rate*(t+1)/10 - rate*t/10
}

// backgroundAlloc appends n heap objects of 1KiB to kept.
//
//go:noinline
func backgroundAlloc(n int, kept [][]byte) [][]byte {
	for i := 0; i < n; i++ {
		kept = append(kept, make([]byte, 1024))
	}
	return kept
}
