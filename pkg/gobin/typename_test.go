package gobin

import (
	"bytes"
	"debug/elf"
	"encoding/binary"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"strings"
	"testing"
)

// buildTypenames builds testdata/typenames (buildTestdata).
func buildTypenames(t testing.TB, tb testBuild) string {
	t.Helper()
	return buildTestdata(t, "typenames", tb)
}

// runTypenames runs the typenames program at path and decodes its output.
func runTypenames(t testing.TB, path string) typenamesOutput {
	t.Helper()
	raw, err := exec.Command(path).Output()
	if err != nil {
		t.Fatalf("run %s: %v", path, err)
	}
	var out typenamesOutput
	if err := json.Unmarshal(raw, &out); err != nil {
		t.Fatalf("decode output of %s: %v", path, err)
	}
	return out
}

type typenamesOutput struct {
	MainMain uint64 `json:"main_main"`
	Types    []struct {
		Name    string `json:"name"`
		Addr    uint64 `json:"addr"`
		Runtime bool   `json:"runtime"`
	} `json:"types"`
}

// typeNameBuilds: the oldest and the local toolchain in the layouts that locate the moduledata
// differently (plain: by scan with symbols to compare; stripped; PIE; PIE by the external linker,
// whose Go 1.25 and earlier builds have no .gopclntab), and every toolchain stripped.
func typeNameBuilds() []testBuild {
	var bs []testBuild
	for _, tc := range toolchains {
		bs = append(bs, testBuild{toolchain: tc, stripped: true})
		if tc == "go1.21.13" || tc == "local" {
			bs = append(bs,
				testBuild{toolchain: tc},
				testBuild{toolchain: tc, pie: true, stripped: true},
				testBuild{toolchain: tc, pie: true, external: true, stripped: true})
		}
	}
	return bs
}

// TestTypeName resolves the type descriptors that the typenames program reports (run-time
// addresses of the first word of interfaces) and compares with the names reflect prints there,
// which are the runtime's rtype.string.
func TestTypeName(t *testing.T) {
	for _, tb := range typeNameBuilds() {
		t.Run(tb.name(), func(t *testing.T) {
			t.Parallel()
			path := buildTypenames(t, tb)
			out := runTypenames(t, path)
			b := mustOpen(t, path)
			mainFn, ok := b.FuncByName("main.main")
			if !ok {
				t.Fatal("no main.main")
			}
			bias := out.MainMain - mainFn.Entry
			if !tb.pie && bias != 0 {
				t.Errorf("bias %#x for a non-PIE executable", bias)
			}
			types, etypes, err := b.typesRange()
			if err != nil {
				t.Fatal(err)
			}
			if !tb.stripped {
				checkTypesSymbols(t, path, types, etypes)
			}
			extraStar := 0
			for _, ty := range out.Types {
				addr := ty.Addr - bias
				got, err := b.TypeName(addr)
				if ty.Runtime {
					if !errors.Is(err, ErrTypeNotInExecutable) {
						t.Errorf("%s (made at run time) at %#x: %q, %v; want ErrTypeNotInExecutable", ty.Name, addr, got, err)
					}
					continue
				}
				if err != nil || got != ty.Name {
					t.Errorf("TypeName(%#x) = %q, %v; want %q", addr, got, err, ty.Name)
				}
				if hdr, err := b.readVA(addr, typeHeaderSize); err == nil && hdr[typeTFlag]&tflagExtraStar != 0 {
					extraStar++
				}
			}
			if extraStar == 0 {
				t.Error("no type with TFlagExtraStar was resolved")
			}
			first := out.Types[0].Addr - bias
			for _, bad := range []uint64{0, types - 8, etypes, etypes - 8, first + 1, mainFn.Entry, 1 << 63, ^uint64(0)} {
				if got, err := b.TypeName(bad); err == nil {
					t.Errorf("TypeName(%#x) = %q, want an error", bad, got)
				}
			}
			if err := b.Close(); err != nil {
				t.Fatal(err)
			}
			if _, err := b.TypeName(first); !errors.Is(err, ErrClosed) {
				t.Errorf("TypeName after Close: %v, want ErrClosed", err)
			}
		})
	}
}

// checkTypesSymbols compares the moduledata's types range with the symbols runtime.types and
// runtime.etypes.
func checkTypesSymbols(t *testing.T, path string, types, etypes uint64) {
	t.Helper()
	ef, err := elf.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer ef.Close()
	syms, err := ef.Symbols()
	if err != nil {
		t.Fatal(err)
	}
	found := 0
	for _, s := range syms {
		switch {
		case s.Name == "runtime.types" && s.Value != types:
			t.Errorf("moduledata.types %#x, symbol runtime.types %#x", types, s.Value)
		case s.Name == "runtime.etypes" && s.Value != etypes:
			t.Errorf("moduledata.etypes %#x, symbol runtime.etypes %#x", etypes, s.Value)
		case s.Name == "runtime.types" || s.Name == "runtime.etypes":
			found++
		}
	}
	if found != 2 {
		t.Errorf("%d of runtime.types and runtime.etypes found in the symbol table", found)
	}
}

