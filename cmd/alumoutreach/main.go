// Command alumoutreach is the whole AlumOutreach platform in one binary:
// `alumoutreach serve` runs it; the other subcommands operate it.
package main

import (
	"os"

	"github.com/alumoutreach/alumoutreach/internal/cli"
)

func main() {
	os.Exit(cli.Main(os.Args[1:], os.Stdout, os.Stderr, os.Getenv))
}
