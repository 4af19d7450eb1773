package golayout

import (
	"fmt"
	"strconv"
	"strings"
)

// Version is a parsed Go release version "go1.MINOR[.PATCH]".
type Version struct {
	Major, Minor, Patch int
}

// String returns "go1.MINOR".
func (v Version) String() string { return fmt.Sprintf("go%d.%d", v.Major, v.Minor) }

// ParseVersion parses a Go version as found in build info or `go version`:
// "go1.22.12", "go1.22", "go1.23rc1", "go1.24.1 X:nocoverageredesign".
// Development versions ("devel ...") are rejected: they have no fixed layout.
func ParseVersion(s string) (Version, error) {
	orig := s
	s = strings.TrimSpace(s)
	if i := strings.IndexAny(s, " \t"); i >= 0 {
		s = s[:i] // drop " X:experiment" and similar suffixes
	}
	if strings.HasPrefix(s, "devel") || !strings.HasPrefix(s, "go") {
		return Version{}, fmt.Errorf("parse Go version %q: not a Go release version (want go1.N[.P])", orig)
	}
	s = strings.TrimPrefix(s, "go")
	// Cut pre-release and other suffixes: "1.23rc1", "1.22.0-pre".
	end := len(s)
	for i, c := range s {
		if c != '.' && (c < '0' || c > '9') {
			end = i
			break
		}
	}
	parts := strings.Split(s[:end], ".")
	if len(parts) < 2 || len(parts) > 3 {
		return Version{}, fmt.Errorf("parse Go version %q: want go1.N[.P]", orig)
	}
	var nums [3]int
	for i, p := range parts {
		n, err := strconv.Atoi(p)
		if err != nil || n < 0 {
			return Version{}, fmt.Errorf("parse Go version %q: bad number %q", orig, p)
		}
		nums[i] = n
	}
	return Version{Major: nums[0], Minor: nums[1], Patch: nums[2]}, nil
}

// SupportedRange returns the first and last Go versions with built-in tables, e.g. "go1.21", "go1.26".
func SupportedRange() (first, last string) {
	return tables[0].layout.GoVersion, tables[len(tables)-1].layout.GoVersion
}

// tableFor returns the generated table for goVersion or a clear error.
func tableFor(goVersion string) (*versionTable, error) {
	v, err := ParseVersion(goVersion)
	if err != nil {
		return nil, unsupported(goVersion, err.Error())
	}
	for i := range tables {
		if tables[i].major == v.Major && tables[i].minor == v.Minor {
			return &tables[i], nil
		}
	}
	return nil, unsupported(goVersion, "no built-in table for "+v.String())
}

func unsupported(goVersion, why string) error {
	first, last := SupportedRange()
	return fmt.Errorf("go version %q is not supported by goroscope's built-in runtime tables (%s; supported: %s to %s): "+
		"build the target without -s/-w so its DWARF can be used, or upgrade goroscope", goVersion, why, first, last)
}

// ForVersion returns the built-in layout for a Go version ("go1.22.12" ->
// the go1.22 table). The result is a fresh copy the caller may modify.
func ForVersion(goVersion string) (*Layout, error) {
	t, err := tableFor(goVersion)
	if err != nil {
		return nil, err
	}
	l := t.layout
	return &l, nil
}

// versionTable is one generated per-version table.
type versionTable struct {
	major, minor int
	toolchain    string   // the exact toolchain the table was generated from
	layout       Layout   // Source == SourceTable, GoVersion == "go1.N"
	statuses     []string // gStatusStrings; index = status
	waitReasons  []string // waitReasonStrings; index = waitReason
}
