//go:build linux

// Command guest is /init of the kernel matrix's initramfs (see package
// kernels). It mounts the pseudo file systems BPF needs, brings up lo, runs
// the program that /guest.json names with its output on the second serial
// port, reports the exit status there and powers the machine off.
//
// Started as "true" (the initramfs links /bin/true to it) it exits 0, for
// tests that run true(1).
package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"time"

	"github.com/goroscope/goroscope/test/kernels"
	"golang.org/x/sys/unix"
)

// Marker starts every line the guest itself writes.
const Marker = kernels.GuestMarker

func main() {
	if filepath.Base(os.Args[0]) == "true" {
		os.Exit(0)
	}
	if os.Getpid() != 1 {
		fmt.Fprintln(os.Stderr, "guest: this is an initramfs /init; it mounts file systems and powers the machine off")
		os.Exit(2)
	}
	if err := run(); err != nil {
		fmt.Fprintf(os.Stderr, "%s error: %v\n", Marker, err)
	}
	unix.Sync()
	// Power off; should that fail, init exits, the kernel panics and, with
	// panic=-1 and qemu's -no-reboot, the machine stops all the same.
	if err := unix.Reboot(unix.LINUX_REBOOT_CMD_POWER_OFF); err != nil {
		fmt.Fprintf(os.Stderr, "%s power off: %v\n", Marker, err)
	}
	os.Exit(1)
}

func run() error {
	if err := mountAll(); err != nil {
		return err
	}
	if err := loUp(); err != nil {
		return err
	}
	b, err := os.ReadFile("/guest.json")
	if err != nil {
		return err
	}
	var c kernels.GuestConfig
	if err := json.Unmarshal(b, &c); err != nil {
		return fmt.Errorf("/guest.json: %w", err)
	}
	out, err := os.OpenFile(c.Output, os.O_WRONLY|unix.O_NOCTTY, 0)
	if err != nil {
		return fmt.Errorf("open output port: %w", err)
	}
	defer func() {
		// Wait until the port has sent everything: the machine stops next.
		_ = unix.IoctlSetInt(int(out.Fd()), unix.TCSBRK, 1) // if it fails, the tail may be lost: nothing to do about it
		out.Close()
	}()
	var uts unix.Utsname
	if err := unix.Uname(&uts); err != nil {
		return err
	}
	fmt.Fprintf(out, "%s kernel %s\n", Marker, unix.ByteSliceToString(uts.Release[:]))

	ctx, cancel := context.WithTimeout(context.Background(), c.Timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, c.Program, c.Args...)
	cmd.Env, cmd.Dir, cmd.Stdout, cmd.Stderr = c.Env, c.Dir, out, out
	start := time.Now()
	err = cmd.Run()
	code := 0
	var exit *exec.ExitError
	switch {
	case errors.As(err, &exit):
		code = exit.ExitCode()
	case err != nil:
		fmt.Fprintf(out, "%s error: %v\n", Marker, err)
		code = -1
	}
	if ctx.Err() != nil {
		fmt.Fprintf(out, "%s error: killed after the timeout %v\n", Marker, c.Timeout)
	}
	fmt.Fprintf(out, "%s exit %d after %.1fs\n", Marker, code, time.Since(start).Seconds())
	return nil
}

// mountAll mounts what BPF programs, perf events, memory cgroups and the Go
// runtime use.
func mountAll() error {
	for _, m := range []struct{ fstype, dir string }{
		{"devtmpfs", "/dev"},
		{"proc", "/proc"},
		{"sysfs", "/sys"},
		{"bpf", "/sys/fs/bpf"},
		{"debugfs", "/sys/kernel/debug"},
		{"tracefs", "/sys/kernel/tracing"},
		{"tmpfs", "/tmp"},
		{"cgroup2", "/sys/fs/cgroup"},
	} {
		if err := os.MkdirAll(m.dir, 0o755); err != nil {
			return err
		}
		if err := unix.Mount(m.fstype, m.dir, m.fstype, 0, ""); err != nil {
			return fmt.Errorf("mount %s on %s: %w", m.fstype, m.dir, err)
		}
	}
	// Memory cgroups for the children of the root (the exit tracer's OOM test).
	if err := os.WriteFile("/sys/fs/cgroup/cgroup.subtree_control", []byte("+memory"), 0o644); err != nil {
		return fmt.Errorf("enable the memory controller: %w", err)
	}
	return nil
}

// loUp sets the loopback interface up.
func loUp() error {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("socket for lo: %w", err)
	}
	defer unix.Close(fd)
	ifr, err := unix.NewIfreq("lo")
	if err != nil {
		return err
	}
	if err := unix.IoctlIfreq(fd, unix.SIOCGIFFLAGS, ifr); err != nil {
		return fmt.Errorf("lo flags: %w", err)
	}
	ifr.SetUint16(ifr.Uint16() | unix.IFF_UP | unix.IFF_RUNNING)
	if err := unix.IoctlIfreq(fd, unix.SIOCSIFFLAGS, ifr); err != nil {
		return fmt.Errorf("set lo up: %w", err)
	}
	return nil
}
