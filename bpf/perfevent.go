//go:build linux

package bpf

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"unsafe"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
	"golang.org/x/sys/unix"
)

// maxCPUs bounds the CPUs a sampler opens events on.
const maxCPUs = 1 << 14

// cpuEvent is one CPU's perf event with the sampling program attached.
type cpuEvent struct {
	cpu  int
	fd   int
	link link.Link // nil when attached with PERF_EVENT_IOC_SET_BPF
}

func (e *cpuEvent) close() error {
	var err error
	if e.link != nil {
		err = e.link.Close()
	}
	return errors.Join(err, unix.Close(e.fd))
}

// openCPUClock opens a CPU-clock software event on cpu that samples every
// task running there freq times per second of CPU time. The kernel turns the
// frequency of a CPU-clock event into the fixed period 1e9/freq ns.
func openCPUClock(cpu, freq int) (int, error) {
	attr := unix.PerfEventAttr{
		Type:   unix.PERF_TYPE_SOFTWARE,
		Config: unix.PERF_COUNT_SW_CPU_CLOCK,
		Size:   uint32(unsafe.Sizeof(unix.PerfEventAttr{})),
		Sample: uint64(freq),
		Bits:   unix.PerfBitFreq,
	}
	fd, err := unix.PerfEventOpen(&attr, -1, cpu, -1, unix.PERF_FLAG_FD_CLOEXEC)
	if err != nil {
		switch {
		case errors.Is(err, unix.EACCES) || errors.Is(err, unix.EPERM):
			return -1, fmt.Errorf("open CPU-clock perf event on CPU %d: %w (run as root or with CAP_PERFMON; kernel.perf_event_paranoid limits unprivileged use)", cpu, err)
		case errors.Is(err, unix.EINVAL):
			return -1, fmt.Errorf("open CPU-clock perf event on CPU %d at %d Hz: %w (is the rate above kernel.perf_event_max_sample_rate?)", cpu, freq, err)
		}
		return -1, fmt.Errorf("open CPU-clock perf event on CPU %d: %w", cpu, err)
	}
	return fd, nil
}

// attachPerfEvent attaches prog to the perf event fd with a BPF link (Linux
// >= 5.15), or with PERF_EVENT_IOC_SET_BPF on older kernels, and enables it.
func attachPerfEvent(cpu, fd int, prog *ebpf.Program) (*cpuEvent, error) {
	l, err := link.AttachRawLink(link.RawLinkOptions{Target: fd, Program: prog, Attach: ebpf.AttachPerfEvent})
	if err == nil {
		if err := unix.IoctlSetInt(fd, unix.PERF_EVENT_IOC_ENABLE, 0); err != nil {
			l.Close()
			return nil, fmt.Errorf("enable perf event on CPU %d: %w", cpu, err)
		}
		return &cpuEvent{cpu: cpu, fd: fd, link: l}, nil
	}
	if ierr := unix.IoctlSetInt(fd, unix.PERF_EVENT_IOC_SET_BPF, prog.FD()); ierr != nil {
		return nil, fmt.Errorf("attach CPU sampler to the perf event of CPU %d: link: %v; ioctl: %w", cpu, err, ierr)
	}
	if err := unix.IoctlSetInt(fd, unix.PERF_EVENT_IOC_ENABLE, 0); err != nil {
		return nil, fmt.Errorf("enable perf event on CPU %d: %w", cpu, err)
	}
	return &cpuEvent{cpu: cpu, fd: fd}, nil
}

// onlineCPUs lists the online CPUs from /sys/devices/system/cpu/online.
func onlineCPUs() ([]int, error) {
	b, err := os.ReadFile("/sys/devices/system/cpu/online")
	if err != nil {
		return nil, fmt.Errorf("list online CPUs: %w", err)
	}
	cpus, err := parseCPUList(strings.TrimSpace(string(b)))
	if err != nil {
		return nil, fmt.Errorf("list online CPUs: /sys/devices/system/cpu/online: %w", err)
	}
	return cpus, nil
}

// parseCPUList parses the kernel's CPU list format ("0-3,8,10-11").
func parseCPUList(s string) ([]int, error) {
	var cpus []int
	if s == "" {
		return nil, errors.New("empty CPU list")
	}
	for _, part := range strings.Split(s, ",") {
		lo, hi, isRange := strings.Cut(part, "-")
		a, err := strconv.Atoi(lo)
		if err != nil || a < 0 {
			return nil, fmt.Errorf("bad CPU %q in %q", lo, s)
		}
		b := a
		if isRange {
			if b, err = strconv.Atoi(hi); err != nil || b < a {
				return nil, fmt.Errorf("bad CPU range %q in %q", part, s)
			}
		}
		if b >= maxCPUs || len(cpus)+b-a+1 > maxCPUs {
			return nil, fmt.Errorf("more than %d CPUs in %q", maxCPUs, s)
		}
		for c := a; c <= b; c++ {
			cpus = append(cpus, c)
		}
	}
	return cpus, nil
}
