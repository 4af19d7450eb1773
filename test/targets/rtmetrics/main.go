// Command rtmetrics is a goroscope test target for reading a process's
// runtime settings and health from outside (collect/rtstate): it keeps a
// live heap, churns allocations in the background so that GC cycles go by,
// changes its settings on request, and answers its own runtime/metrics at a
// quiescent moment, so that a test can compare what it reads from the
// process's memory with what the runtime says. Settings also come from the
// environment (GOGC, GOMEMLIMIT, GOMAXPROCS, GODEBUG). With -burn it keeps
// goroutines spinning on the CPU (to be throttled by a cgroup's CPU quota),
// with -parked it keeps goroutines parked (to make its walk longer). It
// serves HTTP on
// 127.0.0.1, prints one JSON line when ready, and exits when stdin closes or
// on SIGTERM/SIGINT.
//
// Ready line: {"pid":123,"pprof":"127.0.0.1:PORT","go":"go1.26.8","goroutines":N}
//
// Endpoints (answers are JSON):
//
//	/quiesce  stop the background allocations, runtime.GC(), then answer the metrics
//	/metrics  the metrics now, without a GC
//	/resume   restart the background allocations
//	/set?gogc=N&memlimit=BYTES&procs=N
//	          debug.SetGCPercent, debug.SetMemoryLimit, runtime.GOMAXPROCS (those given)
//	/spinflag the address of the flag that ends /runq's spin
//	/runq?n=N with GOMAXPROCS 1, start a goroutine that, once the request is
//	          done, makes N goroutines runnable and keeps the one P busy (no
//	          preemption point; run with GODEBUG=asyncpreemptoff=1) until the flag
//	          is set from outside or a bound of seconds passes, so that the run
//	          queues hold exactly N goroutines meanwhile
//	/runqdone wait for that spin to end and answer whether the flag ended it
//
// The metrics answer maps runtime/metrics names to values: every uint64
// metric of metricNames the runtime supports.
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"goroscope.test/targets/internal/ready"
)

// metricNames are the metrics answered.
var metricNames = []string{
	"/sched/gomaxprocs:threads",
	"/gc/gogc:percent",
	"/gc/gomemlimit:bytes",
	"/gc/cycles/total:gc-cycles",
	"/gc/cycles/forced:gc-cycles",
	"/gc/heap/live:bytes",
	"/gc/heap/goal:bytes",
	"/memory/classes/heap/objects:bytes",
	"/memory/classes/heap/unused:bytes",
	"/sched/threads/total:threads", // Go 1.26+
}

// maxRunq bounds /runq's n.
const maxRunq = 100000

// spinRelease ends /runq's spin when set to non-zero (from outside).
var spinRelease atomic.Uint32

func main() {
	if err := run(); err != nil {
		fmt.Fprintf(os.Stderr, "rtmetrics: %v\n", err)
		os.Exit(1)
	}
}

func run() error {
	liveMiB := flag.Int("live", 8, "MiB kept live")
	churn := flag.Int("churn", 256, "KiB allocated (and dropped) per millisecond in the background")
	burn := flag.Int("burn", 0, "goroutines spinning on the CPU")
	parked := flag.Int("parked", 0, "goroutines parked on a channel")
	flag.Parse()
	if *liveMiB < 0 || *liveMiB > 1024 || *churn < 0 || *churn > 1<<20 || *burn < 0 || *burn > 1024 || *parked < 0 || *parked > 1<<20 {
		return fmt.Errorf("bad flags: need 0 <= -live <= 1024, 0 <= -churn <= %d, 0 <= -burn <= 1024, 0 <= -parked <= %d", 1<<20, 1<<20)
	}
	park := make(chan struct{})
	for i := 0; i < *parked; i++ {
		go func() { <-park }()
	}
	for i := 0; i < *burn; i++ {
		go spinForever()
	}
	live := make([][]byte, *liveMiB)
	for i := range live {
		live[i] = make([]byte, 1<<20)
	}
	a := &allocator{kib: *churn}
	go a.run()

	mux := http.NewServeMux()
	mux.HandleFunc("/quiesce", func(w http.ResponseWriter, r *http.Request) {
		a.pause()
		runtime.GC()
		answer(w, readMetrics())
	})
	mux.HandleFunc("/metrics", func(w http.ResponseWriter, r *http.Request) { answer(w, readMetrics()) })
	mux.HandleFunc("/resume", func(w http.ResponseWriter, r *http.Request) {
		a.resume()
		answer(w, "ok")
	})
	mux.HandleFunc("/set", serveSet)
	mux.HandleFunc("/spinflag", func(w http.ResponseWriter, r *http.Request) {
		answer(w, map[string]string{"addr": fmt.Sprintf("%#x", uintptr(unsafe.Pointer(&spinRelease)))})
	})
	mux.HandleFunc("/runq", serveRunq)
	mux.HandleFunc("/runqdone", serveRunqDone)

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return fmt.Errorf("listen on 127.0.0.1: %w", err)
	}
	go func() { _ = http.Serve(ln, mux) }()
	if err := ready.Announce(ln); err != nil {
		return err
	}
	<-ready.Done(true)
	runtime.KeepAlive(live)
	return nil
}

