//go:build linux

package kernels

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

var update = flag.Bool("update", false, "also run on the host kernel and write the table to docs/kernel-matrix.md and README.md")

// targetToolchains are the toolchains the bpf tests build their targets
// with (targetBinary and panickerBinary calls in bpf/*_test.go).
func targetToolchains() []string { return []string{"local", "go1.21.13", "go1.23.12"} }

// targetPrograms are the bpf tests' targets, each a module under
// bpf/testdata, prebuilt for the guests as targets/NAME-TOOLCHAIN (the
// tests take them from there with GOROSCOPE_TARGET_DIR): target for the
// walker, panicker for the panic probe.
func targetPrograms() []string { return []string{"target", "panicker"} }

// guestTests is bpf.test's -test.run in each kernel.
func guestTests() string {
	return "^(" + strings.Join(AllTests(), "|") + ")$"
}

// Limits of one kernel's run. Under TCG a kernel boots and runs the tests in
// 10-20 s. The kernels run one after the other (in parallel they would save
// a few seconds and take the cores the rest of make test needs), so even two
// timeouts keep TestKernelMatrix within five minutes.
const (
	guestMemMB   = 2048
	guestCPUs    = 2
	guestTimeout = 100 * time.Second             // bpf.test's -test.timeout
	vmTimeout    = guestTimeout + 40*time.Second // the whole boot
)

// TestKernelMatrix boots each kernel of Matrix() and runs the walker,
// sampler, exit tracer, panic probe and verifier budget tests of package
// bpf in it.
func TestKernelMatrix(t *testing.T) {
	if testing.Short() {
		t.Skip("boots kernels in qemu; skipped in -short mode")
	}
	ci := os.Getenv("CI") == "true"
	missing := func(err error) {
		t.Helper()
		if !ci && errors.Is(err, ErrMissing) {
			t.Skip(err)
		}
		t.Fatal(err)
	}
	qemu, err := exec.LookPath("qemu-system-x86_64")
	if err != nil {
		missing(fmt.Errorf("qemu-system-x86_64 not found (apt-get install qemu-system-x86): %w", ErrMissing))
	}
	ctx := context.Background()
	cache, err := CacheDir()
	if err != nil {
		t.Fatal(err)
	}
	fetch := &Fetcher{Dir: cache, Log: t.Logf}
	kernels := Matrix()
	images := make([]Image, len(kernels))
	for i, k := range kernels {
		if images[i], err = fetch.Fetch(ctx, k); err != nil {
			missing(err)
		}
		t.Logf("kernel %s: %s %s", k.Name, images[i].Package, images[i].Version)
	}

	start := time.Now()
	dir := t.TempDir()
	build(t, dir)
	initrd := filepath.Join(dir, "initramfs.cpio")
	writeInitramfs(t, dir, initrd)
	t.Logf("built bpf.test, targets and initramfs in %v", time.Since(start).Round(time.Millisecond))

	rows := make([]Row, len(kernels))
	for i, k := range kernels {
		t.Run(k.Name, func(t *testing.T) {
			vmDir := t.TempDir()
			began := time.Now()
			console, output, err := VM{
				Qemu: qemu, Kernel: images[i].Vmlinuz, Initrd: initrd,
				MemMB: guestMemMB, CPUs: guestCPUs, Dir: vmDir, Timeout: vmTimeout,
			}.Run(ctx)
			r := Parse(output)
			rows[i] = Row{Kernel: fmt.Sprintf("%s (Debian %s)", or(r.Kernel, images[i].Package), images[i].Version), Result: r}
			t.Logf("kernel %s (%s) ran in %v", k.Name, r.Kernel, time.Since(began).Round(time.Second))
			if err == nil {
				err = r.Err()
			}
			if err != nil {
				t.Errorf("kernel %s (%s): %v\n--- bpf.test output (tail):\n%s\n--- console (tail):\n%s",
					k.Name, images[i].Package, err, tail(output, 400), tail(console, 40))
			}
		})
	}
	if *update {
		rows = append(rows, hostRow(t, dir))
	}
	t.Logf("kernel matrix in %v:\n%s", time.Since(start).Round(time.Second), Table(rows))
	switch {
	case *update && t.Failed():
		t.Error("-update: docs left as they were, since the matrix failed")
	case *update:
		writeDocs(t, rows)
	}
}

