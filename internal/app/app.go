package app

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/alumoutreach/alumoutreach/internal/analytics"
	"github.com/alumoutreach/alumoutreach/internal/campaigns"
	"github.com/alumoutreach/alumoutreach/internal/channel/email/sendgrid"
	"github.com/alumoutreach/alumoutreach/internal/channel/email/smtp"
	"github.com/alumoutreach/alumoutreach/internal/channel/sms/twilio"
	"github.com/alumoutreach/alumoutreach/internal/channel/whatsapp/meta"
	"github.com/alumoutreach/alumoutreach/internal/config"
	"github.com/alumoutreach/alumoutreach/internal/contacts"
	"github.com/alumoutreach/alumoutreach/internal/event"
	"github.com/alumoutreach/alumoutreach/internal/inbox"
	"github.com/alumoutreach/alumoutreach/internal/pipeline"
	"github.com/alumoutreach/alumoutreach/internal/platform/bus"
	"github.com/alumoutreach/alumoutreach/internal/platform/dlqapi"
	"github.com/alumoutreach/alumoutreach/internal/platform/httpapi"
	"github.com/alumoutreach/alumoutreach/internal/platform/idempotency"
	"github.com/alumoutreach/alumoutreach/internal/platform/outbox"
	"github.com/alumoutreach/alumoutreach/internal/platform/periodic"
	"github.com/alumoutreach/alumoutreach/internal/platform/store"
	"github.com/alumoutreach/alumoutreach/internal/platform/tenant"
	"github.com/alumoutreach/alumoutreach/internal/segments"
	"github.com/alumoutreach/alumoutreach/internal/sequences"
	"github.com/alumoutreach/alumoutreach/internal/templates"
	"github.com/alumoutreach/alumoutreach/internal/webhooks"
	"github.com/alumoutreach/alumoutreach/internal/workflows"
)

// App is the assembled service.
type App struct {
	cfg      config.Config
	log      *slog.Logger
	registry *prometheus.Registry

	db          *store.DB
	analyticsDB *store.DB
	sandboxDB   *store.DB
	bus         *bus.Bus
	outbox      *outbox.Outbox
	relay       *outbox.Relay
	tenants     *tenant.Service
	http        *httpapi.Server
	ingest      *analytics.Ingest

	campaignRunner   *campaigns.Runner
	campaignTracking *campaigns.Tracking
	timerOptions     []bus.TimerConsumerOptions
	timerConsumers   []*bus.TimerConsumer
	workflows        *workflows.Service
	workflowSweeper  *workflows.Sweeper
	inboxSweeper     *periodic.Task
	sequenceSweeper  *periodic.Task
	contacts         *contacts.Service
	imports          *contacts.Importer
	segments         *segments.Service
	templates        *templates.Service
	pipeline         *pipeline.Service
	sandboxes        []*pipeline.Sandbox
	smtp             *smtp.Sender
	webhooks         *webhooks.Service
	idempotency      *idempotency.Store
	dlqWorker        *bus.Consumer
	consumers        []*bus.Consumer
	pending          []bus.ConsumerOptions
	marker           string
	unclean          bool
	lock             *os.File
	stopChores       context.CancelFunc
	wrap             func(consumer string, h bus.Handler) bus.Handler
}

// Option adjusts how New assembles the app.
type Option func(*App)

// WithHandlerWrapper wraps every consumer's handler, for instrumentation
// such as the benchmarks' latency probes.
func WithHandlerWrapper(wrap func(consumer string, h bus.Handler) bus.Handler) Option {
	return func(a *App) { a.wrap = wrap }
}

