package inbox

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"slices"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/alumoutreach/alumoutreach/internal/event"
	"github.com/alumoutreach/alumoutreach/internal/platform/bus"
	"github.com/alumoutreach/alumoutreach/internal/platform/fault"
	"github.com/alumoutreach/alumoutreach/internal/platform/outbox"
	"github.com/alumoutreach/alumoutreach/internal/platform/store"
)

//go:embed migrations/*.sql
var migrationFiles embed.FS

// ModuleName is the module's name in schema_migrations.
const ModuleName = "inbox"

// Migrations returns the module's embedded migrations.
func Migrations() fs.FS {
	sub, _ := fs.Sub(migrationFiles, "migrations")
	return sub
}

// WebhookConsumerName is the durable consumer of inbound messages.
const WebhookConsumerName = "INBOX_WEBHOOK_CONSUMER"

// WebhookFilters are the subjects INBOX_WEBHOOK_CONSUMER reads: every
// channel's inbound messages.
var WebhookFilters = []string{"webhook.*.inbound"}

// Contacts finds the contact an address belongs to ("" when none).
type Contacts interface {
	ContactByAddress(ctx context.Context, tenant, channel, address string) (string, error)
}

// Sent finds the pipeline message a provider id names ("" when none): the
// message an inbound one answers.
type Sent interface {
	MessageByExternalID(ctx context.Context, tenant, externalID string) (string, error)
}

// Service keeps the inbox's threads and messages.
type Service struct {
	db       *store.DB
	ob       *outbox.Outbox
	log      *slog.Logger
	contacts Contacts
	sent     Sent
	metrics  *Metrics
	sla      SLA
	timers   Timers
	now      func() time.Time
}

// Timers arms the durable timers of response deadlines.
type Timers interface {
	ScheduleTimer(ctx context.Context, key string, at time.Time, data []byte) error
}

// NewService returns the inbox over db, counting on metrics (NewMetrics(nil)
// when nil). Response deadlines follow sla, on durable timers.
func NewService(db *store.DB, ob *outbox.Outbox, log *slog.Logger, contacts Contacts, sent Sent, metrics *Metrics, sla SLA, timers Timers) *Service {
	if metrics == nil {
		metrics = NewMetrics(nil)
	}
	return &Service{db: db, ob: ob, log: log, contacts: contacts, sent: sent, metrics: metrics, sla: sla, timers: timers, now: time.Now}
}

func (s *Service) clock() time.Time { return s.now().UTC().Truncate(time.Millisecond) }

// previewRunes is how much of a message's text its event carries.
const previewRunes = 280

// maxThreadMessages is how many of a thread's latest messages Get returns.
const maxThreadMessages = 500

