package cpu

import (
	"debug/elf"
	"encoding/binary"
	"errors"
	"fmt"

	"golang.org/x/arch/x86/x86asm"

	"github.com/goroscope/goroscope/bpf"
	"github.com/goroscope/goroscope/collect/process"
	"github.com/goroscope/goroscope/pkg/gobin"
	"github.com/goroscope/goroscope/pkg/golayout"
)

// defaultTLSG is where Go keeps g relative to the thread pointer on
// linux/amd64 when it links itself (cmd/link: Tlsoffset = -PtrSize).
const defaultTLSG = -8

// maxTLSOffset bounds a TLS offset decoded from code.
const maxTLSOffset = 1 << 20

// processConfig derives the sampler's view of a target from its layout and
// executable: runtime offsets, the run-time text range and the TLS slot of g.
func processConfig(t *process.Target, kernelFrames bool) (bpf.CPUProcess, error) {
	var p bpf.CPUProcess
	g, m := t.Layout.G, t.Layout.M
	for _, f := range []struct {
		name string
		off  int64
	}{
		{"g.stack.lo", g.StackLo}, {"g.stack.hi", g.StackHi}, {"g.m", g.M}, {"g.sched.sp", g.SchedSP},
		{"g.sched.pc", g.SchedPC}, {"g.sched.bp", g.SchedBP}, {"g.goid", g.Goid}, {"m.curg", m.Curg},
	} {
		if f.off < 0 {
			return p, fmt.Errorf("pid %d (%s): the runtime layout has no %s", t.PID, t.Bin.GoVersion(), f.name)
		}
	}
	lo, hi, err := textRange(t.Bin)
	if err != nil {
		return p, fmt.Errorf("pid %d: %w", t.PID, err)
	}
	tls, err := tlsGOffset(t.Bin)
	if err != nil {
		// Samples in C and assembly code then lose their goroutine only.
		tls = 0
	}
	v, err := golayout.ParseVersion(t.Bin.GoVersion())
	if err != nil {
		return p, fmt.Errorf("pid %d: %w", t.PID, err)
	}
	p = bpf.CPUProcess{
		TextLo: lo + t.Bias, TextHi: hi + t.Bias,
		TLSG: tls,
		Off: bpf.CPUOffsets{
			StackLo: int32(g.StackLo), StackHi: int32(g.StackHi), M: int32(g.M),
			SchedSP: int32(g.SchedSP), SchedPC: int32(g.SchedPC), SchedBP: int32(g.SchedBP),
			Goid: int32(g.Goid), Labels: int32(g.Labels), MCurg: int32(m.Curg),
			MG0: 0, // runtime.m starts with g0 in every Go release
		},
		// The register ABI (Go 1.17) keeps g in R14 on amd64.
		TrustR14:     v.Major > 1 || v.Minor >= 17,
		KernelFrames: kernelFrames,
	}
	if g.Labels < 0 {
		p.Off.Labels = -1
	}
	return p, nil
}

// textRange returns the link-time bounds of the functions in the pclntab.
func textRange(b *gobin.Binary) (lo, hi uint64, err error) {
	n := b.NumFuncs()
	first, ok1 := b.FuncByIndex(0)
	last, ok2 := b.FuncByIndex(n - 1)
	if n == 0 || !ok1 || !ok2 || last.End <= first.Entry {
		return 0, 0, fmt.Errorf("%s: no function table to bound the Go text", b.Name())
	}
	return first.Entry, last.End, nil
}

