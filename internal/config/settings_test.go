package config

import (
	"testing"
)

// TestEverySettingIsReachable sets every variable to a value other than its
// default and checks each field took it: a setting that no layer can reach
// would otherwise go unnoticed.
func TestEverySettingIsReachable(t *testing.T) {
	t.Parallel()
	alt := map[string]string{
		"string": "nats://x:4222", "int": "7", "duration": "42s", "size": "3MiB",
		"list": "inbox", "durations": "2s,4s,8s", "bool": "false",
	}
	env := map[string]string{}
	for _, s := range settings {
		v, ok := alt[s.Type]
		if !ok {
			t.Fatalf("setting %s has type %q; add a value for it here", s.Key, s.Type)
		}
		env[s.Env] = v
	}
	cfg := Default()
	if err := applyEnv(&cfg, func(k string) string { return env[k] }); err != nil {
		t.Fatal(err)
	}
	for _, s := range settings {
		got := format(s.field(&cfg))
		if got == s.Default || got != alt[s.Type] {
			t.Errorf("%s via %s = %q, want %q", s.Key, s.Env, got, alt[s.Type])
		}
	}
}

func TestDerivedNames(t *testing.T) {
	t.Parallel()
	tests := []struct{ key, env, flag string }{
		{"data-dir", "ALUM_DATA_DIR", "data-dir"},
		{"http-addr", "ALUM_HTTP_ADDR", "http-addr"},
		{"database-url", "ALUM_DATABASE_URL", "database-url"},
		{"modules", "ALUM_MODULES", "modules"},
		{"log.level", "ALUM_LOG_LEVEL", "log-level"},
		{"nats.url", "ALUM_NATS_URL", "nats-url"},
		{"nats.replicas", "ALUM_NATS_REPLICAS", "nats-replicas"},
		{"nats.sync", "ALUM_NATS_SYNC", "nats-sync"},
		{"nats.dlq-max-age", "ALUM_NATS_DLQ_MAX_AGE", "nats-dlq-max-age"},
		{"consumer.backoff", "ALUM_CONSUMER_BACKOFF", "consumer-backoff"},
		{"events.max-size", "ALUM_EVENTS_MAX_SIZE", "events-max-size"},
	}
	for _, tt := range tests {
		s, ok := byKey[tt.key]
		if !ok {
			t.Errorf("no setting %s", tt.key)
			continue
		}
		if s.Env != tt.env || s.Flag != tt.flag {
			t.Errorf("%s: env %s flag %s, want %s and %s", tt.key, s.Env, s.Flag, tt.env, tt.flag)
		}
	}
}
