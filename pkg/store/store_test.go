package store

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"
)

// t0 is an hour-aligned base time for test entries.
var t0 = time.Date(2025, 6, 1, 10, 0, 0, 0, time.UTC)

// payload is n deterministic, incompressible bytes for seed.
func payload(seed uint64, n int) []byte {
	r := rand.New(rand.NewPCG(seed, 42))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

// proc is a test process.
func proc(pid int) Process {
	return Process{PID: pid, StartTime: uint64(1000 + pid), ServiceName: "svc", Exe: "/usr/bin/app", GoVersion: "go1.26.0"}
}

// ent is a test entry whose payload is derived from its time.
func ent(pid int, kind string, at time.Time, n int) Entry {
	return Entry{
		Process:  proc(pid),
		Kind:     kind,
		Time:     at,
		Duration: 10 * time.Second,
		Summary:  map[string]float64{"state/waiting": float64(pid)},
		Data:     payload(uint64(at.UnixNano())+uint64(pid), n),
	}
}

// clock is a settable Options.Now.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time  { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *clock) Set(t time.Time) { c.mu.Lock(); c.now = t; c.mu.Unlock() }

// open opens a store in dir and closes it when the test ends.
func open(tb testing.TB, dir string, o Options) *Store {
	tb.Helper()
	if o.Now == nil {
		c := &clock{now: t0.Add(time.Hour)}
		o.Now = c.Now
	}
	s, err := Open(dir, o)
	if err != nil {
		tb.Fatalf("Open(%s): %v", dir, err)
	}
	closeAtEnd(tb, s)
	return s
}

// closeAtEnd closes s when the test ends, unless the test did, before the
// cleanups registered earlier (such as an unmount).
func closeAtEnd(tb testing.TB, s *Store) {
	tb.Cleanup(func() {
		if err := s.Close(); err != nil && !errors.Is(err, ErrClosed) {
			tb.Errorf("Close: %v", err)
		}
	})
}

func mustClose(tb testing.TB, s *Store) {
	tb.Helper()
	if err := s.Close(); err != nil {
		tb.Fatalf("Close: %v", err)
	}
}

func mustList(tb testing.TB, s *Store, q Query) []Meta {
	tb.Helper()
	ms, err := s.List(q)
	if err != nil {
		tb.Fatalf("List(%+v): %v", q, err)
	}
	return ms
}

func mustAppend(tb testing.TB, s *Store, e Entry) Meta {
	tb.Helper()
	m, err := s.Append(e)
	if err != nil {
		tb.Fatalf("Append(%s pid %d at %s): %v", e.Kind, e.Process.PID, e.Time, err)
	}
	return m
}

func ids(ms []Meta) []uint64 {
	out := make([]uint64, len(ms))
	for i, m := range ms {
		out[i] = m.ID
	}
	return out
}

// segFiles returns the segment files in dir and their total size.
func segFiles(tb testing.TB, dir string) ([]string, int64) {
	tb.Helper()
	des, err := os.ReadDir(dir)
	if err != nil {
		tb.Fatal(err)
	}
	var paths []string
	var total int64
	for _, de := range des {
		var id uint64
		if _, err := fmt.Sscanf(de.Name(), "%d.seg", &id); err != nil || !de.Type().IsRegular() {
			continue
		}
		fi, err := de.Info()
		if err != nil {
			tb.Fatal(err)
		}
		paths = append(paths, filepath.Join(dir, de.Name()))
		total += fi.Size()
	}
	return paths, total
}

// fill appends, for 3 processes and 2 kinds, one entry a minute for n
// minutes, process by process, and returns the appended entries by ID.
func fill(tb testing.TB, s *Store, n int) map[uint64]Entry {
	tb.Helper()
	out := make(map[uint64]Entry)
	for i := 0; i < n; i++ {
		for _, pid := range []int{101, 102, 103} {
			for _, kind := range []string{KindGoroutines, KindSnapshot} {
				e := ent(pid, kind, t0.Add(time.Duration(i)*time.Minute), 500+pid)
				out[mustAppend(tb, s, e).ID] = e
			}
		}
	}
	return out
}

func TestAppendListRead(t *testing.T) {
	s := open(t, t.TempDir(), Options{})
	appended := fill(t, s, 10) // IDs 1..60: minute i holds IDs 6i+1..6i+6

	for id, e := range appended {
		got, err := s.Read(id)
		if err != nil || !bytes.Equal(got, e.Data) {
			t.Fatalf("Read(%d) = %d bytes, %v; want the %d bytes appended", id, len(got), err, len(e.Data))
		}
	}
	for _, id := range []uint64{0, 61, 1 << 40} {
		if _, err := s.Read(id); !errors.Is(err, ErrNotFound) {
			t.Errorf("Read(%d) error = %v, want ErrNotFound", id, err)
		}
	}

	p102 := proc(102).Key()
	tests := []struct {
		name string
		q    Query
		want []uint64
	}{
		{"all", Query{}, seq(1, 60)},
		{"limit keeps newest", Query{Limit: 4}, seq(57, 60)},
		{"process and kind", Query{Process: p102, Kind: KindSnapshot}, []uint64{4, 10, 16, 22, 28, 34, 40, 46, 52, 58}},
		{"process, kind, limit", Query{Process: p102, Kind: KindSnapshot, Limit: 2}, []uint64{52, 58}},
		{"from inclusive, to exclusive", Query{Kind: KindGoroutines, From: t0.Add(2 * time.Minute), To: t0.Add(4 * time.Minute)}, []uint64{13, 15, 17, 19, 21, 23}},
		{"to before from", Query{From: t0.Add(5 * time.Minute), To: t0}, nil},
		{"unknown process", Query{Process: ProcessKey{PID: 7}}, nil},
		{"unknown kind", Query{Kind: "heap"}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ms, err := s.List(tt.q)
			if err != nil {
				t.Fatal(err)
			}
			if got := ids(ms); !reflect.DeepEqual(got, tt.want) && !(len(got) == 0 && len(tt.want) == 0) {
				t.Errorf("List(%+v) IDs = %v, want %v", tt.q, got, tt.want)
			}
			for _, m := range ms {
				e := appended[m.ID]
				if m.Kind != e.Kind || m.Process != e.Process || !m.Time.Equal(e.Time) || m.Size != int64(len(e.Data)) ||
					m.Duration != e.Duration || !reflect.DeepEqual(m.Summary, e.Summary) {
					t.Errorf("List meta %+v does not describe the entry appended as %d", m, m.ID)
				}
			}
		})
	}

	// Entries out of time order come back in time order.
	late := mustAppend(t, s, ent(104, KindCPU, t0.Add(-time.Hour), 10))
	ms := mustList(t, s, Query{Limit: 2})
	if got := ids(ms); !reflect.DeepEqual(got, []uint64{59, 60}) {
		t.Errorf("newest two = %v, want [59 60]", got)
	}
	ms = mustList(t, s, Query{Limit: 61})
	if ms[0].ID != late.ID {
		t.Errorf("oldest by time = %d, want %d (appended last, an hour earlier)", ms[0].ID, late.ID)
	}

	ps := s.Processes()
	wantPIDs := []int{101, 102, 103, 104} // 101..103 tie at t0+9m, by PID; 104 is oldest
	if len(ps) != len(wantPIDs) {
		t.Fatalf("Processes() = %d, want %d", len(ps), len(wantPIDs))
	}
	for i, p := range ps {
		if p != proc(wantPIDs[i]) {
			t.Errorf("Processes()[%d] = %+v, want %+v", i, p, proc(wantPIDs[i]))
		}
	}

	st := s.Stats()
	var wantBytes int64 = 10
	for _, e := range appended {
		wantBytes += int64(len(e.Data))
	}
	_, disk := segFiles(t, s.dir)
	if st.Entries != 61 || st.Written != 61 || st.Bytes != wantBytes || st.DiskBytes != disk || st.WriteErrors != 0 || len(st.Dropped) != 0 {
		t.Errorf("Stats = %+v, want 61 entries, 61 written, %d bytes, %d on disk, nothing dropped", st, wantBytes, disk)
	}
}

