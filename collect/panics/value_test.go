//go:build linux

package panics

import (
	"errors"
	"fmt"
	"math"
	"os"
	"strings"
	"testing"
	"unsafe"

	"github.com/goroscope/goroscope/bpf"
	"github.com/goroscope/goroscope/pkg/gobin"
)

// Kinds of the table below not named by value.go.
const (
	kindInt8      = 3
	kindUint8     = 8
	kindArray     = 17
	kindChan      = 18
	kindFunc      = 19
	kindMap       = 21
	kindPointer   = 22
	kindSlice     = 23
	kindStruct    = 25
	kindUnsafePtr = 26
)

func f64(v float64) uint64 { return math.Float64bits(v) }
func f32(v float32) uint64 { return uint64(math.Float32bits(v)) }

// c64 packs a complex64 as it lies in memory: the real part, then the imaginary part.
func c64(re, im float32) uint64 { return f32(re) | f32(im)<<32 }

// TestFormatValue compares with what the runtime printed (GOTRACEBACK=single, "panic: " cut)
// for the same values, built with go1.21.13, go1.22.12, go1.23.12, go1.24.13, go1.25.8 (all
// printing "old") and go1.26.8 ("new").
func TestFormatValue(t *testing.T) {
	const data = 0xc000012345
	errRead := errors.New("read failed")
	errRuntime := fmt.Errorf("made by reflect: %w", gobin.ErrTypeNotInExecutable)
	tests := []struct {
		what     string
		kind     uint8
		words    [4]uint64
		str      string
		name     string
		nameErr  error
		old, new string // Go 1.21–1.25 (1.21–1.22 for strings), Go 1.26 (1.23+ for strings)
	}{
		{"panic(42)", kindInt, [4]uint64{42}, "", "int", nil, "42", "42"},
		{"panic(int8(-1))", kindInt8, [4]uint64{0xff}, "", "int8", nil, "-1", "-1"},
		{"panic(uint64(max))", kindUint + 4, [4]uint64{math.MaxUint64}, "", "uint64", nil, "18446744073709551615", "18446744073709551615"},
		{"panic(true)", kindBool, [4]uint64{1}, "", "bool", nil, "true", "true"},
		{"panic(code(-5))", kindInt, [4]uint64{uint64(1<<64 - 5)}, "", "main.code", nil, "main.code(-5)", "main.code(-5)"},
		{"panic(u8(200))", kindUint8, [4]uint64{200}, "", "main.u8", nil, "main.u8(200)", "main.u8(200)"},
		{"panic(flag(true))", kindBool, [4]uint64{1}, "", "main.flag", nil, "main.flag(true)", "main.flag(true)"},
		{"panic(4.2)", kindFloat64, [4]uint64{f64(4.2)}, "", "float64", nil, "+4.200000e+000", "4.2"},
		{"panic(float32(0.1))", kindFloat32, [4]uint64{f32(0.1)}, "", "float32", nil, "+1.000000e-001", "0.1"},
		{"panic(1e300)", kindFloat64, [4]uint64{f64(1e300)}, "", "float64", nil, "+1.000000e+300", "1e+300"},
		{"panic(float32(1e-40))", kindFloat32, [4]uint64{f32(1e-40)}, "", "float32", nil, "+9.999946e-041", "1e-40"},
		{"panic(-0.0)", kindFloat64, [4]uint64{f64(math.Copysign(0, -1))}, "", "float64", nil, "-0.000000e+000", "-0"},
		{"panic(NaN)", kindFloat64, [4]uint64{f64(math.NaN())}, "", "float64", nil, "NaN", "NaN"},
		{"panic(-Inf)", kindFloat64, [4]uint64{f64(math.Inf(-1))}, "", "float64", nil, "-Inf", "-Inf"},
		{"panic(celsius(21.5))", kindFloat64, [4]uint64{f64(21.5)}, "", "main.celsius", nil, "main.celsius(+2.150000e+001)", "main.celsius(21.5)"},
		{"panic(f32(-0.25))", kindFloat32, [4]uint64{f32(-0.25)}, "", "main.f32", nil, "main.f32(-2.500000e-001)", "main.f32(-0.25)"},
		{"panic(complex(1, 2))", kindComplex128, [4]uint64{f64(1), f64(2)}, "", "complex128", nil, "(+1.000000e+000+2.000000e+000i)", "(1+2i)"},
		{"panic(complex64(1.5-2i))", kindComplex64, [4]uint64{c64(1.5, -2)}, "", "complex64", nil, "(+1.500000e+000-2.000000e+000i)", "(1.5-2i)"},
		{"panic(cplx(1i))", kindComplex128, [4]uint64{f64(0), f64(1)}, "", "main.cplx", nil, "main.cplx(+0.000000e+000+1.000000e+000i)", "main.cplx(0+1i)"},
		{"panic(c64(3+4i))", kindComplex64, [4]uint64{c64(3, 4)}, "", "main.c64", nil, "main.c64(+3.000000e+000+4.000000e+000i)", "main.c64(3+4i)"},
		{"panic(\"x\\ny\")", kindString, [4]uint64{}, "x\ny", "string", nil, "x\ny", "x\n\ty"},
		{"panic(label(\"x\\ny\"))", kindString, [4]uint64{}, "x\ny", "main.label", nil, "main.label(\"x\ny\")", "main.label(\"x\n\ty\")"},
		{"panic(point{1, 2})", kindStruct, [4]uint64{1, 2}, "", "main.point", nil, "(main.point) 0xc000012345", "(main.point) 0xc000012345"},
		{"panic(&point{1, 2})", kindPointer, [4]uint64{1, 2}, "", "*main.point", nil, "(*main.point) 0xc000012345", "(*main.point) 0xc000012345"},
		{"panic([]int{1})", kindSlice, [4]uint64{}, "", "[]int", nil, "([]int) 0xc000012345", "([]int) 0xc000012345"},
		{"panic(map[string]int{})", kindMap, [4]uint64{}, "", "map[string]int", nil, "(map[string]int) 0xc000012345", "(map[string]int) 0xc000012345"},
		{"panic(func() {})", kindFunc, [4]uint64{}, "", "func()", nil, "(func()) 0xc000012345", "(func()) 0xc000012345"},
		{"panic(make(chan int))", kindChan, [4]uint64{}, "", "chan int", nil, "(chan int) 0xc000012345", "(chan int) 0xc000012345"},
		{"panic([3]int{})", kindArray, [4]uint64{}, "", "[3]int", nil, "([3]int) 0xc000012345", "([3]int) 0xc000012345"},
		{"panic(unsafe.Pointer)", kindUnsafePtr, [4]uint64{}, "", "unsafe.Pointer", nil, "(unsafe.Pointer) 0xc000012345", "(unsafe.Pointer) 0xc000012345"},
		// No name: the fallbacks of value.go.
		{"code(-5), unreadable executable", kindInt, [4]uint64{uint64(1<<64 - 5)}, "", "", errRead, "-5", "-5"},
		{"label, unreadable executable", kindString, [4]uint64{}, "x", "", errRead, "x", "x"},
		{"struct made by reflect", kindStruct, [4]uint64{}, "", "", errRuntime, "(<struct type made at run time>) 0xc000012345", "(<struct type made at run time>) 0xc000012345"},
		{"struct, unreadable executable", kindStruct, [4]uint64{}, "", "", errRead, "(<unknown struct type>) 0xc000012345", "(<unknown struct type>) 0xc000012345"},
		{"unknown kind", 0, [4]uint64{}, "", "", errRead, "(<unknown type>) 0xc000012345", "(<unknown type>) 0xc000012345"},
	}
	for _, tt := range tests {
		for _, minor := range []int{21, 22, 23, 24, 25, 26} {
			want := tt.new
			if minor < 26 && !(tt.kind == kindString && minor >= 23) {
				want = tt.old
			}
			got := formatValue(tt.kind, 0x4d2000, data, tt.words, []byte(tt.str), minor, tt.name, tt.nameErr)
			if got != want {
				t.Errorf("%s, go1.%d: %q, want %q", tt.what, minor, got, want)
			}
		}
	}
	if got := formatValue(kindStruct, 0, data, [4]uint64{}, nil, 26, "", errRead); got != "nil" {
		t.Errorf("nil: %q", got)
	}
	if got := formatValue(kindPointer, 0x4d2000, 0, [4]uint64{}, nil, 26, "*main.point", nil); got != "(*main.point) 0x0" {
		t.Errorf("nil pointer: %q", got) // printed so by every version
	}
}