// New opens the database and the bus, applies migrations and wires every
// enabled module. Nothing runs until Start.
func New(ctx context.Context, cfg config.Config, log *slog.Logger, opts ...Option) (_ *App, err error) {
	a := &App{cfg: cfg, log: log, registry: prometheus.NewRegistry()}
	for _, o := range opts {
		o(a)
	}
	defer func() {
		if err != nil {
			a.closeResources()
		}
	}()
	a.registry.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))

	if a.lock, err = lockDataDir(cfg.DataDir); err != nil {
		return nil, err
	}
	a.marker = filepath.Join(cfg.DataDir, "RUNNING")
	if _, statErr := os.Stat(a.marker); statErr == nil {
		a.unclean = true // the last run never reached a clean shutdown
	}

	if a.db, err = OpenDB(ctx, cfg); err != nil {
		return nil, err
	}
	if a.bus, err = OpenBus(ctx, cfg, bus.NewMetrics(a.registry), log); err != nil {
		return nil, err
	}
	a.outbox = outbox.New(a.db, int(cfg.Events.MaxSize))
	relayOpts := outbox.RelayOptions{BatchSize: cfg.Outbox.BatchSize, Retention: cfg.Outbox.Retention, SafetyPoll: cfg.Outbox.SafetyPoll}
	if a.unclean && cfg.NATS.Embedded() && !cfg.NATS.SyncAlways() {
		// The embedded server may have lost acknowledged writes it had not
		// synced yet; the outbox still has them.
		relayOpts.RepublishWindow = cfg.Outbox.Retention
	}
	a.relay = outbox.NewRelay(a.outbox, a.bus, relayOpts, log, a.registry)
	a.tenants = tenant.New(a.db, log)
	a.idempotency = idempotency.New(a.db)

	a.http = httpapi.New(httpapi.Options{
		Addr: cfg.HTTPAddr, Logger: log, Auth: a.tenants, Metrics: a.registry, Gatherer: a.registry,
		Ready: a.Ready, Idempotency: a.idempotency,
	})
	dlqapi.New(a.bus).RegisterRoutes(a.http)
	a.http.Handle("GET /api/v1/openapi.json", openAPIHandler())

	a.contacts = contacts.NewService(a.db, a.outbox, log)
	if cfg.ModuleEnabled("contacts") {
		a.imports = contacts.NewImporter(a.contacts, contacts.ImportOptions{SpoolDir: filepath.Join(cfg.DataDir, "imports")}, log)
		contacts.NewHTTP(a.contacts, a.imports).RegisterRoutes(a.http)
	}
	a.segments = segments.NewService(a.db, a.outbox, log)
	if cfg.ModuleEnabled("segments") {
		a.wireSegments()
	}
	a.templates = templates.NewService(a.db, a.outbox, log)
	if cfg.ModuleEnabled("templates") {
		templates.NewHTTP(a.templates, templateContacts{a.contacts}).RegisterRoutes(a.http)
		if err := a.wireTemplateReviews(); err != nil {
			return nil, err
		}
	}
	if cfg.ModuleEnabled("pipeline") {
		if err := a.wirePipeline(ctx); err != nil {
			return nil, err
		}
	}
	if cfg.ModuleEnabled("webhooks") {
		if err := a.wireWebhooks(); err != nil {
			return nil, err
		}
	}
	if cfg.ModuleEnabled("campaigns") {
		if err := a.wireCampaigns(); err != nil {
			return nil, err
		}
	}
	if cfg.ModuleEnabled("workflows") {
		a.wireWorkflows()
	}
	if cfg.ModuleEnabled("inbox") {
		a.wireInbox()
	}
	if cfg.ModuleEnabled("sequences") {
		a.wireSequences()
	}
	if cfg.ModuleEnabled("analytics") {
		if err := a.wireAnalytics(ctx); err != nil {
			return nil, err
		}
	}
	return a, nil
}

// OpenDB opens the configured database and applies the platform's own
// migrations (idempotency records, tenants, the outbox).
func OpenDB(ctx context.Context, cfg config.Config) (*store.DB, error) {
	db, err := store.Open(ctx, store.Options{URL: cfg.DatabaseURL, DataDir: cfg.DataDir})
	if err != nil {
		return nil, err
	}
	for module, fsys := range map[string]fs.FS{
		"platform": store.Migrations(),
		"tenant":   tenant.Migrations(),
		"outbox":   outbox.Migrations(),
		// Module tables exist whatever this instance runs: tools (imports,
		// readers wired across modules) use them.
		contacts.ModuleName:  contacts.Migrations(),
		segments.ModuleName:  segments.Migrations(),
		templates.ModuleName: templates.Migrations(),
		pipeline.ModuleName:  pipeline.Migrations(),
		campaigns.ModuleName: campaigns.Migrations(),
		webhooks.ModuleName:  webhooks.Migrations(),
		workflows.ModuleName: workflows.Migrations(),
		inbox.ModuleName:     inbox.Migrations(),
		sequences.ModuleName: sequences.Migrations(),
	} {
		if err := db.Migrate(ctx, module, fsys); err != nil {
			db.Close()
			return nil, err
		}
	}
	return db, nil
}

// OpenBus connects to the configured NATS (or starts the embedded server).
func OpenBus(ctx context.Context, cfg config.Config, metrics *bus.Metrics, log *slog.Logger) (*bus.Bus, error) {
	return bus.Open(ctx, BusConfig(cfg), metrics, log)
}

// BusConfig maps the configuration onto the bus's settings.
func BusConfig(cfg config.Config) bus.Config {
	return bus.Config{
		URL:             cfg.NATS.URL,
		DataDir:         cfg.DataDir,
		ListenAddr:      cfg.NATS.ListenAddr,
		Replicas:        cfg.NATS.Replicas,
		MaxAge:          cfg.NATS.MaxAge,
		MaxBytes:        int64(cfg.NATS.MaxBytes),
		DLQMaxAge:       cfg.NATS.DLQMaxAge,
		DuplicateWindow: cfg.NATS.DuplicateWindow,
		SyncAlways:      cfg.NATS.SyncAlways(),
		SyncInterval:    cfg.NATS.SyncInterval(),
		MaxEventSize:    int(cfg.Events.MaxSize),
		Name:            "alumoutreach",
	}
}

