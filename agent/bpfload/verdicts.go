package bpfload

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/goroscope/goroscope/bpf"
)

// VerdictsFile is the cache's name in the data directory.
const VerdictsFile = "bpf-verdicts.json"

// VerdictsEnv overrides where every command keeps the cache.
const VerdictsEnv = "GOROSCOPE_BPF_CACHE"

// maxVerdicts bounds the cache: the newest rejections are kept.
const maxVerdicts = 16

// Verdicts is the small file that remembers which embedded BPF objects the
// verifier of this host's kernel build rejected, keyed by the object's hash
// and bpf.KernelBuild, so that no command pays the verifier again (it can
// take a minute of kernel CPU) for an answer it already has. Only
// rejections are kept: a kernel's verdict on the same bytes never changes.
// Writes replace the file atomically; concurrent writers may lose each
// other's entry, which is then learnt again (within a process, writes are
// serialized). A file that cannot be read or parsed is ignored (a debug
// line).
type Verdicts struct {
	path string       // "" remembers nothing
	log  *slog.Logger // debug lines only
	mu   sync.Mutex   // serializes remember
}

// NewVerdicts is the cache kept in the file at path; "" remembers
// nothing. log takes its debug lines.
func NewVerdicts(path string, log *slog.Logger) *Verdicts {
	return &Verdicts{path: path, log: log}
}

// VerdictsPath is the cache of a command: $GOROSCOPE_BPF_CACHE, else the
// file in dataDir.
func VerdictsPath(dataDir string) string {
	if p := os.Getenv(VerdictsEnv); p != "" {
		return p
	}
	return filepath.Join(dataDir, VerdictsFile)
}

// Verdict is one remembered rejection.
type Verdict struct {
	Object string `json:"object"` // bpf.Object.Name
	Hash   string `json:"hash"`   // bpf.Object.Hash
	Kernel string `json:"kernel"` // bpf.KernelBuild
	Cause  string `json:"cause"`  // bpf.LoadError.Cause
	// VerifierLog is the file holding the verifier's log of the rejection.
	VerifierLog string    `json:"verifier_log,omitempty"`
	At          time.Time `json:"at"`
}

type verdictFile struct {
	Version    int       `json:"version"`
	Rejections []Verdict `json:"rejections"`
}

const verdictFileVersion = 1

// read returns the remembered rejections; none when the file is missing,
// unreadable or corrupt.
func (v *Verdicts) read() []Verdict {
	if v.path == "" {
		return nil
	}
	b, err := os.ReadFile(v.path)
	if err != nil {
		if !os.IsNotExist(err) {
			v.log.Debug("BPF verdict cache unreadable, ignored", "path", v.path, "err", err)
		}
		return nil
	}
	var f verdictFile
	if err := json.Unmarshal(b, &f); err != nil || f.Version != verdictFileVersion {
		if err == nil {
			err = fmt.Errorf("version %d, want %d", f.Version, verdictFileVersion)
		}
		v.log.Debug("BPF verdict cache corrupt, ignored", "path", v.path, "err", err)
		return nil
	}
	return f.Rejections
}

// lookup returns the remembered rejection of obj by kernel.
func (v *Verdicts) lookup(obj bpf.Object, kernel string) (Verdict, bool) {
	for _, r := range v.read() {
		if r.Object == obj.Name && r.Hash == obj.Hash && r.Kernel == kernel && r.Cause != "" {
			return r, true
		}
	}
	return Verdict{}, false
}

// Remember adds r, replacing an older verdict on the same object and
// kernel. A failure to write is a debug line: the cache only saves time.
func (v *Verdicts) Remember(r Verdict) {
	if v.path == "" {
		return
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	old := v.read()
	keep := slices.DeleteFunc(old, func(o Verdict) bool {
		return o.Object == r.Object && o.Hash == r.Hash && o.Kernel == r.Kernel
	})
	keep = append(keep, r)
	if len(keep) > maxVerdicts {
		keep = keep[len(keep)-maxVerdicts:]
	}
	b, err := json.MarshalIndent(verdictFile{Version: verdictFileVersion, Rejections: keep}, "", "  ")
	if err == nil {
		err = writeAtomic(v.path, append(b, '\n'))
	}
	if err != nil {
		v.log.Debug("cannot remember BPF rejection", "path", v.path, "err", err)
	}
}

// writeLog writes the verifier's log of a rejection beside the cache
// (bpf-verifier-<object>.log) and returns its path; "" when there is no
// log or no place for it, and the log then goes to the debug level.
func (v *Verdicts) writeLog(obj bpf.Object, kernel string, le *bpf.LoadError) string {
	if len(le.VerifierLog) == 0 {
		return ""
	}
	var b strings.Builder
	fmt.Fprintf(&b, "# goroscope: the kernel verifier rejected BPF object %s (sha256 %s), program %s\n", obj.Name, obj.Hash, le.Program)
	fmt.Fprintf(&b, "# kernel: %s\n# cause: %s\n", kernel, le.Cause)
	for _, l := range le.VerifierLog {
		b.WriteString(l)
		b.WriteByte('\n')
	}
	if v.path != "" {
		p := filepath.Join(filepath.Dir(v.path), "bpf-verifier-"+obj.Name+".log")
		err := writeAtomic(p, []byte(b.String()))
		if err == nil {
			return p
		}
		v.log.Debug("cannot write the verifier log", "path", p, "err", err)
	}
	v.log.Debug("verifier log", "object", obj.Name, "log", b.String())
	return ""
}

// writeAtomic replaces path with b: readers see the old file or the new one.
func writeAtomic(path string, b []byte) error {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".*")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name()) // after a successful rename, a no-op
	if _, err := f.Write(b); err != nil {
		f.Close()
		return err
	}
	if err := f.Chmod(0o644); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(f.Name(), path)
}
