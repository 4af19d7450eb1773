package gobin

import (
	"crypto/sha256"
	"encoding/hex"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// testBuild is one way of building testdata/callers.
type testBuild struct {
	toolchain string // GOTOOLCHAIN value, "local" for the installed go
	pie       bool   // -buildmode=pie
	external  bool   // -ldflags=-linkmode=external (cgo enabled, gcc links)
	stripped  bool   // -ldflags=-s -w
}

func (tb testBuild) name() string {
	n := tb.toolchain
	if tb.pie {
		n += "-pie"
	}
	if tb.external {
		n += "-ext"
	}
	if tb.stripped {
		n += "-stripped"
	}
	if !tb.pie && !tb.external && !tb.stripped {
		n += "-plain"
	}
	return n
}

// flags returns the go build flags of the build.
func (tb testBuild) flags() []string {
	var fl, ld []string
	if tb.pie {
		fl = append(fl, "-buildmode=pie")
	}
	if tb.stripped {
		ld = append(ld, "-s", "-w")
	}
	if tb.external {
		ld = append(ld, "-linkmode=external")
	}
	if len(ld) > 0 {
		fl = append(fl, "-ldflags="+strings.Join(ld, " "))
	}
	return fl
}

// wantVersion is the GoVersion the build should report.
func (tb testBuild) wantVersion() string {
	if tb.toolchain == "local" {
		return runtime.Version()
	}
	return tb.toolchain
}

var toolchains = []string{"go1.21.13", "go1.22.12", "go1.23.12", "go1.24.13", "go1.25.8", "local"}

// testBuilds lists every toolchain × {internal, external linker} × {exe, PIE} × {plain, stripped}.
// Go 1.25 and earlier PIE builds by the external linker have no .gopclntab section; stripped, no
// symbols either.
func testBuilds() []testBuild {
	var bs []testBuild
	for _, tc := range toolchains {
		for _, ext := range []bool{false, true} {
			for _, pie := range []bool{false, true} {
				for _, stripped := range []bool{false, true} {
					bs = append(bs, testBuild{toolchain: tc, pie: pie, external: ext, stripped: stripped})
				}
			}
		}
	}
	return bs
}

// sourceHash keys the build cache by the source of the test program
// testdata/NAME.
func sourceHash(t testing.TB, name string) string {
	h := sha256.New()
	for _, f := range []string{"main.go", "go.mod"} {
		data, err := os.ReadFile(filepath.Join("testdata", name, f))
		if err != nil {
			t.Fatal(err)
		}
		h.Write(data)
	}
	return hex.EncodeToString(h.Sum(nil))[:12]
}

// buildCallers builds testdata/callers (buildTestdata).
func buildCallers(t testing.TB, tb testBuild) string {
	t.Helper()
	return buildTestdata(t, "callers", tb)
}

// buildTestdata builds the test program testdata/NAME as tb says (cached
// under os.TempDir()/goroscope-testbins) and returns its path. Concurrent
// calls for one build are safe: each builds into its own temporary file.
func buildTestdata(t testing.TB, name string, tb testBuild) string {
	t.Helper()
	if testing.Short() {
		t.Skip("builds Go programs; skipped in -short mode")
	}
	key := tb.name() + "-" + sourceHash(t, name)
	if name != "callers" {
		key = name + "-" + key
	}
	dir := filepath.Join(os.TempDir(), "goroscope-testbins", key)
	out := filepath.Join(dir, name)
	if _, err := os.Stat(out); err == nil {
		return out
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	src, err := filepath.Abs(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	tmp, err := os.CreateTemp(dir, name+".tmp*")
	if err != nil {
		t.Fatal(err)
	}
	tmp.Close()
	defer os.Remove(tmp.Name())
	args := append([]string{"build", "-o", tmp.Name()}, tb.flags()...)
	cmd := exec.Command("go", append(args, ".")...)
	cmd.Dir = src
	cgo := "0"
	if tb.external {
		cgo = "1" // Go 1.22+ refuse -linkmode=external without cgo
	}
	cmd.Env = append(os.Environ(), "GOTOOLCHAIN="+tb.toolchain, "GOFLAGS=", "GOWORK=off", "CGO_ENABLED="+cgo)
	if b, err := cmd.CombinedOutput(); err != nil {
		hint := ""
		if tb.external {
			hint = " (the external linker needs a C compiler: apt-get install gcc)"
		}
		t.Fatalf("build %s %s: go %s: %v%s\n%s", name, tb.name(), strings.Join(args[3:], " "), err, hint, b)
	}
	if err := os.Rename(tmp.Name(), out); err != nil {
		t.Fatal(err)
	}
	return out
}
