package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestAgentBadSetup: what cannot work fails at start with a clear message.
func TestAgentBadSetup(t *testing.T) {
	file := filepath.Join(t.TempDir(), "afile")
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"unwritable data dir", []string{"--data-dir", filepath.Join(file, "data"), "--listen", "127.0.0.1:0"}, "--data-dir"},
		{"bad listen", []string{"--data-dir", t.TempDir(), "--listen", "256.0.0.1:1"}, "--listen"},
		{"bad interval flag", []string{"--snapshot-interval", "fast"}, `"fast" is not a duration`},
		{"missing config", []string{"--config", "/nonexistent/goroscope.yaml"}, "/nonexistent/goroscope.yaml"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			var stderr bytes.Buffer
			err := run(ctx, append([]string{"agent", "--walker", "procmem"}, tc.args...), &stderr, &stderr)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("agent %q = %v; want an error mentioning %q", tc.args, err, tc.want)
			}
		})
	}
}
