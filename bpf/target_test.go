//go:build linux

package bpf

import (
	"bufio"
	"crypto/sha256"
	"debug/dwarf"
	"debug/elf"
	"debug/gosym"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/goroscope/goroscope/test/eventually"
)

// This file holds the test-only plumbing: building and starting the target
// program, reading runtime.allgs/allglen and runtime.g offsets from its
// symbols and DWARF, and a process_vm_readv re-implementation of the walk.

// loadWalker loads the walker or skips the test when the machine cannot run
// BPF; under CI=true a load failure fails the test.
func loadWalker(tb testing.TB) *GoroutineWalker {
	tb.Helper()
	w, err := LoadGoroutineWalker()
	if err != nil {
		if os.Getenv("CI") == "true" {
			tb.Fatalf("CI=true but the walker does not load: %v", err)
		}
		tb.Skipf("BPF goroutine walker unavailable here: %v", err)
	}
	tb.Cleanup(func() {
		if err := w.Close(); err != nil {
			tb.Errorf("close walker: %v", err)
		}
	})
	return w
}

// targetBinary builds testdata/target with toolchain ("local" or e.g.
// "go1.21.13"), unstripped and non-PIE (testdataBinary).
func targetBinary(tb testing.TB, toolchain string) string {
	tb.Helper()
	return testdataBinary(tb, "target", toolchain)
}

// testdataBinary builds the program testdata/NAME with toolchain ("local"
// or e.g. "go1.21.13"), unstripped and non-PIE, caching the result under
// os.TempDir(). With GOROSCOPE_TARGET_DIR set it takes the prebuilt
// DIR/NAME-TOOLCHAIN instead: test/kernels runs these tests in VMs
// without a Go toolchain.
func testdataBinary(tb testing.TB, name, toolchain string) string {
	tb.Helper()
	if dir := os.Getenv("GOROSCOPE_TARGET_DIR"); dir != "" {
		bin := filepath.Join(dir, name+"-"+toolchain)
		if _, err := os.Stat(bin); err != nil {
			tb.Fatalf("GOROSCOPE_TARGET_DIR has no prebuilt %s for %s: %v (test/kernels builds those in its targetToolchains: add %s there)", name, toolchain, err, toolchain)
		}
		return bin
	}
	if testing.Short() {
		tb.Skip("builds a Go program; skipped in -short mode")
	}
	src, err := filepath.Abs(filepath.Join("testdata", name))
	if err != nil {
		tb.Fatal(err)
	}
	h := sha256.New()
	for _, f := range []string{"main.go", "go.mod"} {
		b, err := os.ReadFile(filepath.Join(src, f))
		if err != nil {
			tb.Fatal(err)
		}
		h.Write(b)
	}
	goVersion := toolchain
	if toolchain == "local" {
		out, err := exec.Command("go", "env", "GOVERSION").Output()
		if err != nil {
			tb.Fatalf("go env GOVERSION: %v", err)
		}
		goVersion = strings.TrimSpace(string(out))
	}
	key := fmt.Sprintf("bpf-%s-%s-exe-%s", name, goVersion, hex.EncodeToString(h.Sum(nil))[:16])
	dir := filepath.Join(os.TempDir(), "goroscope-testbins", key)
	bin := filepath.Join(dir, name)
	if _, err := os.Stat(bin); err == nil {
		return bin
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		tb.Fatal(err)
	}
	tmp := bin + fmt.Sprintf(".tmp%d", os.Getpid())
	cmd := exec.Command("go", "build", "-buildmode=exe", "-o", tmp, ".")
	cmd.Dir = src
	cmd.Env = append(os.Environ(), "GOTOOLCHAIN="+toolchain, "CGO_ENABLED=0", "GOFLAGS=")
	if out, err := cmd.CombinedOutput(); err != nil {
		tb.Fatalf("build %s with %s: %v\n%s", name, toolchain, err, out)
	}
	if err := os.Rename(tmp, bin); err != nil {
		tb.Fatal(err)
	}
	return bin
}

// targetInfo is what the tests know about a target binary.
type targetInfo struct {
	req     WalkRequest // without PID
	goidOff int64
	table   *gosym.Table
}

