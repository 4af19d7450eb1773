package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"strconv"
	"strings"
	"testing"

	"github.com/goroscope/goroscope/pkg/findings"
	"github.com/goroscope/goroscope/test/targettest"
)

// TestDiagnose: diagnose watches a process whose population grows by 20
// parked goroutines a second, and reports the leak with its site, as
// text and as JSON; a quiet process gets no finding; bad flags say what
// to write.
func TestDiagnose(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a target")
	}
	bin := targettest.Build(t, "population", targettest.BuildOpts{})
	leaky := strconv.Itoa(targettest.Start(t, bin, "-grow", "20").PID)
	quiet := strconv.Itoa(targettest.Start(t, bin).PID)
	for _, tc := range []struct {
		name  string
		args  []string
		usage string // want a usage error containing this
		check func(t *testing.T, out string)
	}{
		{name: "no pid", args: []string{}, usage: "--pid is required"},
		{name: "too short", args: []string{"--pid", "1", "--for", "1s", "--interval", "1s"}, usage: "at least three snapshots"},
		{name: "bad format", args: []string{"--pid", "1", "--format", "xml"}, usage: `--format "xml"`},
		{name: "leak, text", args: []string{"--pid", leaky, "--for", "8s", "--interval", "500ms"}, check: func(t *testing.T, out string) {
			for _, want := range []string{"LEAK leak-", "goroutines wait to receive on", "blocks in:  main.parkChanRecv", "created by: main.(*population).spawn", "example stack:"} {
				if !strings.Contains(out, want) {
					t.Errorf("output lacks %q:\n%s", want, out)
				}
			}
		}},
		{name: "leak, json", args: []string{"--pid", leaky, "--for", "8s", "--interval", "500ms", "--format", "json"}, check: func(t *testing.T, out string) {
			var fs []findings.Finding
			if err := json.Unmarshal([]byte(out), &fs); err != nil {
				t.Fatalf("decode: %v\n%s", err, out)
			}
			if len(fs) == 0 || fs[0].Kind != findings.KindLeak || !strings.HasPrefix(fs[0].Site.Frame, "main.parkChanRecv ") || fs[0].GrowthPerHour < 3600 {
				t.Errorf("findings %+v; want a leak in main.parkChanRecv growing by 20/s", fs)
			}
		}},
		{name: "quiet", args: []string{"--pid", quiet, "--for", "3s", "--interval", "500ms"}, check: func(t *testing.T, out string) {
			if !strings.Contains(out, "no finding after 3s") {
				t.Errorf("output %q; want no finding", out)
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out bytes.Buffer
			err := run(context.Background(), append([]string{"diagnose"}, tc.args...), &out, io.Discard)
			if tc.usage != "" {
				if _, ok := err.(usageError); !ok || !strings.Contains(err.Error(), tc.usage) {
					t.Fatalf("err = %v; want a usage error saying %q", err, tc.usage)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			tc.check(t, out.String())
		})
	}
}