// build puts into dir: init (the guest), bpf.test, and targets/NAME-TC
// for each of targetPrograms() and targetToolchains(), all static.
func build(t *testing.T, dir string) {
	t.Helper()
	run := func(srcDir string, env []string, args ...string) {
		t.Helper()
		cmd := exec.Command("go", args...)
		cmd.Dir = srcDir
		cmd.Env = append(append(os.Environ(), "CGO_ENABLED=0"), env...)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("go %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	run(".", nil, "build", "-o", filepath.Join(dir, "init"), "./guest")
	run("../../bpf", nil, "test", "-c", "-o", filepath.Join(dir, "bpf.test"), ".")
	for _, prog := range targetPrograms() {
		for _, tc := range targetToolchains() {
			// As bpf's targetBinary and panickerBinary build them:
			// unstripped, non-PIE.
			run("../../bpf/testdata/"+prog, []string{"GOTOOLCHAIN=" + tc, "GOFLAGS="},
				"build", "-buildmode=exe", "-o", filepath.Join(dir, "targets", prog+"-"+tc), ".")
		}
	}
}

// guestConfig is what the guest runs: bpf.test on the prebuilt targets,
// with CI=true so that nothing skips.
func guestConfig(targetDir string) GuestConfig {
	return GuestConfig{
		Program: "/bpf.test",
		Args: []string{"-test.v", "-test.count=1", "-test.run", guestTests(),
			"-test.timeout", guestTimeout.String()},
		Env: []string{"CI=true", "GOROSCOPE_TARGET_DIR=" + targetDir,
			"PATH=/bin", "HOME=/tmp", "TMPDIR=/tmp"},
		Dir:     "/",
		Output:  "/dev/ttyS1",
		Timeout: guestTimeout + 15*time.Second,
	}
}

// writeInitramfs packs the build in dir into an uncompressed initramfs.
func writeInitramfs(t *testing.T, dir, path string) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	c := NewCPIO(f)
	file := func(name, src string) error {
		in, err := os.Open(src)
		if err != nil {
			return err
		}
		defer in.Close()
		st, err := in.Stat()
		if err != nil {
			return err
		}
		return c.File(name, 0o755, in, st.Size())
	}
	cfg, err := json.Marshal(guestConfig("/targets"))
	if err != nil {
		t.Fatal(err)
	}
	steps := []error{
		c.Dir("bin", "dev", "proc", "sys", "tmp", "targets"),
		c.CharDev("dev/console", 0o600, 5, 1),
		file("init", filepath.Join(dir, "init")),
		c.Symlink("bin/true", "/init"),
		file("bpf.test", filepath.Join(dir, "bpf.test")),
		c.File("guest.json", 0o644, bytes.NewReader(cfg), int64(len(cfg))),
	}
	for _, prog := range targetPrograms() {
		for _, tc := range targetToolchains() {
			name := "targets/" + prog + "-" + tc
			steps = append(steps, file(name, filepath.Join(dir, name)))
		}
	}
	steps = append(steps, c.Close(), f.Close())
	if err := errors.Join(steps...); err != nil {
		t.Fatalf("initramfs: %v", err)
	}
}

// hostRow runs the guest's bpf.test on this machine's kernel.
func hostRow(t *testing.T, dir string) Row {
	t.Helper()
	var uts unix.Utsname
	if err := unix.Uname(&uts); err != nil {
		t.Fatal(err)
	}
	release := unix.ByteSliceToString(uts.Release[:])
	row := Row{Kernel: release + " (host)"}
	if os.Geteuid() != 0 {
		t.Errorf("-update needs root for the host kernel's row")
		return row
	}
	cfg := guestConfig(filepath.Join(dir, "targets"))
	ctx, cancel := context.WithTimeout(context.Background(), cfg.Timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, filepath.Join(dir, "bpf.test"), cfg.Args...)
	cmd.Env = append(os.Environ(), cfg.Env[:2]...) // CI and GOROSCOPE_TARGET_DIR
	out, err := cmd.CombinedOutput()
	row.Result = Parse(out)
	row.Result.Kernel, row.Result.Exited = release, true
	var exit *exec.ExitError
	switch {
	case errors.As(err, &exit):
		row.Result.Exit = exit.ExitCode()
	case err != nil:
		t.Fatalf("bpf.test on the host: %v", err)
	}
	// The host's own failures are package bpf's to report; here they only
	// make the table say "no".
	t.Logf("host kernel %s: bpf.test exit %d", release, row.Result.Exit)
	return row
}

// writeDocs writes the table to docs/kernel-matrix.md and into README.md
// between its kernel-matrix markers.
func writeDocs(t *testing.T, rows []Row) {
	t.Helper()
	table := Table(rows)
	doc := fmt.Sprintf(`# Kernel matrix

Written by `+"`make kernels`"+` (TestKernelMatrix in test/kernels, with -update)
on %s. Each Debian cloud kernel boots in qemu (TCG, %d vCPUs, %d MiB)
and runs the bpf tests with CI=true:

    bpf.test -test.run '%s'

The host row runs the same binary natively. "yes": every walker test
(%s), sampler test (%s), exit tracer test (%s) or panic probe
test (%s) passed.
Processed instructions and load times are the verifier's, as %s
logs them; under TCG loads take several times longer than on hardware.

%s`, time.Now().UTC().Format("2006-01-02"), guestCPUs, guestMemMB, guestTests(),
		strings.Join(WalkerTests(), ", "), strings.Join(SamplerTests(), ", "), strings.Join(ExitTests(), ", "),
		strings.Join(PanicTests(), ", "), BudgetTest, table)
	if err := os.WriteFile("../../docs/kernel-matrix.md", []byte(doc), 0o644); err != nil {
		t.Fatal(err)
	}
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	const begin, end = "<!-- kernel-matrix begin -->\n", "<!-- kernel-matrix end -->"
	before, rest, ok1 := strings.Cut(string(readme), begin)
	_, after, ok2 := strings.Cut(rest, end)
	if !ok1 || !ok2 {
		t.Fatalf("README.md lacks the markers %q and %q around the kernel table", strings.TrimSpace(begin), end)
	}
	if err := os.WriteFile("../../README.md", []byte(before+begin+table+end+after), 0o644); err != nil {
		t.Fatal(err)
	}
}

// tail returns the last n lines of b.
func tail(b []byte, n int) []byte {
	lines := bytes.SplitAfter(bytes.TrimRight(b, "\n"), []byte("\n"))
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return bytes.Join(lines, nil)
}
