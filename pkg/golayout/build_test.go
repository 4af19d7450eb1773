package golayout

import (
	"bytes"
	"crypto/sha256"
	"debug/buildinfo"
	"debug/elf"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// testToolchains are the GOTOOLCHAIN values the build tests use, with the
// table each must match.
var testToolchains = []struct{ toolchain, table string }{
	{"go1.21.13", "go1.21"},
	{"go1.22.12", "go1.22"},
	{"go1.23.12", "go1.23"},
	{"go1.24.13", "go1.24"},
	{"go1.25.8", "go1.25"},
	{"local", "go1.26"},
}

const probeDir = "internal/gen/probe"

// buildProbe builds the probe with a toolchain and extra build flags,
// caching the binary under os.TempDir()/goroscope-testbins.
func buildProbe(t *testing.T, toolchain string, flags ...string) string {
	t.Helper()
	return buildProbePkg(t, toolchain, ".", flags...)
}

// buildProbePkg builds package pkg (relative to the probe module) like buildProbe.
func buildProbePkg(t *testing.T, toolchain, pkg string, flags ...string) string {
	t.Helper()
	if testing.Short() {
		t.Skip("builds the probe with a Go toolchain; skipped in -short mode")
	}
	src, err := os.ReadFile(filepath.Join(probeDir, pkg, "main.go"))
	if err != nil {
		t.Fatal(err)
	}
	key := sha256.Sum256([]byte(toolchain + "\x00" + pkg + "\x00" + strings.Join(flags, "\x00") + "\x00" + string(src)))
	dir := filepath.Join(os.TempDir(), "goroscope-testbins")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, fmt.Sprintf("golayout-probe-%s-%x", toolchain, key[:6]))
	if _, err := os.Stat(out); err == nil {
		return out
	}
	abs, err := filepath.Abs(out + ".tmp")
	if err != nil {
		t.Fatal(err)
	}
	args := append([]string{"build", "-o", abs}, flags...)
	cmd := exec.Command("go", append(args, pkg)...)
	cmd.Dir = probeDir
	cmd.Env = append(os.Environ(), "GOTOOLCHAIN="+toolchain, "GOWORK=off", "GOFLAGS=", "CGO_ENABLED=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build probe with %s %v: %v\n%s", toolchain, flags, err, b)
	}
	if err := os.Rename(abs, out); err != nil {
		t.Fatal(err)
	}
	return out
}

func normalized(l Layout) Layout {
	l.Source, l.GoVersion = "", ""
	return l
}

func TestFromDWARFMatchesTable(t *testing.T) {
	variants := []struct {
		name, pkg string
		flags     []string
	}{
		{"exe", ".", nil},
		{"pie", ".", []string{"-buildmode=pie"}},
		{"nopprof", "./nopprof", nil},
	}
	for _, tc := range testToolchains {
		for _, v := range variants {
			t.Run(tc.toolchain+"/"+v.name, func(t *testing.T) {
				bin := buildProbePkg(t, tc.toolchain, v.pkg, v.flags...)
				bi, err := buildinfo.ReadFile(bin)
				if err != nil {
					t.Fatal(err)
				}
				f, err := elf.Open(bin)
				if err != nil {
					t.Fatal(err)
				}
				defer f.Close()
				d, err := DWARFOf(f, bin)
				if err != nil {
					t.Fatal(err)
				}
				got, err := FromDWARF(d, bi.GoVersion)
				if err != nil {
					t.Fatal(err)
				}
				if got.Source != SourceDWARF || got.GoVersion != bi.GoVersion {
					t.Errorf("Source/GoVersion = %q/%q, want dwarf/%q", got.Source, got.GoVersion, bi.GoVersion)
				}
				want, err := ForVersion(bi.GoVersion)
				if err != nil {
					t.Fatal(err)
				}
				if want.GoVersion != tc.table {
					t.Errorf("table for %s is %s, want %s", bi.GoVersion, want.GoVersion, tc.table)
				}
				if !reflect.DeepEqual(normalized(*got), normalized(*want)) {
					t.Errorf("DWARF layout differs from table:\n dwarf %+v\n table %+v", *got, *want)
				}
				viaBinary, err := ForBinary(bin)
				if err != nil || viaBinary.Source != SourceDWARF {
					t.Errorf("ForBinary = %+v, %v; want the DWARF layout", viaBinary, err)
				}
			})
		}
	}
}

