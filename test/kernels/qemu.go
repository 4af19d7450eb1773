package kernels

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// VM is one boot of a kernel with an initramfs under qemu's TCG (no KVM):
// the kernel console on the first serial port, the guest's output on the
// second. It runs under nice(1) (coreutils).
type VM struct {
	Qemu    string // qemu-system-x86_64
	Kernel  string // vmlinuz
	Initrd  string
	MemMB   int
	CPUs    int
	Dir     string // for console.log and output.log
	Timeout time.Duration
}

// Run boots the VM and waits until it powers off. console and output are
// what the two serial ports received, with \r\n turned into \n.
func (vm VM) Run(ctx context.Context) (console, output []byte, err error) {
	consoleLog := filepath.Join(vm.Dir, "console.log")
	outputLog := filepath.Join(vm.Dir, "output.log")
	ctx, cancel := context.WithTimeout(ctx, vm.Timeout)
	defer cancel()
	// One host thread for all vCPUs, at the lowest priority: make test runs
	// the host's own BPF tests beside the VM, and their CPU sampling test
	// needs a core. The guests' tests take the same time either way (a
	// kernel's run is 10-20 s).
	cmd := exec.CommandContext(ctx, "nice", "-n", "19", vm.Qemu,
		"-accel", "tcg,thread=single", "-cpu", "max",
		"-m", strconv.Itoa(vm.MemMB), "-smp", strconv.Itoa(vm.CPUs),
		"-nodefaults", "-display", "none", "-no-reboot",
		"-kernel", vm.Kernel, "-initrd", vm.Initrd,
		// quiet: only warnings and worse on the console; panic=-1: a panic
		// reboots, which -no-reboot turns into qemu's exit.
		"-append", "console=ttyS0 quiet panic=-1",
		"-serial", "file:"+consoleLog,
		"-serial", "file:"+outputLog,
	)
	cmd.WaitDelay = 10 * time.Second
	var stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stderr, &stderr
	err = cmd.Run()
	console, _ = os.ReadFile(consoleLog)
	output, _ = os.ReadFile(outputLog)
	console = bytes.ReplaceAll(console, []byte("\r\n"), []byte("\n"))
	output = bytes.ReplaceAll(output, []byte("\r\n"), []byte("\n"))
	switch {
	case errors.Is(ctx.Err(), context.DeadlineExceeded):
		err = fmt.Errorf("qemu still running after %v: killed", vm.Timeout)
	case err != nil:
		err = fmt.Errorf("qemu: %w: %s", err, strings.TrimSpace(stderr.String()))
	}
	return console, output, err
}
