package config_test

import (
	"flag"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/alumoutreach/alumoutreach/internal/config"
)

// envMap is an environment for Load.
type envMap map[string]string

func (e envMap) get(k string) string { return e[k] }

func writeFile(t *testing.T, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "alumoutreach.yaml")
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func newFlagSet() *flag.FlagSet {
	fs := flag.NewFlagSet("test", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	return fs
}

func load(t *testing.T, args []string, env envMap) (config.Config, error) {
	t.Helper()
	return config.Load(args, env.get, newFlagSet())
}

func mustLoad(t *testing.T, args []string, env envMap) config.Config {
	t.Helper()
	cfg, err := load(t, args, env)
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	return cfg
}

func TestDefaults(t *testing.T) {
	t.Parallel()
	cfg := mustLoad(t, nil, nil)
	if !reflect.DeepEqual(cfg, config.Default()) {
		t.Errorf("Load with nothing set = %+v, want Default()", cfg)
	}
	checks := []struct {
		name      string
		got, want any
	}{
		{"data dir", cfg.DataDir, "./data"},
		{"http addr", cfg.HTTPAddr, ":8080"},
		{"database url", cfg.DatabaseURL, ""},
		{"modules", len(cfg.Modules), 10},
		{"shutdown", cfg.ShutdownTimeout, 10 * time.Second},
		{"log", cfg.Log, config.LogConfig{Level: "info", Format: "json"}},
		{"embedded", cfg.NATS.Embedded(), true},
		{"listen", cfg.NATS.ListenAddr, "127.0.0.1:4222"},
		{"max bytes", cfg.NATS.MaxBytes, 10 * config.GiB},
		{"sync interval", cfg.NATS.SyncInterval(), time.Second},
		{"backoff", cfg.Consumer.Backoff, []time.Duration{time.Second, 5 * time.Second, 30 * time.Second}},
		{"max deliver", cfg.Consumer.MaxDeliver, 3},
		{"event size", cfg.Events.MaxSize, config.MiB},
		{"outbox", cfg.Outbox, config.OutboxConfig{BatchSize: 500, Retention: 10 * time.Minute, SafetyPoll: time.Second}},
	}
	for _, c := range checks {
		if !reflect.DeepEqual(c.got, c.want) {
			t.Errorf("%s = %v, want %v", c.name, c.got, c.want)
		}
	}
}

func TestPrecedence(t *testing.T) {
	t.Parallel()
	file := writeFile(t, `
http-addr: ":1111"
data-dir: /from/file
log:
  level: debug
nats:
  max-age: 24h
  sync: always
consumer:
  backoff: [2s, 4s]
`)
	tests := []struct {
		name string
		args []string
		env  envMap
		want func(c config.Config) []any // got, want pairs
	}{
		{
			name: "file over defaults",
			args: []string{"--config", file},
			want: func(c config.Config) []any {
				return []any{c.HTTPAddr, ":1111", c.DataDir, "/from/file", c.Log.Level, "debug",
					c.NATS.MaxAge, 24 * time.Hour, c.NATS.SyncAlways(), true,
					c.Consumer.Backoff, []time.Duration{2 * time.Second, 4 * time.Second}}
			},
		},
		{
			name: "env over file",
			args: []string{"--config", file},
			env:  envMap{"ALUM_HTTP_ADDR": ":2222", "ALUM_NATS_MAX_AGE": "48h", "ALUM_CONSUMER_BACKOFF": "1s, 3s"},
			want: func(c config.Config) []any {
				return []any{c.HTTPAddr, ":2222", c.DataDir, "/from/file", c.NATS.MaxAge, 48 * time.Hour,
					c.Consumer.Backoff, []time.Duration{time.Second, 3 * time.Second}}
			},
		},
		{
			name: "flag over env",
			args: []string{"--config", file, "--http-addr", ":3333", "--nats-max-age=72h"},
			env:  envMap{"ALUM_HTTP_ADDR": ":2222", "ALUM_NATS_MAX_AGE": "48h", "ALUM_LOG_LEVEL": "warn"},
			want: func(c config.Config) []any {
				return []any{c.HTTPAddr, ":3333", c.NATS.MaxAge, 72 * time.Hour, c.Log.Level, "warn", c.DataDir, "/from/file"}
			},
		},
		{
			name: "config path from ALUM_CONFIG",
			env:  envMap{"ALUM_CONFIG": file},
			want: func(c config.Config) []any { return []any{c.HTTPAddr, ":1111"} },
		},
		{
			name: "--config over ALUM_CONFIG",
			args: []string{"--config", writeFile(t, "http-addr: \":4444\"\n")},
			env:  envMap{"ALUM_CONFIG": file},
			want: func(c config.Config) []any { return []any{c.HTTPAddr, ":4444", c.DataDir, "./data"} },
		},
		{
			name: "flag equal to the default still overrides env",
			args: []string{"--http-addr", ":8080"},
			env:  envMap{"ALUM_HTTP_ADDR": ":2222"},
			want: func(c config.Config) []any { return []any{c.HTTPAddr, ":8080"} },
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := mustLoad(t, tt.args, tt.env)
			pairs := tt.want(cfg)
			for i := 0; i < len(pairs); i += 2 {
				if !reflect.DeepEqual(pairs[i], pairs[i+1]) {
					t.Errorf("value %d = %v, want %v", i/2, pairs[i], pairs[i+1])
				}
			}
		})
	}
}