// tlsGOffset finds the offset from the thread pointer (fsbase) of the slot
// where the runtime keeps the current g. It decodes the store of g in the
// runtime's gogo, which the linkers resolve to the final offset: "MOVQ DX,
// FS:off" (internal linking), "MOVQ $off, CX; MOVQ DX, FS:0(CX)" (external
// linkers relaxing initial-exec) or a load of the offset from the GOT. A
// binary linked by Go itself without a PT_TLS segment of another size uses
// the fixed -8.
func tlsGOffset(b *gobin.Binary) (int64, error) {
	off, err := tlsFromGogo(b)
	if err == nil {
		return off, nil
	}
	f := b.ELF()
	if f == nil {
		return 0, fmt.Errorf("find the TLS slot of g: %w", err)
	}
	for _, p := range f.Progs {
		if p.Type == elf.PT_TLS && p.Memsz > 8 {
			return 0, fmt.Errorf("find the TLS slot of g: %v, and the %d-byte TLS segment does not say", err, p.Memsz)
		}
	}
	return defaultTLSG, nil
}

func tlsFromGogo(b *gobin.Binary) (int64, error) {
	fn, ok := b.FuncByName("gogo")
	if !ok {
		return 0, errors.New("no runtime gogo function")
	}
	code, err := readText(b, fn.Entry, min(fn.End-fn.Entry, 64))
	if err != nil {
		return 0, err
	}
	off, err := tlsFromCode(code, fn.Entry, func(addr uint64) ([]byte, error) { return readText(b, addr, 8) })
	if err != nil {
		return 0, fmt.Errorf("gogo at %#x: %w", fn.Entry, err)
	}
	return off, nil
}

// tlsFromCode finds the first store to FS-relative memory in code (at
// link-time address pc) and returns its offset from fsbase. readGOT reads
// the 8 bytes of a GOT slot.
func tlsFromCode(code []byte, pc uint64, readGOT func(addr uint64) ([]byte, error)) (int64, error) {
	regs := map[x86asm.Reg]int64{} // registers holding a known TLS offset
	for len(code) > 0 {
		inst, err := x86asm.Decode(code, 64)
		if err != nil {
			return 0, fmt.Errorf("decode at %#x: %w", pc, err)
		}
		if inst.Op == x86asm.MOV {
			dst, _ := inst.Args[0].(x86asm.Reg)
			switch src := inst.Args[1].(type) {
			case x86asm.Imm:
				regs[dst] = int64(src)
			case x86asm.Mem:
				if src.Segment == 0 && src.Base == x86asm.RIP && dst != 0 {
					// initial-exec: the offset sits in the GOT.
					slot := uint64(int64(pc) + int64(inst.Len) + src.Disp)
					if w, err := readGOT(slot); err == nil && len(w) == 8 {
						regs[dst] = int64(binary.LittleEndian.Uint64(w))
					}
				}
			}
			if mem, ok := inst.Args[0].(x86asm.Mem); ok && mem.Segment == x86asm.FS {
				off := mem.Disp
				if mem.Base == 0 && mem.Index == 0 {
					off = int64(int32(off)) // an absolute disp32 is sign-extended
				}
				if mem.Base != 0 {
					v, known := regs[mem.Base]
					if !known {
						return 0, fmt.Errorf("g is stored at FS:(%v) with an unknown %v", mem.Base, mem.Base)
					}
					off += v
				}
				if off >= 0 || off < -maxTLSOffset || off%8 != 0 {
					return 0, fmt.Errorf("g is stored at FS:%d, not a plausible TLS slot", off)
				}
				return off, nil
			}
		}
		pc += uint64(inst.Len)
		code = code[inst.Len:]
	}
	return 0, errors.New("no store of g to FS-relative memory")
}

// readText reads n bytes at link-time address addr from the executable's sections.
func readText(b *gobin.Binary, addr, n uint64) ([]byte, error) {
	f := b.ELF()
	if f == nil {
		return nil, errors.New("executable is closed")
	}
	for _, s := range f.Sections {
		if s.Type == elf.SHT_NOBITS || addr < s.Addr || addr+n > s.Addr+s.Size {
			continue
		}
		buf := make([]byte, n)
		if _, err := s.ReadAt(buf, int64(addr-s.Addr)); err != nil {
			return nil, fmt.Errorf("read %d bytes at %#x of %s: %w", n, addr, s.Name, err)
		}
		return buf, nil
	}
	return nil, fmt.Errorf("address %#x is in no section of %s", addr, b.Name())
}
