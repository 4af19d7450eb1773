package pyroscope_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/goroscope/goroscope/push/pyroscope"
)

// TestDeltaLabel: __delta__ is the one reserved label besides __name__ a
// series may carry, with the values the server understands; the legacy
// application name leaves it out.
func TestDeltaLabel(t *testing.T) {
	raw, err := pyroscope.EncodeProfile(goroutineProfile(1, 1))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		value, want string
	}{{"false", ""}, {"true", ""}, {"yes", "want true"}, {"", "want true"}} {
		_, err := pyroscope.EncodeSeries(seriesLabels(pyroscope.LabelDelta, tc.value), raw)
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("__delta__=%q: %v", tc.value, err)
		case tc.want != "" && (err == nil || !errors.Is(err, pyroscope.ErrInvalid) || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("__delta__=%q: %v, want ErrInvalid with %q", tc.value, err, tc.want)
		}
	}
}