func TestEveryEnvVariable(t *testing.T) {
	t.Parallel()
	// One value per setting, different from its default, through env; each
	// must land in its field (checked by formatting it back).
	values := map[string]string{
		"ALUM_DATA_DIR":                          "/var/lib/alum",
		"ALUM_HTTP_ADDR":                         "127.0.0.1:9090",
		"ALUM_DATABASE_URL":                      "postgres://u:p@db:5432/alum",
		"ALUM_MODULES":                           "contacts,analytics",
		"ALUM_SHUTDOWN_TIMEOUT":                  "30s",
		"ALUM_LOG_LEVEL":                         "debug",
		"ALUM_LOG_FORMAT":                        "text",
		"ALUM_NATS_URL":                          "nats://a:4222,nats://b:4222",
		"ALUM_NATS_LISTEN_ADDR":                  "off",
		"ALUM_NATS_REPLICAS":                     "3",
		"ALUM_NATS_MAX_AGE":                      "24h",
		"ALUM_NATS_MAX_BYTES":                    "2GiB",
		"ALUM_NATS_DUPLICATE_WINDOW":             "5m",
		"ALUM_NATS_DLQ_MAX_AGE":                  "240h",
		"ALUM_NATS_SYNC":                         "always",
		"ALUM_CONSUMER_MAX_DELIVER":              "4",
		"ALUM_CONSUMER_ACK_WAIT":                 "1m",
		"ALUM_CONSUMER_BACKOFF":                  "1s,2s,3s",
		"ALUM_CONSUMER_CONCURRENCY":              "8",
		"ALUM_CONSUMER_LAG_POLL_INTERVAL":        "10s",
		"ALUM_OUTBOX_BATCH_SIZE":                 "100",
		"ALUM_OUTBOX_RETENTION":                  "1h",
		"ALUM_OUTBOX_SAFETY_POLL":                "2s",
		"ALUM_EVENTS_MAX_SIZE":                   "2MiB",
		"ALUM_PUBLIC_URL":                        "https://alumni.example.edu",
		"ALUM_TRACKING_SECRET":                   "s3cret",
		"ALUM_TRACKING_OPENS":                    "false",
		"ALUM_TRACKING_CLICKS":                   "false",
		"ALUM_EMAIL_PROVIDER":                    "smtp",
		"ALUM_EMAIL_FROM":                        "news@example.edu",
		"ALUM_EMAIL_FROM_NAME":                   "Class Notes",
		"ALUM_EMAIL_SMTP_HOST":                   "smtp.example.edu",
		"ALUM_EMAIL_SMTP_PORT":                   "465",
		"ALUM_EMAIL_SMTP_SECURITY":               "tls",
		"ALUM_EMAIL_SMTP_USERNAME":               "mailer",
		"ALUM_EMAIL_SMTP_PASSWORD":               "pw",
		"ALUM_EMAIL_SMTP_POOL_SIZE":              "8",
		"ALUM_EMAIL_SENDGRID_WEBHOOK_KEY":        "MFkwEw==",
		"ALUM_EMAIL_INBOUND_KEY":                 "inbound-secret",
		"ALUM_SMS_PROVIDER":                      "twilio",
		"ALUM_SMS_TWILIO_ACCOUNT_SID":            "AC123",
		"ALUM_SMS_TWILIO_AUTH_TOKEN":             "tok",
		"ALUM_SMS_TWILIO_FROM":                   "+15005550006",
		"ALUM_SMS_TWILIO_BASE_URL":               "http://127.0.0.1:9999",
		"ALUM_WHATSAPP_PROVIDER":                 "meta",
		"ALUM_WHATSAPP_META_PHONE_NUMBER_ID":     "1055",
		"ALUM_WHATSAPP_META_BUSINESS_ACCOUNT_ID": "1029",
		"ALUM_WHATSAPP_META_ACCESS_TOKEN":        "EAAG",
		"ALUM_WHATSAPP_META_API_VERSION":         "v24.0",
		"ALUM_WHATSAPP_META_BASE_URL":            "http://127.0.0.1:9998",
		"ALUM_WHATSAPP_META_APP_SECRET":          "appsecret",
		"ALUM_WHATSAPP_META_VERIFY_TOKEN":        "verify-me",
		"ALUM_PIPELINE_QUIET_HOURS":              "21:00-08:00",
		"ALUM_PIPELINE_QUIET_CHANNELS":           "sms",
		"ALUM_PIPELINE_FREQUENCY_CAP":            "3",
		"ALUM_PIPELINE_FREQUENCY_WINDOW":         "168h",
		"ALUM_PIPELINE_TENANT_RATE":              "500",
		"ALUM_PIPELINE_EMAIL_RATE":               "1000",
		"ALUM_PIPELINE_SMS_RATE":                 "10",
		"ALUM_PIPELINE_WHATSAPP_RATE":            "80",
		"ALUM_CAMPAIGNS_MAX_IN_FLIGHT":           "1000",
		"ALUM_CAMPAIGNS_BATCH":                   "200",
		"ALUM_INBOX_FIRST_RESPONSE":              "4h",
		"ALUM_INBOX_NEXT_RESPONSE":               "8h",
		"ALUM_INBOX_WARNING_BEFORE":              "1h",
	}
	settings := config.Settings()
	if len(settings) != len(values) {
		t.Errorf("%d settings, test covers %d: add the new ones here", len(settings), len(values))
	}
	cfg := mustLoad(t, nil, envMap(values))
	fs := newFlagSet()
	b := config.Bind(fs, config.ServeFlags()...)
	for _, s := range settings {
		want, ok := values[s.Env]
		if !ok {
			t.Errorf("setting %s: variable %s not covered", s.Key, s.Env)
			continue
		}
		// Pass the loaded value back through the flag and compare texts.
		if err := fs.Set(s.Flag, want); err != nil {
			t.Errorf("flag --%s rejects %q: %v", s.Flag, want, err)
		}
		if s.Flag != strings.ReplaceAll(s.Key, ".", "-") {
			t.Errorf("flag of %s = %q", s.Key, s.Flag)
		}
	}
	fromFlags, err := b.Load(envMap{}.get)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(cfg, fromFlags) {
		t.Errorf("env and flags disagree:\nenv   %+v\nflags %+v", cfg, fromFlags)
	}
	if cfg.NATS.MaxBytes != 2*config.GiB || cfg.Consumer.Concurrency != 8 || !cfg.NATS.SyncAlways() || cfg.NATS.ListenAddr != "" {
		t.Errorf("env not applied: %+v", cfg)
	}
}