func TestStrippedBinary(t *testing.T) {
	for _, tc := range testToolchains {
		t.Run(tc.toolchain, func(t *testing.T) {
			bin := buildProbe(t, tc.toolchain, "-ldflags=-s -w")
			f, err := elf.Open(bin)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			_, err = DWARFOf(f, bin)
			if !errors.Is(err, ErrNoDWARF) || !strings.Contains(err.Error(), "-s -w") || !strings.Contains(err.Error(), bin) {
				t.Errorf("DWARFOf(stripped) error = %v; want ErrNoDWARF naming the binary and -s -w", err)
			}
			l, err := ForBinary(bin)
			if err != nil {
				t.Fatal(err)
			}
			if l.Source != SourceTable || l.GoVersion != tc.table {
				t.Errorf("ForBinary(stripped) = %s/%s, want table/%s", l.Source, l.GoVersion, tc.table)
			}
		})
	}
}

// TestEnumsMatchBinary compares the tables with the runtime's own
// waitReasonStrings and gStatusStrings arrays read out of the binary.
func TestEnumsMatchBinary(t *testing.T) {
	for _, tc := range testToolchains {
		t.Run(tc.toolchain, func(t *testing.T) {
			bin := buildProbe(t, tc.toolchain) // non-PIE: pointers in .data are final
			f, err := elf.Open(bin)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			bi, err := buildinfo.ReadFile(bin)
			if err != nil {
				t.Fatal(err)
			}
			e, err := EnumsFor(bi.GoVersion)
			if err != nil {
				t.Fatal(err)
			}
			for _, c := range []struct {
				sym  string
				want []string
			}{
				{"runtime.waitReasonStrings", e.WaitReasons()},
				{"runtime.gStatusStrings", e.Statuses()},
			} {
				got, err := readStringArray(f, c.sym)
				if err != nil {
					t.Fatal(err)
				}
				if !reflect.DeepEqual(got, c.want) {
					t.Errorf("%s in binary:\n %q\ntable:\n %q", c.sym, got, c.want)
				}
			}
		})
	}
}

// readStringArray reads a [N]string variable from a non-PIE ELF via its symbol.
func readStringArray(f *elf.File, name string) ([]string, error) {
	syms, err := f.Symbols()
	if err != nil {
		return nil, err
	}
	for _, s := range syms {
		if s.Name != name {
			continue
		}
		raw, err := readAddr(f, s.Value, s.Size)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		out := make([]string, 0, len(raw)/16)
		for i := 0; i+16 <= len(raw); i += 16 {
			p, n := binary.LittleEndian.Uint64(raw[i:]), binary.LittleEndian.Uint64(raw[i+8:])
			b, err := readAddr(f, p, n)
			if err != nil {
				return nil, fmt.Errorf("%s[%d]: %w", name, i/16, err)
			}
			out = append(out, string(b))
		}
		return out, nil
	}
	return nil, fmt.Errorf("symbol %s not found", name)
}

func readAddr(f *elf.File, addr, n uint64) ([]byte, error) {
	if n == 0 {
		return nil, nil
	}
	for _, s := range f.Sections {
		if s.Type == elf.SHT_NOBITS || addr < s.Addr || addr+n > s.Addr+s.Size {
			continue
		}
		b := make([]byte, n)
		if _, err := s.ReadAt(b, int64(addr-s.Addr)); err != nil {
			return nil, err
		}
		return b, nil
	}
	return nil, fmt.Errorf("address %#x+%d not in any section", addr, n)
}

// TestGeneratedTablesUpToDate reruns the generator and compares its output
// with the committed tables_gen.go.
func TestGeneratedTablesUpToDate(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the generator (builds the probe with every toolchain); skipped in -short mode")
	}
	out := filepath.Join(t.TempDir(), "tables_gen.go")
	cmd := exec.Command("go", "run", "./internal/gen", "-out", out)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("generator: %v\n%s", err, b)
	}
	got, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	want, err := os.ReadFile("tables_gen.go")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Error("tables_gen.go is stale: run go generate ./pkg/golayout")
	}
}
