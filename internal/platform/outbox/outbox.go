package outbox

import (
	"context"
	"database/sql"
	"embed"
	"fmt"
	"io/fs"
	"time"

	"github.com/alumoutreach/alumoutreach/internal/event"
	"github.com/alumoutreach/alumoutreach/internal/platform/store"
)

//go:embed migrations/*.sql
var migrationFiles embed.FS

// Migrations holds the outbox table.
func Migrations() fs.FS {
	sub, _ := fs.Sub(migrationFiles, "migrations")
	return sub
}

// notifyChannel is the PostgreSQL channel that wakes relays of other instances.
const notifyChannel = "alum_outbox"

// Outbox writes events in the caller's transaction.
type Outbox struct {
	db      *store.DB
	maxSize int
	wake    chan struct{}
}

// New returns an outbox on db refusing events larger than maxEventSize bytes.
func New(db *store.DB, maxEventSize int) *Outbox {
	return &Outbox{db: db, maxSize: maxEventSize, wake: make(chan struct{}, 1)}
}

// Emit adds events to the transaction it was handed with.
type Emit func(envs ...event.Envelope) error

// InTx runs fn in a transaction; the events fn emits commit with its
// changes or not at all. The relay is woken once the commit succeeded.
func (o *Outbox) InTx(ctx context.Context, fn func(tx *sql.Tx, emit Emit) error) error {
	emitted := false
	err := o.db.InTx(ctx, func(tx *sql.Tx) error {
		emit := func(envs ...event.Envelope) error {
			if err := o.Write(ctx, tx, envs...); err != nil {
				return err
			}
			emitted = emitted || len(envs) > 0
			return nil
		}
		return fn(tx, emit)
	})
	if err == nil && emitted {
		o.Notify()
	}
	return err
}

// Write adds envs to the outbox inside tx. Callers that manage their own
// transaction call Notify after committing.
func (o *Outbox) Write(ctx context.Context, tx *sql.Tx, envs ...event.Envelope) error {
	if len(envs) == 0 {
		return nil
	}
	now := time.Now().UnixMilli()
	for _, env := range envs {
		data, err := event.Encode(env, o.maxSize)
		if err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx,
			`INSERT INTO outbox (event_id, subject, payload, created_at) VALUES ($1, $2, $3, $4)`,
			env.ID, env.Type, data, now); err != nil {
			return fmt.Errorf("write %s event to outbox: %w", env.Type, err)
		}
	}
	if o.db.Kind() == store.Postgres {
		if _, err := tx.ExecContext(ctx, `SELECT pg_notify('`+notifyChannel+`', '')`); err != nil {
			return fmt.Errorf("notify outbox relay: %w", err)
		}
	}
	return nil
}

// Notify wakes the relay; cheap and safe to call any time.
func (o *Outbox) Notify() {
	select {
	case o.wake <- struct{}{}:
	default:
	}
}