func TestModules(t *testing.T) {
	t.Parallel()
	tests := []struct {
		value string
		want  []string
	}{
		{"all", config.AllModules()},
		{"analytics, contacts", []string{"contacts", "analytics"}},
		{"inbox,inbox,all", config.AllModules()},
		{"Pipeline", []string{"pipeline"}},
	}
	for _, tt := range tests {
		t.Run(tt.value, func(t *testing.T) {
			cfg := mustLoad(t, []string{"--modules", tt.value}, nil)
			if !reflect.DeepEqual(cfg.Modules, tt.want) {
				t.Errorf("modules = %v, want %v", cfg.Modules, tt.want)
			}
		})
	}
	cfg := mustLoad(t, []string{"--modules", "contacts"}, nil)
	if !cfg.ModuleEnabled("contacts") || cfg.ModuleEnabled("inbox") {
		t.Error("ModuleEnabled disagrees with --modules contacts")
	}
}

func TestFileErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		yaml string
		want []string
	}{
		{"unknown top-level key", "http-addr: \":80\"\nhttp-adr: \":81\"\n", []string{`line 2`, `unknown key "http-adr"`, `did you mean "http-addr"`}},
		{"unknown nested key", "nats:\n  replica: 3\n", []string{`line 2`, `unknown key "nats.replica"`, `did you mean "replicas"`, "keys under nats:"}},
		{"camelCase key", "dataDir: /x\n", []string{`unknown key "dataDir"`, `did you mean "data-dir"`}},
		{"unknown section", "natz:\n  url: x\n", []string{`unknown key "natz"`, `did you mean "nats"`}},
		{"section as scalar", "nats: nats://x:4222\n", []string{"nats must be a mapping"}},
		{"value as mapping", "http-addr:\n  port: 80\n", []string{"http-addr: expects a value, not a mapping"}},
		{"list for a scalar", "http-addr: [a, b]\n", []string{"http-addr: expects a single value"}},
		{"bad duration", "nats:\n  max-age: 7days\n", []string{"line 2", "nats.max-age", `"7days" is not a duration`}},
		{"bad number", "nats:\n  replicas: three\n", []string{"nats.replicas", `"three" is not a whole number`}},
		{"bad list item", "consumer:\n  backoff: [1s, soon]\n", []string{"consumer.backoff", `"soon" is not a duration`}},
		{"duplicate key", "data-dir: a\ndata-dir: b\n", []string{`line 2`, `"data-dir" appears twice`}},
		{"not a mapping", "- a\n- b\n", []string{"must be a mapping"}},
		{"syntax error", "http-addr: [\n", []string{"config file"}},
		{"all problems at once", "foo: 1\nbar: 2\n", []string{`"foo"`, `"bar"`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := load(t, []string{"--config", writeFile(t, tt.yaml)}, nil)
			if err == nil {
				t.Fatal("Load accepted the file")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
		})
	}
	t.Run("missing file", func(t *testing.T) {
		_, err := load(t, []string{"--config", filepath.Join(t.TempDir(), "nope.yaml")}, nil)
		if err == nil || !strings.Contains(err.Error(), "nope.yaml") {
			t.Errorf("err = %v, want one naming the file", err)
		}
	})
	t.Run("empty file", func(t *testing.T) {
		if _, err := load(t, []string{"--config", writeFile(t, "# nothing yet\n")}, nil); err != nil {
			t.Errorf("empty file: %v", err)
		}
	})
	t.Run("sizes, lists as strings, null", func(t *testing.T) {
		cfg := mustLoad(t, []string{"--config", writeFile(t, "database-url: ~\nmodules: contacts, inbox\nnats:\n  max-bytes: 500 MB\nevents:\n  max-size: 262144\n")}, nil)
		if cfg.NATS.MaxBytes != 500_000_000 || cfg.Events.MaxSize != 256*config.KiB || len(cfg.Modules) != 2 || cfg.DatabaseURL != "" {
			t.Errorf("cfg = %+v", cfg)
		}
	})
}