// wirePipeline sends every channel through its sandbox twin: the real
// providers (SMTP, Twilio, Meta) are wired by configuration once their
// settings exist.
func (a *App) wirePipeline(ctx context.Context) error {
	providers, sandbox, err := a.providers(ctx)
	if err != nil {
		return err
	}
	key, err := trackingKey(a.cfg)
	if err != nil {
		return err
	}
	svc := pipeline.New(pipeline.Deps{DB: a.db, Outbox: a.outbox, Contacts: pipelineContacts{a.contacts},
		Renderer: pipelineTemplates{a.templates}, Providers: providers, Log: a.log,
		Links:   pipeline.NewLinks(a.cfg.PublicURL, key, a.cfg.Tracking.Opens, a.cfg.Tracking.Clicks),
		Consent: consentRevoker{a.contacts}, EmailFrom: a.cfg.Email.From, EmailFromName: a.cfg.Email.FromName,
		StatusCallback: func(tenant, ch string) string {
			if ch != event.ChannelSMS || a.cfg.SMS.Provider != config.ProviderTwilio {
				return ""
			}
			return strings.TrimRight(a.cfg.PublicURL, "/") + "/webhooks/" + tenant + "/twilio/status"
		}})
	if svc.Rules, err = pipelineRules(a.cfg.Pipeline); err != nil {
		return err
	}
	a.pipeline = svc
	h := pipeline.NewHTTP(svc, sandbox)
	h.RegisterRoutes(a.http)
	h.RegisterPublicRoutes(a.http)
	unmatched := prometheus.NewCounter(prometheus.CounterOpts{Name: "pipeline_unmatched_reports_total",
		Help: "Provider reports about no message of ours (unknown externalId)."})
	a.registry.MustRegister(unmatched)
	svc.Unmatched = unmatched
	// The pipeline's handlers mostly wait for their batch: many in flight
	// is what fills the batches (256 gave 3,100 msgs/s, 2,048 4,800).
	a.pending = append(a.pending,
		a.consumerOptions(pipeline.ConsumerName, []string{event.PipelineMessageQueued}, svc.Handle, max(a.cfg.Consumer.Concurrency, 2048)),
		a.consumerOptions(pipeline.WebhookConsumerName, pipeline.WebhookFilters, svc.HandleReport, max(a.cfg.Consumer.Concurrency, 1024)))
	return nil
}

// wireWebhooks mounts the provider webhooks with their verification
// secrets from the channel settings.
func (a *App) wireWebhooks() error {
	secrets := webhooks.Secrets{PublicURL: a.cfg.PublicURL, TwilioAuthToken: a.cfg.SMS.Twilio.AuthToken,
		MetaAppSecret: a.cfg.WhatsApp.Meta.AppSecret, MetaVerifyToken: a.cfg.WhatsApp.Meta.VerifyToken, InboundKey: a.cfg.Email.InboundKey}
	if k := a.cfg.Email.SendGridWebhookKey; k != "" {
		key, err := sendgrid.ParsePublicKey(k)
		if err != nil {
			return fmt.Errorf("email.sendgrid-webhook-key: %w; paste the verification key from SendGrid's Event Webhook settings", err)
		}
		secrets.SendGridKey = key
	}
	a.webhooks = webhooks.New(a.db, a.outbox, a.log, secrets, tenantExists{a.tenants}, a.templates, a.registry)
	a.webhooks.RegisterRoutes(a.http)
	return nil
}

// pipelineRules turns the pipeline settings into its sending rules.
func pipelineRules(c config.PipelineConfig) (pipeline.Rules, error) {
	r := pipeline.Rules{QuietChannels: c.QuietChannels, FrequencyCap: c.FrequencyCap, FrequencyWindow: c.FrequencyWindow,
		TenantRate: float64(c.TenantRate), ChannelRate: map[string]float64{
			event.ChannelEmail: float64(c.EmailRate), event.ChannelSMS: float64(c.SMSRate), event.ChannelWhatsApp: float64(c.WhatsAppRate)}}
	if c.QuietHours != "" {
		q, err := pipeline.ParseQuietHours(c.QuietHours)
		if err != nil {
			return r, fmt.Errorf("pipeline.quiet-hours: %w", err)
		}
		r.Quiet = q
	}
	return r, nil
}

// releaseHeld sends messages held for quiet hours once their window is
// over, checking twice a minute.
func (a *App) releaseHeld(ctx context.Context) {
	t := time.NewTicker(30 * time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if n, err := a.pipeline.ReleaseHeld(ctx); err != nil && ctx.Err() == nil {
			a.log.Warn("release held messages", "err", err)
		} else if n > 0 {
			a.log.Info("released messages held for quiet hours", "messages", n)
		}
	}
}

