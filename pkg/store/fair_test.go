package store

import (
	"fmt"
	"testing"
	"time"
)

// procDisk is the record bytes of k's live entries, as retention counts them.
func procDisk(s *Store, k ProcessKey) int64 {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if p := s.procs[k]; p != nil {
		return p.disk
	}
	return 0
}

// TestRetainFairShare: five processes write one entry every 10s, then one
// more floods at 50 entries per tick. Size retention evicts from the
// process using the most bytes, so the flooder pushes out its own history:
// a quiet process keeps all of it, or at least its fair share less one
// segment when even its own history no longer fits that share.
func TestRetainFairShare(t *testing.T) {
	const (
		quiet    = 5
		flooder  = 99
		rate     = 50
		segBytes = 8 << 10
		pay      = 200
	)
	tests := []struct {
		name        string
		maxBytes    int64
		before      int  // ticks of quiet writes before the flood
		flood       int  // ticks of the flood
		keepHistory bool // each quiet process keeps every entry it wrote
	}{
		{"quiet under its share keeps everything", 240 << 10, 20, 40, true},
		{"quiet over its share keeps the share", 60 << 10, 20, 40, false},
		{"long flood", 120 << 10, 10, 150, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			o := Options{MaxBytes: tt.maxBytes, SegmentBytes: segBytes}
			s := open(t, dir, o)
			first := map[int]uint64{} // pid -> ID of its first entry
			var maxRec int64
			tick := func(i, n int) {
				at := t0.Add(time.Duration(i) * 10 * time.Second)
				for pid := 1; pid <= quiet; pid++ {
					m := mustAppend(t, s, ent(pid, KindSnapshot, at, pay))
					if first[pid] == 0 {
						first[pid] = m.ID
					}
				}
				for j := 0; j < n; j++ {
					mustAppend(t, s, ent(flooder, KindSnapshot, at.Add(time.Duration(j)*time.Millisecond), pay))
				}
				st := s.Stats()
				if st.DiskBytes > o.MaxBytes {
					t.Fatalf("tick %d: DiskBytes %d over MaxBytes %d", i, st.DiskBytes, o.MaxBytes)
				}
				s.mu.RLock()
				for _, g := range s.segs {
					for _, e := range g.entries {
						maxRec = max(maxRec, e.recordLen())
					}
				}
				s.mu.RUnlock()
			}
			for i := 0; i < tt.before; i++ {
				tick(i, 0)
			}
			for i := tt.before; i < tt.before+tt.flood; i++ {
				tick(i, rate)
			}
			written := tt.before + tt.flood
			st := s.Stats()
			_, disk := segFiles(t, dir)
			if st.DiskBytes != disk || st.DiskBytes > o.MaxBytes {
				t.Errorf("DiskBytes %d, segment files %d bytes; want equal and at most MaxBytes %d", st.DiskBytes, disk, o.MaxBytes)
			}
			share := (o.MaxBytes - maxRec) / (quiet + 1)
			var flooderLost uint64 = uint64(tt.flood * rate)
			var quietLost uint64
			for pid := 1; pid <= quiet; pid++ {
				k := proc(pid).Key()
				ms := mustList(t, s, Query{Process: k})
				quietLost += uint64(written - len(ms))
				d := procDisk(s, k)
				if tt.keepHistory {
					if len(ms) != written || ms[0].ID != first[pid] {
						t.Errorf("pid %d: %d entries kept, want all %d", pid, len(ms), written)
					}
					if _, err := s.Read(first[pid]); err != nil {
						t.Errorf("pid %d: Read of its oldest entry %d: %v", pid, first[pid], err)
					}
				} else if len(ms) < written && d < share-segBytes {
					t.Errorf("pid %d: %d of %d entries, %d bytes kept; want all or at least the fair share %d less a segment",
						pid, len(ms), written, d, share)
				}
			}
			fk := proc(flooder).Key()
			fms := mustList(t, s, Query{Process: fk})
			flooderLost -= uint64(len(fms))
			if fd := procDisk(s, fk); fd > share+2*segBytes && !tt.keepHistory || len(fms) >= tt.flood*rate {
				t.Errorf("flooder keeps %d entries, %d bytes; want it trimmed to about its share %d", len(fms), fd, share)
			}
			if st.Dropped[reasonSize] != flooderLost+quietLost {
				t.Errorf("Dropped[size] = %d, want %d (flooder) + %d (quiet)", st.Dropped[reasonSize], flooderLost, quietLost)
			}
			if tt.keepHistory && quietLost != 0 {
				t.Errorf("quiet processes lost %d entries", quietLost)
			}
			if st.Compactions == 0 {
				t.Error("Compactions = 0: retention never rewrote a shared segment")
			}
			// The rewritten segments read back the same after a restart.
			want := mustList(t, s, Query{})
			mustClose(t, s)
			s = open(t, dir, o)
			got := mustList(t, s, Query{})
			if fmt.Sprint(ids(got)) != fmt.Sprint(ids(want)) {
				t.Errorf("after restart: %d entries, want the %d kept", len(got), len(want))
			}
			if st2 := s.Stats(); st2.Dropped[reasonCorrupt] != 0 || st2.DiskBytes != st.DiskBytes {
				t.Errorf("after restart: Stats = %+v, want no corrupt entries and %d disk bytes", st2, st.DiskBytes)
			}
			for _, m := range got {
				if _, err := s.Read(m.ID); err != nil {
					t.Fatalf("after restart: Read(%d): %v", m.ID, err)
				}
			}
		})
	}
}
