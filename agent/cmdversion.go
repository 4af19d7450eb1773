package main

import (
	"fmt"
	"io"
)

// version is set at link time (-X main.version=...).
var version = "dev"

// cmdVersion prints the version.
func cmdVersion(stdout io.Writer) error {
	fmt.Fprintln(stdout, "goroscope", version)
	return nil
}
