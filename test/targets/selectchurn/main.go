// Command selectchurn is a goroscope test target for what waiting
// goroutines are blocked on while some of them wake and park again during
// a walk: it parks -idle goroutines on one channel receive and runs -churn
// goroutines in a loop of
//
//	select { case <-time.After(-every): case <-stop: }
//
// so that their sudogs are released and reused many times a second. It
// serves net/http/pprof (/debug/pprof/goroutine?debug=2 is the runtime's
// own dump) and /population on 127.0.0.1, prints one JSON line once every
// idle goroutine is parked, and exits when stdin closes or on
// SIGTERM/SIGINT.
//
// Ready line: {"pid":123,"pprof":"127.0.0.1:PORT","go":"go1.22.12","goroutines":N}
//
// /population has the population target's shape (groups "idle" and
// "churn" with their goroutine ids) plus the addresses of the two
// long-lived channels: {"channels":{"idle":"0xc000...","stop":"0xc000..."}}.
package main

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"net"
	"net/http"
	_ "net/http/pprof"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"goroscope.test/targets/internal/ready"
)

// maxGoroutines bounds -idle and -churn.
const maxGoroutines = 1 << 20

func main() {
	if err := run(); err != nil {
		fmt.Fprintf(os.Stderr, "selectchurn: %v\n", err)
		os.Exit(1)
	}
}

func run() error {
	var (
		idle  = flag.Int("idle", 3000, "goroutines parked for good on one channel receive")
		churn = flag.Int("churn", 20, "goroutines looping on a select of a timer and the stop channel")
		every = flag.Duration("every", 2*time.Millisecond, "the churners' timer")
		stdin = flag.Bool("stdin", true, "exit when stdin reaches EOF")
	)
	flag.Parse()
	if *idle < 0 || *idle > maxGoroutines || *churn < 0 || *churn > maxGoroutines || *every <= 0 {
		return fmt.Errorf("bad flags: need 0<=-idle<=%d, 0<=-churn<=%d, -every>0", maxGoroutines, maxGoroutines)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return fmt.Errorf("listen on 127.0.0.1: %w", err)
	}
	p := newPopulation()
	http.HandleFunc("/population", p.serveHTTP)
	go func() { _ = http.Serve(ln, nil) }()

	p.start(*idle, *churn, *every)
	if err := p.waitParked(*idle, 30*time.Second); err != nil {
		return err
	}
	if err := ready.Announce(ln); err != nil {
		return err
	}
	<-ready.Done(*stdin)
	close(p.stop)
	return nil
}

// group is a set of goroutines, as the population target describes them.
type group struct {
	Name     string   `json:"name"`
	Count    int      `json:"count"`
	Status   string   `json:"status"`
	Statuses []string `json:"statuses"`
	Frame    string   `json:"frame"`
	IDs      []uint64 `json:"ids"`
}

// population owns the goroutines and the two channels they wait on.
type population struct {
	idleCh  chan struct{}
	stop    chan struct{}
	parking atomic.Int64 // idle goroutines about to block

	mu     sync.Mutex
	groups []*group
}

func newPopulation() *population {
	return &population{idleCh: make(chan struct{}), stop: make(chan struct{})}
}

// start launches the idle goroutines and the churners; each records its
// id in its group first.
func (p *population) start(idle, churn int, every time.Duration) {
	gi := &group{Name: "idle", Count: idle, Status: "chan receive", Statuses: []string{"chan receive"}, Frame: "main.idleWait", IDs: []uint64{}}
	// A churner is parked in its select, or between two of them.
	gc := &group{Name: "churn", Count: churn, Status: "select", Statuses: []string{"select", "running", "runnable", "preempted"}, Frame: "main.churnLoop", IDs: []uint64{}}
	p.groups = []*group{gi, gc}
	var started sync.WaitGroup
	started.Add(idle + churn)
	for i := 0; i < idle; i++ {
		go func() {
			p.record(gi)
			started.Done()
			p.parking.Add(1)
			idleWait(p.idleCh)
		}()
	}
	for i := 0; i < churn; i++ {
		go func() {
			p.record(gc)
			started.Done()
			churnLoop(p.stop, every)
		}()
	}
	started.Wait()
}

//go:noinline
func idleWait(c chan struct{}) { <-c }

// churnLoop is the select of the issue: a fresh timer channel every round.
//
//go:noinline
func churnLoop(stop chan struct{}, every time.Duration) {
	for {
		select {
		case <-time.After(every):
		case <-stop:
			return
		}
	}
}

// waitParked waits until every idle goroutine is about to block, then
// until the runtime shows them all in "chan receive".
func (p *population) waitParked(idle int, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for i := 0; ; i++ {
		if p.parking.Load() >= int64(idle) {
			n := bytes.Count(allStacks(), []byte(" [chan receive"))
			if n >= idle {
				return nil
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("idle goroutines not parked after %v: %d of %d about to block", timeout, p.parking.Load(), idle)
		}
		time.Sleep(time.Duration(5*(i+1)) * time.Millisecond)
	}
}

func (p *population) record(g *group) {
	id := goid()
	p.mu.Lock()
	g.IDs = append(g.IDs, id)
	p.mu.Unlock()
}

func (p *population) serveHTTP(w http.ResponseWriter, _ *http.Request) {
	type description struct {
		PID      int               `json:"pid"`
		Go       string            `json:"go"`
		Groups   []group           `json:"groups"`
		Channels map[string]string `json:"channels"`
	}
	d := description{
		PID: os.Getpid(), Go: runtime.Version(),
		Channels: map[string]string{"idle": fmt.Sprintf("%p", p.idleCh), "stop": fmt.Sprintf("%p", p.stop)},
	}
	p.mu.Lock()
	for _, g := range p.groups {
		c := *g
		c.IDs = append([]uint64(nil), g.IDs...)
		d.Groups = append(d.Groups, c)
	}
	p.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(d)
}

// allStacks returns runtime.Stack(all=true), growing the buffer as needed
// (bounded at 1 GiB).
func allStacks() []byte {
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) || len(buf) >= 1<<30 {
			return buf[:n]
		}
		buf = make([]byte, 2*len(buf))
	}
}

// goid returns the calling goroutine's id, parsed from the first line of
// its own traceback ("goroutine 18 [running]:").
func goid() uint64 {
	var buf [64]byte
	b := buf[:runtime.Stack(buf[:], false)]
	b = bytes.TrimPrefix(b, []byte("goroutine "))
	if i := bytes.IndexByte(b, ' '); i > 0 {
		b = b[:i]
	}
	id, err := strconv.ParseUint(string(b), 10, 64)
	if err != nil {
		panic("selectchurn: cannot parse goroutine id from " + strings.TrimSpace(string(buf[:])))
	}
	return id
}