// providers builds each channel's provider from the configuration; the
// sandbox twins exist whatever the configuration, for the inspection route.
func (a *App) providers(ctx context.Context) (map[string]pipeline.Provider, *pipeline.Sandbox, error) {
	db, err := ownFile(ctx, a.cfg, a.db, SandboxDBFile)
	if err != nil {
		return nil, nil, err
	}
	if db != a.db {
		a.sandboxDB = db
	}
	if err := pipeline.MigrateSandbox(ctx, db); err != nil {
		return nil, nil, err
	}
	providers := map[string]pipeline.Provider{}
	var sandbox *pipeline.Sandbox
	for _, ch := range event.Channels {
		sandbox = pipeline.NewSandbox(db, ch)
		sandbox.DeliverAtOnce()
		providers[ch] = sandbox
		a.sandboxes = append(a.sandboxes, sandbox)
	}
	if c := a.cfg.Email; c.Provider == config.ProviderSMTP {
		p, err := smtp.New(smtp.Config{Host: c.SMTP.Host, Port: c.SMTP.Port, Security: c.SMTP.Security,
			Username: c.SMTP.Username, Password: c.SMTP.Password, PoolSize: c.SMTP.PoolSize})
		if err != nil {
			return nil, nil, fmt.Errorf("email provider: %w", err)
		}
		a.smtp = p
		providers[event.ChannelEmail] = p
	}
	if c := a.cfg.SMS; c.Provider == config.ProviderTwilio {
		p, err := twilio.New(twilio.Config{AccountSID: c.Twilio.AccountSID, AuthToken: c.Twilio.AuthToken, From: c.Twilio.From, BaseURL: c.Twilio.BaseURL})
		if err != nil {
			return nil, nil, fmt.Errorf("sms provider: %w", err)
		}
		providers[event.ChannelSMS] = p
	}
	if c := a.cfg.WhatsApp; c.Provider == config.ProviderMeta {
		p, err := meta.New(meta.Config{PhoneNumberID: c.Meta.PhoneNumberID, AccessToken: c.Meta.AccessToken, APIVersion: c.Meta.APIVersion, BaseURL: c.Meta.BaseURL})
		if err != nil {
			return nil, nil, fmt.Errorf("whatsapp provider: %w", err)
		}
		providers[event.ChannelWhatsApp] = p
	}
	return providers, sandbox, nil
}

// trackingKey is the key that signs tracking and unsubscribe links: the
// configured one, or one generated at first start and kept in the data
// directory (instances sharing a database must share the key: set it).
func trackingKey(cfg config.Config) ([]byte, error) {
	if cfg.Tracking.Secret != "" {
		return []byte(cfg.Tracking.Secret), nil
	}
	path := filepath.Join(cfg.DataDir, "tracking.key")
	if b, err := os.ReadFile(path); err == nil && len(b) >= 32 {
		return b, nil
	}
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		return nil, fmt.Errorf("generate tracking key: %w", err)
	}
	if err := os.WriteFile(path, key, 0o600); err != nil {
		return nil, fmt.Errorf("keep tracking key in %s: %w", path, err)
	}
	return key, nil
}

func (a *App) wireSegments() {
	svc := a.segments
	segments.NewHTTP(svc).RegisterRoutes(a.http)
	a.pending = append(a.pending,
		a.consumerOptions(segments.ContactConsumerName, []string{"contact.>"}, svc.ContactHandler(contactSnapshots{a.contacts}), a.cfg.Consumer.Concurrency),
		a.consumerOptions(segments.DefinitionConsumerName, []string{event.SegmentCreated, event.SegmentUpdated}, svc.DefinitionHandler(), a.cfg.Consumer.Concurrency))
}

// wireTemplateReviews runs TEMPLATES_REVIEW_CONSUMER, which hands each
// submitted WhatsApp template to the configured provider's review: Meta's,
// or the sandbox's, which approves it at once.
func (a *App) wireTemplateReviews() error {
	reviewer, err := templateReviewer(a.cfg.WhatsApp)
	if err != nil {
		return err
	}
	a.pending = append(a.pending, a.consumerOptions(templates.ReviewConsumerName, []string{event.TemplateHSMSubmitted},
		a.templates.ReviewHandler(reviewer), a.cfg.Consumer.Concurrency))
	return nil
}

// wireCampaigns runs the campaigns API, the runner that sends them, their
// tracking and their start timers.
func (a *App) wireCampaigns() error {
	owner, err := instanceID(a.cfg)
	if err != nil {
		return err
	}
	svc := campaigns.NewService(a.db, a.outbox, a.log, campaignAudience{a.segments}, campaignTemplates{a.templates},
		campaignTester{a.pipeline}, a.bus)
	campaigns.NewHTTP(svc).RegisterRoutes(a.http)
	p := a.cfg.Pipeline
	running := prometheus.NewGauge(prometheus.GaugeOpts{Name: "campaigns_running", Help: "Campaigns this instance is sending now."})
	queued := prometheus.NewCounter(prometheus.CounterOpts{Name: "campaign_messages_queued_total",
		Help: "Campaign messages this instance handed to the pipeline."})
	a.registry.MustRegister(running, queued)
	a.campaignRunner = campaigns.NewRunner(svc, campaigns.RunnerConfig{Owner: owner, Running: running, Queued: queued, MaxInFlight: a.cfg.Campaigns.MaxInFlight,
		Batch: a.cfg.Campaigns.Batch, TenantRate: float64(p.TenantRate), ChannelRates: map[string]float64{
			event.ChannelEmail: float64(p.EmailRate), event.ChannelSMS: float64(p.SMSRate), event.ChannelWhatsApp: float64(p.WhatsAppRate)}})
	a.campaignTracking = campaigns.NewTracking(svc)
	a.timerOptions = append(a.timerOptions, bus.TimerConsumerOptions{Name: campaigns.TimerConsumerName, KeyPrefix: campaigns.TimerKeyPrefix,
		Handler: svc.HandleTimer, Backoff: a.cfg.Consumer.Backoff})
	// The tracking handlers wait for their batch, like the pipeline's.
	a.pending = append(a.pending, a.consumerOptions(campaigns.TrackingConsumerName, campaigns.TrackingSubjects,
		a.campaignTracking.Handle, max(a.cfg.Consumer.Concurrency, 1024)))
	return nil
}