func seq(from, to uint64) []uint64 {
	var out []uint64
	for i := from; i <= to; i++ {
		out = append(out, i)
	}
	return out
}

func TestProcessesLatestInfo(t *testing.T) {
	s := open(t, t.TempDir(), Options{})
	old := ent(1, KindSnapshot, t0, 10)
	renamed := ent(1, KindSnapshot, t0.Add(time.Minute), 10)
	renamed.Process.ServiceName = "renamed"
	other := ent(2, KindSnapshot, t0.Add(30*time.Second), 10)
	for _, e := range []Entry{renamed, old, other} {
		mustAppend(t, s, e)
	}
	want := []Process{renamed.Process, other.Process}
	if got := s.Processes(); !reflect.DeepEqual(got, want) {
		t.Errorf("Processes() = %+v, want %+v", got, want)
	}
}

func TestAppendRejects(t *testing.T) {
	s := open(t, t.TempDir(), Options{MaxBytes: 64 << 10})
	tests := []struct {
		name string
		e    Entry
		want string
	}{
		{"empty kind", Entry{Time: t0}, "kind"},
		{"upper-case kind", Entry{Kind: "CPU", Time: t0}, "lowercase"},
		{"zero time", Entry{Kind: KindCPU}, "time is zero"},
		{"over MaxBytes", Entry{Kind: KindCPU, Time: t0, Data: make([]byte, 65<<10)}, "exceeds MaxBytes"},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := s.Append(tt.e)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Append error = %v, want one mentioning %q", err, tt.want)
			}
			if st := s.Stats(); st.WriteErrors != uint64(i+1) || st.Entries != 0 {
				t.Errorf("Stats = %+v, want %d write errors, no entries", st, i+1)
			}
		})
	}
	// Non-finite summary values are left out, the entry is kept.
	m := mustAppend(t, s, Entry{Kind: KindCPU, Time: t0, Summary: map[string]float64{"nan": math.NaN(), "inf": math.Inf(1), "ok": 2}})
	if !reflect.DeepEqual(m.Summary, map[string]float64{"ok": 2}) {
		t.Errorf("Summary = %v, want only ok=2", m.Summary)
	}
	if m.ID != 1 {
		t.Errorf("first stored ID = %d, want 1 (rejected appends use none)", m.ID)
	}
}