// TestTypeNameCorrupt corrupts the descriptor or the name of a type in the file: TypeName must
// return an error, never panic or read out of bounds.
func TestTypeNameCorrupt(t *testing.T) {
	path := buildTypenames(t, testBuild{toolchain: "local", stripped: true})
	out := runTypenames(t, path)
	orig, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var addr uint64 // main.point: a name shared with *main.point (TFlagExtraStar)
	for _, ty := range out.Types {
		if ty.Name == "main.point" {
			addr = ty.Addr
		}
	}
	open := func(data []byte) *Binary {
		ef, err := elf.NewFile(bytes.NewReader(data))
		if err != nil {
			t.Fatal(err)
		}
		b, err := fromELF(ef, data, "corrupt")
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	b := open(orig)
	if name, err := b.TypeName(addr); err != nil || name != "main.point" {
		t.Fatalf("TypeName(%#x) = %q, %v before corruption", addr, name, err)
	}
	types, etypes, err := b.typesRange()
	if err != nil {
		t.Fatal(err)
	}
	fileOff := func(va uint64) uint64 {
		for _, p := range b.elf.Progs {
			if p.Type == elf.PT_LOAD && va >= p.Vaddr && va-p.Vaddr < p.Filesz {
				return p.Off + va - p.Vaddr
			}
		}
		t.Fatalf("%#x is not in the file", va)
		return 0
	}
	typeOff := fileOff(addr)
	if orig[typeOff+typeTFlag]&tflagExtraStar == 0 {
		t.Fatal("main.point has no TFlagExtraStar")
	}
	nameOff := uint64(binary.LittleEndian.Uint32(orig[typeOff+typeStr:]))
	nameAt := fileOff(types + nameOff)
	mdAt := fileOff(b.modAddr)
	tests := []struct {
		name    string
		corrupt func(d []byte)
	}{
		{"str-zero", func(d []byte) { binary.LittleEndian.PutUint32(d[typeOff+typeStr:], 0) }},
		{"str-negative", func(d []byte) { binary.LittleEndian.PutUint32(d[typeOff+typeStr:], 0x80000000) }},
		{"str-past-etypes", func(d []byte) { binary.LittleEndian.PutUint32(d[typeOff+typeStr:], uint32(etypes-types)) }},
		{"str-at-last-byte", func(d []byte) { binary.LittleEndian.PutUint32(d[typeOff+typeStr:], uint32(etypes-types-1)) }},
		{"len-huge", func(d []byte) { copy(d[nameAt+1:], []byte{0xff, 0xff, 0xff, 0x7f}) }},
		{"len-endless-varint", func(d []byte) { copy(d[nameAt+1:], []byte{0xff, 0xff, 0xff, 0xff, 0xff}) }},
		{"len-zero", func(d []byte) { d[nameAt+1] = 0 }},
		{"no-extra-star", func(d []byte) { d[nameAt+2] = 'x' }},
		{"types-reversed", func(d []byte) {
			binary.LittleEndian.PutUint64(d[mdAt+mdTypes*8:], etypes)
			binary.LittleEndian.PutUint64(d[mdAt+mdEtypes*8:], types)
		}},
		{"types-huge", func(d []byte) { binary.LittleEndian.PutUint64(d[mdAt+mdEtypes*8:], types+1<<40) }},
		{"types-outside-file", func(d []byte) {
			binary.LittleEndian.PutUint64(d[mdAt+mdTypes*8:], 1<<40)
			binary.LittleEndian.PutUint64(d[mdAt+mdEtypes*8:], 1<<40+etypes-types)
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			data := bytes.Clone(orig)
			tt.corrupt(data)
			b := open(data) // the moduledata scan does not read types and etypes
			if name, err := b.TypeName(addr); err == nil {
				t.Errorf("TypeName = %q, want an error", name)
			} else {
				t.Logf("error: %v", err)
			}
		})
	}
}

// TestTypeNameAllocs: a repeated lookup does not allocate.
func TestTypeNameAllocs(t *testing.T) {
	path := buildTypenames(t, testBuild{toolchain: "local", stripped: true})
	out := runTypenames(t, path)
	b := mustOpen(t, path)
	addr := out.Types[len(out.Types)/2].Addr
	if _, err := b.TypeName(addr); err != nil {
		t.Fatal(err)
	}
	if n := testing.AllocsPerRun(100, func() { _, _ = b.TypeName(addr) }); n != 0 {
		t.Errorf("a cached TypeName allocates %v times", n)
	}
}

// BenchmarkTypeName measures a cached lookup.
func BenchmarkTypeName(bb *testing.B) {
	path := buildTypenames(bb, testBuild{toolchain: "local", stripped: true})
	b, err := Open(path)
	if err != nil {
		bb.Fatal(err)
	}
	defer b.Close()
	out := runTypenames(bb, path)
	addr := out.Types[len(out.Types)/2].Addr
	bb.ReportAllocs()
	for i := 0; i < bb.N; i++ {
		if _, err := b.TypeName(addr); err != nil {
			bb.Fatal(err)
		}
	}
}

// TestTypeNameTruncated truncates the file of an opened executable: TypeName must return an
// error, not crash on SIGBUS.
func TestTypeNameTruncated(t *testing.T) {
	src := buildTypenames(t, testBuild{toolchain: "local", stripped: true})
	out := runTypenames(t, src)
	path := copyFile(t, src)
	b := mustOpen(t, path)
	if err := os.Truncate(path, 4096); err != nil {
		t.Fatal(err)
	}
	for _, ty := range out.Types[:5] {
		if name, err := b.TypeName(ty.Addr); err == nil {
			t.Errorf("TypeName(%#x) = %q on the truncated file", ty.Addr, name)
		} else if !strings.Contains(err.Error(), "truncated") {
			t.Errorf("TypeName(%#x): %v, want a truncation error", ty.Addr, err)
		}
	}
}
