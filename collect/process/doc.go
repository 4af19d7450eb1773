// Package process gives goroscope's collectors access to other Go
// processes on the host: attaching to one (its pid, start time and a pidfd,
// so that a reused pid is not taken for it), reading its memory with
// process_vm_readv, what its executable says (the binary, the layout of its
// runtime structures, its runtime variables and wait reasons), and what
// every collector reads out of it: pprof label sets and symbols.
//
// collect/walk (goroutine snapshots), collect/cpu (CPU samples),
// collect/rtstate (the runtime's settings and health) and collect/discovery
// share it. Like all of collect/, it is internal to the
// goroscope binary, not meant for import outside this module: its API
// changes with the binary's needs.
package process
