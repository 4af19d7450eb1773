package process

import (
	"encoding/binary"
	"fmt"

	"github.com/goroscope/goroscope/pkg/golayout"
)

// Bounds on what a label set may hold; runtime/pprof sets are small.
const (
	maxLabels   = 64
	maxLabelLen = 4096
	maxBucketsB = 10
)

// LabelReader reads the pprof label sets (g.labels values) of one process.
// The representation changed in Go 1.24: before, g.labels points to a
// labelMap, a map[string]string; since, to a labelMap{LabelSet{list []label}}.
// Label sets are immutable once attached to a goroutine, so they are cached
// by address until Reset.
type LabelReader struct {
	mem  Memory
	kind labelKind
	// classic map (Go 1.21–1.23) offsets
	hmapCount, hmapB, hmapBuckets, hmapOldbuckets       int64
	bucketSize, bucketKeys, bucketElems, bucketOverflow int64
	cache                                               map[uint64]map[string]string
	buf                                                 []byte
}

type labelKind int

const (
	labelsSlice labelKind = iota
	labelsMap
)

// NewLabelReader reads label sets from mem, laid out as l describes.
func NewLabelReader(mem Memory, l *golayout.Layout) *LabelReader {
	lr := &LabelReader{mem: mem, cache: map[uint64]map[string]string{}}
	if l.Labels.Kind == golayout.MapLabels {
		lr.kind = labelsMap
		h, b := l.Labels.Hmap, l.Labels.Bucket
		lr.hmapCount, lr.hmapB, lr.hmapBuckets, lr.hmapOldbuckets = h.Count, h.B, h.Buckets, h.Oldbuckets
		lr.bucketSize, lr.bucketKeys, lr.bucketElems, lr.bucketOverflow = b.Size, b.Keys, b.Values, b.Overflow
	}
	return lr
}

// Read returns the labels at a g.labels value (nil for 0).
func (r *LabelReader) Read(addr uint64) (map[string]string, error) {
	if addr == 0 {
		return nil, nil
	}
	if m, ok := r.cache[addr]; ok {
		return m, nil
	}
	var m map[string]string
	var err error
	if r.kind == labelsSlice {
		m, err = r.readSlice(addr)
	} else {
		m, err = r.readMap(addr)
	}
	if err != nil {
		return nil, fmt.Errorf("read pprof labels at %#x: %w", addr, err)
	}
	r.cache[addr] = m
	return m, nil
}

// Reset forgets the cached label sets: a freed set's address may be reused.
func (r *LabelReader) Reset() { clear(r.cache) }

func (r *LabelReader) grow(n int) []byte {
	if cap(r.buf) < n {
		r.buf = make([]byte, n)
	}
	return r.buf[:n]
}

func (r *LabelReader) str(ptr, n uint64) (string, error) {
	if n == 0 {
		return "", nil
	}
	if n > maxLabelLen {
		return "", fmt.Errorf("label string of %d bytes", n)
	}
	b := make([]byte, n)
	if err := r.mem.ReadAt(b, ptr); err != nil {
		return "", err
	}
	return string(b), nil
}

// readSlice reads labelMap{LabelSet{list []label{key, value string}}}.
func (r *LabelReader) readSlice(addr uint64) (map[string]string, error) {
	var hdr [16]byte
	if err := r.mem.ReadAt(hdr[:], addr); err != nil {
		return nil, err
	}
	ptr, n := binary.LittleEndian.Uint64(hdr[0:]), binary.LittleEndian.Uint64(hdr[8:])
	if n == 0 {
		return nil, nil
	}
	if n > maxLabels {
		return nil, fmt.Errorf("%d labels", n)
	}
	b := r.grow(int(n) * 32)
	if err := r.mem.ReadAt(b, ptr); err != nil {
		return nil, err
	}
	m := make(map[string]string, n)
	for i := 0; i < int(n); i++ {
		e := b[i*32:]
		k, err := r.str(golayout.Uint64(e, 0), golayout.Uint64(e, 8))
		if err != nil {
			return nil, err
		}
		v, err := r.str(golayout.Uint64(e, 16), golayout.Uint64(e, 24))
		if err != nil {
			return nil, err
		}
		m[k] = v
	}
	return m, nil
}

// Tophash values of the classic map implementation (runtime/map.go, Go ≤ 1.23).
const (
	minTopHash = 5
	bucketCnt  = 8
)

// readMap reads *labelMap where labelMap is map[string]string (Go 1.21–1.23).
func (r *LabelReader) readMap(addr uint64) (map[string]string, error) {
	var p [8]byte
	if err := r.mem.ReadAt(p[:], addr); err != nil {
		return nil, err
	}
	h := binary.LittleEndian.Uint64(p[:])
	if h == 0 {
		return nil, nil
	}
	hb := make([]byte, 48)
	if err := r.mem.ReadAt(hb, h); err != nil {
		return nil, err
	}
	count := golayout.Uint64(hb, r.hmapCount)
	if count == 0 {
		return nil, nil
	}
	if count > maxLabels {
		return nil, fmt.Errorf("%d labels", count)
	}
	B := golayout.Uint8(hb, r.hmapB)
	if B > maxBucketsB {
		return nil, fmt.Errorf("label map with 2^%d buckets", B)
	}
	m := make(map[string]string, count)
	for _, base := range []uint64{golayout.Uint64(hb, r.hmapOldbuckets), golayout.Uint64(hb, r.hmapBuckets)} {
		if base == 0 {
			continue
		}
		nb := uint64(1) << B
		if base == golayout.Uint64(hb, r.hmapOldbuckets) && B > 0 {
			nb >>= 1
		}
		for i := uint64(0); i < nb; i++ {
			if err := r.readBucketChain(base+i*uint64(r.bucketSize), m); err != nil {
				return nil, err
			}
		}
	}
	return m, nil
}

func (r *LabelReader) readBucketChain(b uint64, m map[string]string) error {
	buf := make([]byte, r.bucketSize)
	for hops := 0; b != 0 && hops < maxLabels; hops++ {
		if err := r.mem.ReadAt(buf, b); err != nil {
			return err
		}
		for i := int64(0); i < bucketCnt; i++ {
			if buf[i] < minTopHash {
				continue
			}
			k := buf[r.bucketKeys+i*16:]
			v := buf[r.bucketElems+i*16:]
			key, err := r.str(golayout.Uint64(k, 0), golayout.Uint64(k, 8))
			if err != nil {
				return err
			}
			val, err := r.str(golayout.Uint64(v, 0), golayout.Uint64(v, 8))
			if err != nil {
				return err
			}
			m[key] = val
		}
		b = golayout.Uint64(buf, r.bucketOverflow)
	}
	return nil
}
