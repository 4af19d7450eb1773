package gobin

import (
	"debug/elf"
	"errors"
	"fmt"

	"golang.org/x/arch/x86/x86asm"
)

// RuntimeVars holds link-time addresses of runtime variables the walker reads.
type RuntimeVars struct {
	Allgs   uint64 // runtime.allgs ([]*g)
	Allglen uint64 // runtime.allglen (uintptr)
	// Semtable is runtime.semtable, 0 if not found.
	Semtable uint64
	Source   string // "symtab" or "disasm"
}

// maxDisasmBytes bounds the code decoded per function.
const maxDisasmBytes = 64 << 10

// RuntimeVars finds the link-time addresses of runtime.allgs, runtime.allglen and runtime.semtable:
// from .symtab when present, otherwise by decoding the runtime's own RIP-relative references
// (runtime.allgadd for allgs/allglen, runtime.semacquire1 ∩ runtime.semrelease1 for semtable).
// The first call computes them (a scan of .symtab, or the decoding of three functions) and then
// drops the pages it touched (Trim); later calls return the same answer. After Close the error
// wraps ErrClosed.
func (b *Binary) RuntimeVars() (v RuntimeVars, err error) {
	old, open := b.enter()
	if !open {
		return RuntimeVars{}, b.closedError()
	}
	defer b.leave(old, func(p any) { v, err = RuntimeVars{}, b.faultError(p) })
	b.varsOnce.Do(func() {
		defer func() {
			if p := recover(); p != nil { // a fault on the mapping: Once would record success
				b.vars, b.varsErr = RuntimeVars{}, b.faultError(p)
			}
		}()
		b.vars, b.varsErr = b.runtimeVars()
		b.dropPages()
	})
	return b.vars, b.varsErr
}

// runtimeVars implements RuntimeVars.
func (b *Binary) runtimeVars() (RuntimeVars, error) {
	return symtabOrCode(b, b.varsFromSymtab, b.varsFromDisasm)
}

// symtabOrCode returns what symtab finds in .symtab, or when the binary is stripped or that
// fails, what code finds in the runtime's code; an error of code names the binary.
func symtabOrCode[T any](b *Binary, symtab, code func() (T, error)) (T, error) {
	if !b.stripped {
		if v, err := symtab(); err == nil {
			return v, nil
		}
	}
	v, err := code()
	if err != nil {
		how := "build without -ldflags=-s, or file an issue with the binary's Go version"
		if !b.stripped {
			how = "file an issue with the binary's Go version"
		}
		var zero T
		return zero, fmt.Errorf("%s (built with %s, stripped=%t): %w; %s", b.name, b.GoVersion(), b.stripped, err, how)
	}
	return v, nil
}

// varsFromSymtab reads the variables from .symtab.
func (b *Binary) varsFromSymtab() (RuntimeVars, error) {
	if _, err := b.symbols(); err != nil {
		return RuntimeVars{}, err
	}
	v := RuntimeVars{Source: "symtab"}
	v.Semtable, _ = b.symbol(symSemtable)
	var ok bool
	if v.Allgs, ok = b.symbol(symAllgs); !ok {
		return v, errors.New("no runtime.allgs in .symtab")
	}
	if v.Allglen, ok = b.symbol(symAllglen); !ok {
		return v, errors.New("no runtime.allglen in .symtab")
	}
	return v, nil
}

// ripRef is one RIP-relative memory operand found in a function.
type ripRef struct {
	op   x86asm.Op
	addr uint64
	arg  int // operand index of the memory argument
	inst x86asm.Inst
}

// decodeFunc disassembles a function found by name and calls fn for every instruction
// with its address. It stops at the function end or on an undecodable byte sequence.
func (b *Binary) decodeFunc(name string, fn func(pc uint64, inst x86asm.Inst)) error {
	f, ok := b.funcByName(name)
	if !ok {
		return fmt.Errorf("function %s not found in pclntab", name)
	}
	n := f.End - f.Entry
	if n == 0 || n > maxDisasmBytes {
		return fmt.Errorf("function %s has implausible size %d", name, n)
	}
	code, err := b.readVA(f.Entry, n) // aliases the mapping; x86asm copies what it keeps
	if err != nil {
		return fmt.Errorf("read code of %s: %w", name, err)
	}
	for off := 0; off < len(code); {
		inst, err := x86asm.Decode(code[off:], 64)
		if err != nil || inst.Len == 0 {
			off++ // padding or data; resynchronise
			continue
		}
		fn(f.Entry+uint64(off), inst)
		off += inst.Len
	}
	return nil
}

// ripAddr returns the absolute address of a RIP-relative memory operand.
func ripAddr(pc uint64, inst x86asm.Inst, a x86asm.Arg) (uint64, bool) {
	m, ok := a.(x86asm.Mem)
	if !ok || m.Base != x86asm.RIP || m.Index != 0 {
		return 0, false
	}
	return uint64(int64(pc) + int64(inst.Len) + m.Disp), true
}

// inWritableData reports whether addr is in .data, .noptrdata, .bss, .noptrbss or .go.module.
func (b *Binary) inWritableData(addr uint64) bool {
	for _, s := range b.elf.Sections {
		switch s.Name {
		case ".data", ".noptrdata", ".bss", ".noptrbss", ".go.module":
			if addr >= s.Addr && addr-s.Addr < s.Size {
				return true
			}
		}
	}
	if len(b.elf.Sections) == 0 { // no section headers: accept any writable PT_LOAD
		for _, p := range b.elf.Progs {
			if p.Type == elf.PT_LOAD && p.Flags&elf.PF_W != 0 && addr >= p.Vaddr && addr-p.Vaddr < p.Memsz {
				return true
			}
		}
	}
	return false
}