// inspectTarget reads the allgs/allglen symbols and runtime.g layout of bin.
func inspectTarget(tb testing.TB, bin string) targetInfo {
	tb.Helper()
	f, err := elf.Open(bin)
	if err != nil {
		tb.Fatal(err)
	}
	defer f.Close()
	syms, err := f.Symbols()
	if err != nil {
		tb.Fatalf("symbols of %s: %v", bin, err)
	}
	var ti targetInfo
	for _, s := range syms {
		switch s.Name {
		case "runtime.allgs":
			ti.req.Allgs = s.Value
		case "runtime.allglen":
			ti.req.Allglen = s.Value
		}
	}
	if ti.req.Allgs == 0 || ti.req.Allglen == 0 {
		tb.Fatalf("%s lacks runtime.allgs/runtime.allglen symbols", bin)
	}

	d, err := f.DWARF()
	if err != nil {
		tb.Fatalf("DWARF of %s: %v", bin, err)
	}
	g := findStruct(tb, d, "runtime.g")
	if g.ByteSize > MaxGSize {
		tb.Fatalf("runtime.g is %d bytes, more than %d", g.ByteSize, MaxGSize)
	}
	ti.req.GSize = uint32(g.ByteSize)
	ti.req.Off = GOffsets{
		StackLo:      fieldOff(tb, g, "stack", "lo"),
		StackHi:      fieldOff(tb, g, "stack", "hi"),
		AtomicStatus: fieldOff(tb, g, "atomicstatus"),
		SchedSP:      fieldOff(tb, g, "sched", "sp"),
		SchedPC:      fieldOff(tb, g, "sched", "pc"),
		SchedBP:      fieldOff(tb, g, "sched", "bp"),
		SyscallSP:    fieldOff(tb, g, "syscallsp"),
		SyscallPC:    fieldOff(tb, g, "syscallpc"),
		SyscallBP:    -1,
	}
	if hasField(g, "syscallbp") {
		ti.req.Off.SyscallBP = fieldOff(tb, g, "syscallbp")
	}
	ti.goidOff = int64(fieldOff(tb, g, "goid"))
	ti.req.Off.Goid = int32(ti.goidOff)
	ti.req.Off.WaitReason = fieldOff(tb, g, "waitreason")
	ti.req.Off.TrackingSeq = fieldOff(tb, g, "trackingSeq")
	ti.req.MaxFrames = 64
	ti.req.MaxGoroutines = 1 << 20

	text := f.Section(".text")
	pcln := f.Section(".gopclntab")
	if text == nil || pcln == nil {
		tb.Fatalf("%s lacks .text or .gopclntab", bin)
	}
	data, err := pcln.Data()
	if err != nil {
		tb.Fatal(err)
	}
	ti.table, err = gosym.NewTable(nil, gosym.NewLineTable(data, text.Addr))
	if err != nil {
		tb.Fatalf("pclntab of %s: %v", bin, err)
	}
	return ti
}

func findStruct(tb testing.TB, d *dwarf.Data, name string) *dwarf.StructType {
	tb.Helper()
	r := d.Reader()
	for {
		e, err := r.Next()
		if err != nil {
			tb.Fatalf("read DWARF: %v", err)
		}
		if e == nil {
			tb.Fatalf("DWARF has no struct %s", name)
		}
		if e.Tag == dwarf.TagCompileUnit {
			continue
		}
		if e.Tag != dwarf.TagStructType || e.Val(dwarf.AttrName) != name {
			r.SkipChildren()
			continue
		}
		t, err := d.Type(e.Offset)
		if err != nil {
			tb.Fatalf("DWARF type %s: %v", name, err)
		}
		st, ok := t.(*dwarf.StructType)
		if !ok {
			tb.Fatalf("DWARF %s is %T, not a struct", name, t)
		}
		return st
	}
}

func hasField(st *dwarf.StructType, name string) bool {
	for _, f := range st.Field {
		if f.Name == name {
			return true
		}
	}
	return false
}

// fieldOff returns the offset of the nested field path inside st.
func fieldOff(tb testing.TB, st *dwarf.StructType, path ...string) int32 {
	tb.Helper()
	var off int64
	t := dwarf.Type(st)
	for _, name := range path {
		for {
			td, ok := t.(*dwarf.TypedefType)
			if !ok {
				break
			}
			t = td.Type
		}
		s, ok := t.(*dwarf.StructType)
		if !ok {
			tb.Fatalf("field path %v: %s is %T, not a struct", path, name, t)
		}
		found := false
		for _, f := range s.Field {
			if f.Name == name {
				off += f.ByteOffset
				t = f.Type
				found = true
				break
			}
		}
		if !found {
			tb.Fatalf("struct %s has no field %s", s.StructName, name)
		}
	}
	return int32(off)
}

// startTarget runs bin -n n, waits for "ready" and returns its pid.
func startTarget(tb testing.TB, bin string, n int) uint32 {
	tb.Helper()
	return runTarget(tb, bin, "-n", fmt.Sprint(n)).pid
}

// runningTarget is a started target that takes commands on stdin.
type runningTarget struct {
	pid   uint32
	stdin io.Writer
	lines chan string // stdout lines after "ready"
}

// command sends one command line and waits for the target's "ok".
func (rt *runningTarget) command(tb testing.TB, line string) {
	tb.Helper()
	if _, err := fmt.Fprintln(rt.stdin, line); err != nil {
		tb.Fatalf("target command %q: %v", line, err)
	}
	select {
	case got, ok := <-rt.lines:
		if !ok || got != "ok\n" {
			tb.Fatalf("target command %q: answer %q (open %v), want \"ok\"", line, got, ok)
		}
	case <-time.After(30 * time.Second):
		tb.Fatalf("target command %q: no answer after 30s", line)
	}
}

