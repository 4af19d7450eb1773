package store

import (
	"errors"
	"os"
	"syscall"
	"time"
)

// Retain drops entries older than MaxAge before now and, oldest first,
// whole segments while the segment files exceed MaxBytes. Append does the
// same as it goes, the age part at most once a second.
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
	for s.diskBytes > s.opt.MaxBytes && s.dropOldestSealed(reasonSize) {
	}
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
					s.unindexed(&e.meta, reasonAge)
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
			s.unindexed(&e.meta, reason)
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
