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

func TestPrintable(t *testing.T) {
	for _, tc := range []struct {
		in      string
		max     int
		want    string
		changed bool
	}{
		{"go1.22.12", 64, "go1.22.12", false},
		{"/usr/bin/app (deleted)", 512, "/usr/bin/app (deleted)", false},
		{"go1.22\n\x1b[31m", 64, "go1.22\ufffd\ufffd[31m", true},
		{"bad\xffutf8", 64, "bad\ufffdutf8", true},
		{strings.Repeat("é", 40), 32, strings.Repeat("é", 9) + TruncatedMarker, true},
		{strings.Repeat("a", 5000), 1 << 20, strings.Repeat("a", MaxValueBytes-len(TruncatedMarker)) + TruncatedMarker, true},
	} {
		got, changed := Printable(tc.in, tc.max)
		if got != tc.want || changed != tc.changed {
			t.Errorf("Printable(%q, %d) = %q, %v; want %q, %v", tc.in, tc.max, got, changed, tc.want, tc.changed)
		}
		if len(got) > max(tc.max, len(TruncatedMarker)+1) || !utf8.ValidString(got) {
			t.Errorf("Printable(%q, %d) = %q: too long or invalid UTF-8", tc.in, tc.max, got)
		}
	}
}
