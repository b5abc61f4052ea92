package inbox

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/alumoutreach/alumoutreach/internal/event"
	"github.com/alumoutreach/alumoutreach/internal/platform/bus"
	"github.com/alumoutreach/alumoutreach/internal/platform/outbox"
)

// TimerConsumerName is the durable consumer of the inbox's fired
// deadline timers.
const TimerConsumerName = "INBOX_TIMER_CONSUMER"

// TimerKeyPrefix selects the inbox's timers: inbox.sla.<tenant>.<thread>.<stage>.
const TimerKeyPrefix = "inbox.sla."

// clearDeadline is the SET clause that ends a thread's deadline: the
// contact's messages are answered. A timer still armed for it then finds
// nothing to do.
const clearDeadline = `response_due_at = NULL, response_warn_at = NULL, response_kind = '', sla_state = 0`

// answers reports whether setting a thread to status answers the contact:
// pending waits for them, closed resolves the thread. Snoozing does not.
func answers(status string) bool {
	return status == event.ThreadPending || status == event.ThreadClosed
}

// armed is a deadline to put on timers once its transaction commits.
type armed struct {
	thread    string
	due, warn time.Time // warn zero: no warning
}

// timerData is what a deadline's timers carry: the deadline they are for,
// so a timer of a deadline since answered (and perhaps started again)
// changes nothing.
type timerData struct {
	Tenant string `json:"t"`
	Thread string `json:"h"`
	Stage  int    `json:"s"`
	Due    int64  `json:"d"`
}

// startDeadline gives the thread a response deadline for a message the
// contact sent at at, unless one already runs (the oldest unanswered
// message sets it) or none applies.
func (s *Service) startDeadline(ctx context.Context, tx *sql.Tx, tenant string, t *Thread, at time.Time) (*armed, error) {
	if t.ResponseDueAt != nil {
		return nil, nil
	}
	kind, d := event.SLAFirstResponse, s.sla.FirstResponse
	if t.replies > 0 {
		kind, d = event.SLANextResponse, s.sla.NextResponse
	}
	if d <= 0 {
		return nil, nil
	}
	a := &armed{thread: t.ID, due: at.Add(d)}
	var warn any
	if s.sla.WarningBefore > 0 {
		a.warn = a.due.Add(-s.sla.WarningBefore)
		warn = a.warn.UnixMilli()
	}
	if _, err := tx.ExecContext(ctx, `UPDATE inbox_threads SET response_due_at = $3, response_warn_at = $4, response_kind = $5, sla_state = 0
		WHERE tenant_id = $1 AND id = $2 AND response_due_at IS NULL`, tenant, t.ID, a.due.UnixMilli(), warn, kind); err != nil {
		return nil, fmt.Errorf("start response deadline: %w", err)
	}
	t.ResponseDueAt, t.SLA, t.responseKind = &a.due, slaNames[slaDue], kind
	return a, nil
}

// arm puts a committed deadline on durable timers. A timer that cannot be
// armed is left to the sweep, which finds the deadline in the table.
func (s *Service) arm(ctx context.Context, tenant string, a *armed) {
	if a == nil {
		return
	}
	for _, stage := range []int{slaWarned, slaBreached} {
		at := map[int]time.Time{slaWarned: a.warn, slaBreached: a.due}[stage]
		if at.IsZero() {
			continue
		}
		if !at.After(s.clock()) {
			// Already past (the message reached us late): reach it now
			// rather than through a timer set in the past.
			if err := s.reach(ctx, tenant, a.thread, stage, a.due.UnixMilli()); err != nil {
				s.log.WarnContext(ctx, "could not reach a past response deadline; the sweep will", "tenant", tenant, "thread", a.thread, "err", err)
			}
			continue
		}
		if s.timers == nil {
			continue
		}
		data, _ := json.Marshal(timerData{Tenant: tenant, Thread: a.thread, Stage: stage, Due: a.due.UnixMilli()})
		key := fmt.Sprintf("%s%s.%s.%d", TimerKeyPrefix, tenant, a.thread, stage)
		if err := s.timers.ScheduleTimer(ctx, key, at, data); err != nil {
			s.log.WarnContext(ctx, "could not arm a response deadline timer; the sweep will catch it", "tenant", tenant, "thread", a.thread, "err", err)
		}
	}
}

