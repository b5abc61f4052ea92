package config

import (
	"io"
	"log/slog"
	"net/url"
	"slices"
	"strings"
	"time"
)

// Config is the whole configuration. The yaml tags are the keys in the
// config file; variables and flags are derived from them (see Settings).
type Config struct {
	DataDir         string        `yaml:"data-dir" help:"directory for the embedded database, bus storage and analytics"`
	HTTPAddr        string        `yaml:"http-addr" help:"HTTP listen address, host:port"`
	DatabaseURL     string        `yaml:"database-url" help:"postgres://user:pass@host:5432/db for PostgreSQL; empty for SQLite in the data directory"`
	Modules         []string      `yaml:"modules" help:"comma-separated modules this instance runs, or all"`
	ShutdownTimeout time.Duration `yaml:"shutdown-timeout" help:"how long a graceful shutdown may take before work is abandoned"`
	PublicURL       string        `yaml:"public-url" help:"the address recipients reach this server at, for tracking and unsubscribe links, e.g. https://alumni.example.edu"`

	Log       LogConfig       `yaml:"log"`
	NATS      NATSConfig      `yaml:"nats"`
	Consumer  ConsumerConfig  `yaml:"consumer"`
	Outbox    OutboxConfig    `yaml:"outbox"`
	Events    EventsConfig    `yaml:"events"`
	Tracking  TrackingConfig  `yaml:"tracking"`
	Email     EmailConfig     `yaml:"email"`
	SMS       SMSConfig       `yaml:"sms"`
	WhatsApp  WhatsAppConfig  `yaml:"whatsapp"`
	Pipeline  PipelineConfig  `yaml:"pipeline"`
	Campaigns CampaignsConfig `yaml:"campaigns"`
	Inbox     InboxConfig     `yaml:"inbox"`
}

// InboxConfig sets the inbox's response deadlines (SLAs).
type InboxConfig struct {
	FirstResponse time.Duration `yaml:"first-response" help:"how soon the first message of a thread must be answered (a reply, or the thread set pending or closed); 0: no deadline"`
	NextResponse  time.Duration `yaml:"next-response" help:"how soon a contact's later message must be answered; 0: no deadline"`
	WarningBefore time.Duration `yaml:"warning-before" help:"how long before a response deadline inbox.sla.warning is published; 0: no warning"`
}

// CampaignsConfig tunes how campaigns feed the pipeline.
type CampaignsConfig struct {
	MaxInFlight int `yaml:"max-in-flight" help:"most messages of one campaign queued and not yet sent; bounds how long a pause takes to stop sending (shrunk to one second of sending under a rate limit)"`
	Batch       int `yaml:"batch" help:"recipients queued per transaction"`
}

// PipelineConfig are the sending rules.
type PipelineConfig struct {
	QuietHours      string        `yaml:"quiet-hours" help:"local time of day when messages on quiet-channels wait, in each contact's time zone (UTC when unknown), e.g. 21:00-08:00; empty: none"`
	QuietChannels   []string      `yaml:"quiet-channels" help:"channels quiet hours apply to"`
	FrequencyCap    int           `yaml:"frequency-cap" help:"most campaign, workflow and sequence messages one contact receives per frequency-window; 0: no cap"`
	FrequencyWindow time.Duration `yaml:"frequency-window" help:"window of the frequency cap"`
	TenantRate      int           `yaml:"tenant-rate" help:"messages per second one tenant may send from this instance; 0: unlimited"`
	EmailRate       int           `yaml:"email-rate" help:"messages per second to the email provider from this instance; 0: unlimited"`
	SMSRate         int           `yaml:"sms-rate" help:"messages per second to the SMS provider from this instance; 0: unlimited"`
	WhatsAppRate    int           `yaml:"whatsapp-rate" help:"messages per second to the WhatsApp provider from this instance; 0: unlimited"`
}

// Providers a channel can send through.
const (
	ProviderSandbox = "sandbox"
	ProviderSMTP    = "smtp"
	ProviderTwilio  = "twilio"
	ProviderMeta    = "meta"
)