// HandleInbound is the INBOX_WEBHOOK_CONSUMER handler: it records an
// inbound message in its thread, once per provider id, and publishes what
// changed.
func (s *Service) HandleInbound(ctx context.Context, env event.Envelope) error {
	d, err := event.DecodeData[event.InboundMessageData](env)
	if err != nil {
		return bus.Permanent(err)
	}
	tenant := env.TenantID
	address := normalizeAddress(d.Channel, d.From)
	contactID, err := s.contacts.ContactByAddress(ctx, tenant, d.Channel, address)
	if err != nil {
		return fmt.Errorf("match the sender to a contact: %w", err)
	}
	inReplyTo := ""
	if ref := strings.Trim(strings.TrimSpace(d.InReplyTo), "<>"); ref != "" && s.sent != nil {
		if inReplyTo, err = s.sent.MessageByExternalID(ctx, tenant, ref); err != nil {
			return fmt.Errorf("find the message replied to: %w", err)
		}
	}
	recorded := false
	var deadline *armed
	err = s.ob.InTx(ctx, func(tx *sql.Tx, emit outbox.Emit) error {
		deadline = nil // a retried transaction starts over
		var one int
		err := tx.QueryRowContext(ctx, `SELECT 1 FROM inbox_messages WHERE tenant_id = $1 AND channel = $2 AND external_id = $3`,
			tenant, d.Channel, d.ExternalID).Scan(&one)
		if err == nil {
			return nil // recorded already: a provider's retry, or a redelivery
		}
		if !errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("look for the message: %w", err)
		}
		now := s.clock()
		at := d.ReceivedAt.Time.UTC().Truncate(time.Millisecond)
		t, created, err := s.threadOf(ctx, tx, tenant, d.Channel, address, d.Subject, now)
		if err != nil {
			return err
		}
		reopened := false
		if !created {
			res, err := tx.ExecContext(ctx, `UPDATE inbox_threads SET status = $3 WHERE tenant_id = $1 AND id = $2 AND status <> $3`,
				tenant, t.ID, event.ThreadOpen)
			if err != nil {
				return fmt.Errorf("reopen thread: %w", err)
			}
			n, _ := res.RowsAffected()
			reopened = n == 1
		}
		t, err = scanThread(tx.QueryRowContext(ctx, `UPDATE inbox_threads SET messages = messages + 1,
			contact_id = CASE WHEN $3 <> '' THEN $3 ELSE contact_id END,
			last_message_at = CASE WHEN last_message_at > $4 THEN last_message_at ELSE $4 END, updated_at = $5
			WHERE tenant_id = $1 AND id = $2 RETURNING `+threadColumns, tenant, t.ID, contactID, at.UnixMilli(), now.UnixMilli()))
		if err != nil {
			return fmt.Errorf("update thread: %w", err)
		}
		if deadline, err = s.startDeadline(ctx, tx, tenant, t, at); err != nil {
			return err
		}
		m := Message{ID: event.NewID(), ThreadID: t.ID, Direction: Inbound, Channel: d.Channel, Provider: d.Provider,
			ExternalID: d.ExternalID, From: address, To: d.To, Subject: d.Subject, Text: d.Text, HTML: d.HTML,
			InReplyTo: inReplyTo, ReceivedAt: at}
		if _, err := tx.ExecContext(ctx, `INSERT INTO inbox_messages (tenant_id, id, thread_id, direction, channel, provider, external_id,
			sender, recipient, subject, text, html, in_reply_to, received_at, created_at)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)`, tenant, m.ID, m.ThreadID, m.Direction, m.Channel,
			m.Provider, m.ExternalID, m.From, m.To, m.Subject, m.Text, m.HTML, m.InReplyTo, at.UnixMilli(), now.UnixMilli()); err != nil {
			return fmt.Errorf("record message: %w", err)
		}
		var envs []event.Envelope
		switch {
		case created:
			envs, err = appendEvent(ctx, envs, event.InboxThreadCreated, tenant, threadData(t))
		case reopened:
			envs, err = appendEvent(ctx, envs, event.InboxThreadUpdated, tenant, threadData(t))
		}
		if err != nil {
			return err
		}
		if envs, err = appendEvent(ctx, envs, event.InboxMessageReceived, tenant, event.InboxMessageReceivedData{
			ThreadID: t.ID, MessageID: m.ID, Channel: m.Channel, ContactID: t.ContactID, From: m.From, To: m.To,
			Subject: m.Subject, Preview: preview(m.Text), InReplyTo: m.InReplyTo}); err != nil {
			return err
		}
		recorded = true
		return emit(envs...)
	})
	if err != nil {
		return err
	}
	if recorded {
		s.metrics.received.WithLabelValues(d.Channel).Inc()
	}
	s.arm(ctx, tenant, deadline)
	return nil
}