// wireWorkflows runs the workflows API, the consumers that start and move
// runs, their timers and the sweep behind the timers.
func (a *App) wireWorkflows() {
	svc := workflows.NewService(a.db, a.outbox, a.log, workflowContacts{a.contacts}, workflowTemplates{a.templates},
		campaignAudience{a.segments}, a.bus, workflows.NewMetrics(a.registry))
	workflows.NewHTTP(svc).RegisterRoutes(a.http)
	a.workflows = svc
	a.workflowSweeper = workflows.NewSweeper(svc, workflows.SweeperConfig{})
	a.timerOptions = append(a.timerOptions, bus.TimerConsumerOptions{Name: workflows.TimerConsumerName, KeyPrefix: workflows.TimerKeyPrefix,
		Handler: svc.HandleTimer, Backoff: a.cfg.Consumer.Backoff, Concurrency: max(a.cfg.Consumer.Concurrency, 64)})
	a.pending = append(a.pending,
		a.consumerOptions(workflows.TriggerConsumerName, workflows.TriggerSubjects, svc.HandleTrigger, a.cfg.Consumer.Concurrency),
		a.consumerOptions(workflows.MessageConsumerName, workflows.MessageSubjects, svc.HandleMessage, a.cfg.Consumer.Concurrency))
}

// wireInbox keeps the inbox's threads from the providers' inbound
// messages, their response deadlines on durable timers, and its API.
func (a *App) wireInbox() {
	c := a.cfg.Inbox
	svc := inbox.NewService(a.db, a.outbox, a.log, inboxContacts{a.contacts}, inboxSent{a.pipeline}, inbox.NewMetrics(a.registry),
		inbox.SLA{FirstResponse: c.FirstResponse, NextResponse: c.NextResponse, WarningBefore: c.WarningBefore}, a.bus)
	inbox.NewHTTP(svc).RegisterRoutes(a.http)
	a.pending = append(a.pending, a.consumerOptions(inbox.WebhookConsumerName, inbox.WebhookFilters, svc.HandleInbound, a.cfg.Consumer.Concurrency))
	a.timerOptions = append(a.timerOptions, bus.TimerConsumerOptions{Name: inbox.TimerConsumerName, KeyPrefix: inbox.TimerKeyPrefix,
		Handler: svc.HandleTimer, Backoff: a.cfg.Consumer.Backoff})
	a.inboxSweeper = periodic.New(10*time.Second, svc.SweepNow)
}

// wireSequences runs the sequences API, their steps on durable timers and
// their exit on reply.
func (a *App) wireSequences() {
	svc := sequences.NewService(a.db, a.outbox, a.log, sequenceTemplates{a.templates}, sequenceContacts{a.contacts}, a.bus)
	sequences.NewHTTP(svc).RegisterRoutes(a.http)
	a.pending = append(a.pending,
		a.consumerOptions(sequences.ReplyConsumerName, sequences.ReplySubjects, svc.HandleReply, a.cfg.Consumer.Concurrency),
		a.consumerOptions(sequences.StopConsumerName, sequences.StopSubjects, svc.HandleStop, a.cfg.Consumer.Concurrency))
	a.timerOptions = append(a.timerOptions, bus.TimerConsumerOptions{Name: sequences.TimerConsumerName, KeyPrefix: sequences.TimerKeyPrefix,
		Handler: svc.HandleTimer, Backoff: a.cfg.Consumer.Backoff})
	a.sequenceSweeper = periodic.New(10*time.Second, svc.SweepNow)
}

// instanceID names this instance in leases, kept in the data directory:
// after a crash the restarted process recognises the leases it held and
// resumes at once, instead of waiting for them to expire. Instances never
// share a data directory (it is locked), so the id is theirs alone.
func instanceID(cfg config.Config) (string, error) {
	path := filepath.Join(cfg.DataDir, "instance.id")
	if b, err := os.ReadFile(path); err == nil && len(strings.TrimSpace(string(b))) > 0 {
		return strings.TrimSpace(string(b)), nil
	}
	id := event.NewID()
	if err := os.WriteFile(path, []byte(id+"\n"), 0o640); err != nil {
		return "", fmt.Errorf("keep the instance id in %s: %w", path, err)
	}
	return id, nil
}

