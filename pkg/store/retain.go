package store

import (
	"cmp"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"syscall"
	"time"
)

// Retain drops entries older than MaxAge before now and, while the segment
// files exceed MaxBytes, the oldest entries of the process using the most
// bytes (see makeRoom). Append does the same as it goes, the age part at
// most once a second.
func (s *Store) Retain(now time.Time) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return ErrClosed
	}
	s.retain(now)
	return nil
}

func (s *Store) retain(now time.Time) {
	s.retainAge(now)
	s.makeRoom(0)
}

// makeRoom evicts until need more bytes fit in MaxBytes or nothing sealed
// is left to evict. Each step takes from the process whose live records
// use the most bytes (framing included) and has some in a sealed segment:
// all of its entries in the oldest sealed segment holding any are dropped,
// and that segment is rewritten without them (or deleted when nothing else
// lives in it). Taking from the largest user first is max-min fairness: a
// process under its fair share (MaxBytes split evenly, what a smaller
// process leaves unused going to the others) is only evicted from once
// every process is at or under it, so a process that floods the store
// pushes out its own history, not the others'. A victim may lose up to one
// segment below its share. If a rewrite fails (a full disk, say), the
// oldest sealed segment is deleted instead, whatever it holds.
func (s *Store) makeRoom(need int64) {
	for s.diskBytes+need > s.opt.MaxBytes {
		i, k, ok := s.victim()
		if !ok {
			// Nothing live is sealed: only segments of dead entries, if any.
			if !s.dropOldestSealed(reasonSize) {
				return
			}
			continue
		}
		if err := s.compact(i, k); err != nil {
			s.opt.Logger.Warn("store: rewrite segment for size retention failed, dropping the oldest segment instead",
				"path", s.segs[i].path, "error", err)
			if !s.dropOldestSealed(reasonSize) {
				return
			}
		}
	}
}

// victim picks the process to evict from: the one using the most bytes
// that has entries in a sealed segment (ties to the smaller key), and the
// index in s.segs of the oldest sealed segment holding its entries.
func (s *Store) victim() (seg int, k ProcessKey, ok bool) {
	type cand struct {
		k    ProcessKey
		disk int64
	}
	cs := make([]cand, 0, len(s.procs))
	for k, p := range s.procs {
		cs = append(cs, cand{k, p.disk})
	}
	slices.SortFunc(cs, func(a, b cand) int {
		if c := cmp.Compare(b.disk, a.disk); c != 0 {
			return c
		}
		if c := cmp.Compare(a.k.PID, b.k.PID); c != 0 {
			return c
		}
		return cmp.Compare(a.k.StartTime, b.k.StartTime)
	})
	for _, c := range cs {
		if i := s.oldestSealedOf(c.k); i >= 0 {
			return i, c.k, true
		}
	}
	return 0, ProcessKey{}, false
}

// oldestSealedOf returns the index of the oldest sealed segment holding a
// live entry of process k, or -1.
func (s *Store) oldestSealedOf(k ProcessKey) int {
	for i, g := range s.segs {
		if g.f != nil {
			break // the active segment, the last one
		}
		if g.live == 0 {
			continue
		}
		for j := range g.entries {
			if e := &g.entries[j]; !e.dead && e.meta.Process.Key() == k {
				return i
			}
		}
	}
	return -1
}

// compact drops the live entries of process k from sealed segment s.segs[i]
// (counted for size) and reclaims their bytes: the segment's other live
// records are copied to a temporary file that then replaces it, or the
// segment is deleted when none are left. Record IDs and the segment's name
// stay, so IDs still increase through and across segments, now with gaps.
// On error the segment and the index are as they were.
func (s *Store) compact(i int, k ProcessKey) error {
	g := s.segs[i]
	keep := make([]entry, 0, len(g.entries))
	for _, e := range g.entries {
		if !e.dead && e.meta.Process.Key() != k {
			keep = append(keep, e)
		}
	}
	if len(keep) == 0 {
		for j := range g.entries {
			if e := &g.entries[j]; !e.dead {
				s.unindexed(e, reasonSize)
			}
		}
		s.removeFile(g)
		s.segs = slices.Delete(s.segs, i, i+1)
		return nil
	}
	b, err := os.ReadFile(g.path)
	if err != nil {
		return fmt.Errorf("read segment %s: %w", g.path, err)
	}
	var out []byte
	for j := range keep {
		e := &keep[j]
		end := e.off + e.recordLen()
		if end > int64(len(b)) {
			return fmt.Errorf("segment %s is %d bytes, shorter than its record %d at %d", g.path, len(b), e.meta.ID, e.off)
		}
		rec := b[e.off:end]
		e.off = int64(len(out))
		out = append(out, rec...)
	}
	if err := replaceFile(g.path, out); err != nil {
		return err
	}
	for j := range g.entries {
		if e := &g.entries[j]; !e.dead && e.meta.Process.Key() == k {
			s.unindexed(e, reasonSize)
		}
	}
	s.diskBytes += int64(len(out)) - g.size
	g.size = int64(len(out))
	g.entries = keep
	g.live, g.bytes, g.minTime = len(keep), 0, keep[0].meta.Time
	for _, e := range keep {
		g.bytes += e.meta.Size
		if e.meta.Time.Before(g.minTime) {
			g.minTime = e.meta.Time
		}
	}
	s.compacted++
	return nil
}

