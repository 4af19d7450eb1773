package cpu

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/pprof/profile"
)

// TestProfileMapping checks the process_cpu profile's main mapping (path,
// build ID, text range and file offset, already symbolized), and that `go
// tool pprof -raw` reads it without "Main binary filename not available",
// with the text range known or not.
func TestProfileMapping(t *testing.T) {
	for _, tt := range []struct {
		name   string
		lo, hi uint64
		mapped int // locations in the mapping
	}{
		{"text known", 0x400000, 0x402000, 4},
		{"text unknown", 0, 0, 0},
	} {
		t.Run(tt.name, func(t *testing.T) {
			p := testProcess()
			p.textLo, p.textHi, p.textOff, p.buildID = tt.lo, tt.hi, 0x1000, "0123abcd"
			var buf bytes.Buffer
			if err := BuildProfile(p, time.Unix(1700000000, 0), time.Second, 100).Write(&buf); err != nil {
				t.Fatal(err)
			}
			prof, err := profile.Parse(bytes.NewReader(buf.Bytes()))
			if err != nil {
				t.Fatal(err)
			}
			if len(prof.Mapping) != 1 {
				t.Fatalf("%d mappings, want 1", len(prof.Mapping))
			}
			m := prof.Mapping[0]
			wantOff := uint64(0x1000)
			if tt.hi == 0 {
				wantOff = 0
			}
			if m.File != "/bin/t" || m.BuildID != "0123abcd" || m.Start != tt.lo || m.Limit != tt.hi || m.Offset != wantOff || !m.HasFunctions {
				t.Errorf("mapping %+v", m)
			}
			var mapped int
			for _, l := range prof.Location {
				if l.Mapping != nil {
					mapped++
				}
			}
			if mapped != tt.mapped {
				t.Errorf("%d locations in the mapping, want %d", mapped, tt.mapped)
			}
			if testing.Short() {
				return
			}
			path := filepath.Join(t.TempDir(), "cpu.pb.gz")
			if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
				t.Fatal(err)
			}
			cmd := exec.Command("go", "tool", "pprof", "-top", path)
			cmd.Env = append(os.Environ(), "PPROF_BINARY_PATH="+t.TempDir(), "PPROF_TMPDIR="+t.TempDir())
			var stdout, stderr bytes.Buffer
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			if err := cmd.Run(); err != nil {
				t.Fatalf("go tool pprof -top: %v\n%s", err, stderr.String())
			}
			if stderr.Len() > 0 {
				t.Errorf("go tool pprof -top warns:\n%s", stderr.String())
			}
			if !strings.Contains(stdout.String(), "main.burnCPU") {
				t.Errorf("go tool pprof -top:\n%s", stdout.String())
			}
		})
	}
}
