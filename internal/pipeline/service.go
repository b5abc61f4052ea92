package pipeline

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/alumoutreach/alumoutreach/internal/channel"
	"github.com/alumoutreach/alumoutreach/internal/event"
	"github.com/alumoutreach/alumoutreach/internal/platform/bus"
	"github.com/alumoutreach/alumoutreach/internal/platform/fault"
	"github.com/alumoutreach/alumoutreach/internal/platform/groupcommit"
	"github.com/alumoutreach/alumoutreach/internal/platform/outbox"
	"github.com/alumoutreach/alumoutreach/internal/platform/store"
)

// Deps are what the pipeline works with.
type Deps struct {
	DB       *store.DB
	Outbox   *outbox.Outbox
	Contacts ContactSource
	Renderer Renderer
	// Providers sends each channel's messages, by channel name.
	Providers map[string]Provider
	// Links signs unsubscribe and tracking links; nil leaves
	// {{unsubscribeUrl}} empty and email untracked.
	Links *Links
	// Consent revokes email consent when a recipient unsubscribes.
	Consent ConsentRevoker
	// EmailFrom and EmailFromName send email whose template names no sender.
	EmailFrom, EmailFromName string
	// StatusCallback returns the URL a provider that takes one per message
	// (Twilio) reports delivery to; nil sends none.
	StatusCallback func(tenant, channel string) string
	// Unmatched counts provider reports about no message of ours (nil: not counted).
	Unmatched interface{ Inc() }
	// Rules are quiet hours, the frequency cap and rate limits.
	Rules Rules
	Log   *slog.Logger
}

// Service queues and sends messages.
type Service struct {
	Deps
	now func() time.Time
	// progressEvery is how often a long provider call tells the bus the
	// message is still being worked on, with progress.
	progressEvery time.Duration
	progress      func(context.Context) error
	reads         *groupcommit.Batcher[*job]
	reports       *groupcommit.Batcher[*reportJob]
	claims        *groupcommit.Batcher[*job]
	records       *groupcommit.Batcher[*job]
	limits        limiters

	// byID is prepared once: provider reports look their message up one
	// at a time, thousands a second, and preparing the query each time
	// cost more than running it.
	byIDOnce sync.Once
	byID     *sql.Stmt
	byIDErr  error
}

// maxBatch bounds the messages one claim or record transaction carries.
const maxBatch = 512

// New returns the pipeline over deps. Start it before its consumer
// delivers, and Stop it after.
func New(deps Deps) *Service {
	s := &Service{Deps: deps, now: time.Now, progressEvery: 10 * time.Second, progress: bus.Progress}
	s.reads = groupcommit.New(maxBatch, s.readBatch)
	s.reports = groupcommit.New(maxBatch, s.applyReports)
	s.claims = groupcommit.New(maxBatch, s.claimBatch)
	s.records = groupcommit.New(maxBatch, s.recordBatch)
	return s
}

// Start runs the batch loops.
func (s *Service) Start(ctx context.Context) error {
	if err := s.reads.Start(ctx); err != nil {
		return err
	}
	if err := s.reports.Start(ctx); err != nil {
		return err
	}
	if err := s.claims.Start(ctx); err != nil {
		return err
	}
	return s.records.Start(ctx)
}

// Stop finishes the batches in flight; call it once the consumer stopped.
func (s *Service) Stop() {
	s.reads.Stop()
	s.reports.Stop()
	s.claims.Stop()
	s.records.Stop()
	if s.byID != nil {
		s.byID.Close()
	}
}

