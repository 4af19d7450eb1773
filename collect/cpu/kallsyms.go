package cpu

import (
	"bufio"
	"cmp"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"strings"
)

// maxKallsyms bounds the symbols read from /proc/kallsyms.
const maxKallsyms = 1 << 22

// kernelFile is the file name given to kernel frames, as perf names them.
const kernelFile = "[kernel.kallsyms]"

// kallsyms symbolises kernel addresses with the text symbols of
// /proc/kallsyms (sorted by address).
type kallsyms struct {
	addrs []uint64
	names []string
}

// loadKallsyms reads /proc/kallsyms. Without the privilege to see kernel
// addresses (kernel.kptr_restrict) every address reads as 0: an error.
func loadKallsyms() (*kallsyms, error) {
	f, err := os.Open("/proc/kallsyms")
	if err != nil {
		return nil, fmt.Errorf("read kernel symbols: %w", err)
	}
	defer f.Close()
	k, err := parseKallsyms(f)
	if err != nil {
		return nil, fmt.Errorf("read kernel symbols from /proc/kallsyms: %w", err)
	}
	return k, nil
}

func parseKallsyms(r io.Reader) (*kallsyms, error) {
	type sym struct {
		addr uint64
		name string
	}
	var syms []sym
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 4096), 1<<16)
	for sc.Scan() {
		if len(syms) >= maxKallsyms {
			return nil, fmt.Errorf("more than %d symbols", maxKallsyms)
		}
		// "ffffffff81000000 T _stext [module]"
		line := sc.Text()
		a, rest, ok1 := strings.Cut(line, " ")
		typ, name, ok2 := strings.Cut(rest, " ")
		if !ok1 || !ok2 || len(typ) != 1 {
			continue
		}
		switch typ[0] {
		case 't', 'T', 'w', 'W':
		default:
			continue
		}
		addr, err := strconv.ParseUint(a, 16, 64)
		if err != nil || addr == 0 {
			continue
		}
		name, _, _ = strings.Cut(name, "\t")
		syms = append(syms, sym{addr, name})
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if len(syms) == 0 {
		return nil, errors.New("no kernel text symbols with addresses (kernel.kptr_restrict hides them without CAP_SYSLOG)")
	}
	slices.SortFunc(syms, func(a, b sym) int { return cmp.Compare(a.addr, b.addr) })
	k := &kallsyms{addrs: make([]uint64, len(syms)), names: make([]string, len(syms))}
	for i, s := range syms {
		k.addrs[i], k.names[i] = s.addr, s.name
	}
	return k, nil
}

// name returns the kernel function containing addr, or "[kernel]".
func (k *kallsyms) name(addr uint64) string {
	if k == nil {
		return "[kernel]"
	}
	i, found := slices.BinarySearch(k.addrs, addr)
	if !found {
		i--
	}
	if i < 0 {
		return "[kernel]"
	}
	return k.names[i]
}