func (a *App) wireAnalytics(ctx context.Context) error {
	adb, err := analyticsDB(ctx, a.cfg, a.db)
	if err != nil {
		return err
	}
	if adb != a.db {
		a.analyticsDB = adb
	}
	if err := analytics.Migrate(ctx, adb); err != nil {
		return err
	}
	st := analytics.NewSQLStore(adb)
	a.ingest = analytics.NewIngest(st, a.log, analytics.IngestOptions{})
	analytics.NewHTTP(st, time.Now).RegisterRoutes(a.http)
	a.pending = append(a.pending, a.consumerOptions(analytics.ConsumerName, nil, a.ingest.Handle,
		max(a.cfg.Consumer.Concurrency, 256)))
	return nil
}

// consumerOptions applies the configured delivery settings to one consumer.
func (a *App) consumerOptions(name string, filters []string, h bus.Handler, concurrency int) bus.ConsumerOptions {
	if a.wrap != nil {
		h = a.wrap(name, h)
	}
	return bus.ConsumerOptions{
		Name: name, Filters: filters, Concurrency: concurrency, Handler: h,
		MaxDeliver: a.cfg.Consumer.MaxDeliver, AckWait: a.cfg.Consumer.AckWait,
		Backoff: a.cfg.Consumer.Backoff, LagPollInterval: a.cfg.Consumer.LagPollInterval,
	}
}

// Start runs the relay, the consumers and the HTTP server.
func (a *App) Start(ctx context.Context) error {
	if err := os.WriteFile(a.marker, []byte(fmt.Sprintf("pid %d\n", os.Getpid())), 0o640); err != nil {
		return fmt.Errorf("write %s: %w", a.marker, err)
	}
	if err := a.relay.Start(ctx); err != nil {
		return err
	}
	if a.ingest != nil {
		if err := a.ingest.Start(ctx); err != nil {
			return err
		}
	}
	if a.pipeline != nil {
		if err := a.pipeline.Start(ctx); err != nil {
			return err
		}
	}
	for _, sb := range a.sandboxes {
		if err := sb.Start(ctx); err != nil {
			return err
		}
	}
	if a.campaignTracking != nil {
		if err := a.campaignTracking.Start(ctx); err != nil {
			return err
		}
	}
	if a.workflows != nil {
		if err := a.workflows.Start(ctx); err != nil {
			return err
		}
	}
	w, err := a.bus.StartDLQWorker(ctx)
	if err != nil {
		return err
	}
	a.dlqWorker = w
	for _, o := range a.pending {
		c, err := a.bus.StartConsumer(ctx, o)
		if err != nil {
			return err
		}
		a.consumers = append(a.consumers, c)
		a.log.Info("consumer started", "consumer", o.Name, "filters", strings.Join(o.Filters, ","), "concurrency", o.Concurrency)
	}
	if a.imports != nil {
		if err := a.imports.Resume(ctx); err != nil {
			return err
		}
	}
	for _, o := range a.timerOptions {
		tc, err := a.bus.StartTimerConsumer(ctx, o)
		if err != nil {
			return err
		}
		a.timerConsumers = append(a.timerConsumers, tc)
	}
	if a.campaignRunner != nil {
		a.campaignRunner.Start(ctx)
	}
	if a.workflowSweeper != nil {
		a.workflowSweeper.Start(ctx)
	}
	if a.inboxSweeper != nil {
		a.inboxSweeper.Start(ctx)
	}
	if a.sequenceSweeper != nil {
		a.sequenceSweeper.Start(ctx)
	}
	if err := a.http.Start(ctx); err != nil {
		return err
	}
	choresCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	a.stopChores = cancel
	go a.pruneProcessed(choresCtx)
	if a.segments != nil {
		go a.refreshSegments(choresCtx)
	}
	if a.pipeline != nil {
		go a.releaseHeld(choresCtx)
	}
	a.log.Info("alumoutreach started", "http", a.http.Addr(), "database", a.db.Redacted(),
		"nats", natsDisplay(a.cfg), "dataDir", a.cfg.DataDir, "uncleanRestart", a.unclean)
	return nil
}

func natsDisplay(cfg config.Config) string {
	if cfg.NATS.Embedded() {
		if cfg.NATS.ListenAddr != "" {
			return "embedded, listening on nats://" + cfg.NATS.ListenAddr
		}
		return "embedded"
	}
	return cfg.Redacted().NATS.URL
}