// replaceFile atomically replaces the file at path with b: b is written
// and synced to path+compactSuffix, which is then renamed over path.
func replaceFile(path string, b []byte) (err error) {
	tmp := path + compactSuffix
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o640)
	if err != nil {
		return fmt.Errorf("create %s: %w", tmp, err)
	}
	defer func() {
		if err != nil {
			os.Remove(tmp)
		}
	}()
	if _, err := f.Write(b); err != nil {
		f.Close()
		return fmt.Errorf("write %s: %w", tmp, err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("sync %s: %w", tmp, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("close %s: %w", tmp, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("replace %s: %w", path, err)
	}
	// Best effort: a crash that loses the rename leaves the old segment,
	// whose evicted records are then back, which is harmless.
	if d, err := os.Open(filepath.Dir(path)); err == nil {
		_ = d.Sync()
		d.Close()
	}
	return nil
}

// retainAge drops the entries whose Time is before now-MaxAge and deletes
// the segments left without entries (but the active one). Only segments
// that may hold such entries are looked at.
func (s *Store) retainAge(now time.Time) {
	cutoff := now.Add(-s.opt.MaxAge)
	kept := s.segs[:0]
	for _, g := range s.segs {
		if g.live > 0 && g.minTime.Before(cutoff) {
			var minTime time.Time
			for i := range g.entries {
				e := &g.entries[i]
				if e.dead {
					continue
				}
				if e.meta.Time.Before(cutoff) {
					e.dead = true
					g.live--
					g.bytes -= e.meta.Size
					s.unindexed(e, reasonAge)
				} else if minTime.IsZero() || e.meta.Time.Before(minTime) {
					minTime = e.meta.Time
				}
			}
			g.minTime = minTime
		}
		if g.live == 0 && g.f == nil {
			s.removeFile(g)
			continue
		}
		kept = append(kept, g)
	}
	clear(s.segs[len(kept):])
	s.segs = kept
}

// dropOldestSealed drops the oldest segment unless it is the active one,
// and reports whether it did.
func (s *Store) dropOldestSealed(reason string) bool {
	if len(s.segs) == 0 || s.segs[0].f != nil {
		return false
	}
	s.dropFirst(reason)
	return true
}

// dropOldest drops the oldest segment that holds data, the active one too
// when it is the only one, and reports whether it did.
func (s *Store) dropOldest(reason string) bool {
	if s.dropOldestSealed(reason) {
		return true
	}
	if len(s.segs) == 0 || s.segs[0].size == 0 {
		return false
	}
	s.dropFirst(reason)
	return true
}

// dropFirst deletes the oldest segment, counting its entries for reason.
func (s *Store) dropFirst(reason string) {
	g := s.segs[0]
	for i := range g.entries {
		if e := &g.entries[i]; !e.dead {
			s.unindexed(e, reason)
		}
	}
	if g.f != nil {
		g.f.Close()
		g.f = nil
		s.dirty, s.broken = false, false
	}
	s.removeFile(g)
	s.segs[0] = nil
	s.segs = s.segs[1:]
}

// removeFile deletes a segment's file and its bytes from the total.
func (s *Store) removeFile(g *segment) {
	// A failed remove is not retried: the entries are gone from the index
	// either way, and the next Open indexes the file again.
	os.Remove(g.path)
	s.diskBytes -= g.size
}

// diskFull reports whether err means the filesystem or quota is full.
func diskFull(err error) bool {
	return errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT)
}
