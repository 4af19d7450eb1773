package gobin

import (
	"debug/elf"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestOpenBadInput checks that bad files give clear errors and never panic.
func TestOpenBadInput(t *testing.T) {
	dir := t.TempDir()
	write := func(name string, data []byte, mode os.FileMode) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, data, mode); err != nil {
			t.Fatal(err)
		}
		return p
	}
	self, err := os.ReadFile("/proc/self/exe")
	if err != nil {
		t.Fatal(err)
	}
	var cELF string // an ELF executable that is not Go
	for _, c := range []string{"/bin/true", "/usr/bin/true", "/bin/sh"} {
		if _, err := os.Stat(c); err == nil {
			cELF = c
			break
		}
	}
	unreadable := write("unreadable", self[:4096], 0o000)

	tests := []struct {
		name    string
		path    string
		notGo   bool   // error must wrap ErrNotGo
		wantSub string // error must contain this
	}{
		{"nonexistent", filepath.Join(dir, "missing"), false, "no such file"},
		{"directory", dir, true, "directory"},
		{"empty", write("empty", nil, 0o644), true, "not an ELF"},
		{"text", write("text", []byte("#!/bin/sh\necho hi\n"), 0o755), true, "not an ELF"},
		{"truncated-header", write("trunc-hdr", self[:40], 0o755), true, "ELF"},
		{"truncated-1k", write("trunc-1k", self[:1024], 0o755), false, ""},
		{"truncated-half", write("trunc-half", self[:len(self)/2], 0o755), false, ""},
		{"devnull", "/dev/null", true, "not a regular file"},
	}
	if cELF != "" {
		tests = append(tests, struct {
			name    string
			path    string
			notGo   bool
			wantSub string
		}{"c-elf", cELF, true, "no Go build info"})
	}
	if os.Geteuid() != 0 {
		tests = append(tests, struct {
			name    string
			path    string
			notGo   bool
			wantSub string
		}{"permission", unreadable, false, "permission denied"})
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := Open(tt.path)
			if err == nil {
				b.Close()
				t.Fatalf("Open(%s) succeeded", tt.path)
			}
			if tt.notGo && !errors.Is(err, ErrNotGo) {
				t.Errorf("error %q does not wrap ErrNotGo", err)
			}
			if !strings.Contains(err.Error(), tt.wantSub) {
				t.Errorf("error %q does not mention %q", err, tt.wantSub)
			}
			if !strings.Contains(err.Error(), tt.path) && tt.name != "nonexistent" && tt.name != "permission" {
				t.Errorf("error %q does not name the path", err)
			}
			t.Logf("%v", err)
		})
	}
}

// TestOpenProcessBadInput checks pids that do not exist or are not Go.
func TestOpenProcessBadInput(t *testing.T) {
	for _, pid := range []int{-1, 0, 1 << 30} {
		if _, err := OpenProcess(pid); err == nil {
			t.Errorf("OpenProcess(%d) succeeded", pid)
		} else {
			t.Logf("OpenProcess(%d): %v", pid, err)
		}
	}
	// A non-Go process.
	sleep, err := exec.LookPath("sleep")
	if err != nil {
		t.Skip("no sleep binary")
	}
	cmd := exec.Command(sleep, "10")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cmd.Process.Kill(); cmd.Wait() }()
	_, err = OpenProcess(cmd.Process.Pid)
	if err == nil || !errors.Is(err, ErrNotGo) {
		t.Errorf("OpenProcess(sleep) = %v, want ErrNotGo", err)
	}
	b, err := OpenProcess(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if _, err := b.LoadBias(1 << 30); err == nil {
		t.Error("LoadBias of a nonexistent pid succeeded")
	}
	if _, err := b.LoadBias(cmd.Process.Pid); err == nil {
		t.Error("LoadBias in a process that does not map this executable succeeded")
	}
}

// TestOldPCLNTab checks the error for pre-1.20 pclntab formats.
func TestOldPCLNTab(t *testing.T) {
	for magic, want := range map[uint32]string{magicGo118: "Go 1.18–1.19", magicGo116: "Go 1.16–1.17", magicGo12: "Go 1.2–1.15"} {
		data := make([]byte, 128)
		data[0], data[1], data[2], data[3] = byte(magic), byte(magic>>8), byte(magic>>16), byte(magic>>24)
		data[6], data[7] = 1, 8
		_, err := parsePCLNTab(data)
		if err == nil || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), "Go 1.21") {
			t.Errorf("magic %#x: error %v, want mention of %s and Go 1.21", magic, err, want)
		}
	}
}

