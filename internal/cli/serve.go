package cli

import (
	"context"

	"github.com/alumoutreach/alumoutreach/internal/app"
	"github.com/alumoutreach/alumoutreach/internal/config"
)

func runServe(ctx context.Context, cio cmdIO, args []string) error {
	fs := newFlags(cio, "serve", "alumoutreach serve [flags]", `Runs the platform until SIGINT or SIGTERM, then shuts down cleanly within
--shutdown-timeout: HTTP stops taking requests, consumers finish the events in
hand, the outbox is flushed to the bus, and the bus and database close.

By default everything is embedded: a NATS JetStream server and SQLite, both
under --data-dir, with the NATS server also on nats://127.0.0.1:4222 for the
nats CLI and 'alumoutreach dlq'. Point --nats-url at a NATS cluster and
--database-url at PostgreSQL to run several instances side by side.

Endpoints: /api/v1/... (Authorization: Bearer <key>), /healthz, /readyz, /metrics.`)
	cfg, pos, err := loadConfig(cio, fs, args, config.ServeFlags())
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return usageErrorf("serve takes no arguments, got %q", pos)
	}
	log := logger(cfg, cio.err)
	a, err := app.New(ctx, cfg, log)
	if err != nil {
		return err
	}
	return a.Run(ctx)
}

func runMigrate(ctx context.Context, cio cmdIO, args []string) error {
	fs := newFlags(cio, "migrate", "alumoutreach migrate [flags]",
		"Applies every pending database migration (platform and modules) and exits.\n'serve' does this at start too; run it alone before rolling out several instances.")
	cfg, pos, err := loadConfig(cio, fs, args, config.ConnectFlags())
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return usageErrorf("migrate takes no arguments, got %q", pos)
	}
	db, err := app.Migrate(ctx, cfg)
	if err != nil {
		return err
	}
	defer db.Close()
	_, err = cio.out.Write([]byte("migrations applied to " + db.Redacted() + "\n"))
	return err
}