// EmailConfig is the email channel's provider.
type EmailConfig struct {
	Provider string     `yaml:"provider" help:"where email goes: sandbox (kept for inspection, nothing sent) or smtp"`
	From     string     `yaml:"from" help:"sender address of templates that name none"`
	FromName string     `yaml:"from-name" help:"sender name of templates that name none"`
	SMTP     SMTPConfig `yaml:"smtp"`
	// SendGridWebhookKey verifies SendGrid's signed Event Webhook.
	SendGridWebhookKey string `yaml:"sendgrid-webhook-key" help:"verification key of SendGrid's signed Event Webhook (base64, from SendGrid's mail settings); empty refuses the event webhook"`
	InboundKey         string `yaml:"inbound-key" help:"secret that SendGrid Inbound Parse posts carry as ?key= in their URL; empty refuses inbound email"`
}

// SMTPConfig is an SMTP relay.
type SMTPConfig struct {
	Host     string `yaml:"host" help:"SMTP server host"`
	Port     int    `yaml:"port" help:"SMTP server port: 587 for starttls, 465 for tls"`
	Security string `yaml:"security" help:"starttls, tls or none"`
	Username string `yaml:"username" help:"SMTP user name; empty sends without authentication"`
	Password string `yaml:"password" help:"SMTP password"`
	PoolSize int    `yaml:"pool-size" help:"SMTP connections kept open"`
}

// SMSConfig is the SMS channel's provider.
type SMSConfig struct {
	Provider string       `yaml:"provider" help:"where SMS goes: sandbox or twilio"`
	Twilio   TwilioConfig `yaml:"twilio"`
}

// TwilioConfig is a Twilio account.
type TwilioConfig struct {
	AccountSID string `yaml:"account-sid" help:"Twilio account SID (AC...)"`
	AuthToken  string `yaml:"auth-token" help:"Twilio auth token; also verifies Twilio's webhook signatures"`
	From       string `yaml:"from" help:"sending number (E.164) or messaging service SID (MG...)"`
	BaseURL    string `yaml:"base-url" help:"Twilio API base URL (change only for tests)"`
}

// WhatsAppConfig is the WhatsApp channel's provider.
type WhatsAppConfig struct {
	Provider string     `yaml:"provider" help:"where WhatsApp goes: sandbox or meta"`
	Meta     MetaConfig `yaml:"meta"`
}

// MetaConfig is a WhatsApp Business account on Meta's Cloud API.
type MetaConfig struct {
	PhoneNumberID     string `yaml:"phone-number-id" help:"WhatsApp Business phone number id"`
	BusinessAccountID string `yaml:"business-account-id" help:"WhatsApp Business Account id (digits) that message templates are submitted under for review"`
	AccessToken       string `yaml:"access-token" help:"Cloud API access token (whatsapp_business_messaging and whatsapp_business_management permissions)"`
	APIVersion        string `yaml:"api-version" help:"Graph API version, e.g. v25.0"`
	BaseURL           string `yaml:"base-url" help:"Graph API base URL (change only for tests)"`
	AppSecret         string `yaml:"app-secret" help:"app secret that verifies Meta's webhook signatures"`
	VerifyToken       string `yaml:"verify-token" help:"token Meta echoes when subscribing the webhook"`
}

// TrackingConfig is email open and click tracking and unsubscribe links.
type TrackingConfig struct {
	Secret string `yaml:"secret" help:"key that signs tracking and unsubscribe links; empty: one is generated and kept in the data directory (set the same one on every instance)"`
	Opens  bool   `yaml:"opens" help:"add an open-tracking pixel to email"`
	Clicks bool   `yaml:"clicks" help:"route email links through the click tracker"`
}

// LogConfig says how the process logs.
type LogConfig struct {
	Level  string `yaml:"level" help:"log level: debug, info, warn or error"`
	Format string `yaml:"format" help:"log format: json or text"`
}

// NATSConfig is the bus: the embedded server or an external cluster, and
// the streams' limits.
type NATSConfig struct {
	URL             string        `yaml:"url" help:"NATS server URLs, comma-separated; empty runs the embedded server"`
	ListenAddr      string        `yaml:"listen-addr" help:"loopback address where the embedded server also listens for the nats CLI and other subcommands; off (or empty) turns it off"`
	Replicas        int           `yaml:"replicas" help:"stream replicas: 1 for the embedded server or a single node, 3 in a cluster"`
	MaxAge          time.Duration `yaml:"max-age" help:"how long the event stream keeps events"`
	MaxBytes        ByteSize      `yaml:"max-bytes" help:"size limit of the event stream, e.g. 10GiB"`
	DuplicateWindow time.Duration `yaml:"duplicate-window" help:"window in which ALUM_EVENTS drops a re-published event id as a duplicate"`
	DLQMaxAge       time.Duration `yaml:"dlq-max-age" help:"how long dead-lettered events are kept"`
	Sync            string        `yaml:"sync" help:"embedded server fsync policy: an interval such as 1s, or always"`
}

