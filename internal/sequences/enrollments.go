package sequences

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/alumoutreach/alumoutreach/internal/event"
	"github.com/alumoutreach/alumoutreach/internal/platform/bus"
	"github.com/alumoutreach/alumoutreach/internal/platform/fault"
	"github.com/alumoutreach/alumoutreach/internal/platform/outbox"
	"github.com/alumoutreach/alumoutreach/internal/platform/store"
)

// Consumer and timer names.
const (
	ReplyConsumerName = "SEQUENCES_REPLY_CONSUMER"
	TimerConsumerName = "SEQUENCES_TIMER_CONSUMER"
	// TimerKeyPrefix selects the step timers: sequence.step.<tenant>.<enrollment>.
	TimerKeyPrefix = "sequence.step."
)

// ReplySubjects is SEQUENCES_REPLY_CONSUMER's filter.
var ReplySubjects = []string{event.InboxMessageReceived}

// StopConsumerName is the durable consumer of the events that end
// enrollments besides replies.
const StopConsumerName = "SEQUENCES_STOP_CONSUMER"

// StopSubjects is SEQUENCES_STOP_CONSUMER's filter: hard bounces and
// opt-outs.
var StopSubjects = []string{event.PipelineMessageBounced, event.ContactConsentRevoked}

const enrollmentColumns = `id, sequence_id, contact_id, status, step, due_at, enrolled_by, exit_reason, created_at, updated_at, ended_at`

func scanEnrollment(r store.Scanner) (*Enrollment, error) {
	var (
		e           Enrollment
		due, ended  sql.NullInt64
		created, up int64
	)
	if err := r.Scan(&e.ID, &e.SequenceID, &e.ContactID, &e.Status, &e.Step, &due, &e.EnrolledBy, &e.ExitReason, &created, &up, &ended); err != nil {
		return nil, err
	}
	e.CreatedAt, e.UpdatedAt = time.UnixMilli(created).UTC(), time.UnixMilli(up).UTC()
	if due.Valid {
		t := time.UnixMilli(due.Int64).UTC()
		e.DueAt = &t
	}
	if ended.Valid {
		t := time.UnixMilli(ended.Int64).UTC()
		e.EndedAt = &t
	}
	return &e, nil
}

func enrollmentNotFound(id string) error {
	e := fault.New(fault.NotFound, "enrollment_not_found", "no sequence enrollment %q in this tenant", id)
	e.Details = map[string]any{"enrollmentId": id}
	return e
}

func enrollmentData(e *Enrollment) event.SequenceEnrollmentData {
	return event.SequenceEnrollmentData{SequenceID: e.SequenceID, EnrollmentID: e.ID, ContactID: e.ContactID}
}

// due is a step to put on a timer once its transaction commits.
type due struct {
	tenant, enrollment string
	step               int
	at                 time.Time
}

type timerData struct {
	Tenant     string `json:"t"`
	Enrollment string `json:"e"`
	Step       int    `json:"s"`
}

// arm puts committed steps on durable timers; one that cannot be armed is
// left to the sweep. A step already due runs at once instead: a timer set
// in the past fires only when the server's scheduler next looks, which was
// measured to take seconds at times.
func (s *Service) arm(ctx context.Context, ds ...due) {
	for _, d := range ds {
		if !d.at.After(s.clock()) {
			if _, err := s.advance(ctx, d.tenant, d.enrollment, d.step, EnrollmentActive, ""); err != nil && !errors.Is(err, errStale) {
				s.log.WarnContext(ctx, "could not run a sequence step now; the sweep will run it", "tenant", d.tenant, "enrollment", d.enrollment, "err", err)
			}
			continue
		}
		if s.timers == nil {
			continue // the sweep runs it
		}
		data, _ := json.Marshal(timerData{Tenant: d.tenant, Enrollment: d.enrollment, Step: d.step})
		if err := s.timers.ScheduleTimer(ctx, TimerKeyPrefix+d.tenant+"."+d.enrollment, d.at, data); err != nil {
			s.log.WarnContext(ctx, "could not arm a sequence step's timer; the sweep will run it", "tenant", d.tenant, "enrollment", d.enrollment, "err", err)
		}
	}
}

