package outbox

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/alumoutreach/alumoutreach/internal/platform/bus"
	"github.com/alumoutreach/alumoutreach/internal/platform/store"
)

// tracker knows which outbox rows are published. The engines need
// different bookkeeping (see the migrations), and the relay is the same
// above it.
type tracker interface {
	// next returns up to limit unpublished rows in seq order.
	next(ctx context.Context, limit int) ([]int64, []bus.Message, error)
	// markPublished records that the rows seqs (a prefix of what next
	// returned) are on the bus.
	markPublished(ctx context.Context, seqs []int64) error
	// requeue makes the rows published within window unpublished again.
	requeue(ctx context.Context, window time.Duration) (int64, error)
	pending(ctx context.Context) (int64, error)
	// prune deletes rows published more than retention ago.
	prune(ctx context.Context, retention time.Duration) error
}

func newTracker(db *store.DB) tracker {
	if db.Kind() == store.SQLite {
		return &cursorTracker{db: db}
	}
	return &rowTracker{db: db}
}

func scanMessages(ctx context.Context, db *store.DB, query string, args ...any) ([]int64, []bus.Message, error) {
	rows, err := db.Reader().QueryContext(ctx, query, args...)
	if err != nil {
		return nil, nil, fmt.Errorf("read outbox: %w", err)
	}
	var seqs []int64
	var msgs []bus.Message
	for rows.Next() {
		var seq int64
		var m bus.Message
		if err := rows.Scan(&seq, &m.ID, &m.Subject, &m.Data); err != nil {
			rows.Close()
			return nil, nil, fmt.Errorf("read outbox row: %w", err)
		}
		seqs = append(seqs, seq)
		msgs = append(msgs, m)
	}
	if err := errors.Join(rows.Err(), rows.Close()); err != nil {
		return nil, nil, fmt.Errorf("read outbox: %w", err)
	}
	return seqs, msgs, nil
}

// cursorTracker keeps one cursor, the highest published seq (SQLite).
type cursorTracker struct {
	db *store.DB

	mu sync.Mutex
	// marks remember when the cursor passed which seq, so prune can delete
	// by primary-key range the rows published longer than retention ago.
	marks []cursorMark
}

type cursorMark struct {
	at  time.Time
	seq int64
}

func (t *cursorTracker) cursor(ctx context.Context) (int64, error) {
	var seq int64
	err := t.db.Reader().QueryRowContext(ctx, `SELECT published_seq FROM outbox_relay WHERE id = 1`).Scan(&seq)
	if err != nil {
		return 0, fmt.Errorf("read outbox cursor: %w", err)
	}
	return seq, nil
}

func (t *cursorTracker) next(ctx context.Context, limit int) ([]int64, []bus.Message, error) {
	return scanMessages(ctx, t.db,
		`SELECT seq, event_id, subject, payload FROM outbox
		 WHERE seq > (SELECT published_seq FROM outbox_relay WHERE id = 1) ORDER BY seq LIMIT $1`, limit)
}

func (t *cursorTracker) markPublished(ctx context.Context, seqs []int64) error {
	last := seqs[len(seqs)-1]
	if _, err := t.db.Writer().ExecContext(ctx,
		`UPDATE outbox_relay SET published_seq = $1 WHERE id = 1 AND published_seq < $1`, last); err != nil {
		return fmt.Errorf("advance outbox cursor: %w", err)
	}
	t.mu.Lock()
	t.marks = append(t.marks, cursorMark{at: time.Now(), seq: last})
	t.mu.Unlock()
	return nil
}

