package scrape

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/pprof/profile"

	"github.com/goroscope/goroscope/test/targettest"
)

// loadTotals is pprofload's /stats and /work answer.
type loadTotals struct {
	Allocs     int64 `json:"allocs"`
	AllocBytes int64 `json:"alloc_bytes"`
	Mutex      int64 `json:"mutex"`
	Block      int64 `json:"block"`
}

// work asks a pprofload target for exact work (see its package doc).
func work(t *testing.T, tgt *targettest.Target, query string) loadTotals {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, tgt.URL("/work?"+query), nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("POST /work?%s: %v", query, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("POST /work?%s: %s: %s", query, resp.Status, b)
	}
	var tot loadTotals
	if err := json.Unmarshal(b, &tot); err != nil {
		t.Fatalf("decode /work answer %q: %v", b, err)
	}
	return tot
}

// startLoad builds (once, cached) and starts a pprofload target.
func startLoad(t *testing.T, o targettest.BuildOpts, args ...string) *targettest.Target {
	t.Helper()
	return targettest.Start(t, targettest.Build(t, "pprofload", o), args...)
}

// buildLeakLoad builds pprofload with GOEXPERIMENT=goroutineleakprofile
// (which targettest.Build cannot set) with the local toolchain.
func buildLeakLoad(t *testing.T) string {
	t.Helper()
	dir, err := targettest.TargetsDir()
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(t.TempDir(), "pprofload-leak")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "go", "build", "-o", bin, "./pprofload")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GOEXPERIMENT=goroutineleakprofile", "GOTOOLCHAIN=local", "GOWORK=off", "GOFLAGS=", "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build pprofload with GOEXPERIMENT=goroutineleakprofile: %v\n%s", err, out)
	}
	return bin
}

// newScraper builds a scraper or fails the test.
func newScraper(t *testing.T, cfg Config) *Scraper {
	t.Helper()
	s, err := New(cfg, Options{Logger: testLogger(t), Version: "test"})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// testLogger logs through t.Log.
func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelInfo}))
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Helper()
	w.t.Log(strings.TrimSuffix(string(p), "\n"))
	return len(p), nil
}

// scrapeOne runs one cycle and returns the result of the only target.
func scrapeOne(t *testing.T, s *Scraper) Result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	rs := s.Scrape(ctx)
	if len(rs) != 1 {
		t.Fatalf("%d results, want 1", len(rs))
	}
	return rs[0]
}

// profileOf returns the result's profile of kind k, or nil.
func (r Result) profileOf(k Kind) *profile.Profile {
	for _, p := range r.Profiles {
		if p.Kind == k {
			return p.Profile
		}
	}
	return nil
}

func (r Result) kinds() []Kind {
	var ks []Kind
	for _, p := range r.Profiles {
		ks = append(ks, p.Kind)
	}
	return ks
}

// sumOf sums sample type typ over the samples whose stack has fn (as the
// leaf when leaf is set).
func sumOf(t *testing.T, p *profile.Profile, typ, fn string, leaf bool) int64 {
	t.Helper()
	i := -1
	for j, st := range p.SampleType {
		if st.Type == typ {
			i = j
		}
	}
	if i < 0 {
		t.Fatalf("profile has no sample type %s", typ)
	}
	var sum int64
	for _, s := range p.Sample {
		if stackHas(s, fn, leaf) {
			sum += s.Value[i]
		}
	}
	return sum
}

// heapSum is sumOf over the heap samples allocated in fn (the leaf) whose
// objects are size bytes (the runtime's "bytes" label): the allocations a
// target made there, without what the runtime itself allocated while in
// fn's call to mallocgc (heap profiles hide those runtime frames).
func heapSum(t *testing.T, p *profile.Profile, typ, fn string, size int64) int64 {
	t.Helper()
	q := p.Copy()
	q.Sample = slices.DeleteFunc(q.Sample, func(s *profile.Sample) bool {
		b := s.NumLabel["bytes"]
		return len(b) != 1 || b[0] != size
	})
	return sumOf(t, q, typ, fn, true)
}

func stackHas(s *profile.Sample, fn string, leaf bool) bool {
	for li, l := range s.Location {
		for ni, ln := range l.Line {
			if ln.Function != nil && ln.Function.Name == fn {
				return !leaf || li == 0 && ni == 0
			}
		}
	}
	return false
}

// negatives lists samples with a negative value.
func negatives(p *profile.Profile) []string {
	var out []string
	for _, s := range p.Sample {
		if slices.ContainsFunc(s.Value, func(v int64) bool { return v < 0 }) {
			out = append(out, fmt.Sprintf("%v at %s", s.Value, leafName(s)))
		}
	}
	return out
}

// results collects what Run emits.
type results struct {
	mu   sync.Mutex
	list []Result
}

func (r *results) add(x Result) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.list = append(r.list, x)
}

func (r *results) get() []Result {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.list)
}