// ConsumerConfig is how every durable consumer delivers and retries.
type ConsumerConfig struct {
	MaxDeliver      int             `yaml:"max-deliver" help:"deliveries of one event before it is dead-lettered"`
	AckWait         time.Duration   `yaml:"ack-wait" help:"time a handler has before the event is redelivered"`
	Backoff         []time.Duration `yaml:"backoff" help:"comma-separated delays before each retry, e.g. 1s,5s,30s"`
	Concurrency     int             `yaml:"concurrency" help:"events one consumer handles at once"`
	LagPollInterval time.Duration   `yaml:"lag-poll-interval" help:"how often consumer lag is sampled for the consumer_lag metric"`
}

// OutboxConfig is the transactional outbox relay.
type OutboxConfig struct {
	BatchSize  int           `yaml:"batch-size" help:"outbox rows published per batch"`
	Retention  time.Duration `yaml:"retention" help:"how long published rows are kept for republishing after an unclean shutdown"`
	SafetyPoll time.Duration `yaml:"safety-poll" help:"how often the relay looks for rows without being woken"`
}

// EventsConfig limits events.
type EventsConfig struct {
	MaxSize ByteSize `yaml:"max-size" help:"largest encoded event, envelope included"`
}

// SyncAlways is the value of nats.sync that fsyncs every write.
const SyncAlways = "always"

// modules are the module names --modules accepts, in start order.
var modules = []string{
	"contacts", "segments", "templates", "campaigns", "pipeline",
	"webhooks", "workflows", "sequences", "inbox", "analytics",
}

// AllModules returns every module name.
func AllModules() []string { return slices.Clone(modules) }

// Default returns the configuration before any file, variable or flag.
func Default() Config {
	return Config{
		DataDir:         "./data",
		HTTPAddr:        ":8080",
		Modules:         AllModules(),
		ShutdownTimeout: 10 * time.Second,
		Log:             LogConfig{Level: "info", Format: "json"},
		NATS: NATSConfig{
			ListenAddr: "127.0.0.1:4222",
			Replicas:   1,
			MaxAge:     7 * 24 * time.Hour,
			MaxBytes:   10 * GiB,
			// The stream remembers every event id of the window, about
			// 175 bytes each: at 16,000 events/s NATS's own 2 minutes held
			// 330 MB of heap (docs/benchmarks.md, issue 5). Consumers are
			// idempotent, so the window only saves them the relay's quick
			// re-publishes, which come within seconds.
			DuplicateWindow: 30 * time.Second,
			DLQMaxAge:       30 * 24 * time.Hour,
			// NATS's own default is 2 minutes, long enough to lose
			// acknowledged writes on power loss; see DESIGN, Durability.
			Sync: "1s",
		},
		Consumer: ConsumerConfig{
			MaxDeliver:      3,
			AckWait:         30 * time.Second,
			Backoff:         []time.Duration{time.Second, 5 * time.Second, 30 * time.Second},
			Concurrency:     64,
			LagPollInterval: 5 * time.Second,
		},
		Outbox: OutboxConfig{
			BatchSize:  500,
			Retention:  10 * time.Minute,
			SafetyPoll: time.Second,
		},
		Events:    EventsConfig{MaxSize: 1 * MiB},
		PublicURL: "http://localhost:8080",
		Tracking:  TrackingConfig{Opens: true, Clicks: true},
		Email: EmailConfig{Provider: ProviderSandbox, From: "alumni@example.org", FromName: "Alumni Office",
			SMTP: SMTPConfig{Port: 587, Security: "starttls", PoolSize: 4}},
		SMS:       SMSConfig{Provider: ProviderSandbox, Twilio: TwilioConfig{BaseURL: "https://api.twilio.com"}},
		WhatsApp:  WhatsAppConfig{Provider: ProviderSandbox, Meta: MetaConfig{APIVersion: "v25.0", BaseURL: "https://graph.facebook.com"}},
		Pipeline:  PipelineConfig{QuietChannels: []string{"sms", "whatsapp"}, FrequencyWindow: 24 * time.Hour},
		Campaigns: CampaignsConfig{MaxInFlight: 4096, Batch: 500},
		Inbox:     InboxConfig{FirstResponse: 24 * time.Hour, NextResponse: 24 * time.Hour, WarningBefore: 4 * time.Hour},
	}
}

