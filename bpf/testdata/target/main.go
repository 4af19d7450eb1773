// Command target parks -n goroutines on a channel, prints "ready", and waits
// for its stdin to close. It is the walk target of the bpf package's tests.
package main

import (
	"bufio"
	"flag"
	"fmt"
	"io"
	"os"
	"runtime"
	"sync"
	"time"
)

//go:noinline
func parkedWorker(ch <-chan struct{}, started *sync.WaitGroup) {
	started.Done()
	<-ch
}

//go:noinline
func sleeper(d time.Duration) {
	time.Sleep(d)
}

func main() {
	n := flag.Int("n", 100, "goroutines to park on a channel")
	flag.Parse()

	ch := make(chan struct{})
	var started sync.WaitGroup
	started.Add(*n)
	for i := 0; i < *n; i++ {
		go parkedWorker(ch, &started)
	}
	go sleeper(time.Hour)
	started.Wait()
	// Let the last workers get from Done to the channel receive.
	for i := 0; i < 10; i++ {
		runtime.Gosched()
	}
	time.Sleep(50 * time.Millisecond)

	w := bufio.NewWriter(os.Stdout)
	fmt.Fprintln(w, "ready")
	w.Flush()
	io.Copy(io.Discard, os.Stdin)
	close(ch)
}
