package scrape

import (
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"runtime"
	"strings"
	"testing"

	"github.com/google/pprof/profile"
)

// gzipBomb returns n zero bytes gzip-compressed (about n/1000 bytes),
// built without holding n bytes.
func gzipBomb(t testing.TB, n int) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw, err := gzip.NewWriterLevel(&buf, gzip.BestCompression)
	if err != nil {
		t.Fatal(err)
	}
	zeros := make([]byte, 1<<20)
	for n > 0 {
		k := min(n, len(zeros))
		if _, err := zw.Write(zeros[:k]); err != nil {
			t.Fatal(err)
		}
		n -= k
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// TestGzipBombMemory decodes a 256 MiB gzip bomb (about 256 KB on the
// wire) with an 8 MiB limit: it is refused, and the decoder allocates less
// than twice the limit in all, never the bomb's size.
func TestGzipBombMemory(t *testing.T) {
	const limit = 8 << 20
	bomb := gzipBomb(t, 256<<20)
	if len(bomb) > 1<<20 {
		t.Fatalf("the bomb is %d bytes; want a few hundred KB", len(bomb))
	}
	// A lying trailer (the size hint says 1 MiB) must not change the bound.
	liar := bytes.Clone(bomb)
	binary.LittleEndian.PutUint32(liar[len(liar)-4:], 1<<20)
	for _, tt := range []struct {
		name string
		body []byte
	}{{"honest trailer", bomb}, {"lying trailer", liar}} {
		t.Run(tt.name, func(t *testing.T) {
			runtime.GC()
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			_, err := decodeProfile(response{body: tt.body}, limit)
			runtime.ReadMemStats(&after)
			if reasonOf(err) != ReasonTooLarge || !strings.Contains(err.Error(), "limit of 8388608 bytes (8 MiB)") || !strings.Contains(err.Error(), "max_profile_bytes") {
				t.Fatalf("decodeProfile(bomb) = %v (reason %s); want too_large naming the limit and max_profile_bytes", err, reasonOf(err))
			}
			if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 2*limit {
				t.Errorf("decoding the bomb allocated %d bytes; want under %d (twice the limit)", alloc, 2*limit)
			} else {
				t.Logf("allocated %d bytes for a %d-byte bomb of 256 MiB, limit %d", alloc, len(tt.body), limit)
			}
		})
	}
}

// TestInflateBounded checks the bound at its edges and that the chunked
// output is the stream, whatever the trailer's hint says.
func TestInflateBounded(t *testing.T) {
	const limit = MinProfileBytes
	data := func(n int) []byte {
		b := make([]byte, n)
		for i := range b {
			b[i] = byte(i * 7 / 5)
		}
		return b
	}
	lie := func(gz []byte, size uint32) []byte {
		gz = bytes.Clone(gz)
		binary.LittleEndian.PutUint32(gz[len(gz)-4:], size)
		return gz
	}
	twoMembers := append(gzipped(data(limit/2)), gzipped(data(limit/2))...)
	tests := []struct {
		name    string
		body    []byte
		limit   int64
		wantLen int
		reason  string
	}{
		{"small", gzipped(data(100)), limit, 100, ""},
		{"exactly the limit", gzipped(data(limit)), limit, limit, ""},
		{"one byte over", gzipped(data(limit + 1)), limit, 0, ReasonTooLarge},
		{"several chunks", gzipped(data(9 << 20)), 16 << 20, 9 << 20, ""},
		{"hint too small", lie(gzipped(data(9<<20)), 10), 16 << 20, 0, ReasonCorrupt}, // the checksum catches the lie, after the data
		{"two members", twoMembers, limit, limit / 2 * 2, ""},
		{"hint above the limit", lie(gzipped(data(100)), 1<<30), limit, 0, ReasonCorrupt},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := inflateBounded(tt.body, tt.limit)
			if tt.reason != "" {
				if err == nil || reasonOf(err) != tt.reason {
					t.Fatalf("inflateBounded = %d bytes, %v; want reason %s", len(got), err, tt.reason)
				}
				return
			}
			if err != nil || len(got) != tt.wantLen {
				t.Fatalf("inflateBounded = %d bytes, %v; want %d bytes", len(got), err, tt.wantLen)
			}
		})
	}
	if got, err := inflateBounded(gzipped(data(9<<20)), 16<<20); err != nil || !bytes.Equal(got, data(9<<20)) {
		t.Errorf("several chunks: output differs from the input (%v)", err)
	}
}

// TestDecodeProfileLimit checks that an uncompressed body is held to the
// limit too and that a profile within it decodes.
func TestDecodeProfileLimit(t *testing.T) {
	p := &profile.Profile{
		SampleType: []*profile.ValueType{{Type: "contentions", Unit: "count"}, {Type: "delay", Unit: "nanoseconds"}},
		Sample:     []*profile.Sample{{Value: []int64{1, 2}}},
	}
	var raw bytes.Buffer
	if err := p.WriteUncompressed(&raw); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		body   []byte
		limit  int64
		reason string
	}{
		{"gzip within", gzipped(raw.Bytes()), int64(raw.Len()), ""},
		{"gzip over", gzipped(raw.Bytes()), int64(raw.Len() - 1), ReasonTooLarge},
		{"uncompressed within", raw.Bytes(), int64(raw.Len()), ""},
		{"uncompressed over", raw.Bytes(), int64(raw.Len() - 1), ReasonTooLarge},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := decodeProfile(response{body: tt.body}, tt.limit)
			if tt.reason == "" && err != nil || tt.reason != "" && reasonOf(err) != tt.reason {
				t.Errorf("decodeProfile = %v; want reason %q", err, tt.reason)
			}
		})
	}
}
