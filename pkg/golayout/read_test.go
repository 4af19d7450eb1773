package golayout

import "testing"

func TestFieldReads(t *testing.T) {
	b := []byte{1, 2, 3, 4, 5, 6, 7, 8, 9}
	for _, tc := range []struct {
		name string
		got  uint64
		want uint64
	}{
		{"u64", Uint64(b, 1), 0x0908070605040302},
		{"u64 past the end", Uint64(b, 2), 0},
		{"u64 absent", Uint64(b, Absent), 0},
		{"u32", uint64(Uint32(b, 5)), 0x09080706},
		{"u32 past the end", uint64(Uint32(b, 6)), 0},
		{"u8", uint64(Uint8(b, 8)), 9},
		{"u8 past the end", uint64(Uint8(b, 9)), 0},
		{"u8 absent", uint64(Uint8(b, Absent)), 0},
	} {
		if tc.got != tc.want {
			t.Errorf("%s: got %#x, want %#x", tc.name, tc.got, tc.want)
		}
	}
}
