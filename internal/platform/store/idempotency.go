package store

import (
	"context"
	"database/sql"
	"embed"
	"fmt"
	"io/fs"
	"time"
)

//go:embed migrations/*.sql
var migrationFiles embed.FS

// Migrations are the platform's own tables (processed_events).
func Migrations() fs.FS {
	sub, _ := fs.Sub(migrationFiles, "migrations")
	return sub
}

// MarkProcessed records, inside tx, that consumer has handled eventID. It
// returns false when the record already existed: the caller must then skip
// its effect, because the same transaction already applied it once.
func MarkProcessed(ctx context.Context, tx *sql.Tx, consumer, eventID string) (first bool, err error) {
	res, err := tx.ExecContext(ctx,
		`INSERT INTO processed_events (consumer, event_id, processed_at) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING`,
		consumer, eventID, time.Now().UnixMilli())
	if err != nil {
		return false, fmt.Errorf("record %s processed %s: %w", consumer, eventID, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, err
	}
	return n == 1, nil
}

// PruneProcessed deletes idempotency records older than keep. Keep them
// longer than the event stream's MaxAge: no redelivery can come after that.
func PruneProcessed(ctx context.Context, db *DB, keep time.Duration) (int64, error) {
	res, err := db.Writer().ExecContext(ctx, `DELETE FROM processed_events WHERE processed_at < $1`, time.Now().Add(-keep).UnixMilli())
	if err != nil {
		return 0, fmt.Errorf("prune processed events: %w", err)
	}
	return res.RowsAffected()
}
