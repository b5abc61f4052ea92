package segments

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/alumoutreach/alumoutreach/internal/event"
	"github.com/alumoutreach/alumoutreach/internal/platform/bus"
	"github.com/alumoutreach/alumoutreach/internal/platform/fault"
	"github.com/alumoutreach/alumoutreach/internal/platform/outbox"
	"github.com/alumoutreach/alumoutreach/internal/platform/store"
	"github.com/alumoutreach/alumoutreach/internal/rule"
)

// DefinitionHandler returns the SEGMENTS_DEFINITION_CONSUMER handler: a
// new segment, or one whose rules changed, is evaluated over every contact.
func (s *Service) DefinitionHandler() bus.Handler {
	return func(ctx context.Context, env event.Envelope) error {
		var id string
		switch env.Type {
		case event.SegmentCreated:
			d, err := event.DecodeData[event.SegmentCreatedData](env)
			if err != nil {
				return bus.Permanent(err)
			}
			id = d.SegmentID
		case event.SegmentUpdated:
			d, err := event.DecodeData[event.SegmentUpdatedData](env)
			if err != nil {
				return bus.Permanent(err)
			}
			if !d.RulesChanged {
				return nil
			}
			id = d.SegmentID
		default:
			return nil
		}
		_, err := s.Evaluate(ctx, env.TenantID, id, func() { _ = bus.Progress(ctx) })
		if fe, ok := fault.As(err); ok && fe.Kind == fault.NotFound {
			return nil // deleted since: nothing to evaluate
		}
		return err
	}
}