func TestEnvErrorsNameTheVariable(t *testing.T) {
	t.Parallel()
	tests := []struct {
		env  envMap
		want []string
	}{
		{envMap{"ALUM_NATS_MAX_AGE": "7days"}, []string{"ALUM_NATS_MAX_AGE", `"7days" is not a duration`, "168h"}},
		{envMap{"ALUM_CONSUMER_BACKOFF": "1s,x"}, []string{"ALUM_CONSUMER_BACKOFF", `"x" is not a duration`}},
		{envMap{"ALUM_NATS_REPLICAS": "three"}, []string{"ALUM_NATS_REPLICAS", "whole number"}},
		{envMap{"ALUM_NATS_MAX_BYTES": "lots"}, []string{"ALUM_NATS_MAX_BYTES", "10GiB"}},
		{envMap{"ALUM_NATS_MAX_AGE": "x", "ALUM_OUTBOX_RETENTION": "y"}, []string{"ALUM_NATS_MAX_AGE", "ALUM_OUTBOX_RETENTION"}},
	}
	for _, tt := range tests {
		t.Run(tt.want[0], func(t *testing.T) {
			_, err := load(t, nil, tt.env)
			if err == nil {
				t.Fatal("Load accepted the environment")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
		})
	}
}

func TestFlagErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"--nats-max-age", "week"}, "nats-max-age"},
		{[]string{"--consumer-max-deliver", "x"}, "consumer-max-deliver"},
		{[]string{"--no-such-flag"}, "no-such-flag"},
	}
	for _, tt := range tests {
		t.Run(tt.want, func(t *testing.T) {
			_, err := load(t, tt.args, nil)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("err = %v, want one naming %s", err, tt.want)
			}
		})
	}
}

