//go:build cgo

package main

/*
#cgo CFLAGS: -O2 -fomit-frame-pointer

// spin_c burns n rounds; compiled without frame pointers, and using rbp as
// a scratch register, like optimised C libraries.
static unsigned long spin_c(unsigned long n) {
	unsigned long x = n;
	unsigned long i;
	for (i = 0; i < n; i++) {
		unsigned long t = x * 6364136223846793005UL + i;
		__asm__ volatile("mov %1, %%rbp\n\tmov %%rbp, %0" : "=r"(x) : "r"(t) : "rbp");
	}
	return x;
}
*/
import "C"

const haveCgo = true

// spinC spins in C.
func spinC(n uint64) uint64 { return uint64(C.spin_c(C.ulong(n))) }
