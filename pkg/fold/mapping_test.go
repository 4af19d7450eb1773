package fold

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/google/pprof/profile"

	"github.com/goroscope/goroscope/pkg/gobin"
	"github.com/goroscope/goroscope/pkg/snapshot"
)

// mappingSnapshot has one parked goroutine with run-time PCs in
// [0x401000, 0x403000) and one native frame outside.
func mappingSnapshot() *snapshot.Snapshot {
	return &snapshot.Snapshot{
		PID: 7, Exe: "/usr/local/bin/app", Time: time.Unix(1000, 0),
		Goroutines: []snapshot.Goroutine{{
			ID: 1, State: snapshot.StateWaiting, WaitReason: "select", WaitingSeconds: 3,
			Frames: []snapshot.Frame{
				{Function: "[libc.so.6]", PC: 0x7f0000001000},
				{Function: "runtime.gopark", File: "proc.go", Line: 435, PC: 0x401010},
				{Function: "main.main", File: "main.go", Line: 9, PC: 0x402020},
			},
		}},
	}
}

// TestMainMapping checks the main mapping of the goroutine and wall
// profiles, with only the snapshot's path and with SetExecutable, and that
// `go tool pprof -raw` reads them without "Main binary filename not
// available".
func TestMainMapping(t *testing.T) {
	exe := Executable{File: "/usr/local/bin/app", BuildID: "0123abcd", Start: 0x401000, Limit: 0x403000, Offset: 0x1000}
	withExe := func(p *profile.Profile) *profile.Profile { SetExecutable(p, exe); return p }
	tests := []struct {
		name    string
		p       *profile.Profile
		want    profile.Mapping
		wantLoc int // locations pointing at the mapping
	}{
		{"goroutine", Goroutines(mappingSnapshot()), profile.Mapping{File: "/usr/local/bin/app"}, 0},
		{"goroutine_wall", GoroutineWall(mappingSnapshot(), time.Second), profile.Mapping{File: "/usr/local/bin/app"}, 0},
		{"goroutine+exe", withExe(Goroutines(mappingSnapshot())),
			profile.Mapping{File: exe.File, BuildID: exe.BuildID, Start: exe.Start, Limit: exe.Limit, Offset: exe.Offset}, 2},
		{"goroutine_wall+exe", withExe(GoroutineWall(mappingSnapshot(), time.Second)),
			profile.Mapping{File: exe.File, BuildID: exe.BuildID, Start: exe.Start, Limit: exe.Limit, Offset: exe.Offset}, 2},
		{"no path", Goroutines(&snapshot.Snapshot{Goroutines: mappingSnapshot().Goroutines}), profile.Mapping{}, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.p.CheckValid(); err != nil {
				t.Fatal(err)
			}
			var buf bytes.Buffer
			if err := tt.p.Write(&buf); err != nil {
				t.Fatal(err)
			}
			raw := buf.Bytes()
			p, err := profile.Parse(bytes.NewReader(raw))
			if err != nil {
				t.Fatal(err)
			}
			if len(p.Mapping) != 1 {
				t.Fatalf("%d mappings, want 1", len(p.Mapping))
			}
			m := p.Mapping[0]
			if m.File != tt.want.File || m.BuildID != tt.want.BuildID || m.Start != tt.want.Start || m.Limit != tt.want.Limit ||
				m.Offset != tt.want.Offset || !m.HasFunctions || !m.HasFilenames || !m.HasLineNumbers || !m.HasInlineFrames {
				t.Errorf("mapping %+v, want %+v with every Has* set", m, tt.want)
			}
			var mapped int
			for _, l := range p.Location {
				if l.Mapping != nil {
					mapped++
				}
			}
			if mapped != tt.wantLoc {
				t.Errorf("%d locations in the mapping, want %d", mapped, tt.wantLoc)
			}
			checkPprofRaw(t, raw, tt.want.File)
		})
	}
}

// checkPprofRaw runs `go tool pprof -raw` on an encoded profile and checks
// it warns of nothing and shows the mapping's file.
func checkPprofRaw(t *testing.T, encoded []byte, file string) {
	t.Helper()
	if testing.Short() {
		return
	}
	path := filepath.Join(t.TempDir(), "profile.pb.gz")
	if err := os.WriteFile(path, encoded, 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("go", "tool", "pprof", "-raw", path)
	cmd.Env = append(os.Environ(), "PPROF_BINARY_PATH="+t.TempDir(), "PPROF_TMPDIR="+t.TempDir())
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("go tool pprof -raw: %v\n%s", err, stderr.String())
	}
	if strings.Contains(stderr.String(), "Main binary filename not available") || stderr.Len() > 0 {
		t.Errorf("go tool pprof -raw warns:\n%s", stderr.String())
	}
	if !strings.Contains(stdout.String(), "Mappings\n1: ") || (file != "" && !strings.Contains(stdout.String(), file)) {
		t.Errorf("go tool pprof -raw shows no mapping of %q:\n%s", file, stdout.String())
	}
}

// TestExecutableOf checks the executable of this test process: the text
// range holds its functions at run time, and Offset maps it to the file.
func TestExecutableOf(t *testing.T) {
	pid := os.Getpid()
	bin, err := gobin.OpenProcess(pid)
	if err != nil {
		t.Fatal(err)
	}
	defer bin.Close()
	bias, err := bin.LoadBias(pid)
	if err != nil {
		t.Fatal(err)
	}
	exe := ExecutableOf("/proc/self/exe", bin, bias)
	if exe.File != "/proc/self/exe" || exe.BuildID == "" || exe.BuildID != bin.BuildID() {
		t.Errorf("File %q, BuildID %q (gobin says %q)", exe.File, exe.BuildID, bin.BuildID())
	}
	pc := uint64(reflect.ValueOf(TestExecutableOf).Pointer())
	if !exe.contains(pc) {
		t.Fatalf("text [%#x, %#x) does not hold TestExecutableOf at %#x", exe.Start, exe.Limit, pc)
	}
	// The code at pc in memory is at file offset pc-Start+Offset.
	mem, err := os.ReadFile("/proc/self/exe")
	if err != nil {
		t.Fatal(err)
	}
	self, err := os.Open("/proc/self/mem")
	if err != nil {
		t.Fatal(err)
	}
	defer self.Close()
	code := make([]byte, 32)
	if _, err := self.ReadAt(code, int64(pc)); err != nil {
		t.Fatal(err)
	}
	off := pc - exe.Start + exe.Offset
	if !bytes.Equal(mem[off:off+32], code) {
		t.Errorf("file bytes at %#x differ from the code at %#x (Start %#x, Offset %#x)", off, pc, exe.Start, exe.Offset)
	}
	// A profile built with it names the executable and maps its PCs.
	s := &snapshot.Snapshot{Exe: "/proc/self/exe", Goroutines: []snapshot.Goroutine{{ID: 1, State: snapshot.StateWaiting,
		Frames: []snapshot.Frame{{Function: "fold.TestExecutableOf", File: "mapping_test.go", Line: 1, PC: pc}}}}}
	p := Goroutines(s)
	SetExecutable(p, exe)
	if p.Location[0].Mapping != p.Mapping[0] {
		t.Errorf("location at %#x is not in the mapping %+v", pc, p.Mapping[0])
	}
}
