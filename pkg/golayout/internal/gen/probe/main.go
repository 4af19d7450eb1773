// Command probe is a tiny program built with each supported Go toolchain so
// that the golayout generator and tests can read the runtime's layouts out of
// its DWARF. It uses channels, select, a map[string]string and pprof labels
// so that every type golayout needs is kept by the linker.
package main

import (
	"context"
	"fmt"
	"os"
	"runtime/pprof"
	"sync"
)

func main() {
	m := map[string]string{"k": "v"}
	ch := make(chan int, 1)
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	pprof.Do(context.Background(), pprof.Labels("probe", "yes"), func(ctx context.Context) {
		go func() {
			defer wg.Done()
			select {
			case v := <-ch:
				m["got"] = fmt.Sprint(v)
			case <-done:
			}
		}()
	})
	ch <- len(os.Args)
	wg.Wait()
	close(done)
	fmt.Println(len(m))
}