// Shutdown stops in the order that loses nothing: no new requests, then
// consumers drained (their handlers may still emit events), then the
// outbox flushed to the bus, then the bus and databases closed.
func (a *App) Shutdown(ctx context.Context) error {
	if a.stopChores != nil {
		a.stopChores()
	}
	var errs []error
	if err := a.http.Shutdown(ctx); err != nil {
		errs = append(errs, fmt.Errorf("http: %w", err))
	}
	if a.imports != nil {
		a.imports.Stop() // a running import commits its batch and resumes at the next start
	}
	if a.campaignRunner != nil {
		a.campaignRunner.Stop() // each campaign resumes at its cursor at the next start
	}
	if a.workflowSweeper != nil {
		a.workflowSweeper.Stop()
	}
	if a.inboxSweeper != nil {
		a.inboxSweeper.Stop()
	}
	if a.sequenceSweeper != nil {
		a.sequenceSweeper.Stop()
	}
	for _, tc := range a.timerConsumers {
		tc.Stop() // an unacknowledged timer fires again at the next start
	}
	// Consumers drain side by side: each waits for its pull in flight.
	// Bounded on their own, so that with the bus unreachable they do not
	// use up the time the outbox flush below needs.
	stopping := a.consumers
	if a.dlqWorker != nil {
		stopping = append(stopping[:len(stopping):len(stopping)], a.dlqWorker)
	}
	cctx, cancel := context.WithTimeout(ctx, max(a.cfg.ShutdownTimeout/2, time.Second))
	stopErrs := make([]error, len(stopping))
	var wg sync.WaitGroup
	for i, c := range stopping {
		wg.Add(1)
		go func() {
			defer wg.Done()
			stopErrs[i] = c.Stop(cctx)
		}()
	}
	wg.Wait()
	cancel()
	errs = append(errs, stopErrs...)
	if a.ingest != nil {
		a.ingest.Stop()
	}
	if a.campaignTracking != nil {
		a.campaignTracking.Stop()
	}
	if a.workflows != nil {
		a.workflows.Stop() // after the consumers, timers and sweep that move runs
	}
	if a.pipeline != nil {
		a.pipeline.Stop()
	}
	for _, sb := range a.sandboxes {
		sb.Stop()
	}
	if a.smtp != nil {
		_ = a.smtp.Close()
	}
	if err := a.relay.Stop(ctx); err != nil {
		errs = append(errs, err)
	}
	a.closeResources()
	err := errors.Join(errs...)
	if err == nil {
		_ = os.Remove(a.marker)
		a.log.Info("alumoutreach stopped cleanly")
	}
	return err
}

// pruneProcessed deletes idempotency records no redelivery can need any
// more: older than the event stream keeps events, plus a day of margin.
// refreshSegments re-evaluates, hourly, the segments whose rules read the
// clock (within_last): their members change with time alone. Every
// instance does it; evaluations are idempotent, so several only cost time.
func (a *App) refreshSegments(ctx context.Context) {
	t := time.NewTicker(time.Hour)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if n, err := a.segments.EvaluateTimeDependent(ctx); err != nil && ctx.Err() == nil {
			a.log.Warn("re-evaluate time-dependent segments", "err", err)
		} else if n > 0 {
			a.log.Info("re-evaluated time-dependent segments", "segments", n)
		}
	}
}

// idempotencyKeyRetention is how long a request's answer is replayed to
// retries with its Idempotency-Key: a day, as payment APIs that introduced
// the header do.
const idempotencyKeyRetention = 24 * time.Hour

func (a *App) pruneProcessed(ctx context.Context) {
	keep := a.cfg.NATS.MaxAge + 24*time.Hour
	t := time.NewTicker(time.Hour)
	defer t.Stop()
	for {
		if n, err := store.PruneProcessed(ctx, a.db, keep); err != nil && ctx.Err() == nil {
			a.log.Warn("prune idempotency records", "err", err)
		} else if n > 0 {
			a.log.Info("pruned idempotency records", "records", n)
		}
		if a.webhooks != nil {
			// Providers retry for up to three days (SendGrid); a week covers them.
			if _, err := a.webhooks.Prune(ctx, 7*24*time.Hour); err != nil && ctx.Err() == nil {
				a.log.Warn("prune webhook receipts", "err", err)
			}
		}
		if n, err := a.idempotency.Prune(ctx, idempotencyKeyRetention); err != nil && ctx.Err() == nil {
			a.log.Warn("prune idempotency keys", "err", err)
		} else if n > 0 {
			a.log.Info("pruned idempotency keys", "keys", n)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func (a *App) closeResources() {
	if a.bus != nil {
		a.bus.Close()
	}
	if a.analyticsDB != nil {
		a.analyticsDB.Close()
	}
	if a.sandboxDB != nil {
		a.sandboxDB.Close()
	}
	if a.db != nil {
		a.db.Close()
	}
	if a.lock != nil {
		a.lock.Close() // releases the lock
	}
}

// Ready reports whether the database and the bus can take work.
func (a *App) Ready(ctx context.Context) error {
	if err := a.db.Ping(ctx); err != nil {
		return fmt.Errorf("database: %w", err)
	}
	if err := a.bus.Ready(ctx); err != nil {
		return fmt.Errorf("bus: %w", err)
	}
	return nil
}

// Run starts the app and stops it when ctx ends, within the configured
// shutdown timeout.
func (a *App) Run(ctx context.Context) error {
	if err := a.Start(ctx); err != nil {
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), a.cfg.ShutdownTimeout)
		defer cancel()
		return errors.Join(err, a.Shutdown(sctx))
	}
	select {
	case <-ctx.Done():
	case err := <-a.http.Done():
		if err != nil {
			a.log.Error("http server failed", "err", err)
		}
	}
	a.log.Info("shutting down", "timeout", a.cfg.ShutdownTimeout.String())
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), a.cfg.ShutdownTimeout)
	defer cancel()
	return a.Shutdown(sctx)
}

// HTTPAddr is the address the HTTP server listens on (after Start).
func (a *App) HTTPAddr() string { return a.http.Addr() }