// HandleTimer is INBOX_TIMER_CONSUMER's handler: a deadline reached its
// warning or its breach.
func (s *Service) HandleTimer(ctx context.Context, key string, data []byte) error {
	var d timerData
	if err := json.Unmarshal(data, &d); err != nil || d.Tenant == "" || d.Thread == "" {
		return bus.Permanent(fmt.Errorf("inbox timer %s: unreadable data %q", key, data))
	}
	return s.reach(ctx, d.Tenant, d.Thread, d.Stage, d.Due)
}

// reach moves the thread's deadline due at due to stage (warned or
// breached) and publishes inbox.sla.warning or inbox.sla.breach, once: a
// deadline answered, started again, or already at that stage is left as
// it is. A breach reached without its warning publishes only the breach.
func (s *Service) reach(ctx context.Context, tenant, id string, stage int, due int64) error {
	subject := map[int]string{slaWarned: event.InboxSLAWarning, slaBreached: event.InboxSLABreach}[stage]
	if subject == "" {
		return bus.Permanent(fmt.Errorf("inbox timer: unknown stage %d", stage))
	}
	var kind string
	err := s.ob.InTx(ctx, func(tx *sql.Tx, emit outbox.Emit) error {
		kind = ""
		t, err := scanThread(tx.QueryRowContext(ctx, `UPDATE inbox_threads SET sla_state = $3
			WHERE tenant_id = $1 AND id = $2 AND response_due_at = $4 AND sla_state < $3 RETURNING `+threadColumns, tenant, id, stage, due))
		if errors.Is(err, sql.ErrNoRows) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("record %s: %w", subject, err)
		}
		env, err := event.New(ctx, subject, event.SourceInbox, tenant, event.InboxSLAData{ThreadID: id, ContactID: t.ContactID,
			AssigneeID: t.AssigneeID, Kind: t.responseKind, DueAt: event.Time{Time: time.UnixMilli(due).UTC()}})
		if err != nil {
			return err
		}
		kind = t.responseKind
		return emit(env)
	})
	if err == nil && kind != "" {
		s.metrics.reached.WithLabelValues(map[int]string{slaWarned: "warning", slaBreached: "breach"}[stage], kind).Inc()
	}
	return err
}

// sweepGrace is how late a deadline's timer may be before the sweep acts
// for it: the timers normally fire on time.
const sweepGrace = 30 * time.Second

// Sweep reaches the warnings and breaches whose timers are overdue (they
// could not be armed, or were lost), at most limit of them, and returns
// how many it handled.
func (s *Service) Sweep(ctx context.Context, limit int) (int, error) {
	cutoff := s.clock().Add(-sweepGrace).UnixMilli()
	rows, err := s.db.Reader().QueryContext(ctx, `SELECT tenant_id, id, response_due_at, response_warn_at, sla_state FROM inbox_threads
		WHERE response_due_at IS NOT NULL AND sla_state < $1 AND (response_due_at <= $2 OR (sla_state = 0 AND response_warn_at <= $2))
		ORDER BY response_due_at LIMIT $3`, slaBreached, cutoff, limit)
	if err != nil {
		return 0, fmt.Errorf("find overdue deadlines: %w", err)
	}
	type overdue struct {
		tenant, id string
		due        int64
		stage      int
	}
	var list []overdue
	for rows.Next() {
		var (
			o     overdue
			warn  sql.NullInt64
			state int
		)
		if err := rows.Scan(&o.tenant, &o.id, &o.due, &warn, &state); err != nil {
			rows.Close()
			return 0, fmt.Errorf("find overdue deadlines: %w", err)
		}
		o.stage = slaWarned
		if o.due <= cutoff {
			o.stage = slaBreached
		}
		list = append(list, o)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return 0, fmt.Errorf("find overdue deadlines: %w", err)
	}
	for _, o := range list {
		if err := s.reach(ctx, o.tenant, o.id, o.stage, o.due); err != nil {
			return 0, err
		}
	}
	return len(list), nil
}

// SweepNow runs one sweep and logs what it did: the periodic task's body.
func (s *Service) SweepNow(ctx context.Context) {
	if n, err := s.Sweep(ctx, 500); err != nil && ctx.Err() == nil {
		s.log.WarnContext(ctx, "sweep response deadlines", "err", err)
	} else if n > 0 {
		s.log.InfoContext(ctx, "response deadlines reached by the sweep (their timers were late or lost)", "threads", n)
	}
}
