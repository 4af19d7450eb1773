package rtstate

import (
	"fmt"
	"os"
	"reflect"
	"strings"
	"testing"
)

func TestParseEnv(t *testing.T) {
	block := strings.Join([]string{
		"PATH=/bin",
		"GOGC=50",
		"GODEBUG=gctrace=1,madvdontneed=0",
		"GOGC=200", // a later duplicate: getenv finds the first
		"GOMAXPROCS",
		"GOlower=x",
		"GO=short",
		"GOPROXY=https://alice:s3cret@proxy.example,direct",
		"GOAUTH=netrc",
		"GOFLAGS=-mod=mod",
		"GOTRACEBACK=x" + strings.Repeat("é", 600), // 1201 bytes: cut inside a character
		"GOMEMLIMIT=\xff1GiB",
		"",
		"MY_GOGC=1",
	}, "\x00") + "\x00"
	got := parseEnv([]byte(block))
	want := []EnvVar{
		{Name: "GOAUTH", Value: "REDACTED"},
		{Name: "GODEBUG", Value: "gctrace=1,madvdontneed=0"},
		{Name: "GOFLAGS", Value: "-mod=mod"},
		{Name: "GOGC", Value: "50"},
		{Name: "GOMEMLIMIT", Value: "\uFFFD1GiB"},
		{Name: "GOPROXY", Value: "https://REDACTED@proxy.example,direct"},
		{Name: "GOTRACEBACK", Value: "x" + strings.Repeat("é", 511) + "\uFFFD", Truncated: true},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("parseEnv =\n %+v\nwant\n %+v", got, want)
	}
}

func TestParseEnvBounds(t *testing.T) {
	var b strings.Builder
	for i := 0; i < 3*maxEnvVars; i++ {
		b.WriteString("GOX")
		b.WriteString(strings.Repeat("A", i%7))
		b.WriteString(string(rune('A' + i%26)))
		b.WriteString(string(rune('A' + i/26)))
		b.WriteString("=" + strings.Repeat("v", 5000) + "\x00")
	}
	got := parseEnv([]byte(b.String()))
	if len(got) != maxEnvVars {
		t.Errorf("%d variables kept, want %d", len(got), maxEnvVars)
	}
	for _, v := range got {
		if len(v.Value) > maxEnvValueLen || !v.Truncated {
			t.Errorf("%s: %d bytes kept, truncated %t", v.Name, len(v.Value), v.Truncated)
		}
	}
}

func TestReadEnvSelf(t *testing.T) {
	env, err := readEnv(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range env {
		if !strings.HasPrefix(v.Name, "GO") {
			t.Errorf("%s kept", v.Name)
		}
	}
	if _, err := readEnv(1 << 30); err == nil {
		t.Error("environment of no process: no error")
	}
}

func TestParseThreads(t *testing.T) {
	const rest = " S 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 %s 0 123456\n"
	for text, want := range map[string]int{
		fmt.Sprintf("42 (x)"+rest, "12"):       12,
		fmt.Sprintf("42 (a) b) (c)"+rest, "7"): 7,
		fmt.Sprintf("42 (x)"+rest, "many"):     -1,
		"42 (x) S 1 2 3":                       -1,
		"42 x S":                               -1,
		"":                                     -1,
	} {
		if got := parseThreads([]byte(text)); got != want {
			t.Errorf("parseThreads(%q) = %d, want %d", text, got, want)
		}
	}
	s := openStat(os.Getpid())
	defer func() { _ = s.close() }()
	if n := s.threads(); n < 1 {
		t.Errorf("threads of this process: %d", n)
	}
	if n := s.threads(); n < 1 { // read again through the same file
		t.Errorf("threads of this process, again: %d", n)
	}
	if n := openStat(1 << 30).threads(); n != -1 {
		t.Errorf("threads of no process: %d, want -1", n)
	}
}
