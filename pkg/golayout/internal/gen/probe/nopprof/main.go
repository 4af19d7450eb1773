// Command nopprof is a probe without runtime/pprof (and without a
// map[string]string of its own), like most production binaries: golayout must
// still derive the label layout for it from the Go version.
package main

import "os"

func main() {
	ch := make(chan int, 1)
	go func() { ch <- len(os.Args) }()
	os.Exit(<-ch - 1)
}