func TestClosed(t *testing.T) {
	s := open(t, t.TempDir(), Options{})
	m := mustAppend(t, s, ent(1, KindCPU, t0, 10))
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Append(ent(1, KindCPU, t0, 10)); !errors.Is(err, ErrClosed) {
		t.Errorf("Append after Close: %v, want ErrClosed", err)
	}
	if _, err := s.List(Query{}); !errors.Is(err, ErrClosed) {
		t.Errorf("List after Close: %v, want ErrClosed", err)
	}
	if _, err := s.Read(m.ID); !errors.Is(err, ErrClosed) {
		t.Errorf("Read after Close: %v, want ErrClosed", err)
	}
	if err := s.Retain(t0); !errors.Is(err, ErrClosed) {
		t.Errorf("Retain after Close: %v, want ErrClosed", err)
	}
	if err := s.Close(); !errors.Is(err, ErrClosed) {
		t.Errorf("second Close: %v, want ErrClosed", err)
	}
}

func TestDirInUse(t *testing.T) {
	dir := t.TempDir()
	s := open(t, dir, Options{})
	if _, err := Open(dir, Options{}); err == nil || !strings.Contains(err.Error(), "in use") || !strings.Contains(err.Error(), "--data-dir") {
		t.Fatalf("second Open error = %v, want 'in use' naming --data-dir", err)
	}
	mustClose(t, s)
	open(t, dir, Options{}) // released by Close
}

func TestConcurrentReaders(t *testing.T) {
	s := open(t, t.TempDir(), Options{})
	const n = 400
	done := make(chan struct{})
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for r := 0; r < 4; r++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for reads := 0; ; reads++ {
				select {
				case <-done:
					return
				default:
				}
				ms, err := s.List(Query{Process: proc(100 + reads%3).Key(), Limit: 5})
				if err != nil {
					errs <- err
					return
				}
				for _, m := range ms {
					b, err := s.Read(m.ID)
					if err != nil || !bytes.Equal(b, payload(uint64(m.Time.UnixNano())+uint64(m.Process.PID), 300)) {
						errs <- errors.Join(errors.New("payload differs"), err)
						return
					}
				}
				s.Stats()
				s.Processes()
			}
		}()
	}
	for i := 0; i < n; i++ {
		mustAppend(t, s, ent(100+i%3, KindGoroutines, t0.Add(time.Duration(i)*time.Second), 300))
	}
	close(done)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if st := s.Stats(); st.Entries != n {
		t.Errorf("Entries = %d, want %d", st.Entries, n)
	}
}