// Enroll puts a contact in an active sequence, publishing
// sequence.enrollment.created; its first step runs after its delay.
func (s *Service) Enroll(ctx context.Context, tenant, sequenceID, contactID, by string) (*Enrollment, error) {
	contactID = strings.TrimSpace(contactID)
	if contactID == "" {
		return nil, fault.New(fault.Invalid, "invalid_field", "contactId is required: the contact to enroll")
	}
	if err := checkID("enrolledBy", by); err != nil {
		return nil, err
	}
	ok, err := s.contacts.Exists(ctx, tenant, contactID)
	if err != nil {
		return nil, err
	}
	if !ok {
		e := fault.New(fault.NotFound, "contact_not_found", "no contact %q in this tenant", contactID)
		e.Details = map[string]any{"contactId": contactID}
		return nil, e
	}
	var (
		out  *Enrollment
		next due
	)
	err = s.ob.InTx(ctx, func(tx *sql.Tx, emit outbox.Emit) error {
		q, err := s.get(ctx, tx, tenant, sequenceID)
		if err != nil {
			return err
		}
		if q.Status != StatusActive {
			e := fault.New(fault.Conflict, "sequence_not_active", "sequence %q is %s: activate it before enrolling contacts", q.Name, q.Status)
			e.Details = map[string]any{"status": q.Status}
			return e
		}
		var current string
		err = tx.QueryRowContext(ctx, `SELECT id FROM sequence_enrollments WHERE tenant_id = $1 AND sequence_id = $2 AND contact_id = $3
			AND status IN ('active', 'waiting')`, tenant, sequenceID, contactID).Scan(&current)
		if err == nil {
			e := fault.New(fault.Conflict, "already_enrolled", "the contact is in this sequence already (enrollment %s); exit it first to start over", current)
			e.Details = map[string]any{"enrollmentId": current}
			return e
		}
		if !errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("look for an enrollment: %w", err)
		}
		now := s.clock()
		at := now.Add(q.Steps[0].delay)
		e := &Enrollment{ID: event.NewID(), SequenceID: sequenceID, ContactID: contactID, Status: EnrollmentActive, DueAt: &at,
			EnrolledBy: by, CreatedAt: now, UpdatedAt: now}
		if _, err := tx.ExecContext(ctx, `INSERT INTO sequence_enrollments (tenant_id, id, sequence_id, contact_id, status, step, due_at, enrolled_by,
			created_at, updated_at) VALUES ($1, $2, $3, $4, $5, 0, $6, $7, $8, $8)`, tenant, e.ID, sequenceID, contactID, e.Status, at.UnixMilli(),
			by, now.UnixMilli()); err != nil {
			if store.IsUniqueViolation(err) {
				return fault.New(fault.Conflict, "already_enrolled", "the contact was just enrolled in this sequence")
			}
			return fmt.Errorf("insert enrollment: %w", err)
		}
		env, err := event.New(ctx, event.SequenceEnrollmentCreated, event.SourceSequences, tenant,
			event.SequenceEnrollmentCreatedData{SequenceEnrollmentData: enrollmentData(e), EnrolledBy: by})
		if err != nil {
			return err
		}
		out, next = e, due{tenant: tenant, enrollment: e.ID, step: 0, at: at}
		return emit(env)
	})
	if err != nil {
		return nil, err
	}
	s.arm(ctx, next)
	return out, nil
}

