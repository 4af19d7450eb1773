package store

import (
	"os"
	"reflect"
	"testing"
	"time"
)

func TestRetainAge(t *testing.T) {
	// 30 entries, one every 10 minutes from t0 over 5 hours: hours 0..4
	// hold entries 6h..6h+5 and are one segment each.
	tests := []struct {
		name         string
		now          time.Time // MaxAge is 1h
		wantDropped  uint64
		wantSegments int
		wantOldest   uint64 // ID of the oldest entry left (IDs are 1..30)
	}{
		{"nothing old yet", t0.Add(time.Hour), 0, 5, 1},
		{"first entry", t0.Add(65 * time.Minute), 1, 5, 2},
		{"first hour, segment deleted", t0.Add(2 * time.Hour), 6, 4, 7},
		{"mid segment", t0.Add(3*time.Hour + 30*time.Minute), 15, 3, 16},
		{"all but the last", t0.Add(5*time.Hour + 50*time.Minute), 29, 1, 30},
		{"all: the active segment stays", t0.Add(10 * time.Hour), 30, 1, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			s := open(t, dir, Options{MaxAge: time.Hour, Now: (&clock{now: t0}).Now})
			for i := 0; i < 30; i++ {
				mustAppend(t, s, ent(1+i%3, KindGoroutines, t0.Add(time.Duration(i)*10*time.Minute), 200))
			}
			if st := s.Stats(); st.Segments != 5 {
				t.Fatalf("Segments = %d before retention, want 5 (one per hour)", st.Segments)
			}
			if err := s.Retain(tt.now); err != nil {
				t.Fatal(err)
			}
			st := s.Stats()
			paths, disk := segFiles(t, dir)
			if st.Dropped[reasonAge] != tt.wantDropped || st.Entries != 30-int(tt.wantDropped) ||
				st.Segments != tt.wantSegments || len(paths) != tt.wantSegments || st.DiskBytes != disk ||
				st.Bytes != int64(200*st.Entries) {
				t.Errorf("Stats = %+v with %d segment files of %d bytes; want %d dropped for age, %d segments",
					st, len(paths), disk, tt.wantDropped, tt.wantSegments)
			}
			ms := mustList(t, s, Query{})
			if len(ms) != st.Entries || len(ms) > 0 && ms[0].ID != tt.wantOldest {
				t.Errorf("List = %d entries from ID %v, want %d from %d", len(ms), ids(ms)[:min(1, len(ms))], st.Entries, tt.wantOldest)
			}
			if tt.wantOldest > 1 {
				if _, err := s.Read(tt.wantOldest - 1); err == nil {
					t.Errorf("Read(%d) of an aged-out entry succeeded", tt.wantOldest-1)
				}
			}
			procs := len(s.Processes())
			if want := min(3, st.Entries); procs != want {
				t.Errorf("Processes = %d, want %d", procs, want)
			}
			// The same holds after a restart (the aged-out data is gone).
			mustClose(t, s)
			s = open(t, dir, Options{MaxAge: time.Hour, Now: (&clock{now: tt.now}).Now})
			if st2 := s.Stats(); st2.Entries != st.Entries || st2.Dropped[reasonAge] != 0 {
				t.Errorf("after restart: %d entries, %d dropped for age; want %d, 0", st2.Entries, st2.Dropped[reasonAge], st.Entries)
			}
		})
	}
}

// TestAppendAppliesAge: Append drops aged-out entries as it goes.
func TestAppendAppliesAge(t *testing.T) {
	c := &clock{now: t0}
	s := open(t, t.TempDir(), Options{MaxAge: time.Hour, Now: c.Now})
	for i := 0; i < 10; i++ {
		mustAppend(t, s, ent(1, KindGoroutines, t0.Add(time.Duration(i)*time.Minute), 100))
	}
	c.Set(t0.Add(time.Hour + 5*time.Minute + 30*time.Second)) // entries 0..5 are over an hour old
	mustAppend(t, s, ent(1, KindGoroutines, c.Now(), 100))
	if st := s.Stats(); st.Dropped[reasonAge] != 6 || st.Entries != 5 {
		t.Errorf("Stats = %+v, want 6 dropped for age, 5 entries", st)
	}
}

func TestRetainSize(t *testing.T) {
	// Records are ~1.1 KB (900-byte payloads): two fit a 2500-byte segment,
	// five fit 6000 bytes, six do not. Before each write the oldest sealed
	// segments go until the new record fits, so after n appends the newest
	// 4 (n even) or 5 (n odd) entries remain.
	tests := []struct {
		n           int
		wantEntries int
	}{
		{1, 1}, {4, 4}, {5, 5}, {6, 4}, {7, 5}, {20, 4}, {21, 5},
	}
	for _, tt := range tests {
		dir := t.TempDir()
		o := Options{MaxBytes: 6000, SegmentBytes: 2500}
		s := open(t, dir, o)
		for i := 0; i < tt.n; i++ {
			m := mustAppend(t, s, ent(1, KindSnapshot, t0.Add(time.Duration(i)*time.Second), 900))
			st := s.Stats()
			if i == 0 && (st.DiskBytes <= 1000 || st.DiskBytes > 1200) {
				t.Fatalf("record size %d: the test needs it in (1000, 1200]", st.DiskBytes)
			}
			if st.DiskBytes > o.MaxBytes {
				t.Fatalf("after ID %d: DiskBytes %d over MaxBytes %d", m.ID, st.DiskBytes, o.MaxBytes)
			}
		}
		st := s.Stats()
		_, disk := segFiles(t, dir)
		if st.Entries != tt.wantEntries || st.Dropped[reasonSize] != uint64(tt.n-tt.wantEntries) || st.DiskBytes != disk {
			t.Errorf("n=%d: Stats = %+v (files %d bytes), want %d entries, %d dropped for size", tt.n, st, disk, tt.wantEntries, tt.n-tt.wantEntries)
		}
		ms := mustList(t, s, Query{})
		if want := seq(uint64(tt.n-tt.wantEntries+1), uint64(tt.n)); !reflect.DeepEqual(ids(ms), want) {
			t.Errorf("n=%d: IDs kept = %v, want the newest %v", tt.n, ids(ms), want)
		}
		mustClose(t, s)
	}
}

// TestRetainSizeLowered: a smaller MaxBytes at Open drops the oldest segments.
func TestRetainSizeLowered(t *testing.T) {
	dir := t.TempDir()
	s := open(t, dir, Options{SegmentBytes: 2500})
	for i := 0; i < 10; i++ { // 5 segments of 2 records
		mustAppend(t, s, ent(1, KindSnapshot, t0.Add(time.Duration(i)*time.Second), 900))
	}
	mustClose(t, s)
	s = open(t, dir, Options{SegmentBytes: 2500, MaxBytes: 5000})
	st := s.Stats()
	if st.Segments != 2 || st.Entries != 4 || st.Dropped[reasonSize] != 6 {
		t.Errorf("Stats = %+v, want 2 segments, 4 entries, 6 dropped for size", st)
	}
	if des, err := os.ReadDir(dir); err != nil || len(des) != 3 {
		t.Errorf("%d files in the directory (%v), want LOCK and 2 segments", len(des), err)
	}
}
