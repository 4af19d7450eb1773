// Package kernels runs the eBPF tests of package bpf on other Linux kernels:
// Debian's 6.1 and 6.12 cloud kernels, booted in qemu (TCG, no KVM needed)
// with an initramfs whose /init (the program in ./guest) runs a prebuilt
// bpf.test and reports on a serial port.
//
// TestKernelMatrix builds the guest, bpf.test and the Go targets on the
// host, fetches the kernels (apt-get download, cached under
// $GOROSCOPE_KERNEL_CACHE or the user cache directory), boots each one and
// prints a table: kernel, whether the goroutine walker, the CPU sampler, the
// exit tracer and the panic probe work there, and the verifier's processed
// instructions and load time per program. With -update it also writes that table to
// docs/kernel-matrix.md and README.md, with a row for the host kernel.
//
// Under CI=true every missing piece (qemu, a kernel package) and every
// failing kernel is a test failure; elsewhere missing pieces skip the test.
package kernels