// ModuleEnabled reports whether this instance runs module name.
func (c Config) ModuleEnabled(name string) bool {
	return slices.Contains(c.Modules, name) || slices.Contains(c.Modules, "all")
}

// Embedded reports whether the process runs its own NATS server.
func (n NATSConfig) Embedded() bool { return strings.TrimSpace(n.URL) == "" }

// SyncAlways reports whether the embedded server fsyncs every write.
func (n NATSConfig) SyncAlways() bool {
	return strings.EqualFold(strings.TrimSpace(n.Sync), SyncAlways)
}

// SyncInterval returns the embedded server's fsync interval, or 0 when it
// syncs always (or Sync is invalid, which Validate reports).
func (n NATSConfig) SyncInterval() time.Duration {
	if n.SyncAlways() {
		return 0
	}
	d, err := time.ParseDuration(strings.TrimSpace(n.Sync))
	if err != nil {
		return 0
	}
	return d
}

// SlogLevel returns Level as a slog.Level (info when invalid, which
// Validate reports).
func (l LogConfig) SlogLevel() slog.Level {
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(strings.TrimSpace(l.Level))); err != nil {
		return slog.LevelInfo
	}
	return lv
}

// Handler returns a slog handler writing to w in Format at Level.
func (l LogConfig) Handler(w io.Writer) slog.Handler {
	opts := &slog.HandlerOptions{Level: l.SlogLevel()}
	if strings.EqualFold(strings.TrimSpace(l.Format), "text") {
		return slog.NewTextHandler(w, opts)
	}
	return slog.NewJSONHandler(w, opts)
}

// Redacted returns c with passwords in URLs masked, for logging.
func (c Config) Redacted() Config {
	c.Modules = slices.Clone(c.Modules)
	c.Consumer.Backoff = slices.Clone(c.Consumer.Backoff)
	c.DatabaseURL = redactURL(c.DatabaseURL)
	urls := strings.Split(c.NATS.URL, ",")
	for i, u := range urls {
		urls[i] = redactURL(strings.TrimSpace(u))
	}
	c.NATS.URL = strings.Join(urls, ",")
	for _, secret := range []*string{&c.Tracking.Secret, &c.Email.SMTP.Password, &c.Email.InboundKey, &c.SMS.Twilio.AuthToken,
		&c.WhatsApp.Meta.AccessToken, &c.WhatsApp.Meta.AppSecret, &c.WhatsApp.Meta.VerifyToken} {
		if *secret != "" {
			*secret = "xxxxx"
		}
	}
	return c
}

func redactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.User == nil {
		return raw
	}
	if _, has := u.User.Password(); has {
		u.User = url.UserPassword(u.User.Username(), "xxxxx")
	}
	return u.String()
}

// normalize expands "all" in Modules and drops duplicates, keeping the
// canonical module order so start-up order does not depend on how the list
// was written; and reads "off" in nats.listen-addr.
func (c *Config) normalize() {
	want := map[string]bool{}
	var unknown []string
	for _, m := range c.Modules {
		m = strings.ToLower(strings.TrimSpace(m))
		switch {
		case m == "all":
			for _, k := range modules {
				want[k] = true
			}
		case slices.Contains(modules, m):
			want[m] = true
		case m != "" && !slices.Contains(unknown, m):
			unknown = append(unknown, m) // kept so that Validate names it
		}
	}
	out := []string{}
	for _, m := range modules {
		if want[m] {
			out = append(out, m)
		}
	}
	c.Modules = append(out, unknown...)
	// An empty variable counts as unset, so "off" is how ALUM_NATS_LISTEN_ADDR
	// turns the listener off.
	if strings.EqualFold(strings.TrimSpace(c.NATS.ListenAddr), "off") {
		c.NATS.ListenAddr = ""
	}
}