// burned counts the rounds of the -burn goroutines.
var burned atomic.Uint64

// spinForever keeps a CPU busy.
func spinForever() {
	for {
		for i := 0; i < 1<<20; i++ {
			burned.Add(1)
		}
	}
}

// allocator allocates in the background until paused.
type allocator struct {
	kib    int
	mu     sync.Mutex // held by the allocations; pause holds it
	ctl    sync.Mutex // serialises pause and resume
	paused bool
	sink   []byte
}

func (a *allocator) run() {
	for {
		a.mu.Lock()
		for i := 0; i < a.kib/64; i++ {
			a.sink = make([]byte, 64<<10)
		}
		a.mu.Unlock()
		time.Sleep(time.Millisecond)
	}
}

// pause stops the allocations until resume; pausing twice is a no-op.
func (a *allocator) pause() {
	a.ctl.Lock()
	defer a.ctl.Unlock()
	if !a.paused {
		a.mu.Lock()
		a.paused, a.sink = true, nil
	}
}

func (a *allocator) resume() {
	a.ctl.Lock()
	defer a.ctl.Unlock()
	if a.paused {
		a.paused = false
		a.mu.Unlock()
	}
}

// readMetrics reads metricNames, leaving out those this Go version lacks.
func readMetrics() map[string]uint64 {
	samples := make([]metrics.Sample, len(metricNames))
	for i, n := range metricNames {
		samples[i].Name = n
	}
	metrics.Read(samples)
	out := make(map[string]uint64, len(samples))
	for _, s := range samples {
		if s.Value.Kind() == metrics.KindUint64 {
			out[s.Name] = s.Value.Uint64()
		}
	}
	return out
}

func serveSet(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	prev := map[string]int64{}
	if v := q.Get("gogc"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil {
			http.Error(w, "bad gogc", http.StatusBadRequest)
			return
		}
		prev["gogc"] = int64(debug.SetGCPercent(n))
	}
	if v := q.Get("memlimit"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 0 {
			http.Error(w, "bad memlimit", http.StatusBadRequest)
			return
		}
		prev["memlimit"] = debug.SetMemoryLimit(n)
	}
	if v := q.Get("procs"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 1024 {
			http.Error(w, "bad procs", http.StatusBadRequest)
			return
		}
		prev["procs"] = int64(runtime.GOMAXPROCS(n))
	}
	answer(w, prev)
}

// spinBound bounds /runq's spin when the flag is never set: some seconds
// of a loop of a load, a compare and an increment.
const spinBound = 1 << 34

// settle is how long the spinner lets the HTTP exchange that started it
// finish (its connection goroutine parks again) before it fills the run
// queues, so that nothing else is runnable meanwhile.
const settle = 50 * time.Millisecond

// spinResult is the outcome of one spin.
type spinResult struct {
	Released bool   `json:"released"` // ended by the flag, not by spinBound
	Spins    uint64 `json:"spins"`
	// RanEarly counts the goroutines that ran before the spin began, the
	// spinner having been preempted while it started them (it ran for
	// more than 10ms of wall time, its thread descheduled): the run
	// queues then held fewer than n.
	RanEarly int64 `json:"ran_early"`
}

// ran counts the goroutines of the current spin that ran.
var ran atomic.Int64

// spins passes the outcome of the spin /runq started to /runqdone.
var spins = make(chan spinResult, 1)

func serveRunq(w http.ResponseWriter, r *http.Request) {
	n, err := strconv.Atoi(r.URL.Query().Get("n"))
	if err != nil || n < 0 || n > maxRunq {
		http.Error(w, fmt.Sprintf("need 0 <= n <= %d", maxRunq), http.StatusBadRequest)
		return
	}
	if p := runtime.GOMAXPROCS(0); p != 1 {
		http.Error(w, fmt.Sprintf("GOMAXPROCS is %d, want 1", p), http.StatusConflict)
		return
	}
	spinRelease.Store(0)
	go spin(n)
	answer(w, "started")
}

// spin makes n goroutines runnable and keeps the only P until released.
func spin(n int) {
	time.Sleep(settle)
	ran.Store(0)
	var wg sync.WaitGroup
	wg.Add(n)
	for i := 0; i < n; i++ {
		go func() {
			ran.Add(1)
			wg.Done()
		}()
	}
	early := ran.Load()
	// No call, so no preemption point.
	i := uint64(0)
	for spinRelease.Load() == 0 && i < spinBound {
		i++
	}
	res := spinResult{Released: spinRelease.Load() != 0, Spins: i, RanEarly: early}
	wg.Wait()
	spins <- res
}

func serveRunqDone(w http.ResponseWriter, r *http.Request) {
	select {
	case res := <-spins:
		answer(w, res)
	case <-time.After(30 * time.Second):
		http.Error(w, "no spin ended in 30s", http.StatusGatewayTimeout)
	}
}

func answer(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(v)
}
