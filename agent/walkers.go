package main

import (
	"fmt"
	"log/slog"

	"github.com/goroscope/goroscope/collect/walk"
)

// walkers opens the goroutine walkers a --walker flag asks for. With
// "auto" the eBPF walker is preferred and the userspace one serves when BPF
// cannot load (old kernel, no privileges); the reason is logged once.
type walkers struct {
	ebpf    *walk.EBPFWalker
	procmem walk.ProcMemWalker
	mode    string
	ebpfErr error
}

func openWalkers(mode string, log *slog.Logger) (*walkers, error) {
	w := &walkers{mode: mode}
	switch mode {
	case "procmem":
		return w, nil
	case "ebpf", "auto":
		e, err := walk.NewEBPFWalker()
		if err != nil {
			if mode == "ebpf" {
				return nil, err
			}
			w.ebpfErr = err
			log.Info("eBPF walker unavailable, using procmem (process_vm_readv)", "reason", err)
			return w, nil
		}
		w.ebpf = e
		return w, nil
	}
	return nil, usageError{fmt.Sprintf("--walker %q: want auto, ebpf or procmem", mode)}
}

// pick returns the walker to use.
func (w *walkers) pick() walk.Walker {
	if w.ebpf != nil {
		return w.ebpf
	}
	return w.procmem
}

func (w *walkers) Close() {
	if w.ebpf != nil {
		w.ebpf.Close()
	}
}
