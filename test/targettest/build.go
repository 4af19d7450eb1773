// Package targettest builds and runs the goroscope test targets (the Go
// programs under test/targets) with any installed Go toolchain, and reads
// their goroutine dumps and population descriptions.
package targettest

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// DefaultToolchains are the Go versions the tests run targets with, besides
// the local toolchain.
var DefaultToolchains = []string{"go1.21.13", "go1.22.12", "go1.23.12", "go1.24.13", "go1.25.8"}

// Toolchains returns the Go versions to test: DefaultToolchains plus the
// local one (runtime.Version()), or the comma-separated list in
// GOROSCOPE_GO_VERSIONS ("local" or "" there means the local toolchain).
func Toolchains() []string {
	list := append(append([]string(nil), DefaultToolchains...), runtime.Version())
	if env, ok := os.LookupEnv("GOROSCOPE_GO_VERSIONS"); ok {
		list = nil
		for _, v := range strings.Split(env, ",") {
			v = strings.TrimSpace(v)
			if v == "" || v == "local" {
				v = runtime.Version()
			}
			list = append(list, v)
		}
	}
	seen := map[string]bool{}
	out := list[:0]
	for _, v := range list {
		if !seen[v] {
			seen[v] = true
			out = append(out, v)
		}
	}
	return out
}

// BuildOpts selects how a target is built.
type BuildOpts struct {
	// GoVersion is the toolchain ("go1.22.12"); "" means the local one.
	GoVersion string
	// Stripped links with -ldflags='-s -w' (no symbol table, no DWARF).
	Stripped bool
	// PIE builds a position-independent executable (-buildmode=pie).
	PIE bool
	// Cgo builds with CGO_ENABLED=1 (default 0, a static binary).
	Cgo bool
}

// flagsName names the build variant in cache paths: "plain",
// "stripped-pie", "stripped-cgo", ...
func (o BuildOpts) flagsName() string {
	var parts []string
	if o.Stripped {
		parts = append(parts, "stripped")
	}
	if o.PIE {
		parts = append(parts, "pie")
	}
	if o.Cgo {
		parts = append(parts, "cgo")
	}
	if len(parts) == 0 {
		return "plain"
	}
	return strings.Join(parts, "-")
}

// TargetsDir returns the directory of the test/targets module.
func TargetsDir() (string, error) {
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		return "", fmt.Errorf("locate test/targets: runtime.Caller failed")
	}
	dir := filepath.Join(filepath.Dir(file), "..", "targets")
	if _, err := os.Stat(filepath.Join(dir, "go.mod")); err != nil {
		return "", fmt.Errorf("locate test/targets next to %s: %w", file, err)
	}
	return dir, nil
}

// Build builds test/targets/<pkg> with the requested toolchain and flags,
// without -trimpath (stacks show real file paths), and returns the
// binary's path. Binaries are cached under
// os.TempDir()/goroscope-testbins/<pkg>-<version>-<flags>/, keyed by a
// hash of the module's sources, so repeated runs are fast.
func Build(tb testing.TB, pkg string, o BuildOpts) string {
	tb.Helper()
	path, err := Compile(pkg, o)
	if err != nil {
		tb.Fatal(err)
	}
	return path
}

// Compile is Build outside a test (the benchmark harness).
func Compile(pkg string, o BuildOpts) (string, error) {
	if pkg == "" || strings.ContainsAny(pkg, `/\.`) {
		return "", fmt.Errorf("build target %q: want a directory name under test/targets, like \"population\"", pkg)
	}
	dir, err := TargetsDir()
	if err != nil {
		return "", err
	}
	version := o.GoVersion
	if version == "" {
		version = runtime.Version()
	}
	sum, err := hashSources(dir, pkg)
	if err != nil {
		return "", err
	}
	cacheDir := filepath.Join(os.TempDir(), "goroscope-testbins", fmt.Sprintf("%s-%s-%s", pkg, version, o.flagsName()))
	bin := filepath.Join(cacheDir, pkg+"-"+sum)
	if st, err := os.Stat(bin); err == nil && st.Mode().IsRegular() {
		return bin, nil
	}
	if err := os.MkdirAll(cacheDir, 0o755); err != nil {
		return "", fmt.Errorf("create build cache dir: %w", err)
	}
	tmp, err := os.CreateTemp(cacheDir, pkg+".tmp-*")
	if err != nil {
		return "", fmt.Errorf("create temp binary: %w", err)
	}
	tmp.Close()
	defer os.Remove(tmp.Name())

	args := []string{"build", "-o", tmp.Name()}
	if o.Stripped {
		args = append(args, "-ldflags=-s -w")
	}
	if o.PIE {
		args = append(args, "-buildmode=pie")
	}
	args = append(args, "./"+pkg)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, goCommand(), args...)
	cmd.Dir = dir
	cgo := "0"
	if o.Cgo {
		cgo = "1"
	}
	toolchain := version
	if version == runtime.Version() {
		toolchain = "local"
	}
	cmd.Env = append(os.Environ(), "GOTOOLCHAIN="+toolchain, "GOWORK=off", "GOFLAGS=", "CGO_ENABLED="+cgo)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("build %s with %s (%s): go %s: %w\n%s",
			pkg, version, o.flagsName(), strings.Join(args, " "), err, out.String())
	}
	if err := os.Rename(tmp.Name(), bin); err != nil {
		return "", fmt.Errorf("move built %s into the cache: %w", pkg, err)
	}
	return bin, nil
}

