// Package outboxtest reads what a module wrote to the outbox, so module
// tests can check the events of a change (and that a refused change wrote
// none) without running a relay.
package outboxtest

import (
	"context"
	"testing"

	"github.com/alumoutreach/alumoutreach/internal/event"
	"github.com/alumoutreach/alumoutreach/internal/platform/store"
)

// Reader returns the outbox's events in order, each call only those written
// since the previous call.
type Reader struct {
	db   *store.DB
	last int64
}

// NewReader starts reading db's outbox after what it holds now.
func NewReader(t testing.TB, db *store.DB) *Reader {
	t.Helper()
	r := &Reader{db: db}
	r.Next(t)
	return r
}

// Next returns the events written since the last call.
func (r *Reader) Next(t testing.TB) []event.Envelope {
	t.Helper()
	rows, err := r.db.Reader().QueryContext(context.Background(), `SELECT seq, payload FROM outbox WHERE seq > $1 ORDER BY seq`, r.last)
	if err != nil {
		t.Fatalf("read outbox: %v", err)
	}
	defer rows.Close()
	var out []event.Envelope
	for rows.Next() {
		var payload []byte
		if err := rows.Scan(&r.last, &payload); err != nil {
			t.Fatalf("read outbox: %v", err)
		}
		env, err := event.Decode(payload)
		if err != nil {
			t.Fatalf("outbox row %d does not decode: %v", r.last, err)
		}
		out = append(out, env)
	}
	if err := rows.Err(); err != nil {
		t.Fatalf("read outbox: %v", err)
	}
	return out
}

// Subjects lists the subjects of envs, in order.
func Subjects(envs []event.Envelope) []string {
	out := make([]string, len(envs))
	for i, e := range envs {
		out[i] = e.Type
	}
	return out
}
