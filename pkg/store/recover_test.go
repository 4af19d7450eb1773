package store

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"
)

// recordOffsets returns the offsets of the valid records in a segment file.
func recordOffsets(tb testing.TB, path string) []int64 {
	tb.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		tb.Fatal(err)
	}
	var offs []int64
	for off := 0; off < len(b); {
		_, n, _, ok := decodeRecord(b[off:])
		if !ok {
			tb.Fatalf("%s: no valid record at %d", path, off)
		}
		offs = append(offs, int64(off))
		off += n
	}
	return offs
}

func TestRestartRecovers(t *testing.T) {
	dir := t.TempDir()
	s := open(t, dir, Options{SegmentBytes: 4 << 10})
	appended := fill(t, s, 10)
	before := s.Stats()
	list := mustList(t, s, Query{})
	procs := s.Processes()
	if before.Segments < 8 {
		t.Fatalf("Segments = %d, want several (4 KiB segments, ~36 KiB)", before.Segments)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	s = open(t, dir, Options{SegmentBytes: 4 << 10})
	after := s.Stats()
	if after.Entries != 60 || after.Bytes != before.Bytes || after.DiskBytes != before.DiskBytes ||
		after.Segments != before.Segments || len(after.Dropped) != 0 {
		t.Errorf("Stats after restart = %+v, want entries, bytes and segments of %+v, nothing dropped", after, before)
	}
	if got := mustList(t, s, Query{}); !reflect.DeepEqual(got, list) {
		t.Errorf("List after restart differs:\n got %+v\nwant %+v", got, list)
	}
	if got := s.Processes(); !reflect.DeepEqual(got, procs) {
		t.Errorf("Processes after restart = %+v, want %+v", got, procs)
	}
	for id, e := range appended {
		if b, err := s.Read(id); err != nil || !bytes.Equal(b, e.Data) {
			t.Fatalf("Read(%d) after restart: %d bytes, %v", id, len(b), err)
		}
	}
	if m := mustAppend(t, s, ent(1, KindCPU, t0.Add(time.Hour), 10)); m.ID != 61 {
		t.Errorf("ID after restart = %d, want 61", m.ID)
	}
}

func TestRecoverDamage(t *testing.T) {
	const n = 20
	tests := []struct {
		name string
		// damage changes the single segment file; offs are its records'.
		damage      func(t *testing.T, dir, seg string, offs []int64)
		wantCorrupt uint64
		wantMissing []uint64 // IDs lost
		// wantAgain is Dropped["corrupt"] at a second restart: a torn
		// tail is cut off, a bad record in the middle stays and is skipped.
		wantAgain uint64
	}{
		{"clean", func(*testing.T, string, string, []int64) {}, 0, nil, 0},
		{"torn tail in payload", func(t *testing.T, _, seg string, offs []int64) {
			truncate(t, seg, offs[n-1]+300)
		}, 1, []uint64{n}, 0},
		{"torn tail in header", func(t *testing.T, _, seg string, offs []int64) {
			truncate(t, seg, offs[n-1]+5)
		}, 1, []uint64{n}, 0},
		{"zeroed tail", func(t *testing.T, _, seg string, _ []int64) {
			appendFile(t, seg, make([]byte, 4096))
		}, 1, nil, 0},
		{"flipped payload byte", func(t *testing.T, _, seg string, offs []int64) {
			flip(t, seg, offs[4]+headerLen+200)
		}, 1, []uint64{5}, 1},
		{"flipped meta byte", func(t *testing.T, _, seg string, offs []int64) {
			flip(t, seg, offs[9]+headerLen+3)
		}, 1, []uint64{10}, 1},
		{"flipped length", func(t *testing.T, _, seg string, offs []int64) {
			flip(t, seg, offs[4]+13)
		}, 1, []uint64{5}, 1},
		{"flipped magic", func(t *testing.T, _, seg string, offs []int64) {
			flip(t, seg, offs[4])
		}, 1, []uint64{5}, 1},
		{"two bad records", func(t *testing.T, _, seg string, offs []int64) {
			flip(t, seg, offs[2]+100)
			flip(t, seg, offs[3]+100)
		}, 2, []uint64{3, 4}, 2}, // adjacent: one bad region, two records
		{"ten bad records apart", func(t *testing.T, _ string, seg string, offs []int64) {
			for i := 2; i < 20; i += 2 {
				flip(t, seg, offs[i]+headerLen+100)
			}
			flip(t, seg, offs[19]+5) // the last one's CRC: not a torn tail
			appendFile(t, seg, nil)
		}, 10, []uint64{3, 5, 7, 9, 11, 13, 15, 17, 19, 20}, 8}, // the bad tail is cut off
		{"garbage segment file", func(t *testing.T, dir, _ string, _ []int64) {
			writeFile(t, filepath.Join(dir, segmentName(5000)), bytes.Repeat([]byte("GSR1junk"), 100))
		}, 1, nil, 0},
		{"other files ignored", func(t *testing.T, dir, _ string, _ []int64) {
			writeFile(t, filepath.Join(dir, "notes.txt"), []byte("hello"))
			writeFile(t, filepath.Join(dir, "x.seg"), []byte("not a segment name"))
			if err := os.Mkdir(filepath.Join(dir, segmentName(7000)), 0o750); err != nil {
				t.Fatal(err)
			}
		}, 0, nil, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			s := open(t, dir, Options{})
			appended := make(map[uint64]Entry)
			for i := 0; i < n; i++ {
				e := ent(1+i%2, KindGoroutines, t0.Add(time.Duration(i)*time.Second), 400)
				appended[mustAppend(t, s, e).ID] = e
			}
			mustClose(t, s)
			segs, _ := segFiles(t, dir)
			if len(segs) != 1 {
				t.Fatalf("segments = %v, want one", segs)
			}
			tt.damage(t, dir, segs[0], recordOffsets(t, segs[0]))

			missing := make(map[uint64]bool)
			for _, id := range tt.wantMissing {
				missing[id] = true
			}
			for round, wantCorrupt := range []uint64{tt.wantCorrupt, tt.wantAgain} {
				wantEntries := n - len(tt.wantMissing) + round // round 1 appended one
				s, err := Open(dir, Options{Now: (&clock{now: t0}).Now})
				if err != nil {
					t.Fatalf("Open #%d: %v", round+1, err)
				}
				st := s.Stats()
				if st.Dropped[reasonCorrupt] != wantCorrupt || st.Entries != wantEntries {
					t.Errorf("Open #%d: %d corrupt, %d entries; want %d, %d", round+1, st.Dropped[reasonCorrupt], st.Entries, wantCorrupt, wantEntries)
				}
				_, disk := segFiles(t, dir)
				if st.DiskBytes != disk {
					t.Errorf("Open #%d: DiskBytes = %d, files hold %d", round+1, st.DiskBytes, disk)
				}
				for id, e := range appended {
					b, err := s.Read(id)
					if missing[id] {
						if !errors.Is(err, ErrNotFound) {
							t.Errorf("Read(%d) of a damaged record: %v, want ErrNotFound", id, err)
						}
					} else if err != nil || !bytes.Equal(b, e.Data) {
						t.Errorf("Read(%d): %d bytes, %v; want the payload", id, len(b), err)
					}
				}
				// The store keeps working after recovery.
				m := mustAppend(t, s, ent(3, KindCPU, t0.Add(time.Hour), 100))
				if b, err := s.Read(m.ID); err != nil || len(b) != 100 {
					t.Errorf("Read(%d) of a new entry: %d bytes, %v", m.ID, len(b), err)
				}
				// A lost tail record's ID is given out again.
				appended[m.ID] = ent(3, KindCPU, t0.Add(time.Hour), 100)
				delete(missing, m.ID)
				mustClose(t, s)
			}
		})
	}
}