// Evaluate reconciles a segment's membership with its rules over all the
// tenant's contacts. It works in chunks of contacts, each in a transaction
// of its own with its member events, so it neither holds the audience in
// memory nor the database's writer for long; progress, when not nil, is
// called after each chunk. Decisions are guarded by contact version, so a
// contact that changes meanwhile keeps the newer decision.
func (s *Service) Evaluate(ctx context.Context, tenant, id string, progress func()) (*Evaluation, error) {
	started := time.Now()
	seg, err := s.Get(ctx, tenant, id)
	if err != nil {
		return nil, err
	}
	r, err := rule.Parse(seg.Rules)
	if err != nil {
		return nil, fmt.Errorf("segment %s: stored rules do not parse: %w", id, err)
	}
	ctx = event.EnsureCorrelation(ctx)
	now := s.clock()
	ev := &Evaluation{SegmentID: id}
	lo := ""
	for {
		hi, last, err := s.chunkEnd(ctx, tenant, lo)
		if err != nil {
			return nil, err
		}
		added, removed, err := s.evaluateChunk(ctx, tenant, id, r, now, lo, hi, last)
		if err != nil {
			return nil, err
		}
		ev.Added += added
		ev.Removed += removed
		if progress != nil {
			progress()
		}
		if last {
			break
		}
		lo = hi
	}
	ev.DurationMs = time.Since(started).Milliseconds()
	err = s.ob.InTx(ctx, func(tx *sql.Tx, emit outbox.Emit) error {
		if s.db.Kind() == store.Postgres {
			// Live changes add to member_count under this row's lock. Taken
			// before counting, it makes each of them either counted here
			// (committed already) or added after this commit, never both
			// or neither.
			var n int64
			err := tx.QueryRowContext(ctx, `SELECT member_count FROM segments WHERE tenant_id = $1 AND id = $2 FOR UPDATE`, tenant, id).Scan(&n)
			if errors.Is(err, sql.ErrNoRows) {
				return notFound(id)
			}
			if err != nil {
				return fmt.Errorf("lock segment: %w", err)
			}
		}
		if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM segment_members WHERE tenant_id = $1 AND segment_id = $2 AND is_member = 1`,
			tenant, id).Scan(&ev.Members); err != nil {
			return fmt.Errorf("count members: %w", err)
		}
		res, err := tx.ExecContext(ctx, `UPDATE segments SET member_count = $3, evaluated_at = $4 WHERE tenant_id = $1 AND id = $2`,
			tenant, id, ev.Members, s.clock().UnixMilli())
		if err != nil {
			return fmt.Errorf("record evaluation: %w", err)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return notFound(id) // deleted while evaluated; its member rows went with it
		}
		env, err := event.New(ctx, event.SegmentEvaluated, event.SourceSegments, tenant, event.SegmentEvaluatedData{
			SegmentID: id, Members: ev.Members, Added: ev.Added, Removed: ev.Removed, DurationMs: ev.DurationMs})
		if err != nil {
			return err
		}
		return emit(env)
	})
	if err != nil {
		return nil, err
	}
	s.log.InfoContext(ctx, "segment evaluated", "tenant", tenant, "segment", id, "members", ev.Members,
		"added", ev.Added, "removed", ev.Removed, "durationMs", ev.DurationMs)
	return ev, nil
}

// chunkEnd returns the last contact id of the chunk after lo, and whether
// the chunk runs to the end.
func (s *Service) chunkEnd(ctx context.Context, tenant, lo string) (string, bool, error) {
	var hi string
	err := s.db.Reader().QueryRowContext(ctx, `SELECT contact_id FROM segment_contacts WHERE tenant_id = $1 AND contact_id > $2
		ORDER BY contact_id LIMIT 1 OFFSET `+strconv.Itoa(s.chunk-1), tenant, lo).Scan(&hi)
	if errors.Is(err, sql.ErrNoRows) {
		return "", true, nil
	}
	if err != nil {
		return "", false, fmt.Errorf("find evaluation chunk: %w", err)
	}
	return hi, false, nil
}

// evaluateChunk reconciles the contacts with ids in (lo, hi] (to the end
// when last) in one transaction.
func (s *Service) evaluateChunk(ctx context.Context, tenant, id string, r *rule.Rule, now time.Time, lo, hi string, last bool) (added, removed int64, err error) {
	// $1 tenant, $2 segment, $3 now, $4 lo, $5 hi (when bounded); the
	// rule's parameters follow.
	bound := ` AND c.contact_id > $4`
	args := []any{tenant, id, now.UnixMilli(), lo}
	if !last {
		bound += ` AND c.contact_id <= $5`
		args = append(args, hi)
	}
	where, ruleArgs := r.SQL(s.db.Kind(), "c", now, len(args)+1)
	args = append(args, ruleArgs...)

	err = s.ob.InTx(ctx, func(tx *sql.Tx, emit outbox.Emit) error {
		added, removed = 0, 0
		joined, err := s.reconcile(ctx, tx, `INSERT INTO segment_members (tenant_id, segment_id, contact_id, contact_version, is_member, changed_at)
			SELECT $1, $2, c.contact_id, c.version, 1, CAST($3 AS BIGINT) FROM segment_contacts c
			WHERE c.tenant_id = $1 AND c.deleted = 0`+bound+` AND (`+where+`)
			ON CONFLICT (tenant_id, segment_id, contact_id) DO UPDATE SET is_member = 1,
				contact_version = excluded.contact_version, changed_at = excluded.changed_at
			WHERE segment_members.is_member = 0 AND segment_members.contact_version <= excluded.contact_version
			RETURNING contact_id, contact_version`, args)
		if err != nil {
			return fmt.Errorf("add members: %w", err)
		}
		left, err := s.reconcile(ctx, tx, `UPDATE segment_members SET is_member = 0, contact_version = c.version, changed_at = CAST($3 AS BIGINT)
			FROM segment_contacts c
			WHERE segment_members.tenant_id = $1 AND segment_members.segment_id = $2 AND segment_members.is_member = 1
				AND c.tenant_id = $1 AND c.contact_id = segment_members.contact_id`+bound+`
				AND segment_members.contact_version <= c.version AND (c.deleted = 1 OR NOT (`+where+`))
			RETURNING segment_members.contact_id, segment_members.contact_version`, args)
		if err != nil {
			return fmt.Errorf("remove members: %w", err)
		}
		envs := make([]event.Envelope, 0, len(joined)+len(left))
		for i, m := range append(joined, left...) {
			env, err := memberEvent(ctx, tenant, id, m.ContactID, m.ContactVersion, i < len(joined))
			if err != nil {
				return err
			}
			envs = append(envs, env)
		}
		added, removed = int64(len(joined)), int64(len(left))
		return emit(envs...)
	})
	return added, removed, err
}

// reconcile runs a membership statement and returns the rows it changed.
func (s *Service) reconcile(ctx context.Context, tx *sql.Tx, q string, args []any) ([]Member, error) {
	rows, err := tx.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []Member
	for rows.Next() {
		var m Member
		if err := rows.Scan(&m.ContactID, &m.ContactVersion); err != nil {
			return nil, err
		}
		out = append(out, m)
	}
	return out, rows.Err()
}

// EvaluateTimeDependent evaluates every segment whose rules read the clock
// (within_last, or before/after relative to now through within_last): their
// membership changes as time passes, with no contact event to say so. The
// app calls it periodically; it returns how many segments it evaluated.
func (s *Service) EvaluateTimeDependent(ctx context.Context) (int, error) {
	rows, err := s.db.Reader().QueryContext(ctx, `SELECT tenant_id, id, rules FROM segments ORDER BY tenant_id, id`)
	if err != nil {
		return 0, fmt.Errorf("list segments: %w", err)
	}
	type ref struct{ tenant, id string }
	var due []ref
	for rows.Next() {
		var r ref
		var raw string
		if err := rows.Scan(&r.tenant, &r.id, &raw); err != nil {
			rows.Close()
			return 0, fmt.Errorf("list segments: %w", err)
		}
		if parsed, err := rule.Parse([]byte(raw)); err == nil && parsed.TimeDependent() {
			due = append(due, r)
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return 0, fmt.Errorf("list segments: %w", err)
	}
	done := 0
	for _, r := range due {
		if _, err := s.Evaluate(ctx, r.tenant, r.id, nil); err != nil {
			if fe, ok := fault.As(err); ok && fe.Kind == fault.NotFound {
				continue
			}
			return done, err
		}
		done++
	}
	return done, nil
}
