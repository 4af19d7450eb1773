// Package spin holds cpuburn's assembly spinner; it is its own package
// because a package using cgo cannot have Go assembly files.
package spin

// Asm spins n (> 0) rounds using BP and R14 as scratch registers, as
// hand-written assembly and C code may: inside it BP is no frame pointer and
// R14 is not g. It is in spin_amd64.s.
func Asm(n uint64) uint64
