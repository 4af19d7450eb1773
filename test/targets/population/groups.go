package main

import (
	"context"
	"fmt"
	"net"
	"runtime"
	"runtime/pprof"
	"sync"
	"syscall"
	"time"
)

// config holds the command-line settings.
type config struct {
	n, scale, spin, depth, grow int
	stdin                       bool
}

// Caps for groups that consume file descriptors or OS threads, so that
// -scale can reach 100000 goroutines without exhausting either.
const (
	fdGroupCap     = 512
	threadGroupCap = 64
	elidedDepth    = 200
)

func (c config) count() int { return c.n * c.scale }

func (c config) capped(limit int) int {
	if n := c.count(); n < limit {
		return n
	}
	return limit
}

// build creates every group. It returns once all goroutines have started
// (they may still be on their way to parking; see waitParked).
func (p *population) build(cfg config) error {
	n := cfg.count()
	minor := goMinor()

	// Channels.
	unbuf := make(chan int)
	p.hold(unbuf)
	p.spawn(p.addGroup(&group{Name: "chan-receive", Status: "chan receive", Frame: "main.parkChanRecv"}), n,
		func() { parkChanRecv(unbuf) })
	p.spawn(p.addGroup(&group{Name: "chan-receive-nil", Status: "chan receive (nil chan)", Frame: "main.parkChanRecvNil"}), n,
		func() { parkChanRecvNil() })
	sendCh := make(chan int)
	p.hold(sendCh)
	p.spawn(p.addGroup(&group{Name: "chan-send", Status: "chan send", Frame: "main.parkChanSend"}), n,
		func() { parkChanSend(sendCh) })
	full := make(chan int, 1)
	full <- 0
	p.hold(full)
	p.spawn(p.addGroup(&group{Name: "chan-send-full", Status: "chan send", Frame: "main.parkChanSend"}), n,
		func() { parkChanSend(full) })
	selA, selB := make(chan int), make(chan string)
	p.hold([]any{selA, selB})
	p.spawn(p.addGroup(&group{Name: "select", Status: "select", Frame: "main.parkSelect"}), n,
		func() { parkSelect(selA, selB) })
	p.spawn(p.addGroup(&group{Name: "select-no-cases", Status: "select (no cases)", Frame: "main.parkSelectNoCases"}), n,
		func() { parkSelectNoCases() })

	// sync.
	var mu sync.Mutex
	mu.Lock()
	p.hold(&mu)
	p.spawn(p.addGroup(&group{Name: "mutex-lock", Status: "sync.Mutex.Lock", Frame: "main.parkMutex"}), n,
		func() { parkMutex(&mu) })
	var rw sync.RWMutex
	rw.Lock() // held by a writer: readers queue in RLock
	p.hold(&rw)
	p.spawn(p.addGroup(&group{Name: "rwmutex-rlock", Status: "sync.RWMutex.RLock", Frame: "main.parkRLock"}), n,
		func() { parkRLock(&rw) })
	// One RWMutex per writer: a second writer would queue on the inner
	// sync.Mutex ("sync.Mutex.Lock") instead of waiting for readers.
	wl := p.addGroup(&group{Name: "rwmutex-lock", Status: "sync.RWMutex.Lock", Frame: "main.parkWLock"})
	for i := 0; i < n; i++ {
		m := new(sync.RWMutex)
		m.RLock()
		p.hold(m)
		p.spawn(wl, 1, func() { parkWLock(m) })
	}
	var wg sync.WaitGroup
	wg.Add(1)
	p.hold(&wg)
	wgStatus := "semacquire"
	if minor >= 24 {
		wgStatus = "sync.WaitGroup.Wait"
	}
	p.spawn(p.addGroup(&group{Name: "waitgroup-wait", Status: wgStatus, Frame: "main.parkWaitGroup"}), n,
		func() { parkWaitGroup(&wg) })
	cond := sync.NewCond(new(sync.Mutex))
	p.hold(cond)
	p.spawn(p.addGroup(&group{Name: "cond-wait", Status: "sync.Cond.Wait", Frame: "main.parkCond"}), n,
		func() { parkCond(cond) })

	// Timers.
	p.spawn(p.addGroup(&group{Name: "sleep", Status: "sleep", Frame: "main.parkSleep"}), n,
		func() { parkSleep() })

	// Network poller: one listener per Accept (a second Accept on the same
	// listener would wait on the fd mutex, "semacquire").
	acc := p.addGroup(&group{Name: "io-wait-accept", Status: "IO wait", Frame: "main.parkAccept"})
	for i := 0; i < cfg.capped(fdGroupCap); i++ {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return fmt.Errorf("listen for accept group: %w", err)
		}
		p.hold(ln)
		p.spawn(acc, 1, func() { parkAccept(ln) })
	}
	if err := p.buildConnReaders(cfg.capped(fdGroupCap)); err != nil {
		return err
	}

	// OS threads.
	r, w, err := pipe()
	if err != nil {
		return err
	}
	p.hold([]int{r, w})
	p.spawn(p.addGroup(&group{Name: "syscall-read", Status: "syscall", Frame: "main.parkSyscallRead"}),
		cfg.capped(threadGroupCap), func() { parkSyscallRead(r) })
	lockedCh := make(chan int)
	p.hold(lockedCh)
	p.spawn(p.addGroup(&group{Name: "locked-to-thread", Status: "chan receive", LockedToThread: true, Frame: "main.parkLocked"}),
		cfg.capped(threadGroupCap), func() {
			runtime.LockOSThread()
			parkLocked(lockedCh)
		})
	p.spawn(p.addGroup(&group{Name: "spin", Status: "running", Statuses: []string{"running", "runnable", "preempted"}, Frame: "main.spin"}),
		cfg.spin, func() { spin() })

	// Stack shapes.
	deepCh := make(chan int)
	p.hold(deepCh)
	p.spawn(p.addGroup(&group{Name: "deep", Status: "chan receive", Frame: "main.recurse", MinFrames: cfg.depth}), n,
		func() { recurse(cfg.depth, deepCh) })
	p.spawn(p.addGroup(&group{Name: "deep-elided", Status: "chan receive", Frame: "main.recurse", MinFrames: 100, Elided: true}), n,
		func() { recurse(elidedDepth, deepCh) })
	inlCh := make(chan int)
	p.hold(inlCh)
	p.spawn(p.addGroup(&group{Name: "inlined", Status: "chan receive", Frame: "main.inlC"}), n,
		func() { inlA(inlCh) })
	genCh := make(chan string)
	p.hold(genCh)
	p.spawn(p.addGroup(&group{Name: "generic", Status: "chan receive", Frame: "main.parkGeneric[...]"}), n,
		func() { parkGeneric(genCh) })
	cloCh := make(chan int)
	p.hold(cloCh)
	p.spawn(p.addGroup(&group{Name: "closure", Status: "chan receive", Frame: "main.closureBody.func1.1"}), n,
		closureBody(cloCh))
	wk := &worker{ch: make(chan int)}
	p.hold(wk)
	park := wk.park // method value
	p.spawn(p.addGroup(&group{Name: "method-value", Status: "chan receive", Frame: "main.(*worker).park"}), n, park)

	// pprof labels.
	for _, set := range []map[string]string{
		{"tenant": "acme", "role": "worker"},
		{"tenant": "globex", "role": "api"},
	} {
		set := set
		ch := make(chan int)
		p.hold(ch)
		labels := pprof.Labels("tenant", set["tenant"], "role", set["role"])
		p.spawn(p.addGroup(&group{Name: "labels-" + set["tenant"], Status: "chan receive", Labels: set, Frame: "main.parkLabeled"}), n,
			func() {
				pprof.Do(context.Background(), labels, func(context.Context) { parkLabeled(ch) })
			})
	}

	p.grow = p.addGroup(&group{Name: "grow", Status: "chan receive", Frame: "main.parkChanRecv"})

	p.started.Wait()
	return nil
}

