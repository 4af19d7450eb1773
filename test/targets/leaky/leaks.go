package main

import (
	"context"
	"hash/crc32"
	"strconv"
	"sync"
	"time"
)

// sink keeps the results of the simulated work alive.
var sink struct {
	mu  sync.Mutex
	sum uint64
}

func record(v uint64) {
	sink.mu.Lock()
	sink.sum += v
	sink.mu.Unlock()
}

// work is a little CPU work standing for a request's processing.
func work(id int) uint64 {
	return uint64(crc32.ChecksumIEEE([]byte(strconv.Itoa(id) + "-payload")))
}

// result is what a lookup answers.
type result struct {
	id  int
	sum uint64
}

// slowLookup stands for a call to a backend that answers in 10-59 ms.
func slowLookup(id int) result {
	time.Sleep(time.Duration(10+id*37%50) * time.Millisecond)
	return result{id: id, sum: work(id)}
}

// handleWithTimeout gives a lookup 30 ms. When the lookup is slower, the
// handler returns and nobody ever receives from ch: the lookup goroutine
// blocks on its send for ever (about half the requests).
func handleWithTimeout(id int) {
	ch := make(chan result)
	go func() {
		ch <- slowLookup(id)
	}()
	select {
	case r := <-ch:
		record(r.sum)
	case <-time.After(30 * time.Millisecond):
		// Timed out: answer the client with an error.
	}
}

// handleRange streams a few values to a consumer and returns without
// closing the channel: the consumer's range never ends.
func handleRange(id int) {
	values := make(chan uint64, 8)
	go sumValues(values)
	for i := 0; i < 3; i++ {
		values <- work(id + i)
	}
	// Missing: close(values).
}

func sumValues(values <-chan uint64) {
	var total uint64
	for v := range values {
		total += v
	}
	record(total)
}

// request is a request's state; cancel ends its context.
type request struct {
	id     int
	ctx    context.Context
	cancel context.CancelFunc
}

// handleWithContext starts a watcher that releases the request's
// resources when its context ends, and returns without calling cancel.
func handleWithContext(id int) {
	ctx, cancel := context.WithCancel(context.Background())
	req := &request{id: id, ctx: ctx, cancel: cancel}
	go watchRequest(req)
	record(work(req.id))
	// Missing: req.cancel().
}

func watchRequest(req *request) {
	<-req.ctx.Done()
	record(uint64(req.id))
}

// handleWithTicker starts a poller that checks the request's status every
// 100 ms, on a ticker nobody stops, in a loop nothing ends.
func handleWithTicker(id int) {
	go pollStatus(id)
}

func pollStatus(id int) {
	for range time.NewTicker(100 * time.Millisecond).C {
		if checkStatus(id) { // never: the request is never done
			return
		}
	}
}

// checkStatus takes -tick-work of CPU.
func checkStatus(id int) bool {
	done := false
	for start := time.Now(); ; {
		done = done || work(id) == 0
		if time.Since(start) >= tickWork {
			return done
		}
	}
}

// store is state under a mutex.
type store struct {
	mu    sync.Mutex
	state map[int]uint64
}

// flush holds the mutex while it waits for an acknowledgement that never
// comes.
func (s *store) flush(ack <-chan struct{}) {
	s.mu.Lock()
	defer s.mu.Unlock()
	<-ack
	for k := range s.state {
		delete(s.state, k)
	}
}

func (s *store) update(id int) {
	s.mu.Lock()
	s.state[id%100] += work(id)
	s.mu.Unlock()
}

// mutexHolderWaits starts the flush that holds the mutex for ever, then
// serves -rate updates a second, each in its own goroutine.
func mutexHolderWaits(cfg config, done <-chan struct{}) error {
	s := &store{state: map[int]uint64{}}
	ack := make(chan struct{}) // nobody sends
	go s.flush(ack)
	for s.mu.TryLock() { // until flush holds it
		s.mu.Unlock()
		time.Sleep(time.Millisecond)
	}
	return requests(s.update)(cfg, done)
}
