// Package idempotency stores the answers of API requests sent with an
// Idempotency-Key, so that a client retrying a create after a timeout gets
// the first answer instead of a second contact (DESIGN.md §5). The HTTP
// server (httpapi) applies it to every authenticated POST.
package idempotency

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/alumoutreach/alumoutreach/internal/platform/httpapi"
	"github.com/alumoutreach/alumoutreach/internal/platform/store"
)

// Store keeps answers in the platform's idempotency_keys table.
type Store struct {
	db *store.DB
	// abandonAfter is how long a request may stay unanswered before a retry
	// may run it again: its process most likely died mid-request.
	abandonAfter time.Duration
}

var _ httpapi.IdempotencyStore = (*Store)(nil)

// New returns a Store on db, whose platform migrations have run.
func New(db *store.DB) *Store { return &Store{db: db, abandonAfter: time.Minute} }

// Begin claims key for a request with fingerprint. It returns started
// when the caller should run the request, or the stored answer (Status 0
// while the first request still runs).
func (s *Store) Begin(ctx context.Context, tenant, key, fingerprint string) (httpapi.StoredResponse, bool, error) {
	now := time.Now()
	res, err := s.db.Writer().ExecContext(ctx, `INSERT INTO idempotency_keys (tenant_id, idem_key, fingerprint, status, created_at)
		VALUES ($1, $2, $3, 0, $4) ON CONFLICT DO NOTHING`, tenant, key, fingerprint, now.UnixMilli())
	if err != nil {
		return httpapi.StoredResponse{}, false, fmt.Errorf("claim idempotency key: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 1 {
		return httpapi.StoredResponse{}, true, nil
	}
	var (
		r       httpapi.StoredResponse
		created int64
	)
	err = s.db.Writer().QueryRowContext(ctx, `SELECT fingerprint, status, content_type, location, body, created_at FROM idempotency_keys
		WHERE tenant_id = $1 AND idem_key = $2`, tenant, key).Scan(&r.Fingerprint, &r.Status, &r.ContentType, &r.Location, &r.Body, &created)
	if errors.Is(err, sql.ErrNoRows) {
		return s.Begin(ctx, tenant, key, fingerprint) // pruned in between
	}
	if err != nil {
		return r, false, fmt.Errorf("read idempotency key: %w", err)
	}
	if r.Status == 0 && r.Fingerprint == fingerprint && now.Sub(time.UnixMilli(created)) > s.abandonAfter {
		res, err := s.db.Writer().ExecContext(ctx, `UPDATE idempotency_keys SET created_at = $3
			WHERE tenant_id = $1 AND idem_key = $2 AND status = 0 AND created_at = $4`, tenant, key, now.UnixMilli(), created)
		if err != nil {
			return r, false, fmt.Errorf("take over idempotency key: %w", err)
		}
		if n, _ := res.RowsAffected(); n == 1 {
			return httpapi.StoredResponse{}, true, nil
		}
	}
	return r, false, nil
}

// Complete stores the answer of the request that claimed key.
func (s *Store) Complete(ctx context.Context, tenant, key string, r httpapi.StoredResponse) error {
	_, err := s.db.Writer().ExecContext(ctx, `UPDATE idempotency_keys SET status = $3, content_type = $4, location = $5, body = $6
		WHERE tenant_id = $1 AND idem_key = $2`, tenant, key, r.Status, r.ContentType, r.Location, r.Body)
	if err != nil {
		return fmt.Errorf("store idempotent answer: %w", err)
	}
	return nil
}

// Release forgets key, so that a retry runs the request again (after a
// server error, which changed nothing the client can rely on).
func (s *Store) Release(ctx context.Context, tenant, key string) error {
	_, err := s.db.Writer().ExecContext(ctx, `DELETE FROM idempotency_keys WHERE tenant_id = $1 AND idem_key = $2 AND status = 0`, tenant, key)
	if err != nil {
		return fmt.Errorf("release idempotency key: %w", err)
	}
	return nil
}

// Prune deletes answers older than keep.
func (s *Store) Prune(ctx context.Context, keep time.Duration) (int64, error) {
	res, err := s.db.Writer().ExecContext(ctx, `DELETE FROM idempotency_keys WHERE created_at < $1`, time.Now().Add(-keep).UnixMilli())
	if err != nil {
		return 0, fmt.Errorf("prune idempotency keys: %w", err)
	}
	return res.RowsAffected()
}
