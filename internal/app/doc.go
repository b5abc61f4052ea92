// Package app is the one composition root: it turns a config.Config into a
// running process (database, bus, outbox relay, modules with their consumers
// and routes, HTTP server), and stops it in the order that loses nothing.
//
// Nothing else constructs platform parts for the service; the subcommands
// that need only some of them (tenant, dlq, migrate) use OpenDB and OpenBus.
package app
