package bpf

// The compiled objects and their Go bindings (goroutines_bpfel.{o,go},
// cpu_bpfel.{o,go}, exits_bpfel.{o,go} and panics_bpfel.{o,go}) are
// committed, so building this package needs no clang.
// Regenerate after editing csrc/ with `go generate ./bpf/` (clang >= 14).
//go:generate go run github.com/cilium/ebpf/cmd/bpf2go -cc clang -cflags "-O2 -g -Wall -Werror" -target bpfel -go-package bpf -type walk_config -type walk_result -type walk_state -type rec_hdr -type rec_flag goroutines csrc/goroutines.bpf.c -- -I./csrc/include
//go:generate go run github.com/cilium/ebpf/cmd/bpf2go -cc clang -cflags "-O2 -g -Wall -Werror" -target bpfel -go-package bpf -type cpu_proc -type cpu_key -type cpu_stack -type proc_flag -type sample_flag cpu csrc/cpu.bpf.c -- -I./csrc/include
//go:generate go run github.com/cilium/ebpf/cmd/bpf2go -cc clang -cflags "-O2 -g -Wall -Werror" -target bpfel -go-package bpf -type exit_event -type exit_watch -type exit_flag exits csrc/exits.bpf.c -- -I./csrc/include
//go:generate go run github.com/cilium/ebpf/cmd/bpf2go -cc clang -cflags "-O2 -g -Wall -Werror" -target bpfel -go-package bpf -type panic_event -type panic_kind panics csrc/panics.bpf.c -- -I./csrc/include