// readByID reads one message for a provider report.
func (s *Service) readByID(ctx context.Context, tenant, id string) (*Message, error) {
	s.byIDOnce.Do(func() {
		s.byID, s.byIDErr = s.DB.Reader().PrepareContext(context.WithoutCancel(ctx),
			`SELECT `+messageColumns+` FROM messages WHERE tenant_id = $1 AND id = $2`)
	})
	if s.byIDErr != nil {
		return nil, fmt.Errorf("prepare message read: %w", s.byIDErr)
	}
	// Without cancellation: the SQLite driver would start a goroutine per
	// query to watch the context; a point read is over in microseconds.
	m, err := scanMessage(s.byID.QueryRowContext(context.WithoutCancel(ctx), tenant, id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, errMessageNotFound(id)
	}
	if err != nil {
		return nil, fmt.Errorf("read message %s: %w", id, err)
	}
	return m, nil
}

func (s *Service) clock() time.Time { return s.now().UTC().Truncate(time.Millisecond) }

func errMessageNotFound(id string) error {
	e := fault.New(fault.NotFound, "message_not_found", "no message %q in this tenant", id)
	e.Details = map[string]any{"messageId": id}
	return e
}

// Request asks for one message.
type Request struct {
	ContactID       string `json:"contactId"`
	Channel         string `json:"channel"`
	TemplateID      string `json:"templateId"`
	TemplateVersion int64  `json:"templateVersion"`
	// SourceID groups messages of one purpose and makes the send key: the
	// same contact, channel and source id is one message. Default: a new id.
	SourceID string `json:"sourceId"`
}

// Enqueue records a message asked for through the API and publishes
// pipeline.message.queued. It reports whether the message is new; the
// same source id, contact and channel again returns the first message.
func (s *Service) Enqueue(ctx context.Context, tenant string, req Request) (*Message, bool, error) {
	if !event.ValidChannel(req.Channel) {
		return nil, false, fault.New(fault.Invalid, "invalid_field", "channel must be email, sms or whatsapp (got %q)", req.Channel)
	}
	if req.ContactID == "" || req.TemplateID == "" {
		return nil, false, fault.New(fault.Invalid, "invalid_field", "contactId and templateId are required")
	}
	if req.TemplateVersion < 0 {
		return nil, false, fault.New(fault.Invalid, "invalid_field", "templateVersion is a positive whole number, or 0 for the current version")
	}
	r, err := s.Contacts.Recipient(ctx, tenant, req.ContactID)
	if errors.Is(err, ErrRecipientNotFound) {
		return nil, false, fault.New(fault.NotFound, "contact_not_found", "no contact %q in this tenant", req.ContactID)
	}
	if err != nil {
		return nil, false, err
	}
	addr := r.Address(req.Channel)
	if addr == "" {
		return nil, false, fault.New(fault.Invalid, "no_address", "contact %s has no %s address for the %s channel", req.ContactID, map[bool]string{true: "email", false: "phone"}[req.Channel == event.ChannelEmail], req.Channel)
	}
	now := s.clock()
	m := &Message{ID: event.NewID(), SourceType: SourceAPI, SourceID: req.SourceID, ContactID: req.ContactID, Channel: req.Channel,
		TemplateID: req.TemplateID, TemplateVersion: req.TemplateVersion, Recipient: addr, Status: StatusQueued, CreatedAt: now, UpdatedAt: now}
	if m.SourceID == "" {
		m.SourceID = m.ID
	}
	ctx = event.EnsureCorrelation(ctx)
	var created bool
	err = s.Outbox.InTx(ctx, func(tx *sql.Tx, emit outbox.Emit) error {
		var err error
		if m, created, err = insertQueued(ctx, s.DB.Kind(), tx, tenant, m); err != nil || !created {
			return err
		}
		env, err := event.New(ctx, event.PipelineMessageQueued, event.SourcePipeline, tenant, messageData(m))
		if err != nil {
			return err
		}
		return emit(env)
	})
	if err != nil {
		return nil, false, err
	}
	return m, created, nil
}

// Get returns one message.
func (s *Service) Get(ctx context.Context, tenant, id string) (*Message, error) {
	return byID(ctx, s.DB.Reader(), tenant, id)
}

func messageData(m *Message) event.MessageData {
	return event.MessageData{MessageID: m.ID, Channel: m.Channel, ContactID: m.ContactID, RecipientAddress: m.Recipient,
		SourceType: m.SourceType, SourceID: m.SourceID, TemplateID: m.TemplateID, TemplateVersion: m.TemplateVersion,
		SourceName: m.sourceName, ExternalID: m.ExternalID, RunID: m.runID, Step: m.Step, Subject: m.Subject,
		Reason: m.Error, ErrorCode: m.ErrorCode}
}

// statusData is m's payload for the event of the status it is in: on
// held, with sendAfter and without the reason and error code of an earlier
// attempt (they are no reason for the hold); otherwise messageData.
func statusData(m *Message) event.MessageData {
	d := messageData(m)
	if m.Status == StatusHeld && m.SendAfter != nil {
		d.SendAfter = event.Time{Time: *m.SendAfter}
		d.Reason, d.ErrorCode = "", ""
	}
	return d
}

// Handle is the PIPELINE_SEND_CONSUMER handler.
func (s *Service) Handle(ctx context.Context, env event.Envelope) error {
	if env.Type != event.PipelineMessageQueued {
		return nil // the consumer's filter makes this unreachable; a replayed stray is harmless
	}
	d, err := event.DecodeData[event.MessageData](env)
	if err != nil {
		return bus.Permanent(err)
	}
	now := s.clock()
	m := &Message{ID: d.MessageID, SourceType: d.SourceType, SourceID: d.SourceID, Step: d.Step, ContactID: d.ContactID, Channel: d.Channel,
		TemplateID: d.TemplateID, TemplateVersion: d.TemplateVersion, Recipient: d.RecipientAddress, Status: StatusQueued,
		CreatedAt: now, UpdatedAt: now, sourceName: d.SourceName, runID: d.RunID, Subject: d.Subject, body: d.Text, inReplyTo: d.ReplyToMessageID,
		sender: Sender{From: d.From, FromName: d.FromName, ReplyTo: d.ReplyTo}}
	// Campaigns and workflows queue by event alone: the claim makes the
	// row, once, whatever the number of deliveries.
	return s.sendQueued(ctx, env.TenantID, m)
}

// send checks, renders and sends one queued message, on its own: the
// path of messages a batch cannot take (a send key claimed under another
// id, a message found in sending whose provider never saw it).
func (s *Service) send(ctx context.Context, tenant string, m *Message) error {
	j := &job{ctx: ctx, tenant: tenant, m: m}
	if err := s.prepare(ctx, j); err != nil {
		return err
	}
	switch {
	case j.hold != nil:
		return s.hold(ctx, tenant, m, *j.hold)
	case j.block != nil:
		return s.finish(ctx, tenant, m, StatusQueued, j.block.status, j.block.code, j.block.reason)
	}
	if err := s.throttle(ctx, tenant, m.Channel); err != nil {
		return err
	}
	m.Status, m.Attempts, m.UpdatedAt = StatusSending, m.Attempts+1, s.clock()
	if ok, err := setStatus(ctx, s.DB.Writer(), tenant, m, StatusQueued); err != nil || !ok {
		return err // !ok: another delivery took it
	}
	receipt, err := s.call(ctx, s.Providers[m.Channel], j.msg)
	if err == nil {
		return s.sent(ctx, tenant, m, receipt)
	}
	attempt, maxAttempts := bus.Attempt(ctx)
	code := providerCode(err)
	if errors.Is(err, channel.ErrUnknownOutcome) {
		return s.finish(ctx, tenant, m, StatusSending, StatusFailed, "outcome_unknown", err.Error())
	}
	if channel.IsPermanent(err) || (attempt >= maxAttempts && !errors.Is(err, channel.ErrConfiguration)) {
		return s.finish(ctx, tenant, m, StatusSending, StatusFailed, code, err.Error())
	}
	// Transient: back to queued, so the retry sends it (and only it).
	m.Status, m.Error, m.ErrorCode, m.UpdatedAt = StatusQueued, err.Error(), code, s.clock()
	if _, uerr := setStatus(ctx, s.DB.Writer(), tenant, m, StatusSending); uerr != nil {
		return uerr
	}
	return err
}

// withTracking routes an email's links and adds its open pixel.
func (s *Service) withTracking(tenant string, m *Message, c Content, unsub string) Content {
	if s.Links != nil && m.Channel == event.ChannelEmail {
		c.HTML = s.Links.Track(tenant, m.ID, c.HTML, unsub)
	}
	return c
}

func providerCode(err error) string {
	var ce *channel.Error
	if errors.As(err, &ce) && ce.Code != "" {
		return ce.Provider + ":" + ce.Code
	}
	return "provider_error"
}

// call sends through provider, telling the bus the event is in progress
// while a slow provider answers, so it is not redelivered meanwhile.
func (s *Service) call(ctx context.Context, p Provider, msg channel.Message) (channel.Receipt, error) {
	// One timer that re-arms itself, rather than a goroutine and a ticker
	// per message: nearly every call ends long before the first tick, and
	// those were 2% of a send's CPU.
	var (
		mu   sync.Mutex // a tick and the end of the call, one after the other
		done bool
		t    *time.Timer
	)
	mu.Lock()
	t = time.AfterFunc(s.progressEvery, func() {
		mu.Lock()
		defer mu.Unlock()
		if !done {
			_ = s.progress(ctx)
			t.Reset(s.progressEvery)
		}
	})
	mu.Unlock()
	defer func() {
		mu.Lock()
		defer mu.Unlock()
		done = true
		t.Stop()
	}()
	return p.Send(ctx, msg)
}

func (s *Service) outgoing(tenant string, m *Message, c Content, unsub string) channel.Message {
	msg := channel.Message{Tenant: tenant, ID: m.ID, To: m.Recipient, From: c.From, FromName: c.FromName, ReplyTo: c.ReplyTo,
		Subject: c.Subject, HTML: c.HTML, Text: c.Text, Template: c.WhatsApp}
	if m.Channel == event.ChannelEmail {
		if m.sender.From != "" {
			msg.From, msg.FromName = m.sender.From, m.sender.FromName
		}
		msg.ReplyTo = orDefault(m.sender.ReplyTo, msg.ReplyTo)
		if msg.From == "" {
			msg.From, msg.FromName = s.EmailFrom, orDefault(msg.FromName, s.EmailFromName)
		}
	}
	if s.StatusCallback != nil {
		msg.StatusCallback = s.StatusCallback(tenant, m.Channel)
	}
	if m.Channel != event.ChannelEmail {
		msg.Text = c.Body
	} else if unsub != "" {
		// RFC 8058 one-click unsubscribe: mailbox providers show a button
		// that POSTs to the link.
		msg.Headers = map[string]string{"List-Unsubscribe": "<" + unsub + ">", "List-Unsubscribe-Post": "List-Unsubscribe=One-Click"}
	}
	return msg
}

// resolve settles a message a previous delivery left in sending: the
// process died while the provider was being called.
func (s *Service) resolve(ctx context.Context, tenant string, m *Message) error {
	if l, ok := s.Providers[m.Channel].(Lookup); ok {
		receipt, accepted, err := l.Accepted(ctx, tenant, m.ID)
		if err != nil {
			return err
		}
		if accepted {
			return s.sent(ctx, tenant, m, receipt)
		}
		// Never reached the provider: send it now.
		m.Status, m.UpdatedAt = StatusQueued, s.clock()
		if ok, err := setStatus(ctx, s.DB.Writer(), tenant, m, StatusSending); err != nil || !ok {
			return err
		}
		return s.send(ctx, tenant, m)
	}
	return s.finish(ctx, tenant, m, StatusSending, StatusFailed, "outcome_unknown",
		"the process stopped while the provider was being called; not sent again, so as never to send twice")
}

// sent records the provider's acceptance and publishes pipeline.message.sent.
func (s *Service) sent(ctx context.Context, tenant string, m *Message, receipt channel.Receipt) error {
	s.accepted(m, receipt, s.clock())
	return s.Outbox.InTx(ctx, func(tx *sql.Tx, emit outbox.Emit) error {
		if ok, err := setStatus(ctx, tx, tenant, m, StatusSending); err != nil || !ok {
			return err
		}
		envs, err := appendOutcome(ctx, nil, event.PipelineMessageSent, tenant, m)
		if err != nil {
			return err
		}
		return emit(envs...)
	})
}

// hold moves a queued message to held until until, the end of the
// recipient's quiet hours, and publishes pipeline.message.held in the same
// transaction; nothing when the row was no longer queued (another delivery
// took it, or held it already).
func (s *Service) hold(ctx context.Context, tenant string, m *Message, until time.Time) error {
	m.Status, m.SendAfter, m.UpdatedAt = StatusHeld, &until, s.clock()
	return s.Outbox.InTx(ctx, func(tx *sql.Tx, emit outbox.Emit) error {
		if ok, err := setStatus(ctx, tx, tenant, m, StatusQueued); err != nil || !ok {
			return err
		}
		env, err := event.New(ctx, event.PipelineMessageHeld, event.SourcePipeline, tenant, statusData(m))
		if err != nil {
			return err
		}
		return emit(env)
	})
}

// finish moves a message from status from to a final status with its
// reason, and publishes pipeline.message.failed.
func (s *Service) finish(ctx context.Context, tenant string, m *Message, from, status, code, reason string) error {
	m.Status, m.ErrorCode, m.Error, m.UpdatedAt = status, code, truncate(reason, 1000), s.clock()
	s.Log.InfoContext(ctx, "message not sent", "message", m.ID, "status", status, "errorCode", code, "reason", m.Error)
	return s.Outbox.InTx(ctx, func(tx *sql.Tx, emit outbox.Emit) error {
		if ok, err := setStatus(ctx, tx, tenant, m, from); err != nil || !ok {
			return err
		}
		env, err := event.New(ctx, event.PipelineMessageFailed, event.SourcePipeline, tenant, messageData(m))
		if err != nil {
			return err
		}
		return emit(env)
	})
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return strings.ToValidUTF8(s[:n], "")
}
