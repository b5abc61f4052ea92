package config

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
)

// maxEventSize keeps an event, its dead-letter wrapper and headers under the
// embedded server's 8 MiB message limit; a cluster's max_payload must be at
// least events.max-size plus 64 KiB.
const maxEventSize = 4 * MiB

// Validate checks c and returns every problem joined, each naming the
// setting and saying what to write instead.
func (c Config) Validate() error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }

	if strings.TrimSpace(c.DataDir) == "" {
		bad("data-dir is empty; name a directory such as ./data")
	}
	if err := checkHostPort(c.HTTPAddr); err != nil {
		bad("http-addr %q: %v; use host:port such as :8080 or 127.0.0.1:8080", c.HTTPAddr, err)
	}
	if u := strings.TrimSpace(c.DatabaseURL); u != "" && !hasAnyPrefix(u, "postgres://", "postgresql://", "sqlite:") {
		bad("database-url %q: use postgres://user:pass@host:5432/db, sqlite:/path/to/file.db, or leave it empty for SQLite in the data directory", redactURL(u))
	}
	if u, err := url.Parse(c.PublicURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" {
		bad("public-url %q: use the absolute address recipients reach this server at, such as https://alumni.example.edu", c.PublicURL)
	}
	c.validateProviders(bad)
	if q := strings.TrimSpace(c.Pipeline.QuietHours); q != "" && !quietHoursPattern.MatchString(q) {
		bad("pipeline.quiet-hours %q: write the local window as HH:MM-HH:MM, e.g. 21:00-08:00, or leave it empty", q)
	}
	for _, ch := range c.Pipeline.QuietChannels {
		if ch != "email" && ch != "sms" && ch != "whatsapp" {
			bad("pipeline.quiet-channels: %q is not a channel; use email, sms, whatsapp", ch)
		}
	}
	if c.Pipeline.FrequencyCap < 0 || c.Pipeline.FrequencyWindow <= 0 {
		bad("pipeline.frequency-cap must be 0 or more and pipeline.frequency-window positive, e.g. 3 and 24h")
	}
	for name, r := range map[string]int{"tenant-rate": c.Pipeline.TenantRate, "email-rate": c.Pipeline.EmailRate, "sms-rate": c.Pipeline.SMSRate, "whatsapp-rate": c.Pipeline.WhatsAppRate} {
		if r < 0 {
			bad("pipeline.%s %d: use messages per second, or 0 for no limit", name, r)
		}
	}
	if c.Campaigns.MaxInFlight < 1 || c.Campaigns.Batch < 1 || c.Campaigns.Batch > 5000 {
		bad("campaigns.max-in-flight must be 1 or more and campaigns.batch 1 to 5000, e.g. 4096 and 500")
	}
	for name, d := range map[string]time.Duration{"first-response": c.Inbox.FirstResponse, "next-response": c.Inbox.NextResponse, "warning-before": c.Inbox.WarningBefore} {
		if d < 0 {
			bad("inbox.%s %s must not be negative; 0 turns it off", name, formatDuration(d))
		}
	}
	for name, d := range map[string]time.Duration{"first-response": c.Inbox.FirstResponse, "next-response": c.Inbox.NextResponse} {
		if d > 0 && c.Inbox.WarningBefore >= d {
			bad("inbox.warning-before %s must be shorter than inbox.%s %s, or the warning would come before the message", formatDuration(c.Inbox.WarningBefore), name, formatDuration(d))
		}
	}
	if len(c.Modules) == 0 {
		bad("modules is empty; name at least one of %s, or all", strings.Join(modules, ", "))
	}
	for _, m := range c.Modules {
		if m != "all" && !slices.Contains(modules, m) {
			bad("modules: %q is not a module; choose from %s, or all", m, strings.Join(modules, ", "))
		}
	}
	if c.ShutdownTimeout <= 0 {
		bad("shutdown-timeout %s must be positive, such as 10s", formatDuration(c.ShutdownTimeout))
	}

	if _, ok := logLevels[strings.ToLower(strings.TrimSpace(c.Log.Level))]; !ok {
		bad("log.level %q: use debug, info, warn or error", c.Log.Level)
	}
	if f := strings.ToLower(strings.TrimSpace(c.Log.Format)); f != "json" && f != "text" {
		bad("log.format %q: use json or text", c.Log.Format)
	}

	errs = append(errs, c.NATS.validate()...)
	errs = append(errs, c.Consumer.validate()...)

	if c.Outbox.BatchSize < 1 || c.Outbox.BatchSize > 10000 {
		bad("outbox.batch-size %d: use 1 to 10000 (default 500)", c.Outbox.BatchSize)
	}
	if c.Outbox.Retention <= 0 {
		bad("outbox.retention %s must be positive, such as 10m", formatDuration(c.Outbox.Retention))
	} else if iv := c.NATS.SyncInterval(); c.NATS.Embedded() && iv > 0 && c.Outbox.Retention <= iv {
		// Published rows are what gets republished after an unclean
		// shutdown; they must outlive the window of writes NATS may lose.
		bad("outbox.retention %s must be longer than nats.sync %s, so events not yet on disk in NATS can be republished after a crash; raise it or lower nats.sync",
			formatDuration(c.Outbox.Retention), formatDuration(iv))
	}
	if c.Outbox.SafetyPoll <= 0 {
		bad("outbox.safety-poll %s must be positive, such as 1s", formatDuration(c.Outbox.SafetyPoll))
	}

	if c.Events.MaxSize <= 0 || c.Events.MaxSize > maxEventSize {
		bad("events.max-size %s: use a size from 1KiB to %s (default 1MiB; the dead-letter copy of an event must still fit a NATS message)", c.Events.MaxSize, ByteSize(maxEventSize))
	}
	return errors.Join(errs...)
}

