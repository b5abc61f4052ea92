// Package cli implements the alumoutreach subcommands: parsing, help text
// and output. It builds what each command needs through internal/app, the
// composition root, and holds no wiring of its own.
package cli
