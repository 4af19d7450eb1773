package golayout

import (
	"strings"
	"testing"
)

func TestParseVersion(t *testing.T) {
	tests := []struct {
		in      string
		want    Version
		wantErr bool
	}{
		{"go1.22.12", Version{1, 22, 12}, false},
		{"go1.22", Version{1, 22, 0}, false},
		{"go1.23rc1", Version{1, 23, 0}, false},
		{"go1.24.1 X:nocoverageredesign", Version{1, 24, 1}, false},
		{"go1.26.8", Version{1, 26, 8}, false},
		{"devel go1.27-abcdef Tue", Version{}, true},
		{"", Version{}, true},
		{"1.22", Version{}, true},
		{"go1", Version{}, true},
		{"go1.x", Version{}, true},
	}
	for _, tt := range tests {
		got, err := ParseVersion(tt.in)
		if (err != nil) != tt.wantErr || got != tt.want {
			t.Errorf("ParseVersion(%q) = %v, %v; want %v, err=%v", tt.in, got, err, tt.want, tt.wantErr)
		}
	}
}

func TestForVersionSpotValues(t *testing.T) {
	tests := []struct {
		version    string
		table      string
		gSize      int64
		syscallBP  int64
		schedBP    int64
		goid       int64
		labels     LabelsKind
		hchanClose int64
		sudogC     int64
	}{
		{"go1.21.13", "go1.21", 408, Absent, 104, 152, MapLabels, 28, 80},
		{"go1.22.0", "go1.22", 424, Absent, 104, 152, MapLabels, 28, 80},
		{"go1.23.12", "go1.23", 432, 128, 104, 160, MapLabels, 28, 80},
		{"go1.24", "go1.24", 440, 128, 104, 160, SliceLabels, 28, 80},
		{"go1.25.8", "go1.25", 440, 120, 96, 152, SliceLabels, 28, 80},
		{"go1.26.8", "go1.26", 456, 120, 96, 152, SliceLabels, 28, 96}, // sudog.c is maybeTraceableChan{vp, vu}: vu
	}
	for _, tt := range tests {
		t.Run(tt.version, func(t *testing.T) {
			l, err := ForVersion(tt.version)
			if err != nil {
				t.Fatal(err)
			}
			if l.GoVersion != tt.table || l.Source != SourceTable {
				t.Errorf("GoVersion/Source = %q/%q, want %q/table", l.GoVersion, l.Source, tt.table)
			}
			if l.G.StackLo != 0 || l.G.StackHi != 8 {
				t.Errorf("stack lo/hi = %d/%d, want 0/8", l.G.StackLo, l.G.StackHi)
			}
			if l.G.Size != tt.gSize || l.G.SyscallBP != tt.syscallBP || l.G.SchedBP != tt.schedBP || l.G.Goid != tt.goid {
				t.Errorf("g size/syscallbp/sched.bp/goid = %d/%d/%d/%d, want %d/%d/%d/%d", l.G.Size, l.G.SyscallBP,
					l.G.SchedBP, l.G.Goid, tt.gSize, tt.syscallBP, tt.schedBP, tt.goid)
			}
			if l.Sudog.C != tt.sudogC {
				t.Errorf("sudog.c = %d, want %d", l.Sudog.C, tt.sudogC)
			}
			if l.Labels.Kind != tt.labels {
				t.Errorf("labels kind = %v, want %v", l.Labels.Kind, tt.labels)
			}
			if l.Hchan.Closed != tt.hchanClose || l.Waitq.First != 0 || l.Waitq.Last != 8 || l.Sudog.G != 0 {
				t.Errorf("hchan.closed/waitq/sudog.g = %d/%+v/%d", l.Hchan.Closed, l.Waitq, l.Sudog.G)
			}
			// The copy must be private.
			l.G.Goid = 12345
			if again, _ := ForVersion(tt.version); again.G.Goid == 12345 {
				t.Error("ForVersion returned shared table memory")
			}
		})
	}
}

func TestForVersionUnsupported(t *testing.T) {
	for _, v := range []string{"go1.20.14", "go1.27", "go1.27.1", "devel go1.27-0123abcd", "", "go2.0"} {
		_, err := ForVersion(v)
		if err == nil {
			t.Errorf("ForVersion(%q) succeeded, want error", v)
			continue
		}
		msg := err.Error()
		for _, want := range []string{"\"" + v + "\"", "go1.21 to go1.26", "without -s", "upgrade goroscope"} {
			if !strings.Contains(msg, want) {
				t.Errorf("ForVersion(%q) error %q lacks %q", v, msg, want)
			}
		}
	}
}

func TestSupportedRange(t *testing.T) {
	first, last := SupportedRange()
	if first != "go1.21" || last != "go1.26" {
		t.Errorf("SupportedRange = %s, %s", first, last)
	}
	for i := 1; i < len(tables); i++ {
		if tables[i].minor != tables[i-1].minor+1 {
			t.Errorf("tables not contiguous at %s", tables[i].layout.GoVersion)
		}
	}
}
