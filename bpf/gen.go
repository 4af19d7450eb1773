package bpf

// The compiled object and its Go bindings (goroutines_bpfel.{o,go}) are
// committed, so building this package needs no clang. Regenerate after
// editing csrc/ with `go generate ./bpf/` (clang >= 14).
//go:generate go run github.com/cilium/ebpf/cmd/bpf2go -cc clang -cflags "-O2 -g -Wall -Werror" -target bpfel -go-package bpf -type walk_config -type walk_result goroutines csrc/goroutines.bpf.c -- -I./csrc/include
