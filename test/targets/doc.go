// Package targets holds small Go programs that the goroscope tests profile.
//
// It is its own module with no dependencies so that every toolchain from
// go1.21 to the newest one builds it. Each program lives in a subdirectory:
//
//   - population: a known goroutine population in every common state,
//     with net/http/pprof and a /population description endpoint.
//   - latency: parks many goroutines and measures its own scheduling
//     latency, for the benchmark of what being observed costs a program.
//   - cpuburn: burns CPU in a known function in goroutines, some under
//     pprof labels, optionally in assembly, cgo or system calls, for the
//     CPU sampler's tests.
//   - pprofload: exact allocations, mutex contentions and blocking events on
//     request, for the pprof scraper's delta tests.
//   - selectchurn: thousands of idle goroutines on one channel and a few
//     that wake every 2 ms in a select on a timer and a stop channel, for
//     the blocked_on re-check of goroutines that move during a walk.
//   - execer: parks goroutines in one function and, on SIGUSR1, exec's
//     another program under the same pid, for the detection of exec.
//   - leaky: -mode picks a leak written the way people write them (a send
//     after a timeout, a range over a channel never closed, a context never
//     cancelled, a mutex held across a wait, a ticker per request), a
//     deadlock, or a healthy program that must stay silent (a worker pool,
//     churn, bursts, connection readers), for the findings.
//   - rtmetrics: a live heap, background allocations, settings changed on
//     request and its own runtime/metrics answered at a quiescent moment, and
//     run queues of a known length, for the reads of the runtime's settings
//     and health from outside (collect/rtstate).
//   - exiter: ends on request the way -mode says (an exit code, a return
//     from main, a panic, a nil dereference, a fault, a deadlock, running
//     out of memory, os.Exit from another thread, an exec first), for the
//     exit detection (collect/exits).
//   - panicker: dies on request the way -mode says (a panic of every kind
//     of value, a runtime error, a nil map write, concurrent map writes, a
//     deadlock, a sync misuse, a runtime.throw, a stack overflow, a fault
//     through unsafe, chains of panics, os.Exit, an OOM), for the panic
//     probe (collect/panics) and the agent's crash records.
//   - requestloop: a request loop that decodes and encodes JSON, starts
//     goroutines, keeps a live heap and recovers from a panic in one
//     request in four, for the benchmark of what the crash probes cost.
package targets
