package store

import (
	"fmt"
	"testing"
	"time"
)

// BenchmarkAppend appends 4 KiB entries (retention keeps the disk use at
// 64 MiB); it reports the cost of one Append.
func BenchmarkAppend(b *testing.B) {
	s := open(b, b.TempDir(), Options{MaxBytes: 64 << 20})
	es := make([]Entry, 64)
	for i := range es {
		es[i] = ent(1+i%8, KindGoroutines, t0, 4<<10)
	}
	b.SetBytes(4 << 10)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		e := es[i%len(es)]
		e.Time = t0.Add(time.Duration(i) * time.Millisecond)
		if _, err := s.Append(e); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkAppend10k appends 10k entries into a fresh store per iteration.
func BenchmarkAppend10k(b *testing.B) {
	data := payload(1, 2<<10)
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		s := open(b, b.TempDir(), Options{})
		b.StartTimer()
		for j := 0; j < 10000; j++ {
			if _, err := s.Append(Entry{Process: proc(1 + j%10), Kind: KindGoroutines, Time: t0.Add(time.Duration(j) * time.Second), Data: data}); err != nil {
				b.Fatal(err)
			}
		}
		b.StopTimer()
		mustClose(b, s)
		b.StartTimer()
	}
}

// BenchmarkList queries a store of 10k entries: 10 processes, 2 kinds.
func BenchmarkList(b *testing.B) {
	s := open(b, b.TempDir(), Options{})
	for j := 0; j < 10000; j++ {
		kind := KindGoroutines
		if j/10%2 == 1 {
			kind = KindSnapshot
		}
		e := Entry{Process: proc(1 + j%10), Kind: kind, Time: t0.Add(time.Duration(j) * time.Second),
			Summary: map[string]float64{"state/waiting": 3}, Data: make([]byte, 100)}
		if _, err := s.Append(e); err != nil {
			b.Fatal(err)
		}
	}
	queries := []struct {
		name string
		q    Query
	}{
		{"all", Query{}},
		{"process+kind", Query{Process: proc(3).Key(), Kind: KindSnapshot}},
		{"process+kind+limit16", Query{Process: proc(3).Key(), Kind: KindSnapshot, Limit: 16}},
		{"last-hour", Query{From: t0.Add(10000*time.Second - time.Hour)}},
	}
	for _, q := range queries {
		b.Run(q.name, func(b *testing.B) {
			var n int
			for i := 0; i < b.N; i++ {
				ms, err := s.List(q.q)
				if err != nil {
					b.Fatal(err)
				}
				n = len(ms)
			}
			b.ReportMetric(float64(n), "entries")
		})
	}
}

// BenchmarkOpen10k measures rebuilding the index of 10k entries.
func BenchmarkOpen10k(b *testing.B) {
	dir := b.TempDir()
	s := open(b, dir, Options{})
	for j := 0; j < 10000; j++ {
		if _, err := s.Append(ent(1+j%10, KindGoroutines, t0.Add(time.Duration(j)*time.Second), 1<<10)); err != nil {
			b.Fatal(err)
		}
	}
	mustClose(b, s)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		s, err := Open(dir, Options{Now: (&clock{now: t0}).Now})
		if err != nil {
			b.Fatal(err)
		}
		if n := s.Stats().Entries; n != 10000 {
			b.Fatal(fmt.Sprint("entries ", n))
		}
		mustClose(b, s)
	}
}
