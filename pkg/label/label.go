// Package label defines what a label name and value may be, one definition
// for everything that names labels: the pprof scraper's target labels, the
// remote-write series and the Pyroscope profile series. The bounds are the
// backends' defaults: Mimir (Grafana Cloud Metrics) and Pyroscope both
// reject names longer than 1024 bytes and values longer than 2048 bytes.
//
// It is internal to goroscope, not meant for import by other modules: its
// API may change at any time. The one public API is pkg/inproc.
package label

import (
	"strings"
	"unicode"
	"unicode/utf8"
)

// Bounds on one label, the strictest default of the backends goroscope
// pushes to.
const (
	// MaxNameBytes bounds a label name.
	MaxNameBytes = 1024
	// MaxValueBytes bounds a label value.
	MaxValueBytes = 2048
)

// ValidName reports whether s is a label name: it matches
// [a-zA-Z_][a-zA-Z0-9_]*. Names starting with "__" are valid names that the
// backends reserve; callers that do not set those reject them themselves.
func ValidName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || i > 0 && c >= '0' && c <= '9') {
			return false
		}
	}
	return true
}

// TruncatedMarker ends a value that Truncate cut short.
const TruncatedMarker = "…[truncated]"

// Truncate returns v cut to at most MaxValueBytes, ending in
// TruncatedMarker, and whether it cut. The cut falls on a UTF-8 boundary
// (of valid UTF-8), so the result is as valid as v was.
func Truncate(v string) (string, bool) {
	if len(v) <= MaxValueBytes {
		return v, false
	}
	n := MaxValueBytes - len(TruncatedMarker)
	for n > 0 && !utf8.RuneStart(v[n]) {
		n--
	}
	return v[:n] + TruncatedMarker, true
}

// Printable returns a target-chosen string fit for a label value: valid
// UTF-8 (invalid bytes become U+FFFD), control characters replaced by
// U+FFFD, and at most limit bytes (ending in TruncatedMarker when cut;
// limit is raised to hold the marker, and lowered to MaxValueBytes). It
// reports whether it changed s.
func Printable(s string, limit int) (string, bool) {
	limit = min(max(limit, len(TruncatedMarker)+1), MaxValueBytes)
	out := strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return utf8.RuneError
		}
		return r
	}, strings.ToValidUTF8(s, string(utf8.RuneError)))
	if len(out) > limit {
		n := limit - len(TruncatedMarker)
		for n > 0 && !utf8.RuneStart(out[n]) {
			n--
		}
		out = out[:n] + TruncatedMarker
	}
	return out, out != s
}
