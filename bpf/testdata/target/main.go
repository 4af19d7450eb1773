// Command target parks -n goroutines on a channel, prints "ready", and waits
// for its stdin to close. It is the walk target of the bpf package's tests.
//
// Commands on stdin, each answered with "ok" once done:
//
//	poke     wakes each of the -poke goroutines of pokedWorker once; each
//	         parks again where it was
//	spawn N  starts N more parkedWorker goroutines
package main

import (
	"bufio"
	"flag"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"time"
)

//go:noinline
func parkedWorker(ch <-chan struct{}, started *sync.WaitGroup) {
	started.Done()
	<-ch
}

// pokedWorker parks on poke, and after each wake-up parks there again.
//
//go:noinline
func pokedWorker(poke <-chan struct{}, woken *sync.WaitGroup) {
	woken.Done()
	for range poke {
		woken.Done()
	}
}

//go:noinline
func sleeper(d time.Duration) {
	time.Sleep(d)
}

// settle lets goroutines that were just started or woken reach their park.
func settle() {
	for i := 0; i < 10; i++ {
		runtime.Gosched()
	}
	time.Sleep(50 * time.Millisecond)
}

func main() {
	n := flag.Int("n", 100, "goroutines to park on a channel")
	npoke := flag.Int("poke", 0, "goroutines that the poke command wakes")
	flag.Parse()

	ch := make(chan struct{})
	poke := make(chan struct{})
	var started, woken sync.WaitGroup
	started.Add(*n)
	for i := 0; i < *n; i++ {
		go parkedWorker(ch, &started)
	}
	woken.Add(*npoke)
	for i := 0; i < *npoke; i++ {
		go pokedWorker(poke, &woken)
	}
	go sleeper(time.Hour)
	started.Wait()
	woken.Wait()
	// Let the last workers get from Done to the channel receive.
	settle()

	w := bufio.NewWriter(os.Stdout)
	fmt.Fprintln(w, "ready")
	w.Flush()
	in := bufio.NewScanner(os.Stdin)
	for in.Scan() {
		switch cmd := strings.Fields(in.Text()); {
		case len(cmd) == 1 && cmd[0] == "poke":
			// The channel queues receivers in order and a woken worker
			// parks again at the back: each worker wakes exactly once.
			woken.Add(*npoke)
			for i := 0; i < *npoke; i++ {
				poke <- struct{}{}
			}
			woken.Wait()
		case len(cmd) == 2 && cmd[0] == "spawn":
			k, err := strconv.Atoi(cmd[1])
			if err != nil || k < 0 || k > 1<<20 {
				fmt.Fprintf(os.Stderr, "target: bad spawn count %q\n", cmd[1])
				os.Exit(2)
			}
			started.Add(k)
			for i := 0; i < k; i++ {
				go parkedWorker(ch, &started)
			}
			started.Wait()
		default:
			fmt.Fprintf(os.Stderr, "target: unknown command %q\n", in.Text())
			os.Exit(2)
		}
		settle()
		fmt.Fprintln(w, "ok")
		w.Flush()
	}
	close(ch)
}
