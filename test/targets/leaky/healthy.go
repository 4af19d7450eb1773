package main

import (
	"fmt"
	"io"
	"net"
	"sync"
	"time"
)

// pool starts -workers workers on one jobs channel and feeds them -rate
// jobs a second.
func pool(cfg config, done <-chan struct{}) error {
	jobs := make(chan int)
	var started sync.WaitGroup
	started.Add(cfg.workers)
	for i := 0; i < cfg.workers; i++ {
		go worker(jobs, &started)
	}
	started.Wait()
	id := 0
	go paced(cfg.rate, done, func(n int) {
		for i := 0; i < n; i++ {
			id++
			jobs <- id
		}
	})
	return nil
}

func worker(jobs <-chan int, started *sync.WaitGroup) {
	started.Done()
	for job := range jobs {
		record(work(job))
	}
}

// churn starts -rate short calls a second.
func churn(cfg config, done <-chan struct{}) error {
	id := 0
	go paced(cfg.rate, done, func(n int) {
		for i := 0; i < n; i++ {
			id++
			go shortCall(id)
		}
	})
	return nil
}

// shortCall waits 1-50 ms, on a timer or on a reply another goroutine
// sends.
func shortCall(id int) {
	d := time.Duration(1+id%50) * time.Millisecond
	if id%2 == 0 {
		<-time.After(d)
		return
	}
	reply := make(chan uint64, 1)
	time.AfterFunc(d, func() { reply <- work(id) })
	record(<-reply)
}

// burst fans out -fanout calls of about -park every -every, the first
// 2 s from now.
func burst(cfg config, done <-chan struct{}) error {
	go func() {
		wait := 2 * time.Second
		for {
			select {
			case <-done:
				return
			case <-time.After(wait):
			}
			start := time.Now()
			fanOut(cfg.fanout, cfg.park)
			wait = cfg.every - time.Since(start)
		}
	}()
	return nil
}

// fanOut calls n backends at once and waits for all of them.
func fanOut(n int, park time.Duration) {
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			callBackend(i, park)
		}(i)
	}
	wg.Wait()
}

// callBackend waits park minus up to 10%.
func callBackend(i int, park time.Duration) {
	<-time.After(park - park*time.Duration(i%100)/1000)
	record(work(i))
}

// readers opens -conns loopback connections, each read by a goroutine
// on the accepting side, and writes a line to one of them every 10 ms.
func readers(cfg config, done <-chan struct{}) error {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return fmt.Errorf("listen for readers: %w", err)
	}
	var accepted sync.WaitGroup
	accepted.Add(cfg.conns)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			accepted.Done()
			go readConn(c)
		}
	}()
	clients := make([]net.Conn, cfg.conns)
	for i := range clients {
		if clients[i], err = net.Dial("tcp", ln.Addr().String()); err != nil {
			return fmt.Errorf("dial reader %d: %w", i, err)
		}
	}
	accepted.Wait()
	go func() {
		tick := time.NewTicker(10 * time.Millisecond)
		defer tick.Stop()
		for i := 0; ; i++ {
			select {
			case <-done:
				return
			case <-tick.C:
				_, _ = fmt.Fprintf(clients[i%len(clients)], "message %d\n", i)
			}
		}
	}()
	return nil
}

// readConn reads a connection until it ends.
func readConn(c net.Conn) {
	defer c.Close()
	buf := make([]byte, 4096)
	for {
		n, err := c.Read(buf)
		if err != nil {
			if err != io.EOF {
				record(1)
			}
			return
		}
		record(uint64(n))
	}
}
