package gobin

import (
	"crypto/sha256"
	"encoding/hex"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"testing"
)

// testBuild is one way of building testdata/callers.
type testBuild struct {
	toolchain string // GOTOOLCHAIN value, "local" for the installed go
	flags     []string
	stripped  bool
	pie       bool
}

func (tb testBuild) name() string {
	n := tb.toolchain
	switch {
	case tb.pie && tb.stripped:
		n += "-pie-stripped"
	case tb.pie:
		n += "-pie"
	case tb.stripped:
		n += "-stripped"
	default:
		n += "-plain"
	}
	return n
}

// wantVersion is the GoVersion the build should report.
func (tb testBuild) wantVersion() string {
	if tb.toolchain == "local" {
		return runtime.Version()
	}
	return tb.toolchain
}

var toolchains = []string{"go1.21.13", "go1.22.12", "go1.23.12", "go1.24.13", "go1.25.8", "local"}

// testBuilds lists every toolchain × {plain, stripped}, plus PIE builds.
func testBuilds() []testBuild {
	var bs []testBuild
	for _, tc := range toolchains {
		bs = append(bs,
			testBuild{toolchain: tc},
			testBuild{toolchain: tc, flags: []string{"-ldflags=-s -w"}, stripped: true})
	}
	bs = append(bs,
		testBuild{toolchain: "local", flags: []string{"-buildmode=pie"}, pie: true},
		testBuild{toolchain: "local", flags: []string{"-buildmode=pie", "-ldflags=-s -w"}, pie: true, stripped: true},
		testBuild{toolchain: "go1.21.13", flags: []string{"-buildmode=pie", "-ldflags=-s -w"}, pie: true, stripped: true},
	)
	return bs
}

// sourceHash keys the build cache by the test program's source.
func sourceHash(t testing.TB) string {
	h := sha256.New()
	for _, f := range []string{"main.go", "go.mod"} {
		data, err := os.ReadFile(filepath.Join("testdata", "callers", f))
		if err != nil {
			t.Fatal(err)
		}
		h.Write(data)
	}
	return hex.EncodeToString(h.Sum(nil))[:12]
}

// buildCallers builds testdata/callers (cached under os.TempDir()/goroscope-testbins) and returns its path.
func buildCallers(t testing.TB, tb testBuild) string {
	t.Helper()
	if testing.Short() {
		t.Skip("builds Go programs; skipped in -short mode")
	}
	dir := filepath.Join(os.TempDir(), "goroscope-testbins", tb.name()+"-"+sourceHash(t))
	out := filepath.Join(dir, "callers")
	if _, err := os.Stat(out); err == nil {
		return out
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	src, err := filepath.Abs(filepath.Join("testdata", "callers"))
	if err != nil {
		t.Fatal(err)
	}
	tmp := out + ".tmp"
	args := append([]string{"build", "-o", tmp}, tb.flags...)
	cmd := exec.Command("go", append(args, ".")...)
	cmd.Dir = src
	cmd.Env = append(os.Environ(), "GOTOOLCHAIN="+tb.toolchain, "GOFLAGS=", "GOWORK=off", "CGO_ENABLED=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build %s: %v\n%s", tb.name(), err, b)
	}
	if err := os.Rename(tmp, out); err != nil {
		t.Fatal(err)
	}
	return out
}