// varsFromDisasm recovers the variables from the runtime's code.
func (b *Binary) varsFromDisasm() (RuntimeVars, error) {
	v := RuntimeVars{Source: "disasm"}
	var err error
	v.Allgs, v.Allglen, err = b.allgsFromAllgadd()
	if err != nil {
		return v, err
	}
	v.Semtable = b.semtableFromSema()
	return v, nil
}

// allgsFromAllgadd decodes runtime.allgadd:
//
//	lock(&allglock); allgs = append(allgs, gp)   // reads/writes allgs, allgs+8, allgs+16
//	if &allgs[0] != allgptr { atomicstorep(&allgptr, &allgs[0]) }
//	atomic.Storeuintptr(&allglen, uintptr(len(allgs)))  // MOV allgs+8 -> R; XCHG R, [allglen]
//
// allgs is the address referenced at +0, +8 and +16; allglen is the target of the XCHG whose
// source register was loaded from allgs+8.
func (b *Binary) allgsFromAllgadd() (allgs, allglen uint64, err error) {
	const fn = "runtime.allgadd"
	var refs []ripRef
	type xchg struct {
		target uint64 // 0 if unknown
		src    x86asm.Reg
		srcVal uint64 // RIP-relative address the source register was last loaded from
	}
	var xchgs []xchg
	leaReg := map[x86asm.Reg]uint64{}  // register -> address it holds (LEA)
	loadReg := map[x86asm.Reg]uint64{} // register -> address its value was loaded from (MOV)
	err = b.decodeFunc(fn, func(pc uint64, inst x86asm.Inst) {
		for i, a := range inst.Args {
			if a == nil {
				break
			}
			if addr, ok := ripAddr(pc, inst, a); ok {
				refs = append(refs, ripRef{op: inst.Op, addr: addr, arg: i, inst: inst})
			}
		}
		dst, _ := inst.Args[0].(x86asm.Reg)
		switch inst.Op {
		case x86asm.LEA:
			if addr, ok := ripAddr(pc, inst, inst.Args[1]); ok && dst != 0 {
				leaReg[dst] = addr
				delete(loadReg, dst)
				return
			}
		case x86asm.MOV:
			if addr, ok := ripAddr(pc, inst, inst.Args[1]); ok && dst != 0 {
				loadReg[dst] = addr
				delete(leaReg, dst)
				return
			}
		case x86asm.XCHG:
			var x xchg
			for i := 0; i < 2; i++ {
				m, isMem := inst.Args[i].(x86asm.Mem)
				r, isReg := inst.Args[1-i].(x86asm.Reg)
				if !isMem || !isReg {
					continue
				}
				if addr, ok := ripAddr(pc, inst, m); ok {
					x.target = addr
				} else if base, ok := leaReg[m.Base]; ok && m.Index == 0 {
					x.target = uint64(int64(base) + m.Disp)
				}
				x.src, x.srcVal = r, loadReg[r]
			}
			if x.target != 0 {
				xchgs = append(xchgs, x)
			}
		}
		if inst.Op == x86asm.CMP || inst.Op == x86asm.TEST {
			return
		}
		if dst != 0 { // any other write to a register invalidates what we knew about it
			delete(leaReg, dst)
			delete(loadReg, dst)
		}
	})
	if err != nil {
		return 0, 0, fmt.Errorf("find runtime.allgs: %w", err)
	}
	seen := map[uint64]bool{}
	for _, r := range refs {
		seen[r.addr] = true
	}
	for _, r := range refs {
		a := r.addr
		if seen[a+8] && seen[a+16] && b.inWritableData(a) {
			if allgs != 0 && allgs != a {
				return 0, 0, fmt.Errorf("find runtime.allgs in %s: ambiguous (%#x and %#x)", fn, allgs, a)
			}
			allgs = a
		}
	}
	if allgs == 0 {
		return 0, 0, fmt.Errorf("find runtime.allgs in %s: no slice header referenced at +0, +8 and +16", fn)
	}
	for _, x := range xchgs {
		if x.srcVal == allgs+8 && b.inWritableData(x.target) {
			allglen = x.target
		}
	}
	if allglen == 0 {
		return 0, 0, fmt.Errorf("find runtime.allglen in %s: no atomic store of len(allgs)", fn)
	}
	return allgs, allglen, nil
}

// semtableFromSema returns the one writable-data address that both runtime.semacquire1 and
// runtime.semrelease1 take with LEA (&semtable in the inlined semroot), or 0.
func (b *Binary) semtableFromSema() uint64 {
	leas := func(fn string) map[uint64]bool {
		set := map[uint64]bool{}
		_ = b.decodeFunc(fn, func(pc uint64, inst x86asm.Inst) {
			if inst.Op != x86asm.LEA {
				return
			}
			if addr, ok := ripAddr(pc, inst, inst.Args[1]); ok && b.inWritableData(addr) {
				set[addr] = true
			}
		})
		return set
	}
	acq, rel := leas("runtime.semacquire1"), leas("runtime.semrelease1")
	var found uint64
	for a := range acq {
		if rel[a] {
			if found != 0 {
				return 0
			}
			found = a
		}
	}
	return found
}
