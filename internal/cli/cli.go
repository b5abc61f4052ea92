package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"sort"
	"strings"
	"syscall"

	"github.com/alumoutreach/alumoutreach/internal/config"
)

// env reads environment variables (os.Getenv in production).
type env func(string) string

type command struct {
	name    string
	summary string
	run     func(ctx context.Context, io cmdIO, args []string) error
}

type cmdIO struct {
	out, err io.Writer
	getenv   env
}

func commands() []command {
	return []command{
		{"serve", "run the platform: HTTP API, event bus, consumers (embedded NATS + SQLite by default)", runServe},
		{"migrate", "apply database migrations and exit", runMigrate},
		{"tenant", "create and list tenants, create and revoke API keys", runTenant},
		{"dlq", "list, show, replay and purge dead-lettered events", runDLQ},
		{"contacts", "import contacts from a CSV or NDJSON file, with a progress bar", runContacts},
		{"bench", "measure the event path on this machine (ceiling, pipeline, latency)", runBench},
		{"config", "print the effective configuration and every setting's variable and flag", runConfig},
	}
}

// errUsage marks a mistake in the command line; its message is printed
// with a pointer to --help and the exit code is 2.
var errUsage = errors.New("usage")

func usageErrorf(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{errUsage}, args...)...)
}

// Main runs the command line args and returns the process exit code.
func Main(args []string, stdout, stderr io.Writer, getenv func(string) string) int {
	cio := cmdIO{out: stdout, err: stderr, getenv: getenv}
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		if len(args) > 1 {
			args = []string{args[1], "--help"}
		} else {
			topHelp(stdout)
			return 0
		}
	}
	for _, c := range commands() {
		if c.name != args[0] {
			continue
		}
		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
		defer stop()
		err := c.run(ctx, cio, args[1:])
		switch {
		case err == nil:
			return 0
		case errors.Is(err, flag.ErrHelp):
			return 0
		case errors.Is(err, errUsage):
			fmt.Fprintf(stderr, "alumoutreach %s: %s\nRun 'alumoutreach %s --help' for usage.\n", c.name, strings.TrimPrefix(err.Error(), "usage: "), c.name)
			return 2
		default:
			fmt.Fprintf(stderr, "alumoutreach %s: %v\n", c.name, err)
			return 1
		}
	}
	fmt.Fprintf(stderr, "alumoutreach: unknown command %q\nRun 'alumoutreach --help' for the list of commands.\n", args[0])
	return 2
}

func topHelp(w io.Writer) {
	fmt.Fprint(w, `alumoutreach: self-hosted outreach by email, SMS and WhatsApp, on NATS JetStream.

Usage:
  alumoutreach <command> [flags]

Commands:
`)
	for _, c := range commands() {
		fmt.Fprintf(w, "  %-9s %s\n", c.name, c.summary)
	}
	fmt.Fprint(w, `
Every setting can come from a YAML file (--config or ALUM_CONFIG), an ALUM_*
environment variable, or a flag, in increasing order of precedence; run
'alumoutreach config --help' for the list.

Quick start:
  alumoutreach serve                     # embedded NATS + SQLite in ./data, HTTP on :8080
  alumoutreach tenant create "Alumni Office"   # prints an API key once

Run 'alumoutreach <command> --help' for a command's flags.
`)
}

// newFlags returns a flag set whose usage prints summary, usage lines and
// the flags. The flag package's own output is discarded: on a mistake it
// would print the error and the whole usage, and Main already prints the
// error once with a pointer to --help (parseInterspersed prints the usage
// for -h/--help).
func newFlags(cio cmdIO, name, usage, description string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Usage = func() {
		fmt.Fprintf(cio.out, "Usage:\n  %s\n\n%s\n\nFlags:\n", usage, strings.TrimSpace(description))
		fs.SetOutput(cio.out)
		fs.PrintDefaults()
		fs.SetOutput(io.Discard)
	}
	return fs
}

// loadConfig parses args with the config flags names plus fs's own, and
// returns the configuration and the positional arguments. Flags may come
// before or after positional arguments.
func loadConfig(cio cmdIO, fs *flag.FlagSet, args []string, names []string) (config.Config, []string, error) {
	b := config.Bind(fs, names...)
	pos, err := parseInterspersed(fs, args)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return config.Config{}, nil, err
		}
		return config.Config{}, nil, usageErrorf("%v", err)
	}
	cfg, err := b.Load(cio.getenv)
	if err != nil {
		return config.Config{}, nil, fmt.Errorf("configuration:\n%w", err)
	}
	return cfg, pos, nil
}

// parseInterspersed lets flags follow positional arguments
// (`tenant create "Name" --data-dir x`), which the flag package alone stops at.
func parseInterspersed(fs *flag.FlagSet, args []string) ([]string, error) {
	// The flag package calls Usage on every parse error too; only an
	// explicit -h/--help should print it.
	usage := fs.Usage
	fs.Usage = func() {}
	defer func() { fs.Usage = usage }()
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				usage()
			}
			return nil, err
		}
		rest := fs.Args()
		if len(rest) == 0 {
			return pos, nil
		}
		pos = append(pos, rest[0])
		args = rest[1:]
	}
}

func logger(cfg config.Config, w io.Writer) *slog.Logger {
	return slog.New(cfg.Log.Handler(w))
}

func runConfig(_ context.Context, cio cmdIO, args []string) error {
	fs := newFlags(cio, "config", "alumoutreach config [flags]",
		"Prints the effective configuration (defaults, then the file, then ALUM_* variables, then flags),\nfollowed by every setting with its variable and flag.")
	cfg, _, err := loadConfig(cio, fs, args, config.ServeFlags())
	if err != nil {
		return err
	}
	fmt.Fprintln(cio.out, "Effective configuration (passwords masked):")
	fmt.Fprintf(cio.out, "%+v\n\nSettings:\n", cfg.Redacted())
	ss := config.Settings()
	sort.SliceStable(ss, func(i, j int) bool { return ss[i].Key < ss[j].Key })
	for _, s := range ss {
		fmt.Fprintf(cio.out, "  %-26s --%-26s %-28s default %q\n      %s\n", s.Key, s.Flag, s.Env, s.Default, s.Help)
	}
	return nil
}