func TestBindSubset(t *testing.T) {
	t.Parallel()
	fs := newFlagSet()
	name := fs.String("name", "", "a subcommand's own flag")
	b := config.Bind(fs, config.ConnectFlags()...)
	if fs.Lookup("http-addr") != nil {
		t.Error("ConnectFlags registered --http-addr")
	}
	for _, f := range []string{"config", "data-dir", "database-url", "nats-url"} {
		if fs.Lookup(f) == nil {
			t.Errorf("--%s not registered", f)
		}
	}
	if err := fs.Parse([]string{"--data-dir", "/d", "--name", "acme", "extra"}); err != nil {
		t.Fatal(err)
	}
	cfg, err := b.Load(envMap{"ALUM_HTTP_ADDR": ":9999"}.get)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.DataDir != "/d" || cfg.HTTPAddr != ":9999" || *name != "acme" || fs.Arg(0) != "extra" {
		t.Errorf("cfg = %+v, name %q, args %v", cfg, *name, fs.Args())
	}
	if got := fs.Lookup("data-dir").DefValue; got != "./data" {
		t.Errorf("--data-dir default shown as %q", got)
	}

	defer func() {
		if recover() == nil {
			t.Error("Bind accepted a flag name no setting has")
		}
	}()
	config.Bind(newFlagSet(), "no-such-setting")
}

