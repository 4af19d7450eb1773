// Command dashboard writes goroscope's Grafana dashboard,
// deploy/grafana/goroscope-dashboard.json, from the Go definition in this
// package (github.com/grafana/grafana-foundation-sdk). Edit dashboard.go,
// never the JSON, then regenerate it:
//
//	go generate ./deploy/grafana/dashboard
//
// or, from the repository root,
//
//	go run ./deploy/grafana/dashboard -o deploy/grafana/goroscope-dashboard.json
//
// TestGenerated fails while the JSON in the tree differs from what this
// program writes.
package main

//go:generate go run . -o ../goroscope-dashboard.json

import (
	"flag"
	"fmt"
	"os"
)

func main() {
	out := flag.String("o", "", "write the dashboard to this file instead of standard output")
	flag.Parse()
	b, err := Render()
	if err != nil {
		fmt.Fprintln(os.Stderr, "dashboard:", err)
		os.Exit(1)
	}
	if *out == "" {
		_, err = os.Stdout.Write(b)
	} else {
		err = os.WriteFile(*out, b, 0o644)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "dashboard:", err)
		os.Exit(1)
	}
}
