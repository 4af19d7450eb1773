package bpf

import "github.com/cilium/ebpf"

// sumPerCPU reads the first n keys of a per-CPU array of uint64 counters
// (the programs' statistics maps) and sums each over the CPUs.
func sumPerCPU(m *ebpf.Map, n int) ([]uint64, error) {
	vals := make([]uint64, n)
	for i := range vals {
		var per []uint64
		if err := m.Lookup(uint32(i), &per); err != nil {
			return nil, err
		}
		for _, v := range per {
			vals[i] += v
		}
	}
	return vals, nil
}