var logLevels = map[string]bool{"debug": true, "info": true, "warn": true, "error": true}

func (n NATSConfig) validate() []error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }

	for _, raw := range strings.Split(n.URL, ",") {
		raw = strings.TrimSpace(raw)
		if raw == "" {
			continue
		}
		if !validNATSURL(raw) {
			bad("nats.url %q: use nats://host:4222 (several separated by commas), or leave it empty to run the embedded server", redactURL(raw))
		}
	}
	if n.ListenAddr != "" {
		if err := checkHostPort(n.ListenAddr); err != nil {
			bad("nats.listen-addr %q: %v; use host:port such as 127.0.0.1:4222, or empty to turn the listener off", n.ListenAddr, err)
		}
	}
	switch {
	case n.Replicas < 1 || n.Replicas > 5:
		bad("nats.replicas %d: use 1 (embedded server or one node) up to 5; 3 is usual for a cluster", n.Replicas)
	case n.Embedded() && n.Replicas != 1:
		bad("nats.replicas %d needs a NATS cluster; the embedded server (nats.url empty) has one node, so use 1 or set nats.url", n.Replicas)
	}
	if n.MaxAge <= 0 {
		bad("nats.max-age %s must be positive, such as 168h (7 days)", formatDuration(n.MaxAge))
	}
	if n.MaxBytes <= 0 {
		bad("nats.max-bytes %s must be positive, such as 10GiB", n.MaxBytes)
	}
	if n.DuplicateWindow <= 0 {
		bad("nats.duplicate-window %s must be positive, such as 30s", formatDuration(n.DuplicateWindow))
	} else if n.MaxAge > 0 && n.DuplicateWindow > n.MaxAge {
		bad("nats.duplicate-window %s is longer than nats.max-age %s; JetStream refuses that, so shorten it", formatDuration(n.DuplicateWindow), formatDuration(n.MaxAge))
	}
	if n.DLQMaxAge <= 0 {
		bad("nats.dlq-max-age %s must be positive, such as 720h (30 days)", formatDuration(n.DLQMaxAge))
	}
	if !n.SyncAlways() {
		if d, err := time.ParseDuration(strings.TrimSpace(n.Sync)); err != nil || d <= 0 {
			bad("nats.sync %q: use a positive interval such as 1s, or always to fsync every write", n.Sync)
		}
	}
	return errs
}

