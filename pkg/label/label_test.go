package label

import "testing"

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
