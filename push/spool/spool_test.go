package spool

import (
	"bytes"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func payload(i int) []byte { return []byte(fmt.Sprintf("record-%06d", i)) } // 13 bytes

const recSize = recHeaderLen + 13

type drops map[DropReason]int

// open opens the spool in dir; it is closed at the end of the test (a
// no-op if the test closed it), and must close without error.
func open(t *testing.T, dir string, o Options) (*Spool, drops) {
	t.Helper()
	d := drops{}
	o.NoSync = true
	o.OnDrop = func(r DropReason, n int) { d[r] += n }
	s, err := Open(dir, o)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return s, d
}

// read reads up to n records of at most maxBytes.
func read(t *testing.T, s *Spool, n, maxBytes int) []Record {
	t.Helper()
	recs, err := s.Read(n, maxBytes)
	if err != nil {
		t.Fatalf("Read: %v", err)
	}
	return recs
}

// ack acknowledges the records at offs.
func ack(t *testing.T, s *Spool, offs ...int64) {
	t.Helper()
	if err := s.Ack(offs...); err != nil {
		t.Fatalf("Ack: %v", err)
	}
}

func appendN(t *testing.T, s *Spool, from, to int) {
	t.Helper()
	for i := from; i < to; i++ {
		if err := s.Append(payload(i)); err != nil {
			t.Fatalf("Append %d: %v", i, err)
		}
	}
}

// readAll reads and acknowledges everything, returning the payloads.
func readAll(t *testing.T, s *Spool) []string {
	t.Helper()
	var got []string
	for {
		recs := read(t, s, 7, 1<<20)
		if len(recs) == 0 {
			return got
		}
		var offs []int64
		for _, r := range recs {
			got = append(got, string(r.Data))
			offs = append(offs, r.Off)
		}
		ack(t, s, offs...)
	}
}

func want(from, to int) []string {
	var w []string
	for i := from; i < to; i++ {
		w = append(w, string(payload(i)))
	}
	return w
}

func TestAppendReadAckAcrossSegmentsAndReopen(t *testing.T) {
	dir := t.TempDir()
	s, d := open(t, dir, Options{MaxBytes: 1 << 20, SegmentBytes: 10 * recSize})
	appendN(t, s, 0, 95)
	if got := s.Stats().Segments; got != 10 {
		t.Fatalf("segments = %d, want 10", got)
	}
	var offs []int64
	for _, r := range read(t, s, 40, 1<<20) {
		offs = append(offs, r.Off)
	}
	ack(t, s, offs...)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s, d2 := open(t, dir, Options{MaxBytes: 1 << 20, SegmentBytes: 10 * recSize})
	if st := s.Stats(); st.Records != 55 || st.Segments != 6 || st.Bytes != 55*recSize {
		t.Fatalf("after reopen stats = %+v, want 55 records, 6 segments, %d bytes", st, 55*recSize)
	}
	if got := readAll(t, s); !slices.Equal(got, want(40, 95)) {
		t.Fatalf("resumed records = %d (%v...), want 40..94", len(got), got[:min(3, len(got))])
	}
	if len(d)+len(d2) != 0 {
		t.Fatalf("unexpected drops %v %v", d, d2)
	}
}

// Out-of-order acknowledgement: records acknowledged beyond a gap are not
// read again after a clean reopen; unacknowledged ones are.
func TestOutOfOrderAckSkipSetSurvivesReopen(t *testing.T) {
	dir := t.TempDir()
	s, _ := open(t, dir, Options{})
	appendN(t, s, 0, 20)
	var offs []int64
	for i, r := range read(t, s, 20, 1<<20) {
		if i%3 != 0 { // leave 0,3,6,...,18 unacknowledged
			offs = append(offs, r.Off)
		}
	}
	ack(t, s, offs...)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s, _ = open(t, dir, Options{})
	if got := s.Len(); got != 7 {
		t.Fatalf("Len after reopen = %d, want 7", got)
	}
	got := readAll(t, s)
	var w []string
	for i := 0; i < 20; i += 3 {
		w = append(w, string(payload(i)))
	}
	if !slices.Equal(got, w) {
		t.Fatalf("re-read = %v, want %v", got, w)
	}
	// Rewind within one process behaves the same way.
	appendN(t, s, 20, 30)
	recs := read(t, s, 10, 1<<20)
	ack(t, s, recs[1].Off, recs[5].Off)
	s.Rewind()
	if got := readAll(t, s); len(got) != 8 || got[0] != string(payload(20)) || slices.Contains(got, string(payload(21))) {
		t.Fatalf("after Rewind read %v, want 20..29 without 21 and 25", got)
	}
}

func TestBudgetEvictsOldestExactly(t *testing.T) {
	s, d := open(t, t.TempDir(), Options{MaxBytes: 50 * recSize, SegmentBytes: 8 * recSize})
	appendN(t, s, 0, 130)
	if d[DropSpoolFull] != 80 || s.Stats().DroppedFull != 80 {
		t.Fatalf("dropped = %v / %d, want 80", d, s.Stats().DroppedFull)
	}
	if st := s.Stats(); st.Bytes != 50*recSize || st.Segments > 50/8+2 {
		t.Fatalf("stats %+v: want 50 records of bytes and at most %d segments", st, 50/8+2)
	}
	// Held records do not count as dropped when evicted and later acknowledged...
	recs := read(t, s, 5, 1<<20)
	appendN(t, s, 130, 140) // evicts the 5 held + 5 unread
	if d[DropSpoolFull] != 85 {
		t.Fatalf("dropped = %d, want 85", d[DropSpoolFull])
	}
	ack(t, s, recs[0].Off, recs[1].Off)
	// ...but are lost (and counted) when given back unacknowledged.
	if lost := s.Rewind(); lost != 3 || d[DropSpoolFull] != 88 {
		t.Fatalf("Rewind lost %d (total %d), want 3 (88)", lost, d[DropSpoolFull])
	}
	if got := readAll(t, s); !slices.Equal(got, want(90, 140)) {
		t.Fatalf("remaining %d records from %v, want 90..139", len(got), got[:1])
	}
	if recs := read(t, s, 1, 1); len(recs) != 0 || s.Len() != 0 {
		t.Fatalf("read %d more records, Len = %d; want none, 0", len(recs), s.Len())
	}
	if err := s.Append(make([]byte, 50*recSize)); err == nil {
		t.Fatal("Append larger than the budget succeeded")
	}
}

func segFiles(t *testing.T, dir string) []string {
	t.Helper()
	m, err := filepath.Glob(filepath.Join(dir, "*"+segSuffix))
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(m)
	return m
}

func TestCorruptionIsSkippedAndCounted(t *testing.T) {
	const segBytes = 10 * recSize // three segments of ten records
	cases := []struct {
		name     string
		segBytes int64
		damage   func(t *testing.T, dir string)
		wantRecs []string
		corrupt  int // DropCorrupt: records lost
		inexact  int64
		// logs are the "path offset" pairs of the log lines, path relative
		// to dir.
		logs []string
	}{
		{"payload byte", segBytes, func(t *testing.T, dir string) {
			flip(t, segFiles(t, dir)[0], segHeaderLen+3*recSize+recHeaderLen+2)
		}, append(want(0, 3), want(4, 30)...), 1, 0, []string{segName(0) + " 71"}},
		{"ten payloads in a row", 0, func(t *testing.T, dir string) {
			for i := int64(10); i < 20; i++ {
				flip(t, segFiles(t, dir)[0], segHeaderLen+i*recSize+recHeaderLen+2)
			}
		}, append(want(0, 10), want(20, 30)...), 10, 0, []string{segName(0) + " 218"}},
		{"ten checksums apart", 0, func(t *testing.T, dir string) {
			for i := int64(5); i < 25; i += 2 {
				flip(t, segFiles(t, dir)[0], segHeaderLen+i*recSize+5)
			}
		}, []string{
			"record-000000", "record-000001", "record-000002", "record-000003", "record-000004",
			"record-000006", "record-000008", "record-000010", "record-000012", "record-000014",
			"record-000016", "record-000018", "record-000020", "record-000022", "record-000024",
			"record-000025", "record-000026", "record-000027", "record-000028", "record-000029",
		}, 10, 0, []string{segName(0) + " 113"}},
		{"length prefix", segBytes, func(t *testing.T, dir string) {
			flip(t, segFiles(t, dir)[0], segHeaderLen+5*recSize+1)
		}, append(want(0, 5), want(6, 30)...), 1, 1, []string{segName(0) + " 113"}},
		{"segment magic", segBytes, func(t *testing.T, dir string) {
			flip(t, segFiles(t, dir)[1], 0)
		}, want(0, 30), 0, 0, []string{segName(10*recSize) + " 0"}},
		{"whole 8-byte header before 30 records", 0, func(t *testing.T, dir string) {
			f := segFiles(t, dir)
			if len(f) != 1 {
				t.Fatalf("%d segments, want 1", len(f))
			}
			for i := range segHeaderLen {
				flip(t, f[0], i)
			}
		}, want(0, 30), 0, 0, []string{segName(0) + " 0"}},
		{"header and a payload: one line", segBytes, func(t *testing.T, dir string) {
			f := segFiles(t, dir)[2]
			flip(t, f, 3)
			flip(t, f, segHeaderLen+4*recSize+recHeaderLen)
		}, append(want(0, 24), want(25, 30)...), 1, 0, []string{segName(20*recSize) + " 0"}},
		{"short segment file", segBytes, func(t *testing.T, dir string) {
			if err := os.WriteFile(filepath.Join(dir, segName(1<<40)), []byte("GSS"), 0o600); err != nil {
				t.Fatal(err)
			}
		}, want(0, 30), 0, 0, []string{segName(1<<40) + " 0"}},
		{"torn tail", segBytes, func(t *testing.T, dir string) {
			f := segFiles(t, dir)
			last := f[len(f)-1]
			fi, err := os.Stat(last)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.Truncate(last, fi.Size()-4); err != nil {
				t.Fatal(err)
			}
		}, want(0, 29), 1, 1, []string{segName(20*recSize) + " 197"}},
		{"cursor", segBytes, func(t *testing.T, dir string) {
			if err := os.WriteFile(filepath.Join(dir, cursorName), []byte("garbage garbage garbage"), 0o600); err != nil {
				t.Fatal(err)
			}
		}, want(0, 30), 0, 0, []string{cursorName + " 0"}},
		{"random junk everywhere", segBytes, func(t *testing.T, dir string) {
			for i, f := range segFiles(t, dir) {
				for off := segHeaderLen + int64(i); off < segHeaderLen+10*recSize; off += 17 {
					flip(t, f, off)
				}
			}
		}, nil, -1, 0, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			s, _ := open(t, dir, Options{SegmentBytes: tc.segBytes})
			appendN(t, s, 0, 30)
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			tc.damage(t, dir)
			var logs bytes.Buffer
			s, d := open(t, dir, Options{SegmentBytes: tc.segBytes, Logger: slog.New(slog.NewTextHandler(&logs, nil))})
			got := readAll(t, s)
			if tc.corrupt < 0 { // only "never crash, never return garbage"
				for _, g := range got {
					if !slices.Contains(want(0, 30), g) {
						t.Fatalf("returned a record that was never appended: %q", g)
					}
				}
				if d[DropCorrupt] == 0 {
					t.Fatal("no corruption counted")
				}
				if n := strings.Count(logs.String(), "\n"); n != len(segFiles(t, dir)) {
					t.Fatalf("%d log lines for %d damaged segments:\n%s", n, len(segFiles(t, dir)), &logs)
				}
				return
			}
			if !slices.Equal(got, tc.wantRecs) || d[DropCorrupt] != tc.corrupt {
				t.Fatalf("got %d records, %d corrupt; want %d records, %d corrupt", len(got), d[DropCorrupt], len(tc.wantRecs), tc.corrupt)
			}
			if st := s.Stats(); st.CorruptRecords != int64(tc.corrupt) || st.CorruptInexact != tc.inexact {
				t.Errorf("Stats: %d corrupt records (%d inexact regions), want %d (%d)", st.CorruptRecords, st.CorruptInexact, tc.corrupt, tc.inexact)
			}
			var lines []string
			for l := range strings.Lines(logs.String()) {
				var path, off string
				for _, f := range strings.Fields(l) {
					if v, ok := strings.CutPrefix(f, "path="); ok {
						path, _ = filepath.Rel(dir, v)
					}
					if v, ok := strings.CutPrefix(f, "offset="); ok {
						off = v
					}
				}
				lines = append(lines, path+" "+off)
			}
			if !slices.Equal(lines, tc.logs) {
				t.Errorf("logged (path offset) %q, want %q:\n%s", lines, tc.logs, &logs)
			}
			appendN(t, s, 30, 32) // still writable after repair
			if got := readAll(t, s); !slices.Equal(got, want(30, 32)) {
				t.Fatalf("after repair got %v", got)
			}
		})
	}
}