func TestValidate(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		change func(c *config.Config)
		want   string
	}{
		{"empty data dir", func(c *config.Config) { c.DataDir = " " }, "data-dir is empty; name a directory such as ./data"},
		{"http addr", func(c *config.Config) { c.HTTPAddr = ":x" }, `http-addr ":x": port "x" is not a number from 0 to 65535; use host:port such as :8080`},
		{"http addr without port", func(c *config.Config) { c.HTTPAddr = "localhost" }, `http-addr "localhost": not host:port`},
		{"database url", func(c *config.Config) { c.DatabaseURL = "mysql://root:secret@db/alum" }, `database-url "mysql://root:xxxxx@db/alum": use postgres://`},
		{"public url", func(c *config.Config) { c.PublicURL = "alumni.example.edu" }, `public-url "alumni.example.edu": use the absolute address`},
		{"smtp without host", func(c *config.Config) { c.Email.Provider = "smtp" }, "email.smtp.host is empty"},
		{"quiet hours", func(c *config.Config) { c.Pipeline.QuietHours = "9pm-8am" }, `pipeline.quiet-hours "9pm-8am"`},
		{"unknown email provider", func(c *config.Config) { c.Email.Provider = "mailgun" }, `email.provider "mailgun": use sandbox or smtp`},
		{"twilio without sid", func(c *config.Config) { c.SMS.Provider = "twilio" }, "sms.twilio.account-sid is empty"},
		{"meta without token", func(c *config.Config) { c.WhatsApp.Provider = "meta"; c.WhatsApp.Meta.PhoneNumberID = "1" }, "whatsapp.meta.access-token is empty"},
		{"meta without business account", func(c *config.Config) { c.WhatsApp.Provider = "meta"; c.WhatsApp.Meta.PhoneNumberID = "1" }, "whatsapp.meta.business-account-id is empty; copy the WhatsApp Business Account ID"},
		{"meta business account not an id", func(c *config.Config) {
			c.WhatsApp.Provider, c.WhatsApp.Meta.BusinessAccountID = "meta", "my-waba"
		}, `whatsapp.meta.business-account-id "my-waba": a WhatsApp Business Account ID is all digits`},
		{"no modules", func(c *config.Config) { c.Modules = nil }, "modules is empty; name at least one of contacts"},
		{"unknown module", func(c *config.Config) { c.Modules = []string{"contacts", "billing"} }, `modules: "billing" is not a module; choose from contacts, segments`},
		{"shutdown", func(c *config.Config) { c.ShutdownTimeout = 0 }, "shutdown-timeout 0s must be positive"},
		{"log level", func(c *config.Config) { c.Log.Level = "verbose" }, `log.level "verbose": use debug, info, warn or error`},
		{"log format", func(c *config.Config) { c.Log.Format = "xml" }, `log.format "xml": use json or text`},
		{"nats url", func(c *config.Config) { c.NATS.URL = "http://nats:4222" }, `nats.url "http://nats:4222": use nats://host:4222`},
		{"listen addr", func(c *config.Config) { c.NATS.ListenAddr = "4222" }, `nats.listen-addr "4222": not host:port`},
		{"replicas out of range", func(c *config.Config) { c.NATS.URL = "nats://a:4222"; c.NATS.Replicas = 7 }, "nats.replicas 7: use 1 (embedded server or one node) up to 5"},
		{"replicas on embedded", func(c *config.Config) { c.NATS.Replicas = 3 }, "nats.replicas 3 needs a NATS cluster; the embedded server (nats.url empty) has one node, so use 1 or set nats.url"},
		{"max age", func(c *config.Config) { c.NATS.MaxAge = 0 }, "nats.max-age 0s must be positive"},
		{"max bytes", func(c *config.Config) { c.NATS.MaxBytes = 0 }, "nats.max-bytes 0 must be positive, such as 10GiB"},
		{"duplicate window", func(c *config.Config) { c.NATS.DuplicateWindow = 0 }, "nats.duplicate-window 0s must be positive"},
		{"negative inbox deadline", func(c *config.Config) { c.Inbox.NextResponse = -time.Hour }, "inbox.next-response -1h must not be negative"},
		{"inbox warning after the deadline", func(c *config.Config) { c.Inbox.FirstResponse = 2 * time.Hour }, "inbox.warning-before 4h must be shorter than inbox.first-response 2h"},
		{"duplicate window over max age", func(c *config.Config) { c.NATS.MaxAge = 10 * time.Second }, "nats.duplicate-window 30s is longer than nats.max-age 10s"},
		{"dlq max age", func(c *config.Config) { c.NATS.DLQMaxAge = -time.Hour }, "nats.dlq-max-age -1h must be positive"},
		{"sync", func(c *config.Config) { c.NATS.Sync = "sometimes" }, `nats.sync "sometimes": use a positive interval such as 1s, or always`},
		{"max deliver", func(c *config.Config) { c.Consumer.MaxDeliver = 0 }, "consumer.max-deliver 0 must be at least 1"},
		{"ack wait", func(c *config.Config) { c.Consumer.AckWait = 0 }, "consumer.ack-wait 0s must be positive"},
		{"backoff entry", func(c *config.Config) { c.Consumer.Backoff = []time.Duration{time.Second, 0} }, "consumer.backoff[1] 0s must be positive"},
		{"backoff too short", func(c *config.Config) { c.Consumer.MaxDeliver = 5 }, "consumer.backoff gives 3 delay(s) but consumer.max-deliver 5 needs at least 4, one before each retry"},
		{"concurrency", func(c *config.Config) { c.Consumer.Concurrency = 0 }, "consumer.concurrency 0 must be at least 1"},
		{"lag poll", func(c *config.Config) { c.Consumer.LagPollInterval = 0 }, "consumer.lag-poll-interval 0s must be positive"},
		{"batch size", func(c *config.Config) { c.Outbox.BatchSize = 0 }, "outbox.batch-size 0: use 1 to 10000"},
		{"retention", func(c *config.Config) { c.Outbox.Retention = 0 }, "outbox.retention 0s must be positive"},
		{"retention under sync interval", func(c *config.Config) { c.NATS.Sync = "1h" }, "outbox.retention 10m must be longer than nats.sync 1h"},
		{"safety poll", func(c *config.Config) { c.Outbox.SafetyPoll = 0 }, "outbox.safety-poll 0s must be positive"},
		{"event size", func(c *config.Config) { c.Events.MaxSize = 100 * config.MiB }, "events.max-size 100MiB: use a size from 1KiB to 4MiB"},
	}
	if err := config.Default().Validate(); err != nil {
		t.Fatalf("defaults are invalid: %v", err)
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := config.Default()
			tt.change(&cfg)
			err := cfg.Validate()
			if err == nil {
				t.Fatal("Validate accepted it")
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q\nlacks %q", err, tt.want)
			}
		})
	}
	t.Run("all problems reported", func(t *testing.T) {
		cfg := config.Default()
		cfg.HTTPAddr = "x"
		cfg.Log.Level = "loud"
		cfg.Consumer.Concurrency = 0
		err := cfg.Validate()
		if err == nil || strings.Count(err.Error(), "\n") != 2 {
			t.Errorf("err = %v, want three problems, one per line", err)
		}
	})
	t.Run("valid alternatives", func(t *testing.T) {
		cfg := config.Default()
		cfg.DatabaseURL = "postgresql://u@db/alum"
		cfg.NATS.URL = "nats://a:4222, tls://b:4222,c:4222"
		cfg.NATS.Replicas = 3
		cfg.NATS.Sync = "always"
		cfg.NATS.ListenAddr = ""
		cfg.Consumer.MaxDeliver = 1
		cfg.Consumer.Backoff = nil
		cfg.Log = config.LogConfig{Level: "WARN", Format: "text"}
		if err := cfg.Validate(); err != nil {
			t.Error(err)
		}
	})
}

