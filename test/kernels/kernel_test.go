package kernels

import (
	"regexp"
	"testing"
)

func TestNewest(t *testing.T) {
	k61, k612 := Matrix()[0].Package, Matrix()[1].Package
	names := []string{
		"linux-image-6.1.0-9-cloud-amd64",
		"linux-image-6.1.0-57-cloud-amd64",
		"linux-image-6.1.0-57-cloud-amd64-unsigned",
		"linux-image-6.1.0-57-cloud-amd64-dbg",
		"linux-image-6.1.0-58-amd64",
		"linux-image-6.12.9+bpo-cloud-amd64",
		"linux-image-6.12.90+deb12-cloud-amd64",
		"linux-image-6.12.90+deb12.1-cloud-amd64",
		"linux-image-6.12.118+deb12-cloud-amd64-unsigned",
		"linux-image-cloud-amd64",
	}
	tests := []struct {
		name  string
		names []string
		re    *regexp.Regexp
		want  string // "" for none
	}{
		{"6.1", names, k61, "linux-image-6.1.0-57-cloud-amd64"},
		{"6.12", names, k612, "linux-image-6.12.90+deb12.1-cloud-amd64"},
		{"6.12 from backports", names[5:6], k612, "linux-image-6.12.9+bpo-cloud-amd64"},
		{"none", names[8:], k61, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := newest(tt.names, tt.re)
			if got != tt.want || ok != (tt.want != "") {
				t.Errorf("newest = %q, %v; want %q", got, ok, tt.want)
			}
		})
	}
}

func TestNaturalLess(t *testing.T) {
	tests := []struct {
		a, b string
		want bool
	}{
		{"6.1.0-9", "6.1.0-10", true},
		{"6.1.0-10", "6.1.0-9", false},
		{"6.12.9+deb12", "6.12.10+deb12", true},
		{"6.12.90+deb12", "6.12.90+deb12.1", true},
		{"6.1.0-007", "6.1.0-7", false},
		{"6.1.0-7", "6.1.0-007", false},
		{"a", "a", false},
		{"", "a", true},
		{"6.1", "6.1a", true},
	}
	for _, tt := range tests {
		if got := naturalLess(tt.a, tt.b); got != tt.want {
			t.Errorf("naturalLess(%q, %q) = %v, want %v", tt.a, tt.b, got, tt.want)
		}
	}
}