// TestCorruptionCountedOnce: reading a damaged region again after Rewind
// or after a restart that left it in place does not count it again.
func TestCorruptionCountedOnce(t *testing.T) {
	dir := t.TempDir()
	s, _ := open(t, dir, Options{})
	appendN(t, s, 0, 10)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	flip(t, segFiles(t, dir)[0], segHeaderLen+4*recSize+recHeaderLen)
	var logs bytes.Buffer
	s, d := open(t, dir, Options{Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	for range 3 {
		if got := read(t, s, 100, 1<<20); len(got) != 9 {
			t.Fatalf("read %d records, want 9", len(got))
		}
		s.Rewind()
	}
	if d[DropCorrupt] != 1 || strings.Count(logs.String(), "\n") != 1 {
		t.Fatalf("DropCorrupt = %d, want 1; log:\n%s", d[DropCorrupt], &logs)
	}
}

func flip(t *testing.T, path string, off int64) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil || off >= int64(len(b)) {
		t.Fatalf("flip %s@%d: %v (len %d)", path, off, err, len(b))
	}
	b[off] ^= 0x5a
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

func BenchmarkAppend(b *testing.B) {
	for _, sync := range []bool{false, true} {
		b.Run(fmt.Sprintf("fsync=%v", sync), func(b *testing.B) {
			s, err := Open(b.TempDir(), Options{MaxBytes: 64 << 20, NoSync: !sync})
			if err != nil {
				b.Fatal(err)
			}
			defer func() {
				if err := s.Close(); err != nil {
					b.Error(err)
				}
			}()
			p := make([]byte, 200)
			b.SetBytes(int64(len(p)))
			for b.Loop() {
				if err := s.Append(p); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkAppendReadAck(b *testing.B) {
	s, err := Open(b.TempDir(), Options{MaxBytes: 64 << 20, NoSync: true})
	if err != nil {
		b.Fatal(err)
	}
	defer func() {
		if err := s.Close(); err != nil {
			b.Error(err)
		}
	}()
	p := make([]byte, 200)
	b.SetBytes(int64(len(p)))
	i := 0
	for b.Loop() {
		if err := s.Append(p); err != nil {
			b.Fatal(err)
		}
		if i++; i%500 == 0 {
			recs, err := s.Read(500, 1<<30)
			if err != nil {
				b.Fatal(err)
			}
			offs := make([]int64, len(recs))
			for j, r := range recs {
				offs[j] = r.Off
			}
			if err := s.Ack(offs...); err != nil {
				b.Fatal(err)
			}
		}
	}
}