func TestByteSize(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in      string
		want    config.ByteSize
		wantErr bool
	}{
		{"1048576", config.MiB, false},
		{"1MiB", config.MiB, false},
		{"10 GiB", 10 * config.GiB, false},
		{"10gib", 10 * config.GiB, false},
		{"500MB", 500_000_000, false},
		{"2KB", 2000, false},
		{"64B", 64, false},
		{"", 0, true},
		{"GiB", 0, true},
		{"-1", 0, true},
		{"1.5GiB", 0, true},
		{"99999999999TiB", 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := config.ParseByteSize(tt.in)
			if (err != nil) != tt.wantErr || got != tt.want {
				t.Errorf("ParseByteSize(%q) = %d, %v", tt.in, got, err)
			}
		})
	}
	for b, want := range map[config.ByteSize]string{10 * config.GiB: "10GiB", config.MiB: "1MiB", 1500: "1500", 0: "0"} {
		if got := b.String(); got != want {
			t.Errorf("%d.String() = %q, want %q", int64(b), got, want)
		}
	}
}

func TestHelpers(t *testing.T) {
	t.Parallel()
	cfg := config.Default()
	cfg.DatabaseURL = "postgres://alum:s3cret@db:5432/alum"
	cfg.NATS.URL = "nats://u:pw@a:4222,nats://b:4222"
	r := cfg.Redacted()
	if strings.Contains(r.DatabaseURL+r.NATS.URL, "s3cret") || strings.Contains(r.NATS.URL, "pw@") {
		t.Errorf("Redacted leaks: %s %s", r.DatabaseURL, r.NATS.URL)
	}
	if cfg.DatabaseURL != "postgres://alum:s3cret@db:5432/alum" {
		t.Error("Redacted changed the original")
	}
	if cfg.NATS.Embedded() {
		t.Error("Embedded with a URL set")
	}
	cfg.NATS.Sync = "always"
	if !cfg.NATS.SyncAlways() || cfg.NATS.SyncInterval() != 0 {
		t.Error("sync always not recognised")
	}
	if lv := (config.LogConfig{Level: "debug"}).SlogLevel(); lv.String() != "DEBUG" {
		t.Errorf("SlogLevel = %v", lv)
	}
}
