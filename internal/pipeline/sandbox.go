package pipeline

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/alumoutreach/alumoutreach/internal/channel"
	"github.com/alumoutreach/alumoutreach/internal/platform/groupcommit"
	"github.com/alumoutreach/alumoutreach/internal/platform/store"
)

// Sandbox is one channel's twin provider: it keeps what it is given, for
// inspection (GET /api/v1/sandbox/messages), instead of sending it. It is
// the default in embedded mode, so every flow runs without accounts.
type Sandbox struct {
	db      *store.DB
	channel string
	// delivers says whether the sandbox delivers each accepted message at
	// once: the pipeline then records it as delivered with the send.
	delivers bool
	// writes batches concurrent sends into one transaction, as a real
	// provider's API absorbs concurrent calls.
	writes *groupcommit.Batcher[channel.Message]
}

// NewSandbox returns the sandbox provider of channel, storing in db. Start
// it before sending and Stop it after.
func NewSandbox(db *store.DB, ch string) *Sandbox {
	s := &Sandbox{db: db, channel: ch}
	s.writes = groupcommit.New(maxBatch, s.store)
	return s
}

// DeliverAtOnce makes the sandbox deliver each accepted message at once,
// so the whole flow, pipeline.message.delivered included, runs without
// accounts.
func (s *Sandbox) DeliverAtOnce() { s.delivers = true }

// Start runs the write loop.
func (s *Sandbox) Start(ctx context.Context) error { return s.writes.Start(ctx) }

// Stop finishes the writes in flight.
func (s *Sandbox) Stop() { s.writes.Stop() }

var (
	_ Provider = (*Sandbox)(nil)
	_ Lookup   = (*Sandbox)(nil)
)

// SandboxMessage is one message the sandbox accepted.
type SandboxMessage struct {
	ID        string            `json:"id"`
	MessageID string            `json:"messageId"`
	Channel   string            `json:"channel"`
	To        string            `json:"to"`
	From      string            `json:"from,omitempty"`
	Subject   string            `json:"subject,omitempty"`
	HTML      string            `json:"html,omitempty"`
	Text      string            `json:"text,omitempty"`
	Headers   map[string]string `json:"headers,omitempty"`
	Template  *channel.Template `json:"template,omitempty"`
	CreatedAt time.Time         `json:"createdAt"`
}

// Send stores m once per message id: a repeated send returns the first
// receipt, as a provider with idempotency keys would.
func (s *Sandbox) Send(ctx context.Context, m channel.Message) (channel.Receipt, error) {
	if m.Tenant == "" || m.ID == "" || m.To == "" {
		return channel.Receipt{}, &channel.Error{Provider: "sandbox", Permanent: true, Message: "a message needs a tenant, an id and a recipient"}
	}
	if err := s.writes.Do(ctx, m); err != nil {
		return channel.Receipt{}, &channel.Error{Provider: "sandbox", Err: err}
	}
	return channel.Receipt{Provider: "sandbox", ExternalID: "sbx_" + m.ID}, nil
}

// store writes a batch of sends in one transaction.
func (s *Sandbox) store(ctx context.Context, batch []channel.Message) []error {
	err := s.db.InTx(ctx, func(tx *sql.Tx) error {
		st := store.NewStmtCache(tx)
		defer st.Close()
		now := time.Now().UnixMilli()
		for _, m := range batch {
			headers, _ := json.Marshal(m.Headers)
			tpl := ""
			if m.Template != nil {
				b, _ := json.Marshal(m.Template)
				tpl = string(b)
			}
			if _, err := st.ExecContext(ctx, `INSERT INTO sandbox_messages (tenant_id, id, message_id, channel, recipient, sender,
				subject, html, text, headers, template, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)
				ON CONFLICT DO NOTHING`, m.Tenant, "sbx_"+m.ID, m.ID, s.channel, m.To, m.From, m.Subject, m.HTML, m.Text,
				string(headers), tpl, now); err != nil {
				return err
			}
		}
		return nil
	})
	return all(len(batch), err)
}

// Accepted reports whether the sandbox holds the message.
func (s *Sandbox) Accepted(ctx context.Context, tenant, messageID string) (channel.Receipt, bool, error) {
	var id string
	err := s.db.Reader().QueryRowContext(ctx, `SELECT id FROM sandbox_messages WHERE tenant_id = $1 AND message_id = $2`, tenant, messageID).Scan(&id)
	if errors.Is(err, sql.ErrNoRows) {
		return channel.Receipt{}, false, nil
	}
	if err != nil {
		return channel.Receipt{}, false, fmt.Errorf("sandbox lookup: %w", err)
	}
	return channel.Receipt{Provider: "sandbox", ExternalID: id}, true, nil
}

// List returns up to limit of the tenant's sandbox messages, newest first,
// before the id before ("" from the newest); to filters by recipient.
func (s *Sandbox) List(ctx context.Context, tenant, to, before string, limit int) ([]SandboxMessage, error) {
	var w store.Where
	w.And("tenant_id = ?", tenant)
	w.AndIf("recipient = ?", to)
	w.AndIf("id < ?", before)
	rows, err := s.db.Reader().QueryContext(ctx, `SELECT id, message_id, channel, recipient, sender, subject, html, text, headers, template, created_at
		FROM sandbox_messages `+w.String()+fmt.Sprintf(` ORDER BY id DESC LIMIT %d`, limit), w.Args()...)
	if err != nil {
		return nil, fmt.Errorf("list sandbox messages: %w", err)
	}
	defer rows.Close()
	var out []SandboxMessage
	for rows.Next() {
		var (
			m            SandboxMessage
			headers, tpl string
			created      int64
		)
		if err := rows.Scan(&m.ID, &m.MessageID, &m.Channel, &m.To, &m.From, &m.Subject, &m.HTML, &m.Text, &headers, &tpl, &created); err != nil {
			return nil, fmt.Errorf("list sandbox messages: %w", err)
		}
		_ = json.Unmarshal([]byte(headers), &m.Headers)
		if tpl != "" {
			m.Template = &channel.Template{}
			_ = json.Unmarshal([]byte(tpl), m.Template)
		}
		m.CreatedAt = time.UnixMilli(created).UTC()
		out = append(out, m)
	}
	return out, rows.Err()
}