// readingStdin reports whether a thread of process pid is in read(2) of
// fd 0: /proc/PID/task/TID/syscall starts with the syscall number (0 on
// amd64) and the first argument.
func readingStdin(tb testing.TB, pid int) bool {
	tasks, err := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/syscall", pid))
	if err != nil {
		tb.Fatal(err)
	}
	for _, f := range tasks {
		if b, err := os.ReadFile(f); err == nil && strings.HasPrefix(string(b), "0 0x0 ") {
			return true
		}
	}
	return false
}

// runTarget runs bin with args and waits for "ready".
func runTarget(tb testing.TB, bin string, args ...string) *runningTarget {
	tb.Helper()
	cmd := exec.Command(bin, args...)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		tb.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		tb.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		stdin.Close()
		done := make(chan struct{})
		go func() { cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			cmd.Process.Kill()
			<-done
		}
	})
	lines := make(chan string, 16)
	go func() { // ends when the target exits and closes stdout
		defer close(lines)
		r := bufio.NewReader(stdout)
		for {
			line, err := r.ReadString('\n')
			if err != nil {
				return
			}
			select {
			case lines <- line:
			default: // nobody asked: drop
			}
		}
	}()
	select {
	case line, ok := <-lines:
		if !ok || line != "ready\n" {
			tb.Fatalf("target %s did not get ready: output %q (open %v)", bin, line, ok)
		}
		// Wait for the main goroutine to get from its write of "ready"
		// into its read of stdin, so tests see a settled syscall stack.
		eventually.True(tb, 10*time.Second, "the target blocked in its read of stdin", func() bool {
			return readingStdin(tb, cmd.Process.Pid)
		})
	case <-time.After(60 * time.Second):
		tb.Fatalf("target %s: no ready line after 60s", bin)
	}
	return &runningTarget{pid: uint32(cmd.Process.Pid), stdin: stdin, lines: lines}
}

// readMem reads len(buf) bytes at addr of pid with process_vm_readv.
func readMem(pid uint32, addr uint64, buf []byte) error {
	local := []unix.Iovec{{Base: &buf[0]}}
	local[0].SetLen(len(buf))
	remote := []unix.RemoteIovec{{Base: uintptr(addr), Len: len(buf)}}
	n, err := unix.ProcessVMReadv(int(pid), local, remote, 0)
	if err != nil {
		return err
	}
	if n != len(buf) {
		return fmt.Errorf("short read %d of %d at %#x", n, len(buf), addr)
	}
	return nil
}

// userWalk re-implements the Walk rules for the goroutine at gaddr with
// process_vm_readv. ok is false for goroutines that get no record.
func userWalk(pid uint32, req WalkRequest, gaddr uint64) (pcs []uint64, flags RecordFlags, ok bool, err error) {
	g := make([]byte, req.GSize)
	if err := readMem(pid, gaddr, g); err != nil {
		return nil, 0, false, err
	}
	u64 := func(off int32) uint64 { return binary.LittleEndian.Uint64(g[off:]) }
	s := binary.LittleEndian.Uint32(g[req.Off.AtomicStatus:]) &^ 0x1000
	switch s {
	case 0, 6:
		return nil, 0, false, nil
	case 2, 8:
		return nil, 0, true, nil
	}
	pc, fp := u64(req.Off.SchedPC), u64(req.Off.SchedBP)
	if s == 3 {
		pc = u64(req.Off.SyscallPC)
		if req.Off.SyscallBP == -1 {
			if pc != 0 {
				pcs = append(pcs, pc)
			}
			return pcs, FlagNeedsFP, true, nil
		}
		fp = u64(req.Off.SyscallBP)
	}
	if pc != 0 {
		pcs = append(pcs, pc)
	}
	lo, hi := u64(req.Off.StackLo), u64(req.Off.StackHi)
	var prev uint64
	frame := make([]byte, 16)
	for i := 0; i <= MaxFramesLimit; i++ {
		if fp == 0 || fp%8 != 0 || fp < lo || hi < 8 || fp >= hi-8 || fp <= prev {
			break
		}
		if len(pcs) >= int(req.MaxFrames) {
			flags |= FlagTruncated
			break
		}
		if err := readMem(pid, fp, frame); err != nil {
			flags |= FlagFault
			break
		}
		next, ret := binary.LittleEndian.Uint64(frame), binary.LittleEndian.Uint64(frame[8:])
		if ret == 0 {
			break
		}
		pcs = append(pcs, ret)
		prev, fp = fp, next
	}
	return pcs, flags, true, nil
}
