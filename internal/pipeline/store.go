package pipeline

import (
	"context"
	"database/sql"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"time"

	"github.com/alumoutreach/alumoutreach/internal/platform/store"
)

//go:embed migrations/*.sql
var migrationFiles embed.FS

// ModuleName is the module's name in schema_migrations.
const ModuleName = "pipeline"

// Migrations returns the module's embedded migrations.
func Migrations() fs.FS {
	sub, _ := fs.Sub(migrationFiles, "migrations")
	return sub
}

//go:embed sandbox_migrations/*.sql
var sandboxMigrationFiles embed.FS

// SandboxModuleName is the sandbox's name in schema_migrations.
const SandboxModuleName = "sandbox"

// MigrateSandbox creates the sandbox's table in db, the database its
// providers are given: a file of its own in embedded mode, the main
// database on PostgreSQL.
func MigrateSandbox(ctx context.Context, db *store.DB) error {
	sub, _ := fs.Sub(sandboxMigrationFiles, "sandbox_migrations")
	return db.Migrate(ctx, SandboxModuleName, sub)
}

type querier interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

const messageColumns = `id, source_type, source_id, step, contact_id, channel, template_id, template_version, campaign_name, run_id,
	recipient, subject, status, attempts, provider, external_id, error_code, error, created_at, updated_at, sent_at, send_after, sender, body, in_reply_to`

func scanMessage(r store.Scanner) (*Message, error) {
	var (
		m                Message
		created, updated int64
		sent, after      sql.NullInt64
		sender           string
	)
	if err := r.Scan(&m.ID, &m.SourceType, &m.SourceID, &m.Step, &m.ContactID, &m.Channel, &m.TemplateID, &m.TemplateVersion,
		&m.sourceName, &m.runID, &m.Recipient, &m.Subject, &m.Status, &m.Attempts, &m.Provider, &m.ExternalID, &m.ErrorCode,
		&m.Error, &created, &updated, &sent, &after, &sender, &m.body, &m.inReplyTo); err != nil {
		return nil, err
	}
	if sender != "" {
		if err := json.Unmarshal([]byte(sender), &m.sender); err != nil {
			return nil, fmt.Errorf("message %s: stored sender does not decode: %w", m.ID, err)
		}
	}
	m.CreatedAt, m.UpdatedAt = time.UnixMilli(created).UTC(), time.UnixMilli(updated).UTC()
	if sent.Valid {
		t := time.UnixMilli(sent.Int64).UTC()
		m.SentAt = &t
	}
	if after.Valid {
		t := time.UnixMilli(after.Int64).UTC()
		m.SendAfter = &t
	}
	return &m, nil
}

// insertQueued adds m as queued unless a message with its send key exists,
// and returns the stored message (m or the one that was there).
func insertQueued(ctx context.Context, kind store.Kind, q querier, tenant string, m *Message) (*Message, bool, error) {
	queued := *m
	queued.Status = StatusQueued
	created, err := insertMessage(ctx, q, tenant, &queued)
	if err != nil {
		return nil, false, err
	}
	stored, err := byKey(ctx, kind, q, tenant, m, false)
	return stored, created, err
}

// insertMessage adds m, in whatever status it is, unless a message with
// its send key (or id) exists; it reports whether it did.
func insertMessage(ctx context.Context, q querier, tenant string, m *Message) (bool, error) {
	res, err := q.ExecContext(ctx, `INSERT INTO messages (tenant_id, id, source_type, source_id, step, contact_id, channel,
		template_id, template_version, campaign_name, run_id, recipient, subject, status, attempts, error_code, error,
		created_at, updated_at, send_after, sender, body, in_reply_to)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21, $22, $23)
		ON CONFLICT DO NOTHING`,
		tenant, m.ID, m.SourceType, m.SourceID, m.Step, m.ContactID, m.Channel, m.TemplateID, m.TemplateVersion,
		m.sourceName, m.runID, m.Recipient, m.Subject, m.Status, m.Attempts, m.ErrorCode, m.Error,
		m.CreatedAt.UnixMilli(), m.UpdatedAt.UnixMilli(), unixMilliOrNil(m.SendAfter), senderJSON(m.sender), m.body, m.inReplyTo)
	if err != nil {
		return false, fmt.Errorf("insert message: %w", err)
	}
	n, err := res.RowsAffected()
	return n == 1, err
}

func unixMilliOrNil(t *time.Time) any {
	if t == nil {
		return nil
	}
	return t.UnixMilli()
}

// byKey reads the message with m's send key; lock takes its row lock on
// PostgreSQL for the transaction.
func byKey(ctx context.Context, kind store.Kind, q querier, tenant string, m *Message, lock bool) (*Message, error) {
	suffix := ""
	if lock && kind == store.Postgres {
		suffix = " FOR UPDATE"
	}
	got, err := scanMessage(q.QueryRowContext(ctx, `SELECT `+messageColumns+` FROM messages
		WHERE tenant_id = $1 AND source_type = $2 AND source_id = $3 AND contact_id = $4 AND channel = $5 AND step = $6`+suffix,
		tenant, m.SourceType, m.SourceID, m.ContactID, m.Channel, m.Step))
	if err != nil {
		return nil, fmt.Errorf("read message: %w", err)
	}
	return got, nil
}

func byID(ctx context.Context, q querier, tenant, id string) (*Message, error) {
	m, err := scanMessage(q.QueryRowContext(ctx, `SELECT `+messageColumns+` FROM messages WHERE tenant_id = $1 AND id = $2`, tenant, id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, errMessageNotFound(id)
	}
	if err != nil {
		return nil, fmt.Errorf("read message %s: %w", id, err)
	}
	return m, nil
}

// setStatus moves message id from status from to m's status and outcome;
// it reports false when the row was not in from (another delivery moved it).
func setStatus(ctx context.Context, q querier, tenant string, m *Message, from string) (bool, error) {
	sent, after := unixMilliOrNil(m.SentAt), unixMilliOrNil(m.SendAfter)
	res, err := q.ExecContext(ctx, `UPDATE messages SET status = $4, attempts = $5, provider = $6, external_id = $7, error_code = $8,
		error = $9, subject = $10, template_version = $11, updated_at = $12, sent_at = $13, send_after = $14
		WHERE tenant_id = $1 AND id = $2 AND status = $3`,
		tenant, m.ID, from, m.Status, m.Attempts, m.Provider, m.ExternalID, m.ErrorCode, m.Error, m.Subject, m.TemplateVersion,
		m.UpdatedAt.UnixMilli(), sent, after)
	if err != nil {
		return false, fmt.Errorf("update message %s: %w", m.ID, err)
	}
	n, err := res.RowsAffected()
	return n == 1, err
}

func suppressed(ctx context.Context, q querier, tenant, ch, address string) (string, bool, error) {
	var reason string
	err := q.QueryRowContext(ctx, `SELECT reason FROM suppressions WHERE tenant_id = $1 AND channel = $2 AND address = $3`, tenant, ch, address).Scan(&reason)
	if errors.Is(err, sql.ErrNoRows) {
		return "", false, nil
	}
	if err != nil {
		return "", false, fmt.Errorf("check suppression: %w", err)
	}
	return reason, true, nil
}

func senderJSON(s Sender) string {
	if s == (Sender{}) {
		return ""
	}
	b, _ := json.Marshal(s)
	return string(b)
}
