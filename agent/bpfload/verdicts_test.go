package bpfload

import (
	"bytes"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/goroscope/goroscope/bpf"
)

func debugLog(buf *bytes.Buffer) *slog.Logger {
	return slog.New(slog.NewTextHandler(buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

func TestVerdicts(t *testing.T) {
	obj := bpf.Object{Name: "goroutines", Hash: "aa"}
	r := Verdict{Object: "goroutines", Hash: "aa", Kernel: "6.18.44 #1", Cause: "verifier: too complex", At: time.Unix(1700000000, 0).UTC()}
	for _, tt := range []struct {
		name    string
		file    string // the cache's content before; "-" for none
		lookup  bpf.Object
		kernel  string
		want    bool
		logHas  string // a debug line
		noWrite bool
	}{
		{name: "round trip", file: "-", lookup: obj, kernel: r.Kernel, want: true},
		{name: "other object hash", file: "-", lookup: bpf.Object{Name: "goroutines", Hash: "bb"}, kernel: r.Kernel},
		{name: "other kernel build", file: "-", lookup: obj, kernel: "6.18.45 #1"},
		{name: "other object", file: "-", lookup: bpf.Object{Name: "cpu", Hash: "aa"}, kernel: r.Kernel},
		{name: "corrupt file", file: "{not json", lookup: obj, kernel: r.Kernel, noWrite: true, logHas: "BPF verdict cache corrupt, ignored"},
		{name: "other version", file: `{"version": 99, "rejections": []}`, lookup: obj, kernel: r.Kernel, noWrite: true, logHas: "version 99"},
		{name: "corrupt file replaced", file: "{not json", lookup: obj, kernel: r.Kernel, want: true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var log bytes.Buffer
			v := NewVerdicts(filepath.Join(t.TempDir(), "sub", VerdictsFile), debugLog(&log))
			if tt.file != "-" {
				if err := os.MkdirAll(filepath.Dir(v.path), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(v.path, []byte(tt.file), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			if !tt.noWrite {
				v.Remember(r)
			}
			got, ok := v.lookup(tt.lookup, tt.kernel)
			if ok != tt.want || (ok && got != r) {
				t.Errorf("lookup(%+v, %q) = %+v, %v; want %v", tt.lookup, tt.kernel, got, ok, tt.want)
			}
			if !strings.Contains(log.String(), tt.logHas) {
				t.Errorf("log lacks %q:\n%s", tt.logHas, log.String())
			}
			ents, _ := os.ReadDir(filepath.Dir(v.path))
			for _, e := range ents {
				if strings.HasPrefix(e.Name(), ".") {
					t.Errorf("temporary file %s left behind", e.Name())
				}
			}
		})
	}
}

func TestVerdictsBounded(t *testing.T) {
	v := NewVerdicts(filepath.Join(t.TempDir(), VerdictsFile), slog.New(slog.DiscardHandler))
	for i := range maxVerdicts + 3 {
		v.Remember(Verdict{Object: "cpu", Hash: "h", Kernel: string(rune('a' + i)), Cause: "c"})
	}
	v.Remember(Verdict{Object: "cpu", Hash: "h", Kernel: "z", Cause: "again"}) // replaces, not adds
	got := v.read()
	if len(got) != maxVerdicts || got[len(got)-1].Cause != "again" {
		t.Errorf("%d verdicts kept, newest %+v; want %d, the newest last", len(got), got[len(got)-1], maxVerdicts)
	}
	if _, ok := v.lookup(bpf.Object{Name: "cpu", Hash: "h"}, "a"); ok {
		t.Error("the oldest verdict was kept")
	}
	// No path: nothing is remembered, nothing fails.
	none := NewVerdicts("", slog.New(slog.DiscardHandler))
	none.Remember(Verdict{Object: "cpu"})
	if _, ok := none.lookup(bpf.Object{Name: "cpu"}, ""); ok {
		t.Error("a cache without a path remembered")
	}
}