func (c ConsumerConfig) validate() []error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }

	if c.MaxDeliver < 1 {
		bad("consumer.max-deliver %d must be at least 1 (default 3)", c.MaxDeliver)
	}
	if c.AckWait <= 0 {
		bad("consumer.ack-wait %s must be positive, such as 30s", formatDuration(c.AckWait))
	}
	for i, d := range c.Backoff {
		if d <= 0 {
			bad("consumer.backoff[%d] %s must be positive; write delays such as 1s,5s,30s", i, formatDuration(d))
		}
	}
	if c.MaxDeliver > 1 && len(c.Backoff) < c.MaxDeliver-1 {
		bad("consumer.backoff gives %d delay(s) but consumer.max-deliver %d needs at least %d, one before each retry; write them such as 1s,5s,30s",
			len(c.Backoff), c.MaxDeliver, c.MaxDeliver-1)
	}
	if c.Concurrency < 1 {
		bad("consumer.concurrency %d must be at least 1 (default 64)", c.Concurrency)
	}
	if c.LagPollInterval <= 0 {
		bad("consumer.lag-poll-interval %s must be positive, such as 5s", formatDuration(c.LagPollInterval))
	}
	return errs
}

func checkHostPort(addr string) error {
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		return errors.New("not host:port")
	}
	if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
		return fmt.Errorf("port %q is not a number from 0 to 65535", port)
	}
	return nil
}

func validNATSURL(raw string) bool {
	if !strings.Contains(raw, "://") {
		// The client accepts host:port and adds nats://.
		return checkHostPort(raw) == nil
	}
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return false
	}
	switch u.Scheme {
	case "nats", "tls", "ws", "wss":
		return true
	}
	return false
}

func hasAnyPrefix(s string, prefixes ...string) bool {
	for _, p := range prefixes {
		if strings.HasPrefix(s, p) {
			return true
		}
	}
	return false
}

// validateProviders checks that each channel's provider is known and has
// what it needs to send.
func (c Config) validateProviders(bad func(string, ...any)) {
	need := func(key, value, what string) {
		if strings.TrimSpace(value) == "" {
			bad("%s is empty; %s", key, what)
		}
	}
	switch c.Email.Provider {
	case ProviderSandbox:
	case ProviderSMTP:
		need("email.smtp.host", c.Email.SMTP.Host, "name the SMTP server, or use email.provider sandbox")
		if c.Email.SMTP.Port < 1 || c.Email.SMTP.Port > 65535 {
			bad("email.smtp.port %d: use the server's port, such as 587 or 465", c.Email.SMTP.Port)
		}
		if !slices.Contains([]string{"starttls", "tls", "none"}, c.Email.SMTP.Security) {
			bad("email.smtp.security %q: use starttls, tls or none", c.Email.SMTP.Security)
		}
	default:
		bad("email.provider %q: use sandbox or smtp", c.Email.Provider)
	}
	switch c.SMS.Provider {
	case ProviderSandbox:
	case ProviderTwilio:
		need("sms.twilio.account-sid", c.SMS.Twilio.AccountSID, "copy it from the Twilio console")
		need("sms.twilio.auth-token", c.SMS.Twilio.AuthToken, "copy it from the Twilio console")
		need("sms.twilio.from", c.SMS.Twilio.From, "give the sending number (+E.164) or a messaging service SID (MG...)")
	default:
		bad("sms.provider %q: use sandbox or twilio", c.SMS.Provider)
	}
	switch c.WhatsApp.Provider {
	case ProviderSandbox:
	case ProviderMeta:
		need("whatsapp.meta.phone-number-id", c.WhatsApp.Meta.PhoneNumberID, "copy it from the WhatsApp Manager")
		need("whatsapp.meta.business-account-id", c.WhatsApp.Meta.BusinessAccountID,
			"copy the WhatsApp Business Account ID from WhatsApp Manager (or the App Dashboard's WhatsApp > API Setup); templates are submitted for review under it")
		if id := strings.TrimSpace(c.WhatsApp.Meta.BusinessAccountID); id != "" && strings.Trim(id, "0123456789") != "" {
			bad("whatsapp.meta.business-account-id %q: a WhatsApp Business Account ID is all digits, such as 102290129340398", id)
		}
		need("whatsapp.meta.access-token", c.WhatsApp.Meta.AccessToken, "create a system user token in Meta Business settings")
	default:
		bad("whatsapp.provider %q: use sandbox or meta", c.WhatsApp.Provider)
	}
}

var quietHoursPattern = regexp.MustCompile(`^([01]\d|2[0-3]):[0-5]\d-([01]\d|2[0-3]):[0-5]\d$`)
