// Package config is the binary's configuration tree and how it is loaded:
// defaults, then a YAML file (--config or ALUM_CONFIG), then ALUM_*
// environment variables, then command-line flags, each layer overriding the
// one before. Every setting has one dotted key (its YAML path, such as
// nats.max-age) from which its variable (ALUM_NATS_MAX_AGE) and flag
// (--nats-max-age) are derived, so the three never drift apart.
//
// Each subcommand binds the flags it wants (Bind with ServeFlags or
// ConnectFlags); variables and the file apply to every subcommand alike.
// Load validates the result, and every problem says what to write instead.
package config