// buildConnReaders connects n TCP pairs over 127.0.0.1 and parks one
// goroutine in Read on the accepted side of each.
func (p *population) buildConnReaders(n int) error {
	g := p.addGroup(&group{Name: "io-wait-read", Status: "IO wait", Frame: "main.parkConnRead"})
	if n == 0 {
		return nil
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return fmt.Errorf("listen for read group: %w", err)
	}
	defer ln.Close()
	for i := 0; i < n; i++ {
		client, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			return fmt.Errorf("dial for read group: %w", err)
		}
		server, err := ln.Accept()
		if err != nil {
			return fmt.Errorf("accept for read group: %w", err)
		}
		p.hold([]net.Conn{client, server})
		p.spawn(g, 1, func() { parkConnRead(server) })
	}
	return nil
}

// pipe returns a pipe made with syscall.Pipe and left blocking, so that a
// read(2) on it blocks the thread in the kernel.
func pipe() (r, w int, err error) {
	var fds [2]int
	if err := syscall.Pipe(fds[:]); err != nil {
		return 0, 0, fmt.Errorf("syscall.Pipe: %w", err)
	}
	return fds[0], fds[1], nil
}

// growEverySecond adds k chan-receive goroutines to the grow group every
// second until done closes.
func (p *population) growEverySecond(k int, done <-chan struct{}) {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-done:
			return
		case <-t.C:
			p.spawn(p.grow, k, func() { parkChanRecv(p.growCh) })
		}
	}
}