// threadOf returns the thread of address on channel, creating it (open)
// when there is none; created says which. On PostgreSQL two transactions
// creating the same thread meet at the unique index: the second's insert
// waits for the first and then finds its row.
func (s *Service) threadOf(ctx context.Context, tx *sql.Tx, tenant, channel, address, subject string, now time.Time) (*Thread, bool, error) {
	t := &Thread{ID: event.NewID(), Channel: channel, Address: address, Subject: subject, Status: event.ThreadOpen,
		LastMessageAt: now, CreatedAt: now, UpdatedAt: now}
	res, err := tx.ExecContext(ctx, `INSERT INTO inbox_threads (tenant_id, id, channel, address, subject, status, last_message_at, created_at, updated_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $7, $7) ON CONFLICT (tenant_id, channel, address) DO NOTHING`,
		tenant, t.ID, channel, address, subject, t.Status, now.UnixMilli())
	if err != nil {
		return nil, false, fmt.Errorf("create thread: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 1 {
		return t, true, nil
	}
	t, err = scanThread(tx.QueryRowContext(ctx, `SELECT `+threadColumns+` FROM inbox_threads WHERE tenant_id = $1 AND channel = $2 AND address = $3`,
		tenant, channel, address))
	if err != nil {
		return nil, false, fmt.Errorf("read thread: %w", err)
	}
	return t, false, nil
}

// normalizeAddress is the form an address is threaded and matched by:
// email addresses are compared without case, numbers as given (E.164 from
// the webhooks).
func normalizeAddress(channel, address string) string {
	address = strings.TrimSpace(address)
	if channel == event.ChannelEmail {
		return strings.ToLower(address)
	}
	return address
}

// preview is the start of text, whitespace folded, at most previewRunes.
func preview(text string) string {
	text = strings.Join(strings.Fields(text), " ")
	if utf8.RuneCountInString(text) <= previewRunes {
		return text
	}
	r := []rune(text)
	return string(r[:previewRunes-1]) + "…"
}

func appendEvent(ctx context.Context, envs []event.Envelope, subject, tenant string, data any) ([]event.Envelope, error) {
	env, err := event.New(ctx, subject, event.SourceInbox, tenant, data)
	if err != nil {
		return envs, err
	}
	return append(envs, env), nil
}

func threadData(t *Thread) event.InboxThreadData {
	return event.InboxThreadData{ThreadID: t.ID, Channel: t.Channel, ContactID: t.ContactID, Subject: t.Subject,
		Status: t.Status, AssigneeID: t.AssigneeID}
}

const threadColumns = `id, channel, address, contact_id, subject, status, assignee_id, messages, last_message_at, created_at, updated_at,
	replies, response_due_at, response_warn_at, response_kind, sla_state`

func scanThread(r store.Scanner) (*Thread, error) {
	var (
		t                 Thread
		last, created, up int64
		due, warn         sql.NullInt64
	)
	if err := r.Scan(&t.ID, &t.Channel, &t.Address, &t.ContactID, &t.Subject, &t.Status, &t.AssigneeID, &t.Messages,
		&last, &created, &up, &t.replies, &due, &warn, &t.responseKind, &t.slaState); err != nil {
		return nil, err
	}
	t.LastMessageAt, t.CreatedAt, t.UpdatedAt = time.UnixMilli(last).UTC(), time.UnixMilli(created).UTC(), time.UnixMilli(up).UTC()
	if due.Valid {
		at := time.UnixMilli(due.Int64).UTC()
		t.ResponseDueAt, t.SLA = &at, slaNames[t.slaState]
	}
	if warn.Valid {
		at := time.UnixMilli(warn.Int64).UTC()
		t.warnAt = &at
	}
	return &t, nil
}

func threadNotFound(id string) error {
	e := fault.New(fault.NotFound, "thread_not_found", "no inbox thread %q in this tenant", id)
	e.Details = map[string]any{"threadId": id}
	return e
}

// List returns the tenant's threads matching f, most recent activity
// first, after the cursor.
func (s *Service) List(ctx context.Context, tenant string, f Filter, after *Cursor, limit int) ([]*Thread, error) {
	var w store.Where
	w.And("tenant_id = ?", tenant)
	w.AndIf("status = ?", f.Status)
	w.AndIf("assignee_id = ?", f.AssigneeID)
	w.AndIf("contact_id = ?", f.ContactID)
	w.AndIf("channel = ?", f.Channel)
	for state, name := range slaNames {
		if f.SLA == name {
			w.And("response_due_at IS NOT NULL AND sla_state = ?", state)
		}
	}
	if after != nil {
		w.And("(last_message_at, id) < (?, ?)", after.LastMessageAt, after.ID)
	}
	return store.Collect(ctx, s.db.Reader(), "list threads", scanThread, `SELECT `+threadColumns+` FROM inbox_threads `+w.String()+
		fmt.Sprintf(` ORDER BY last_message_at DESC, id DESC LIMIT %d`, limit), w.Args()...)
}

type queryRower interface {
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// readThread reads one thread, with the API's not-found error.
func readThread(ctx context.Context, q queryRower, tenant, id string) (*Thread, error) {
	t, err := scanThread(q.QueryRowContext(ctx, `SELECT `+threadColumns+` FROM inbox_threads WHERE tenant_id = $1 AND id = $2`, tenant, id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, threadNotFound(id)
	}
	if err != nil {
		return nil, fmt.Errorf("read thread: %w", err)
	}
	return t, nil
}

// Get returns a thread with its latest messages, oldest first.
func (s *Service) Get(ctx context.Context, tenant, id string) (*Thread, error) {
	t, err := readThread(ctx, s.db.Reader(), tenant, id)
	if err != nil {
		return nil, err
	}
	rows, err := s.db.Reader().QueryContext(ctx, `SELECT id, direction, channel, provider, external_id, sender, recipient, subject, text, html,
		in_reply_to, author_id, received_at FROM inbox_messages WHERE tenant_id = $1 AND thread_id = $2 ORDER BY received_at DESC, id DESC LIMIT $3`,
		tenant, id, maxThreadMessages)
	if err != nil {
		return nil, fmt.Errorf("read thread messages: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		m := Message{ThreadID: id}
		var at int64
		if err := rows.Scan(&m.ID, &m.Direction, &m.Channel, &m.Provider, &m.ExternalID, &m.From, &m.To, &m.Subject, &m.Text, &m.HTML,
			&m.InReplyTo, &m.AuthorID, &at); err != nil {
			return nil, fmt.Errorf("read thread messages: %w", err)
		}
		m.ReceivedAt = time.UnixMilli(at).UTC()
		t.Conversation = append(t.Conversation, m)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read thread messages: %w", err)
	}
	slices.Reverse(t.Conversation)
	return t, nil
}

// SetStatus moves a thread to status, publishing inbox.thread.updated; a
// thread already in it is returned unchanged, with no event.
func (s *Service) SetStatus(ctx context.Context, tenant, id, status string) (*Thread, error) {
	if !slices.Contains(Statuses, status) {
		return nil, fault.New(fault.Invalid, "invalid_status", "status must be one of %s (got %q)", strings.Join(Statuses, ", "), status)
	}
	return s.change(ctx, tenant, id, func(tx *sql.Tx, t *Thread, now time.Time) (*event.Envelope, error) {
		if t.Status == status {
			return nil, nil
		}
		clear := ""
		if answers(status) {
			clear = ", " + clearDeadline
		}
		res, err := tx.ExecContext(ctx, `UPDATE inbox_threads SET status = $3, updated_at = $4`+clear+` WHERE tenant_id = $1 AND id = $2 AND status = $5`,
			tenant, id, status, now.UnixMilli(), t.Status)
		if err != nil {
			return nil, fmt.Errorf("set thread status: %w", err)
		}
		if n, _ := res.RowsAffected(); n != 1 {
			return nil, errMoved
		}
		t.Status, t.UpdatedAt = status, now
		if answers(status) {
			t.ResponseDueAt, t.SLA = nil, ""
		}
		env, err := event.New(ctx, event.InboxThreadUpdated, event.SourceInbox, tenant, threadData(t))
		return &env, err
	})
}

// maxAssigneeLen bounds an assignee id: an agent's id in the team's own
// directory, which this service does not keep.
const maxAssigneeLen = 200

// Assign hands a thread to assignee ("" unassigns it), publishing
// inbox.thread.assigned with the previous assignee and by, who made the
// change; a thread already with that assignee is returned unchanged.
func (s *Service) Assign(ctx context.Context, tenant, id, assignee, by string) (*Thread, error) {
	if err := checkAgentID("assigneeId", assignee); err != nil {
		return nil, err
	}
	if err := checkAgentID("assignedBy", by); err != nil {
		return nil, err
	}
	return s.change(ctx, tenant, id, func(tx *sql.Tx, t *Thread, now time.Time) (*event.Envelope, error) {
		if t.AssigneeID == assignee {
			return nil, nil
		}
		res, err := tx.ExecContext(ctx, `UPDATE inbox_threads SET assignee_id = $3, updated_at = $4 WHERE tenant_id = $1 AND id = $2 AND assignee_id = $5`,
			tenant, id, assignee, now.UnixMilli(), t.AssigneeID)
		if err != nil {
			return nil, fmt.Errorf("assign thread: %w", err)
		}
		if n, _ := res.RowsAffected(); n != 1 {
			return nil, errMoved
		}
		previous := t.AssigneeID
		t.AssigneeID, t.UpdatedAt = assignee, now
		env, err := event.New(ctx, event.InboxThreadAssigned, event.SourceInbox, tenant, event.InboxThreadAssignedData{
			ThreadID: id, ContactID: t.ContactID, AssigneeID: assignee, PreviousAssigneeID: previous, AssignedBy: by})
		return &env, err
	})
}

// ReplyInput is an agent's reply to a thread.
type ReplyInput struct {
	// Text is the reply, sent as written.
	Text string `json:"text"`
	// Subject is an email reply's subject; by default "Re: " and the
	// thread's.
	Subject string `json:"subject"`
	// AuthorID is the agent who wrote it.
	AuthorID string `json:"authorId"`
}

// maxReplyRunes bounds a reply per channel: Twilio refuses SMS bodies over
// 1,600 characters and Meta text messages over 4,096.
var maxReplyRunes = map[string]int{event.ChannelEmail: 100_000, event.ChannelSMS: 1600, event.ChannelWhatsApp: 4096}

// whatsAppSession is how long after a contact's last message WhatsApp
// accepts free-form messages to them; later, only approved templates.
const whatsAppSession = 24 * time.Hour

// Reply sends an agent's reply to the thread's address through the
// pipeline: in one transaction it records the message in the thread, moves
// the thread to pending (waiting for the contact), and publishes
// inbox.message.sent and the pipeline.message.queued that sends it. The
// message's id is the pipeline's, so GET /api/v1/messages/{id} follows it.
func (s *Service) Reply(ctx context.Context, tenant, id string, in ReplyInput) (*Message, error) {
	in.Text = strings.TrimSpace(in.Text)
	in.Subject = strings.TrimSpace(in.Subject)
	if in.Text == "" {
		return nil, fault.New(fault.Invalid, "invalid_field", "text is required: the reply to send")
	}
	if err := checkAgentID("authorId", in.AuthorID); err != nil {
		return nil, err
	}
	if len(in.Subject) > 998 || strings.ContainsAny(in.Subject, "\r\n") {
		return nil, fault.New(fault.Invalid, "invalid_field", "subject must be one line of at most 998 characters")
	}
	var out *Message
	err := s.ob.InTx(ctx, func(tx *sql.Tx, emit outbox.Emit) error {
		t, err := readThread(ctx, tx, tenant, id)
		if err != nil {
			return err
		}
		if n := utf8.RuneCountInString(in.Text); n > maxReplyRunes[t.Channel] {
			return fault.New(fault.Invalid, "reply_too_long", "a %s reply holds at most %d characters (got %d)", t.Channel, maxReplyRunes[t.Channel], n)
		}
		if t.ContactID == "" {
			return fault.New(fault.Conflict, "thread_without_contact",
				"%s is no contact's address: create the contact (POST /api/v1/contacts) before replying, so consent and suppression apply", t.Address)
		}
		now := s.clock()
		if t.Channel == event.ChannelWhatsApp {
			var last sql.NullInt64
			if err := tx.QueryRowContext(ctx, `SELECT max(received_at) FROM inbox_messages WHERE tenant_id = $1 AND thread_id = $2 AND direction = $3`,
				tenant, id, Inbound).Scan(&last); err != nil {
				return fmt.Errorf("read the last inbound message: %w", err)
			}
			if !last.Valid || now.Sub(time.UnixMilli(last.Int64)) > whatsAppSession {
				return fault.New(fault.Conflict, "whatsapp_session_closed",
					"the contact last wrote more than 24 hours ago: WhatsApp accepts only approved templates now (POST /api/v1/messages with a template)")
			}
		}
		subject, answers := "", ""
		if t.Channel == event.ChannelEmail {
			subject = in.Subject
			if subject == "" {
				subject = replySubject(t.Subject)
			}
			// The contact's latest email, which the reply answers in their
			// mail client's threading.
			err := tx.QueryRowContext(ctx, `SELECT external_id FROM inbox_messages WHERE tenant_id = $1 AND thread_id = $2 AND direction = $3
				ORDER BY received_at DESC, id DESC LIMIT 1`, tenant, id, Inbound).Scan(&answers)
			if err != nil && !errors.Is(err, sql.ErrNoRows) {
				return fmt.Errorf("read the message replied to: %w", err)
			}
		}
		m := Message{ID: event.NewID(), ThreadID: id, Direction: Outbound, Channel: t.Channel, Provider: "pipeline",
			To: t.Address, Subject: subject, Text: in.Text, AuthorID: in.AuthorID, ReceivedAt: now}
		m.ExternalID = m.ID
		if _, err := tx.ExecContext(ctx, `INSERT INTO inbox_messages (tenant_id, id, thread_id, direction, channel, provider, external_id,
			sender, recipient, subject, text, author_id, received_at, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, '', $8, $9, $10, $11, $12, $12)`,
			tenant, m.ID, id, m.Direction, m.Channel, m.Provider, m.ExternalID, m.To, m.Subject, m.Text, m.AuthorID, now.UnixMilli()); err != nil {
			return fmt.Errorf("record reply: %w", err)
		}
		res, err := tx.ExecContext(ctx, `UPDATE inbox_threads SET status = $3 WHERE tenant_id = $1 AND id = $2 AND status <> $3`,
			tenant, id, event.ThreadPending)
		if err != nil {
			return fmt.Errorf("update thread: %w", err)
		}
		moved, _ := res.RowsAffected()
		if _, err := tx.ExecContext(ctx, `UPDATE inbox_threads SET messages = messages + 1, replies = replies + 1, last_message_at = $3, updated_at = $3,
			`+clearDeadline+` WHERE tenant_id = $1 AND id = $2`, tenant, id, now.UnixMilli()); err != nil {
			return fmt.Errorf("update thread: %w", err)
		}
		var envs []event.Envelope
		if moved == 1 {
			t.Status, t.UpdatedAt = event.ThreadPending, now
			if envs, err = appendEvent(ctx, envs, event.InboxThreadUpdated, tenant, threadData(t)); err != nil {
				return err
			}
		}
		if envs, err = appendEvent(ctx, envs, event.InboxMessageSent, tenant, event.InboxMessageSentData{ThreadID: id, MessageID: m.ID,
			Channel: m.Channel, ContactID: t.ContactID, To: m.To, Subject: m.Subject, Preview: preview(m.Text), AuthorID: in.AuthorID}); err != nil {
			return err
		}
		if envs, err = appendEvent(ctx, envs, event.PipelineMessageQueued, tenant, event.MessageData{MessageID: m.ID, Channel: m.Channel,
			ContactID: t.ContactID, RecipientAddress: t.Address, SourceType: event.MessageSourceInbox, SourceID: id, Step: m.ID,
			Subject: subject, Text: in.Text, ReplyToMessageID: answers}); err != nil {
			return err
		}
		out = &m
		return emit(envs...)
	})
	return out, err
}

// replySubject is "Re: " and subject, unless subject already starts so.
func replySubject(subject string) string {
	if strings.HasPrefix(strings.ToLower(subject), "re:") {
		return subject
	}
	if subject == "" {
		return "Re: your message"
	}
	return "Re: " + subject
}

// checkAgentID refuses an agent id no directory would hold.
func checkAgentID(field, v string) error {
	if len(v) > maxAssigneeLen || strings.IndexFunc(v, unicode.IsControl) >= 0 || v != strings.TrimSpace(v) {
		return fault.New(fault.Invalid, "invalid_field", "%s must be at most %d characters, without control characters or surrounding spaces", field, maxAssigneeLen)
	}
	return nil
}

// errMoved says the thread changed between reading it and updating it:
// change reads it again.
var errMoved = errors.New("thread changed meanwhile")

// change applies fn to the thread in a transaction, with the event fn
// returns (none when nothing changed). A concurrent change makes fn's
// conditional update miss; the thread is then read again, a few times.
func (s *Service) change(ctx context.Context, tenant, id string, fn func(tx *sql.Tx, t *Thread, now time.Time) (*event.Envelope, error)) (*Thread, error) {
	for range 3 {
		var out *Thread
		err := s.ob.InTx(ctx, func(tx *sql.Tx, emit outbox.Emit) error {
			t, err := readThread(ctx, tx, tenant, id)
			if err != nil {
				return err
			}
			env, err := fn(tx, t, s.clock())
			if err != nil || env == nil {
				out = t
				return err
			}
			out = t
			return emit(*env)
		})
		if !errors.Is(err, errMoved) {
			return out, err
		}
	}
	return nil, fault.New(fault.Conflict, "concurrent_change", "thread %q kept changing while this change was applied; try again", id)
}
