//go:build !cgo

package main

const haveCgo = false

// spinC needs cgo; run rejects -cgo without it.
func spinC(uint64) uint64 { return 0 }