// goCommand returns the go command on PATH (go test puts its own GOROOT/bin
// first), falling back to $GOROOT/bin/go.
func goCommand() string {
	if p, err := exec.LookPath("go"); err == nil {
		return p
	}
	if root := os.Getenv("GOROOT"); root != "" {
		return filepath.Join(root, "bin", "go")
	}
	return "go" // not found: running it says so
}

// hashSources hashes go.mod and every file of the target's directory and
// of the packages all targets share (internal/).
func hashSources(dir, pkg string) (string, error) {
	var files []string
	files = append(files, filepath.Join(dir, "go.mod"))
	const maxFiles = 1000
	for _, sub := range []string{pkg, "internal"} {
		err := filepath.WalkDir(filepath.Join(dir, sub), func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if d.Type().IsRegular() {
				files = append(files, p)
			}
			if len(files) > maxFiles {
				return fmt.Errorf("more than %d files", maxFiles)
			}
			return nil
		})
		if err != nil {
			return "", fmt.Errorf("list sources of target %s: %w", pkg, err)
		}
	}
	sort.Strings(files)
	h := sha256.New()
	for _, f := range files {
		rel, _ := filepath.Rel(dir, f)
		fmt.Fprintf(h, "%s\x00", rel)
		fd, err := os.Open(f)
		if err != nil {
			return "", fmt.Errorf("hash sources of target %s: %w", pkg, err)
		}
		_, err = io.Copy(h, fd)
		fd.Close()
		if err != nil {
			return "", fmt.Errorf("hash %s: %w", f, err)
		}
	}
	return hex.EncodeToString(h.Sum(nil))[:16], nil
}

// PrivateDir is where Private copies executables for this process: a
// directory of its own under os.TempDir()/goroscope-private, named by the
// pid. An agent a test runs can watch exactly the targets of its own test
// binary with a discovery rule on it: the go tool runs the test binaries
// of several packages at once, and they start the same cached targets.
func PrivateDir() string {
	return filepath.Join(os.TempDir(), "goroscope-private", strconv.Itoa(os.Getpid()))
}

// Private copies the executable bin (from Build) into PrivateDir, once per
// test process, and returns the copy's path. The directories of test
// processes that no longer run are removed when a new one is made.
func Private(tb testing.TB, bin string) string {
	tb.Helper()
	dir := PrivateDir()
	if _, err := os.Stat(dir); errors.Is(err, fs.ErrNotExist) {
		removeStalePrivate(filepath.Dir(dir))
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		tb.Fatalf("private copy of %s: %v", bin, err)
	}
	dst := filepath.Join(dir, filepath.Base(bin))
	if _, err := os.Stat(dst); err == nil {
		return dst
	}
	src, err := os.ReadFile(bin)
	if err != nil {
		tb.Fatalf("private copy of %s: %v", bin, err)
	}
	// Write then rename: tests running in parallel may copy it at once.
	tmp, err := os.CreateTemp(dir, filepath.Base(bin)+".tmp-*")
	if err != nil {
		tb.Fatalf("private copy of %s: %v", bin, err)
	}
	_, werr := tmp.Write(src)
	cerr := tmp.Close()
	if err := errors.Join(werr, cerr, os.Chmod(tmp.Name(), 0o755), os.Rename(tmp.Name(), dst)); err != nil {
		os.Remove(tmp.Name())
		tb.Fatalf("private copy of %s: %v", bin, err)
	}
	return dst
}

// removeStalePrivate removes the directories under root of test processes
// that no longer run.
func removeStalePrivate(root string) {
	entries, _ := os.ReadDir(root)
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid <= 0 {
			continue
		}
		if err := syscall.Kill(pid, 0); errors.Is(err, syscall.ESRCH) {
			os.RemoveAll(filepath.Join(root, e.Name()))
		}
	}
}