// requeue rewinds the cursor over every row still kept. Rows are kept for
// the retention after they were published (prune deletes by publish
// marks), so what is left is what was published within about the window;
// publish times themselves are not stored, and republishing a few older
// rows is harmless.
func (t *cursorTracker) requeue(ctx context.Context, _ time.Duration) (int64, error) {
	var from, cur int64
	err := t.db.Reader().QueryRowContext(ctx,
		`SELECT coalesce(min(seq), 0), (SELECT published_seq FROM outbox_relay WHERE id = 1) FROM outbox`).Scan(&from, &cur)
	if err != nil {
		return 0, fmt.Errorf("find recent outbox rows: %w", err)
	}
	if from == 0 || from > cur {
		return 0, nil
	}
	if _, err := t.db.Writer().ExecContext(ctx, `UPDATE outbox_relay SET published_seq = $1 WHERE id = 1`, from-1); err != nil {
		return 0, fmt.Errorf("rewind outbox cursor: %w", err)
	}
	return cur - from + 1, nil
}

func (t *cursorTracker) pending(ctx context.Context) (int64, error) {
	var n int64
	err := t.db.Reader().QueryRowContext(ctx,
		`SELECT count(*) FROM outbox WHERE seq > (SELECT published_seq FROM outbox_relay WHERE id = 1)`).Scan(&n)
	return n, err
}

func (t *cursorTracker) prune(ctx context.Context, retention time.Duration) error {
	cutoff := time.Now().Add(-retention)
	t.mu.Lock()
	var upTo int64
	i := 0
	for ; i < len(t.marks) && t.marks[i].at.Before(cutoff); i++ {
		upTo = t.marks[i].seq
	}
	t.marks = t.marks[i:]
	t.mu.Unlock()
	if upTo == 0 {
		return nil
	}
	// The newest row stays whatever its age: SQLite numbers a new row one
	// above the highest left (the table has no AUTOINCREMENT, see its
	// migration), and an emptied table would number the next one 1, behind
	// the cursor, where the relay would never find it.
	if _, err := t.db.Writer().ExecContext(ctx,
		`DELETE FROM outbox WHERE seq <= $1 AND seq < (SELECT max(seq) FROM outbox)`, upTo); err != nil {
		return fmt.Errorf("prune outbox: %w", err)
	}
	return nil
}

// rowTracker stamps each row's published_at (PostgreSQL).
type rowTracker struct{ db *store.DB }

func (t *rowTracker) next(ctx context.Context, limit int) ([]int64, []bus.Message, error) {
	return scanMessages(ctx, t.db,
		`SELECT seq, event_id, subject, payload FROM outbox WHERE published_at IS NULL ORDER BY seq LIMIT $1`, limit)
}

func (t *rowTracker) markPublished(ctx context.Context, seqs []int64) error {
	// A transaction may commit a lower seq after a higher one was read, so
	// only the rows published are named.
	if _, err := t.db.Writer().ExecContext(ctx,
		`UPDATE outbox SET published_at = $1 WHERE seq = ANY($2)`, time.Now().UnixMilli(), seqs); err != nil {
		return fmt.Errorf("mark outbox rows published: %w", err)
	}
	return nil
}

func (t *rowTracker) requeue(ctx context.Context, window time.Duration) (int64, error) {
	res, err := t.db.Writer().ExecContext(ctx,
		`UPDATE outbox SET published_at = NULL WHERE published_at IS NOT NULL AND published_at >= $1`,
		time.Now().Add(-window).UnixMilli())
	if err != nil {
		return 0, fmt.Errorf("queue recent events for republishing: %w", err)
	}
	return res.RowsAffected()
}

func (t *rowTracker) pending(ctx context.Context) (int64, error) {
	var n int64
	err := t.db.Reader().QueryRowContext(ctx, `SELECT count(*) FROM outbox WHERE published_at IS NULL`).Scan(&n)
	return n, err
}

func (t *rowTracker) prune(ctx context.Context, retention time.Duration) error {
	if _, err := t.db.Writer().ExecContext(ctx,
		`DELETE FROM outbox WHERE published_at IS NOT NULL AND published_at < $1`,
		time.Now().Add(-retention).UnixMilli()); err != nil {
		return fmt.Errorf("prune outbox: %w", err)
	}
	return nil
}