// TestModifiedBinaries opens copies of test builds whose section headers were removed (as sstrip
// does), so that only the program headers lead to the pclntab and the moduledata, and a copy whose
// pclntab header was also erased, which must be refused with an error naming the file and the fix.
func TestModifiedBinaries(t *testing.T) {
	noSections := func(data []byte, _ *Binary) {
		clear(data[40:48]) // e_shoff
		clear(data[60:64]) // e_shnum, e_shstrndx
	}
	noPCLNTab := func(data []byte, b *Binary) {
		noSections(data, b)
		for _, p := range b.elf.Progs {
			if p.Type == elf.PT_LOAD && b.pclnAddr >= p.Vaddr && b.pclnAddr-p.Vaddr < p.Filesz {
				clear(data[p.Off+b.pclnAddr-p.Vaddr:][:4]) // the magic
				return
			}
		}
		t.Fatalf("pclntab at %#x is in no segment", b.pclnAddr)
	}
	tests := []struct {
		name    string
		build   testBuild
		modify  func(data []byte, orig *Binary)
		wantErr []string // nil: Open must succeed and agree with the unmodified binary
	}{
		{"pie-ext-stripped/no-sections", testBuild{toolchain: "go1.24.13", pie: true, external: true, stripped: true}, noSections, nil},
		{"go1.21-stripped/no-sections", testBuild{toolchain: "go1.21.13", stripped: true}, noSections, nil},
		{"local-stripped/no-sections", testBuild{toolchain: "local", stripped: true}, noSections, nil},
		{"pie-ext-stripped/no-pclntab", testBuild{toolchain: "go1.24.13", pie: true, external: true, stripped: true}, noPCLNTab,
			[]string{"has no pclntab", "use the unmodified binary", "go1.24.13"}},
		{"local-stripped/no-pclntab", testBuild{toolchain: "local", stripped: true}, noPCLNTab,
			[]string{"has no pclntab", "use the unmodified binary"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			orig := buildCallers(t, tt.build)
			ob, err := Open(orig)
			if err != nil {
				t.Fatal(err)
			}
			defer ob.Close()
			data, err := os.ReadFile(orig)
			if err != nil {
				t.Fatal(err)
			}
			tt.modify(data, ob)
			path := filepath.Join(t.TempDir(), "modified")
			if err := os.WriteFile(path, data, 0o755); err != nil {
				t.Fatal(err)
			}
			b, err := Open(path)
			if tt.wantErr != nil {
				if err == nil {
					b.Close()
					t.Fatalf("Open succeeded")
				}
				for _, sub := range append(tt.wantErr, path) {
					if !strings.Contains(err.Error(), sub) {
						t.Errorf("error %q does not mention %q", err, sub)
					}
				}
				t.Log(err)
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			defer b.Close()
			if len(b.ELF().Sections) != 0 {
				t.Fatalf("%d sections left", len(b.ELF().Sections))
			}
			if b.NumFuncs() != ob.NumFuncs() || b.TextStart() != ob.TextStart() || b.modAddr != ob.modAddr || b.gofunc != ob.gofunc ||
				b.pclnAddr != ob.pclnAddr || len(b.tab.data) != len(ob.tab.data) {
				t.Errorf("%d funcs, text %#x, moduledata %#x, gofunc %#x, pclntab %#x+%d; unmodified: %d, %#x, %#x, %#x, %#x+%d",
					b.NumFuncs(), b.TextStart(), b.modAddr, b.gofunc, b.pclnAddr, len(b.tab.data),
					ob.NumFuncs(), ob.TextStart(), ob.modAddr, ob.gofunc, ob.pclnAddr, len(ob.tab.data))
			}
			for i := 0; i < ob.NumFuncs(); i += 7 {
				f, _ := ob.FuncByIndex(i)
				pc := (f.Entry + f.End) / 2
				got, want := b.Frames(pc, nil), ob.Frames(pc, nil)
				if fmt.Sprint(got) != fmt.Sprint(want) {
					t.Fatalf("Frames(%#x) = %+v, unmodified %+v", pc, got, want)
				}
			}
			v, err := b.RuntimeVars()
			if err != nil {
				t.Fatal(err)
			}
			ov, err := ob.RuntimeVars()
			if err != nil {
				t.Fatal(err)
			}
			if v != ov {
				t.Errorf("RuntimeVars = %+v, unmodified %+v", v, ov)
			}
		})
	}
}