// GetEnrollment returns one enrollment.
func (s *Service) GetEnrollment(ctx context.Context, tenant, id string) (*Enrollment, error) {
	e, err := scanEnrollment(s.db.Reader().QueryRowContext(ctx, `SELECT `+enrollmentColumns+` FROM sequence_enrollments
		WHERE tenant_id = $1 AND id = $2`, tenant, id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, enrollmentNotFound(id)
	}
	if err != nil {
		return nil, fmt.Errorf("read enrollment: %w", err)
	}
	return e, nil
}

// EnrollmentFilter selects enrollments; empty fields select all.
type EnrollmentFilter struct {
	SequenceID, ContactID, Status string
}

// ListEnrollments returns enrollments, newest first (ids are time-ordered),
// after the enrollment id before.
func (s *Service) ListEnrollments(ctx context.Context, tenant string, f EnrollmentFilter, before string, limit int) ([]*Enrollment, error) {
	var w store.Where
	w.And("tenant_id = ?", tenant)
	w.AndIf("sequence_id = ?", f.SequenceID)
	w.AndIf("contact_id = ?", f.ContactID)
	w.AndIf("status = ?", f.Status)
	w.AndIf("id < ?", before)
	return store.Collect(ctx, s.db.Reader(), "list enrollments", scanEnrollment, `SELECT `+enrollmentColumns+` FROM sequence_enrollments `+w.String()+
		fmt.Sprintf(` ORDER BY id DESC LIMIT %d`, limit), w.Args()...)
}

// errStale says the enrollment moved since the caller looked.
var errStale = errors.New("enrollment moved")

// advance runs the enrollment's current step if it is still at step in
// status want: a message step queues its message and moves on; a manual
// step, when the timer reaches it, publishes pending_manual and waits
// (status waiting) until a person completes it (completedBy set). After
// the last step the enrollment completes. Everything commits together; a
// stale call (a redelivered timer, the sweep racing it) changes nothing.
func (s *Service) advance(ctx context.Context, tenant, id string, step int, want, completedBy string) (*Enrollment, error) {
	var (
		out  *Enrollment
		next []due
	)
	err := s.ob.InTx(ctx, func(tx *sql.Tx, emit outbox.Emit) error {
		next = nil
		e, err := scanEnrollment(tx.QueryRowContext(ctx, `SELECT `+enrollmentColumns+` FROM sequence_enrollments WHERE tenant_id = $1 AND id = $2`, tenant, id))
		if errors.Is(err, sql.ErrNoRows) {
			return enrollmentNotFound(id)
		}
		if err != nil {
			return fmt.Errorf("read enrollment: %w", err)
		}
		out = e
		if e.Status != want || e.Step != step {
			return errStale
		}
		q, err := s.get(ctx, tx, tenant, e.SequenceID)
		if err != nil {
			return err
		}
		if want == EnrollmentActive && q.Status != StatusActive {
			return errStale // paused: the step runs once the sequence is active again
		}
		now := s.clock()
		st := q.Steps[step]
		info := event.SequenceStepData{SequenceEnrollmentData: enrollmentData(e), StepID: st.ID, StepNumber: int64(step + 1), StepType: st.Type}
		var envs []event.Envelope
		add := func(subject string, data any) error {
			env, err := event.New(ctx, subject, event.SourceSequences, tenant, data)
			envs = append(envs, env)
			return err
		}
		if st.manual() && want == EnrollmentActive {
			// A person's turn: the enrollment waits for them.
			if _, err := tx.ExecContext(ctx, `UPDATE sequence_enrollments SET status = $3, due_at = NULL, updated_at = $4
				WHERE tenant_id = $1 AND id = $2`, tenant, id, EnrollmentWaiting, now.UnixMilli()); err != nil {
				return fmt.Errorf("update enrollment: %w", err)
			}
			e.Status, e.DueAt, e.UpdatedAt = EnrollmentWaiting, nil, now
			if err := add(event.SequenceStepPendingManual, event.SequenceStepPendingManualData{SequenceStepData: info, AssigneeID: q.OwnerID}); err != nil {
				return err
			}
			return emit(envs...)
		}
		executed := event.SequenceStepExecutedData{SequenceStepData: info, CompletedBy: completedBy}
		if !st.manual() {
			executed.MessageID = event.NewID()
			if err := add(event.PipelineMessageQueued, event.MessageData{MessageID: executed.MessageID, Channel: st.Type, ContactID: e.ContactID,
				SourceType: event.MessageSourceSequence, SourceID: q.ID, SourceName: q.Name, TemplateID: st.TemplateID,
				RunID: e.ID, Step: e.ID + ":" + st.ID}); err != nil {
				return err
			}
		}
		if err := add(event.SequenceStepExecuted, executed); err != nil {
			return err
		}
		e.Step, e.UpdatedAt = step+1, now
		if e.Step == len(q.Steps) {
			e.Status, e.DueAt, e.EndedAt = EnrollmentCompleted, nil, &now
			if err := add(event.SequenceEnrollmentCompleted, enrollmentData(e)); err != nil {
				return err
			}
		} else {
			at := now.Add(q.Steps[e.Step].delay)
			e.Status, e.DueAt = EnrollmentActive, &at
			next = append(next, due{tenant: tenant, enrollment: id, step: e.Step, at: at})
		}
		if _, err := tx.ExecContext(ctx, `UPDATE sequence_enrollments SET status = $3, step = $4, due_at = $5, updated_at = $6, ended_at = $7
			WHERE tenant_id = $1 AND id = $2`, tenant, id, e.Status, e.Step, timeOrNil(e.DueAt), now.UnixMilli(), timeOrNil(e.EndedAt)); err != nil {
			return fmt.Errorf("update enrollment: %w", err)
		}
		return emit(envs...)
	})
	if err != nil {
		return out, err
	}
	s.arm(ctx, next...)
	return out, nil
}

func timeOrNil(t *time.Time) any {
	if t == nil {
		return nil
	}
	return t.UnixMilli()
}

// HandleTimer is SEQUENCES_TIMER_CONSUMER's handler: a step fell due.
func (s *Service) HandleTimer(ctx context.Context, key string, data []byte) error {
	var d timerData
	if err := json.Unmarshal(data, &d); err != nil || d.Tenant == "" || d.Enrollment == "" {
		return bus.Permanent(fmt.Errorf("sequence timer %s: unreadable data %q", key, data))
	}
	_, err := s.advance(ctx, d.Tenant, d.Enrollment, d.Step, EnrollmentActive, "")
	if errors.Is(err, errStale) {
		return nil
	}
	if fe, ok := fault.As(err); ok && fe.Kind == fault.NotFound {
		return nil // the enrollment or its sequence is gone
	}
	return err
}

// CompleteStep records a person's doing of the manual step an enrollment
// waits for, and moves it on.
func (s *Service) CompleteStep(ctx context.Context, tenant, id, by string) (*Enrollment, error) {
	if err := checkID("completedBy", by); err != nil {
		return nil, err
	}
	e, err := s.GetEnrollment(ctx, tenant, id)
	if err != nil {
		return nil, err
	}
	if e.Status != EnrollmentWaiting {
		return nil, notWaiting(e)
	}
	out, err := s.advance(ctx, tenant, id, e.Step, EnrollmentWaiting, by)
	if errors.Is(err, errStale) {
		return nil, notWaiting(out)
	}
	return out, err
}

func notWaiting(e *Enrollment) error {
	f := fault.New(fault.Conflict, "no_manual_step", "enrollment %s waits for no manual step (it is %s)", e.ID, e.Status)
	f.Details = map[string]any{"status": e.Status}
	return f
}

// Exit stops an enrollment early, publishing sequence.enrollment.exited
// with reason (and replied first when the reason is a reply).
func (s *Service) Exit(ctx context.Context, tenant, id, reason string) (*Enrollment, error) {
	var out *Enrollment
	err := s.ob.InTx(ctx, func(tx *sql.Tx, emit outbox.Emit) error {
		e, err := scanEnrollment(tx.QueryRowContext(ctx, `SELECT `+enrollmentColumns+` FROM sequence_enrollments WHERE tenant_id = $1 AND id = $2`, tenant, id))
		if errors.Is(err, sql.ErrNoRows) {
			return enrollmentNotFound(id)
		}
		if err != nil {
			return fmt.Errorf("read enrollment: %w", err)
		}
		if e.Status != EnrollmentActive && e.Status != EnrollmentWaiting {
			f := fault.New(fault.Conflict, "enrollment_ended", "enrollment %s has ended (%s)", id, e.Status)
			f.Details = map[string]any{"status": e.Status}
			return f
		}
		envs, err := s.exit(ctx, tx, tenant, e, reason, nil)
		if err != nil {
			return err
		}
		out = e
		return emit(envs...)
	})
	return out, err
}

// exit ends e with reason inside tx and returns its events; reply, when
// set, is the inbox message that ended it.
func (s *Service) exit(ctx context.Context, tx *sql.Tx, tenant string, e *Enrollment, reason string, reply *event.InboxMessageData) ([]event.Envelope, error) {
	now := s.clock()
	res, err := tx.ExecContext(ctx, `UPDATE sequence_enrollments SET status = $3, exit_reason = $4, due_at = NULL, updated_at = $5, ended_at = $5
		WHERE tenant_id = $1 AND id = $2 AND status IN ('active', 'waiting')`, tenant, e.ID, EnrollmentExited, reason, now.UnixMilli())
	if err != nil {
		return nil, fmt.Errorf("end enrollment: %w", err)
	}
	if n, _ := res.RowsAffected(); n != 1 {
		return nil, nil // ended meanwhile
	}
	e.Status, e.ExitReason, e.DueAt, e.UpdatedAt, e.EndedAt = EnrollmentExited, reason, nil, now, &now
	var envs []event.Envelope
	if reply != nil {
		env, err := event.New(ctx, event.SequenceEnrollmentReplied, event.SourceSequences, tenant, event.SequenceEnrollmentRepliedData{
			SequenceEnrollmentData: enrollmentData(e), ThreadID: reply.ThreadID, MessageID: reply.MessageID, Channel: reply.Channel})
		if err != nil {
			return nil, err
		}
		envs = append(envs, env)
	}
	env, err := event.New(ctx, event.SequenceEnrollmentExited, event.SourceSequences, tenant,
		event.SequenceEnrollmentExitedData{SequenceEnrollmentData: enrollmentData(e), Reason: reason})
	if err != nil {
		return nil, err
	}
	return append(envs, env), nil
}

// HandleReply is SEQUENCES_REPLY_CONSUMER's handler: a message from a
// contact ends their enrollments in the sequences that exit on reply. A
// redelivery finds them ended and publishes nothing.
func (s *Service) HandleReply(ctx context.Context, env event.Envelope) error {
	d, err := event.DecodeData[event.InboxMessageData](env)
	if err != nil {
		return bus.Permanent(err)
	}
	if d.ContactID == "" {
		return nil // a sender who is no contact is in no sequence
	}
	return s.exitWhere(ctx, env, event.SequenceExitReplied, &d, func(e *Enrollment, q *Sequence) bool {
		return e.ContactID == d.ContactID && q.ExitOnReply
	}, `e.contact_id = $2`, d.ContactID)
}

// HandleStop is SEQUENCES_STOP_CONSUMER's handler: a hard bounce of a
// sequence's message ends its enrollment (bounced), and a contact's opt-out
// on a channel ends their enrollments in sequences that send on it
// (unsubscribed). The pipeline would block those sends anyway; ending the
// enrollment says so, and stops its manual steps too.
func (s *Service) HandleStop(ctx context.Context, env event.Envelope) error {
	switch env.Type {
	case event.PipelineMessageBounced:
		d, err := event.DecodeData[event.MessageData](env)
		if err != nil {
			return bus.Permanent(err)
		}
		if d.SourceType != event.MessageSourceSequence || d.BounceType != event.BounceHard || d.RunID == "" {
			return nil
		}
		return s.exitWhere(ctx, env, event.SequenceExitBounced, nil, func(*Enrollment, *Sequence) bool { return true },
			`e.id = $2`, d.RunID)
	case event.ContactConsentRevoked:
		d, err := event.DecodeData[event.ContactConsentData](env)
		if err != nil {
			return bus.Permanent(err)
		}
		return s.exitWhere(ctx, env, event.SequenceExitUnsubscribed, nil, func(_ *Enrollment, q *Sequence) bool {
			return slices.ContainsFunc(q.Steps, func(st Step) bool { return st.Type == d.Channel })
		}, `e.contact_id = $2`, d.ContactID)
	}
	return nil
}

// exitWhere ends, with reason, the active or waiting enrollments of
// cause's tenant matching cond (a condition on e with the one parameter $2)
// that keep says to end, in one transaction with their events. Only
// enrollments made before cause are ended: an opt-out or a reply handled
// late must not end an enrollment a person made after it, knowing of it.
// Both times are in milliseconds; one made in the same millisecond as the
// event counts as before it (for an opt-out, the safer side).
func (s *Service) exitWhere(ctx context.Context, cause event.Envelope, reason string, reply *event.InboxMessageData,
	keep func(*Enrollment, *Sequence) bool, cond string, arg any) error {
	tenant := cause.TenantID
	return s.ob.InTx(ctx, func(tx *sql.Tx, emit outbox.Emit) error {
		list, err := store.Collect(ctx, tx, "find enrollments to end", scanEnrollment,
			`SELECT `+prefixed("e.", enrollmentColumns)+` FROM sequence_enrollments e
			WHERE e.tenant_id = $1 AND `+cond+` AND e.status IN ('active', 'waiting') AND e.created_at <= $3`,
			tenant, arg, cause.Timestamp.UnixMilli())
		if err != nil {
			return err
		}
		var envs []event.Envelope
		for _, e := range list {
			q, err := s.get(ctx, tx, tenant, e.SequenceID)
			if err != nil {
				return err
			}
			if !keep(e, q) {
				continue
			}
			more, err := s.exit(ctx, tx, tenant, e, reason, reply)
			if err != nil {
				return err
			}
			envs = append(envs, more...)
		}
		return emit(envs...)
	})
}

func prefixed(p, columns string) string {
	parts := strings.Split(columns, ",")
	for i, c := range parts {
		parts[i] = p + strings.TrimSpace(c)
	}
	return strings.Join(parts, ", ")
}

// sweepGrace is how late a step's timer may be before the sweep runs it.
const sweepGrace = 30 * time.Second

// Sweep runs the steps of active sequences that are overdue (their timer
// was lost, or they fell due while the sequence was paused), at most
// limit, and returns how many ran.
func (s *Service) Sweep(ctx context.Context, limit int) (int, error) {
	rows, err := s.db.Reader().QueryContext(ctx, `SELECT e.tenant_id, e.id, e.step FROM sequence_enrollments e
		JOIN sequences q ON q.tenant_id = e.tenant_id AND q.id = e.sequence_id
		WHERE e.due_at IS NOT NULL AND e.due_at <= $1 AND e.status = 'active' AND q.status = 'active' ORDER BY e.due_at LIMIT $2`,
		s.clock().Add(-sweepGrace).UnixMilli(), limit)
	if err != nil {
		return 0, fmt.Errorf("find overdue steps: %w", err)
	}
	type overdue struct {
		tenant, id string
		step       int
	}
	var list []overdue
	for rows.Next() {
		var o overdue
		if err := rows.Scan(&o.tenant, &o.id, &o.step); err != nil {
			rows.Close()
			return 0, err
		}
		list = append(list, o)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return 0, err
	}
	ran := 0
	for _, o := range list {
		_, err := s.advance(ctx, o.tenant, o.id, o.step, EnrollmentActive, "")
		switch {
		case errors.Is(err, errStale):
		case err != nil:
			return ran, err
		default:
			ran++
		}
	}
	return ran, nil
}

// SweepNow runs one sweep and logs what it did: the periodic task's body.
func (s *Service) SweepNow(ctx context.Context) {
	if n, err := s.Sweep(ctx, 500); err != nil && ctx.Err() == nil {
		s.log.WarnContext(ctx, "sweep sequence steps", "err", err)
	} else if n > 0 {
		s.log.InfoContext(ctx, "sequence steps run by the sweep (late timers, or a sequence active again)", "steps", n)
	}
}
