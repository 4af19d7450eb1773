package main

import (
	"bufio"
	"os"
	"runtime"
	"strings"

	"golang.org/x/sys/unix"
)

// machine describes where the numbers were taken.
type machine struct {
	kernel, cpu, goVersion string
	cores                  int
	memGiB                 float64
}

func readMachine() machine {
	m := machine{cores: runtime.NumCPU(), goVersion: runtime.Version(), cpu: "unknown", kernel: "unknown"}
	var u unix.Utsname
	if err := unix.Uname(&u); err == nil {
		m.kernel = unix.ByteSliceToString(u.Sysname[:]) + " " + unix.ByteSliceToString(u.Release[:]) + " " + unix.ByteSliceToString(u.Machine[:])
	}
	if f, err := os.Open("/proc/cpuinfo"); err == nil {
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			if k, v, ok := strings.Cut(sc.Text(), ":"); ok && strings.TrimSpace(k) == "model name" {
				m.cpu = strings.TrimSpace(v)
				break
			}
		}
		f.Close()
	}
	var si unix.Sysinfo_t
	if err := unix.Sysinfo(&si); err == nil {
		m.memGiB = float64(si.Totalram) * float64(si.Unit) / (1 << 30)
	}
	return m
}
