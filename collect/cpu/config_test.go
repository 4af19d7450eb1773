package cpu

import (
	"fmt"
	"testing"

	"github.com/goroscope/goroscope/pkg/gobin"
	"github.com/goroscope/goroscope/test/targettest"
)

// TestTLSOffset decodes the TLS slot of g from the runtime's gogo in
// binaries linked by Go (-8 from the thread pointer) and by the external
// linker (cgo), stripped or not, PIE or not, old and new toolchains.
func TestTLSOffset(t *testing.T) {
	if testing.Short() {
		t.Skip("builds target programs")
	}
	for _, o := range []targettest.BuildOpts{
		{},
		{Stripped: true, PIE: true},
		{Cgo: true},
		{GoVersion: "go1.21.13", Stripped: true},
	} {
		t.Run(fmt.Sprintf("%+v", o), func(t *testing.T) {
			b, err := gobin.Open(targettest.Build(t, "cpuburn", o))
			if err != nil {
				t.Fatal(err)
			}
			defer b.Close()
			off, err := tlsFromGogo(b)
			if err != nil {
				t.Fatalf("decode gogo: %v", err)
			}
			if off != -8 {
				t.Errorf("g at FS%+d, want -8", off)
			}
			lo, hi, err := textRange(b)
			if err != nil || lo < b.TextStart() || hi <= lo {
				t.Errorf("text range [%#x, %#x) (text starts at %#x): %v", lo, hi, b.TextStart(), err)
			}
		})
	}
}

func TestFrequencyBounds(t *testing.T) {
	for _, f := range []int{-1, 1, MinFrequency - 1, MaxFrequency + 1, 100000} {
		if s, err := New(Options{Frequency: f}); err == nil {
			s.Close()
			t.Errorf("frequency %d Hz accepted", f)
		}
	}
}

func TestTLSFromCode(t *testing.T) {
	got := func(addr uint64) ([]byte, error) {
		if addr != 0x1000+7+0x20 {
			return nil, fmt.Errorf("no GOT slot at %#x", addr)
		}
		return []byte{0xe8, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, nil // -24
	}
	for _, c := range []struct {
		name string
		code []byte
		want int64 // 0: an error
	}{
		// MOVQ DX, FS:0xfffffff8
		{"internal", []byte{0x64, 0x48, 0x89, 0x14, 0x25, 0xf8, 0xff, 0xff, 0xff}, -8},
		// MOVQ $-0x10, CX; MOVQ DX, FS:0(CX)
		{"relaxed IE", []byte{0x48, 0xc7, 0xc1, 0xf0, 0xff, 0xff, 0xff, 0x64, 0x48, 0x89, 0x11}, -16},
		// MOVQ 0x20(IP), CX; MOVQ DX, FS:0(CX)
		{"GOT", []byte{0x48, 0x8b, 0x0d, 0x20, 0x00, 0x00, 0x00, 0x64, 0x48, 0x89, 0x11}, -24},
		// MOVQ DX, FS:0(CX) with CX unknown
		{"unknown register", []byte{0x64, 0x48, 0x89, 0x11}, 0},
		// MOVQ DX, FS:0x8: past the thread pointer
		{"positive", []byte{0x64, 0x48, 0x89, 0x14, 0x25, 0x08, 0x00, 0x00, 0x00}, 0},
		// MOVQ DX, R14; RET: no TLS store
		{"none", []byte{0x49, 0x89, 0xd6, 0xc3}, 0},
		{"truncated", []byte{0x64, 0x48, 0x89}, 0},
		{"empty", nil, 0},
	} {
		off, err := tlsFromCode(c.code, 0x1000, got)
		if (err != nil) != (c.want == 0) || off != c.want {
			t.Errorf("%s: %d, %v; want %d", c.name, off, err, c.want)
		}
	}
}