// TestProcPanicValue: a record's type word is a run-time address, turned into a link-time one
// with the load bias; an executable that cannot name the type gives the fallback.
func TestProcPanicValue(t *testing.T) {
	b, err := gobin.Open("/proc/self/exe")
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	bias, err := b.LoadBias(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	p := &proc{bin: b, bias: bias, minor: 26}
	// Types of this test executable: the record as the probe would make it.
	record := func(v any, kind uint8, w0 uint64) bpf.PanicValue {
		e := (*[2]uintptr)(unsafe.Pointer(&v))
		return bpf.PanicValue{ArgType: uint64(e[0]), ArgData: uint64(e[1]), Words: [4]uint64{w0}, TypeKind: kind}
	}
	type testCode int8
	type testPoint struct{ X, Y, Z, W int }
	for _, tt := range []struct {
		r    bpf.PanicValue
		want string
	}{
		{record(testCode(-5), kindInt8, 0xfb), "panics.testCode(-5)"},
		{record(int8(-5), kindInt8, 0xfb), "-5"},
		{record(4.5, kindFloat64, f64(4.5)), "4.5"},
		{record(testPoint{}, kindStruct, 0), "(panics.testPoint) 0x"},
		{record(&testPoint{}, kindPointer, 0), "(*panics.testPoint) 0x"},
	} {
		if got := p.panicValue(tt.r); !strings.HasPrefix(got, tt.want) {
			t.Errorf("%q, want %q", got, tt.want)
		}
	}
	r := bpf.PanicValue{ArgType: bias + 8, ArgData: 0xc000012345, TypeKind: kindStruct}
	if got, want := p.panicValue(r), "(<struct type made at run time>) 0xc000012345"; got != want {
		t.Errorf("type at link-time address 8: %q, want %q", got, want)
	}
	if got := p.panicValue(bpf.PanicValue{}); got != "nil" {
		t.Errorf("nil: %q", got)
	}
	b.Close()
	if got, want := p.panicValue(r), "(<unknown struct type>) 0xc000012345"; got != want {
		t.Errorf("closed executable: %q, want %q", got, want)
	}
}

func BenchmarkFormatValue(b *testing.B) {
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		_ = formatValue(kindFloat64, 1, 2, [4]uint64{f64(21.5)}, nil, 25, "main.celsius", nil)
	}
}