// Outbox is where state changes and their events are written.
func (a *App) Outbox() *outbox.Outbox { return a.outbox }

// DB is the main database.
func (a *App) DB() *store.DB { return a.db }

// Bus is the event bus.
func (a *App) Bus() *bus.Bus { return a.bus }

// Tenants manages tenants and API keys.
func (a *App) Tenants() *tenant.Service { return a.tenants }

// Registry is the Prometheus registry /metrics serves.
func (a *App) Registry() *prometheus.Registry { return a.registry }

// Migrate applies every migration (platform, outbox, modules) and returns
// the open main database.
func Migrate(ctx context.Context, cfg config.Config) (*store.DB, error) {
	db, err := OpenDB(ctx, cfg)
	if err != nil {
		return nil, err
	}
	adb, err := analyticsDB(ctx, cfg, db)
	if err != nil {
		db.Close()
		return nil, err
	}
	if adb != db {
		defer adb.Close()
	}
	if err := analytics.Migrate(ctx, adb); err != nil {
		db.Close()
		return nil, err
	}
	return db, nil
}

// analyticsDB is the analytics store's database: a file of its own next to
// SQLite (ingestion then never queues behind the main database's single
// writer), the main database on PostgreSQL.
func analyticsDB(ctx context.Context, cfg config.Config, main *store.DB) (*store.DB, error) {
	return ownFile(ctx, cfg, main, "analytics.db")
}

// SandboxDBFile is the sandbox providers' database file in embedded mode:
// storing every message body would otherwise take the main database's
// single writer from the pipeline.
const SandboxDBFile = "sandbox.db"

// ownFile opens a SQLite database file of its own in the data directory
// next to a SQLite main database; on PostgreSQL it is main.
func ownFile(ctx context.Context, cfg config.Config, main *store.DB, name string) (*store.DB, error) {
	if main.Kind() != store.SQLite {
		return main, nil
	}
	return store.Open(ctx, store.Options{DataDir: cfg.DataDir, FileName: name})
}

// OpenToolBus connects a command-line tool to the bus: the configured
// cluster; else the running embedded server on its loopback listener; else,
// when no server runs, an embedded server on the data directory itself.
func OpenToolBus(ctx context.Context, cfg config.Config, log *slog.Logger) (*ToolBus, error) {
	if cfg.NATS.Embedded() && cfg.NATS.ListenAddr != "" {
		probe, err := nats.Connect("nats://"+cfg.NATS.ListenAddr, nats.Timeout(time.Second), nats.MaxReconnects(0))
		if err == nil {
			probe.Close()
			cfg.NATS.URL = "nats://" + cfg.NATS.ListenAddr
		}
	}
	cfg.NATS.ListenAddr = ""
	if !cfg.NATS.Embedded() {
		b, err := OpenBus(ctx, cfg, bus.NewMetrics(nil), log)
		if err != nil {
			return nil, err
		}
		return &ToolBus{Bus: b}, nil
	}
	// A second server on the same store would corrupt it (NATS does not
	// lock its store), so the tool takes the data directory's lock too.
	lock, err := lockDataDir(cfg.DataDir)
	if err != nil {
		return nil, fmt.Errorf("%w; if it is 'alumoutreach serve', point --nats-listen-addr (ALUM_NATS_LISTEN_ADDR) at its NATS listener", err)
	}
	b, err := OpenBus(ctx, cfg, bus.NewMetrics(nil), log)
	if err != nil {
		lock.Close()
		return nil, err
	}
	return &ToolBus{Bus: b, lock: lock}, nil
}

// ToolBus is a bus opened by a command-line tool; Close also releases the
// data directory when the tool ran the embedded server itself.
type ToolBus struct {
	*bus.Bus
	lock *os.File
}

// Close closes the bus and releases the data directory.
func (t *ToolBus) Close() {
	t.Bus.Close()
	if t.lock != nil {
		t.lock.Close()
	}
}

// lockDataDir takes an exclusive lock on dir for as long as the returned
// file stays open. The kernel drops it when the process dies, however it
// dies, so a crash never leaves the directory locked.
func lockDataDir(dir string) (*os.File, error) {
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, fmt.Errorf("create data directory %s: %w", dir, err)
	}
	f, err := os.OpenFile(filepath.Join(dir, "LOCK"), os.O_CREATE|os.O_RDWR, 0o640)
	if err != nil {
		return nil, fmt.Errorf("open lock of data directory %s: %w", dir, err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		return nil, fmt.Errorf("data directory %s is in use by another alumoutreach process; stop it or choose another --data-dir", dir)
	}
	return f, nil
}

// ContactImporter returns an importer over db for the command line: it
// writes contacts and their events to the outbox, which the serving
// process's relay publishes (at once, or when it next starts).
func ContactImporter(db *store.DB, cfg config.Config, log *slog.Logger) *contacts.Importer {
	svc := contacts.NewService(db, outbox.New(db, int(cfg.Events.MaxSize)), log)
	return contacts.NewImporter(svc, contacts.ImportOptions{SpoolDir: filepath.Join(cfg.DataDir, "imports")}, log)
}