// TestCorruptLogged: ten records damaged in the middle of a segment count
// as ten, with one log line naming the file and the first damage's offset;
// the records around them, and the other segments, are intact.
func TestCorruptLogged(t *testing.T) {
	dir := t.TempDir()
	s := open(t, dir, Options{SegmentBytes: 16 << 10})
	appended := make(map[uint64]Entry)
	for i := 0; i < 60; i++ {
		e := ent(1, KindGoroutines, t0.Add(time.Duration(i)*time.Second), 400)
		appended[mustAppend(t, s, e).ID] = e
	}
	mustClose(t, s)
	segs, _ := segFiles(t, dir)
	if len(segs) < 2 {
		t.Fatalf("segments = %v, want several", segs)
	}
	offs := recordOffsets(t, segs[0])
	if len(offs) < 20 {
		t.Fatalf("%d records in the first segment, want 20 or more", len(offs))
	}
	first, _ := strconv.ParseUint(strings.TrimSuffix(filepath.Base(segs[0]), segmentSuffix), 10, 64)
	lost := make(map[uint64]bool)
	for i := 5; i < 15; i++ {
		flip(t, segs[0], offs[i]+headerLen+50)
		lost[first+uint64(i)] = true
	}
	var logs bytes.Buffer
	s, err := Open(dir, Options{Now: (&clock{now: t0}).Now, Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	defer mustClose(t, s)
	if st := s.Stats(); st.Dropped[reasonCorrupt] != 10 || st.Entries != 50 {
		t.Errorf("Stats: %d corrupt, %d entries; want 10, 50", st.Dropped[reasonCorrupt], st.Entries)
	}
	lines := strings.Split(strings.TrimSpace(logs.String()), "\n")
	want := fmt.Sprintf("path=%s offset=%d records_lost=10 ", segs[0], offs[5])
	if len(lines) != 1 || !strings.Contains(lines[0], want) {
		t.Errorf("log = %q, want one line with %q", lines, want)
	}
	for id, e := range appended {
		b, err := s.Read(id)
		if lost[id] {
			if !errors.Is(err, ErrNotFound) {
				t.Errorf("Read(%d) of a damaged record: %v, want ErrNotFound", id, err)
			}
		} else if err != nil || !bytes.Equal(b, e.Data) {
			t.Errorf("Read(%d): %d bytes, %v; want the payload", id, len(b), err)
		}
	}
}

// TestReadCorrupt: a record damaged while the store is open is reported as
// corrupt, never returned.
func TestReadCorrupt(t *testing.T) {
	dir := t.TempDir()
	s := open(t, dir, Options{})
	m := mustAppend(t, s, ent(1, KindCPU, t0, 1000))
	segs, _ := segFiles(t, dir)
	flip(t, segs[0], headerLen+500)
	if _, err := s.Read(m.ID); !errors.Is(err, ErrCorrupt) {
		t.Errorf("Read of a flipped record: %v, want ErrCorrupt", err)
	}
}

func truncate(t *testing.T, path string, size int64) {
	t.Helper()
	if err := os.Truncate(path, size); err != nil {
		t.Fatal(err)
	}
}

func appendFile(t *testing.T, path string, b []byte) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.Write(b); err != nil {
		t.Fatal(err)
	}
}

func flip(t *testing.T, path string, off int64) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	b := make([]byte, 1)
	if _, err := f.ReadAt(b, off); err != nil {
		t.Fatal(err)
	}
	b[0] ^= 0xff
	if _, err := f.WriteAt(b, off); err != nil {
		t.Fatal(err)
	}
}

func writeFile(t *testing.T, path string, b []byte) {
	t.Helper()
	if err := os.WriteFile(path, b, 0o640); err != nil {
		t.Fatal(err)
	}
}
