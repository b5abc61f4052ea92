package outbox

import (
	"context"
	"database/sql"
	"embed"
	"fmt"
	"io/fs"
	"strings"
	"sync"
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

// notifyChannelSQL names the PostgreSQL channel that wakes the relay of
// another instance: one per schema, so installations sharing a database
// in separate schemas (and the parallel tests) do not wake each other's
// relays on every commit. md5 keeps it within the 63-byte name limit.
const notifyChannelSQL = `'alum_outbox_' || left(md5(current_schema()), 16)`

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
	if o.db.Kind() == store.SQLite {
		return o.writeEach(ctx, tx, envs, now)
	}
	args := make([]any, 0, 4*min(len(envs), rowsPerInsert))
	for len(envs) > 0 {
		chunk := envs[:min(len(envs), rowsPerInsert)]
		envs = envs[len(chunk):]
		args = args[:0]
		for _, env := range chunk {
			data, err := event.Encode(env, o.maxSize)
			if err != nil {
				return err
			}
			args = append(args, env.ID, env.Type, data, now)
		}
		// One multi-row statement per chunk: a round trip per row would
		// dominate on a network database.
		if _, err := tx.ExecContext(ctx, insertSQL(len(chunk)), args...); err != nil {
			return fmt.Errorf("write %d events to outbox: %w", len(chunk), err)
		}
	}
	if o.db.Kind() == store.Postgres {
		if _, err := tx.ExecContext(ctx, `SELECT pg_notify(`+notifyChannelSQL+`, '')`); err != nil {
			return fmt.Errorf("notify outbox relay: %w", err)
		}
	}
	return nil
}

// writeEach inserts one row a statement, prepared once (store.StmtCache,
// which also spares each row the driver's cancellation watcher). On SQLite
// there is no round trip to save, and the driver binds numbered parameters
// by name, which makes a statement with hundreds of them quadratic (measured).
func (o *Outbox) writeEach(ctx context.Context, tx *sql.Tx, envs []event.Envelope, now int64) error {
	st := store.NewStmtCache(tx)
	defer st.Close()
	for _, env := range envs {
		data, err := event.Encode(env, o.maxSize)
		if err != nil {
			return err
		}
		if _, err := st.ExecContext(ctx, insertSQL(1), env.ID, env.Type, data, now); err != nil {
			return fmt.Errorf("write %s event to outbox: %w", env.Type, err)
		}
	}
	return nil
}

// rowsPerInsert keeps a statement's parameters (4 a row) well below both
// engines' limits.
const rowsPerInsert = 250

var insertSQLs sync.Map // rows -> statement text

func insertSQL(rows int) string {
	if s, ok := insertSQLs.Load(rows); ok {
		return s.(string)
	}
	var b strings.Builder
	b.WriteString(`INSERT INTO outbox (event_id, subject, payload, created_at) VALUES `)
	for i := range rows {
		if i > 0 {
			b.WriteByte(',')
		}
		n := 4 * i
		fmt.Fprintf(&b, "($%d, $%d, $%d, $%d)", n+1, n+2, n+3, n+4)
	}
	s := b.String()
	insertSQLs.Store(rows, s)
	return s
}

// Notify wakes the relay; cheap and safe to call any time.
func (o *Outbox) Notify() {
	select {
	case o.wake <- struct{}{}:
	default:
	}
}
