package label

import (
	"strings"
	"testing"
	"unicode/utf8"
)

func TestValidName(t *testing.T) {
	for _, s := range []string{"a", "_", "__name__", "service_name", "A9_b"} {
		if !ValidName(s) {
			t.Errorf("ValidName(%q) = false, want true", s)
		}
	}
	for _, s := range []string{"", "9a", "a-b", "a.b", "a b", "é", "a\x00"} {
		if ValidName(s) {
			t.Errorf("ValidName(%q) = true, want false", s)
		}
	}
}

func TestTruncate(t *testing.T) {
	long := strings.Repeat("a", MaxValueBytes-len(TruncatedMarker)-1) + strings.Repeat("é", 100)
	tests := []struct {
		name, in string
		cut      bool
		wantLen  int
	}{
		{"empty", "", false, 0},
		{"at the limit", strings.Repeat("x", MaxValueBytes), false, MaxValueBytes},
		{"one over", strings.Repeat("x", MaxValueBytes+1), true, MaxValueBytes},
		{"5 KiB", strings.Repeat("v", 5<<10), true, MaxValueBytes},
		// The cut would split the first é: it moves before it.
		{"rune boundary", long, true, MaxValueBytes - 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, cut := Truncate(tt.in)
			if cut != tt.cut || len(got) != tt.wantLen {
				t.Fatalf("Truncate: %d bytes, cut %v; want %d bytes, cut %v", len(got), cut, tt.wantLen, tt.cut)
			}
			if !utf8.ValidString(got) {
				t.Errorf("Truncate returned invalid UTF-8")
			}
			if cut && !strings.HasSuffix(got, TruncatedMarker) {
				t.Errorf("Truncate: %q does not end in the marker", got[len(got)-20:])
			}
			if !cut && got != tt.in {
				t.Errorf("Truncate changed a value within the limit")
			}
		})
	}
}
