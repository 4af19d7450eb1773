// Package golayout describes the Go runtime's data layouts and enumerations,
// per Go version, as needed by an outside reader of a live Go process's
// memory: the byte offsets of runtime.g, runtime.sudog, runtime.hchan,
// runtime.waitq and runtime.m, the representation of goroutine profiler
// labels, the goroutine status names and the wait-reason strings; and of the
// scheduler's and the GC's state: runtime.schedt, runtime.p,
// runtime.gcControllerState and runtime.mstats.
//
// Layouts come either from a binary's own DWARF (FromDWARF, exact for that
// build) or from built-in tables generated from the real toolchains
// (ForVersion, for stripped binaries). Only linux/amd64 is described.
//
// The tables in tables_gen.go are produced by internal/gen; regenerate them
// with `go generate ./pkg/golayout` after adding a toolchain.
//
// It is internal to goroscope, not meant for import outside this module
// (pkg/inproc is goroscope's one public API).
package golayout

//go:generate go run ./internal/gen -out tables_gen.go
