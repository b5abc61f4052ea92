package workflows

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"strconv"
	"strings"
	"time"

	"github.com/alumoutreach/alumoutreach/internal/event"
	"github.com/alumoutreach/alumoutreach/internal/platform/fault"
	"github.com/alumoutreach/alumoutreach/internal/platform/outbox"
	"github.com/alumoutreach/alumoutreach/internal/platform/store"
	"github.com/alumoutreach/alumoutreach/internal/rule"
)

// How runs move. A run goes from node to node inside one transaction until
// it must wait (a delay or a wait_until) or ends; that transaction writes
// the run, its path, its node counts and every event of the nodes it
// executed (pipeline.message.queued for sends) through the outbox, so a
// crash before the commit leaves no trace and a crash after it loses
// nothing. Every write to an existing run is fenced on the (step, status)
// it was read at: a timer, a message report and the sweep that race to wake
// the same run move it once, and the others find it moved and do nothing.
//
// The one effect outside the transaction is update_contact, which the
// contacts module applies in its own. It is applied before the commit and
// is idempotent (setting a value or a tag twice changes nothing the second
// time), so a retry after a failed commit repeats it harmlessly.

// maxNodesPerMove bounds how many nodes one move executes. Validation
// refuses cycles without a delay, so a move visits each node at most once;
// the bound only guards against a definition that slipped through.
const maxNodesPerMove = 2 * maxNodes

// TimerKeyPrefix selects the workflows' timers on ALUM_TIMERS.
const TimerKeyPrefix = "workflow.wake."

func timerKey(tenant, runID string) string { return TimerKeyPrefix + tenant + "." + runID }

type timerData struct {
	Tenant string `json:"t"`
	RunID  string `json:"r"`
	Step   int64  `json:"s"`
}

// errStale means the run moved (or ended) since it was read.
var errStale = errors.New("run moved since it was read")

// errNotEligible means the re-entry policy keeps the contact out.
var errNotEligible = errors.New("contact may not enter the workflow again")

type statKey struct{ node, outcome string }

// move is one transaction's worth of a run's progress.
type move struct {
	run        *Run
	wf         *Workflow // head: id, name, status
	def        *Definition
	newRun     bool
	prevStep   int64
	prevStatus string
	leave      *Step // the waiting step the run leaves, if it was waiting
	steps      []*Step
	stats      map[statKey]int64
	events     []event.Envelope
	wake       time.Time
	now        time.Time
	// late is how long after its time a timed wake moved the run (-1: not one).
	late time.Duration

	contact    *rule.Contact
	contactErr error
}

func (s *Service) newMove(r *Run, wf *Workflow, def *Definition, newRun bool) *move {
	return &move{run: r, wf: wf, def: def, newRun: newRun, prevStep: r.Step, prevStatus: r.Status,
		stats: map[statKey]int64{}, now: s.clock(), late: -1}
}

// loadContact reads the run's contact once per move (again after an
// update_contact node changed it).
func (s *Service) loadContact(ctx context.Context, m *move) (*rule.Contact, error) {
	if m.contact == nil && m.contactErr == nil {
		c, err := s.contacts.Contact(ctx, m.run.tenant(), m.run.ContactID)
		if err != nil {
			m.contactErr = err
		} else {
			m.contact = &c
		}
	}
	return m.contact, m.contactErr
}

func (s *Service) emit(ctx context.Context, m *move, subject string, data event.Payload) error {
	env, err := event.New(ctx, subject, event.SourceWorkflows, m.run.tenant(), data)
	if err != nil {
		return fmt.Errorf("%s event: %w", subject, err)
	}
	m.events = append(m.events, env)
	return nil
}

func (m *move) runData() event.WorkflowRunData {
	return event.WorkflowRunData{WorkflowID: m.wf.ID, WorkflowName: m.wf.Name, Version: m.run.Version, RunID: m.run.ID, ContactID: m.run.ContactID}
}

// leaveStep records that the run leaves st by branch.
func (s *Service) leaveStep(ctx context.Context, m *move, st *Step, branch string) error {
	st.Branch = branch
	left := m.now
	st.LeftAt = &left
	m.stats[statKey{st.NodeID, branch}]++
	return s.emit(ctx, m, event.WorkflowNodeExecuted, event.WorkflowNodeExecutedData{
		WorkflowRunData: m.runData(), NodeID: st.NodeID, NodeType: st.NodeType, Branch: branch, MessageID: st.MessageID})
}

// end finishes the run with a final status.
func (s *Service) end(ctx context.Context, m *move, status, reason, code string) error {
	r := m.run
	r.Status, r.Reason, r.WaitKind, r.WakeAt, r.waitMessageID, r.heldBranch = status, reason, "", nil, "", ""
	ended := m.now
	r.EndedAt = &ended
	switch status {
	case RunCompleted:
		return s.emit(ctx, m, event.WorkflowRunCompleted, m.runData())
	case RunFailed:
		return s.emit(ctx, m, event.WorkflowRunFailed, event.WorkflowRunFailedData{WorkflowRunData: m.runData(), NodeID: r.NodeID, Reason: reason, ErrorCode: code})
	}
	return nil
}

// fail ends the run as failed in the node it is in.
func (s *Service) fail(ctx context.Context, m *move, st *Step, reason, code string) error {
	if st != nil {
		st.Branch = "failed"
		left := m.now
		st.LeftAt = &left
		m.stats[statKey{st.NodeID, "failed"}]++
	}
	return s.end(ctx, m, RunFailed, reason, code)
}

// permanentCause reports whether err is the caller's mistake (a contact
// gone, a change the contact refuses), which fails the run, rather than a
// passing fault, which is retried.
func permanentCause(err error) bool {
	if errors.Is(err, ErrContactNotFound) {
		return true
	}
	fe, ok := fault.As(err)
	return ok && (fe.Kind == fault.Invalid || fe.Kind == fault.NotFound || fe.Kind == fault.Conflict)
}

// execute runs nodes from id on until the run waits or ends.
func (s *Service) execute(ctx context.Context, m *move, id string) error {
	r := m.run
	for range maxNodesPerMove {
		if id == "" {
			return s.end(ctx, m, RunCompleted, "", "")
		}
		n := m.def.node(id)
		r.Step++
		r.NodeID = id
		st := &Step{Step: r.Step, NodeID: n.ID, NodeType: n.Type, EnteredAt: m.now}
		m.steps = append(m.steps, st)
		m.stats[statKey{n.ID, "entered"}]++
		next, branch, wait, err := s.executeNode(ctx, m, n, st)
		if err != nil {
			if permanentCause(err) {
				return s.fail(ctx, m, st, err.Error(), "node_failed")
			}
			return err
		}
		if wait {
			r.Status = RunWaiting
			return nil
		}
		if err := s.leaveStep(ctx, m, st, branch); err != nil {
			return err
		}
		if n.Type == NodeExit {
			return s.end(ctx, m, RunCompleted, "", "")
		}
		id = next
	}
	return s.fail(ctx, m, nil, fmt.Sprintf("more than %d nodes without a wait", maxNodesPerMove), "too_many_nodes")
}

// executeNode does one node: it returns the next node and the branch taken,
// or wait when the run stays in the node.
func (s *Service) executeNode(ctx context.Context, m *move, n *Node, st *Step) (next, branch string, wait bool, err error) {
	r := m.run
	switch n.Type {
	case NodeSend:
		st.MessageID = event.NewID()
		err := s.emit(ctx, m, event.PipelineMessageQueued, event.PipelineMessageQueuedData{
			MessageID: st.MessageID, Channel: n.Channel, ContactID: r.ContactID,
			SourceType: event.MessageSourceWorkflow, SourceID: m.wf.ID, SourceName: m.wf.Name,
			TemplateID: n.TemplateID, RunID: r.ID, Step: sendStep(r.ID, st.Step),
		})
		return n.Next, BranchNext, false, err
	case NodeDelay:
		loc := time.UTC
		if n.Until != "" {
			c, err := s.loadContact(ctx, m)
			if err != nil {
				return "", "", false, err
			}
			if l, err := time.LoadLocation(c.TimeZone); c.TimeZone != "" && err == nil {
				loc = l
			}
		}
		s.wait(m, waitDelay, "", n.delayUntil(m.now, loc))
		return "", "", true, nil
	case NodeWaitUntil:
		if n.Event != "" {
			sent := m.sentBy(n.NodeID)
			if sent == nil {
				var err error
				if sent, err = s.lastSend(ctx, r, n.NodeID); err != nil {
					return "", "", false, err
				}
			}
			if sent == nil {
				// The awaited message was never sent on this run's path.
				return n.TimeoutNext, BranchTimeout, false, nil
			}
			if sent.flags&waitFlag(n.Event) != 0 {
				return n.Next, BranchMet, false, nil
			}
			s.wait(m, n.Event, sent.MessageID, m.now.Add(n.timeout))
			return "", "", true, nil
		}
		c, err := s.loadContact(ctx, m)
		if err != nil {
			return "", "", false, err
		}
		if n.rule.Match(c, m.now) {
			return n.Next, BranchMet, false, nil
		}
		s.wait(m, waitRule, "", m.now.Add(n.timeout))
		return "", "", true, nil
	case NodeCondition:
		c, err := s.loadContact(ctx, m)
		if err != nil {
			return "", "", false, err
		}
		if n.rule.Match(c, m.now) {
			return n.Yes, BranchYes, false, nil
		}
		return n.No, BranchNo, false, nil
	case NodeSplit:
		h := fnv.New64a()
		fmt.Fprintf(h, "%s:%d", r.ID, st.Step) // the same branch on a retry
		roll := int(h.Sum64() % 100)
		for _, b := range n.Branches {
			if roll < b.Percent {
				return b.Next, b.Name, false, nil
			}
			roll -= b.Percent
		}
		last := n.Branches[len(n.Branches)-1]
		return last.Next, last.Name, false, nil
	case NodeUpdateContact:
		err := s.contacts.Apply(ctx, r.tenant(), r.ContactID, ContactChange{SetAttributes: n.SetAttributes, AddTags: n.AddTags, RemoveTags: n.RemoveTags})
		m.contact, m.contactErr = nil, nil
		return n.Next, BranchNext, false, err
	case NodeExit:
		return "", "exit", false, nil
	}
	return "", "", false, fmt.Errorf("node %s has unknown type %q", n.ID, n.Type)
}

func (s *Service) wait(m *move, kind, messageID string, at time.Time) {
	r := m.run
	r.WaitKind, r.waitMessageID = kind, messageID
	at = at.UTC().Truncate(time.Millisecond)
	r.WakeAt = &at
	m.wake = at
}

// sendStep is a workflow message's step in the pipeline's send key: one
// message per run and node entered, even when a run passes a node twice.
func sendStep(runID string, step int64) string { return runID + ":" + strconv.FormatInt(step, 10) }

func parseSendStep(s string) (runID string, step int64, ok bool) {
	i := strings.LastIndexByte(s, ':')
	if i <= 0 {
		return "", 0, false
	}
	n, err := strconv.ParseInt(s[i+1:], 10, 64)
	return s[:i], n, err == nil
}

// sentBy returns the step of this move that sent node's message, if any.
func (m *move) sentBy(node string) *Step {
	for i := len(m.steps) - 1; i >= 0; i-- {
		if m.steps[i].NodeID == node && m.steps[i].MessageID != "" {
			return m.steps[i]
		}
	}
	return nil
}

// lastSend returns the run's latest step that sent node's message.
func (s *Service) lastSend(ctx context.Context, r *Run, node string) (*Step, error) {
	st := &Step{NodeID: node}
	err := s.db.Reader().QueryRowContext(ctx, `SELECT step, message_id, message_flags FROM workflow_run_steps
		WHERE tenant_id = $1 AND run_id = $2 AND node_id = $3 AND message_id <> '' ORDER BY step DESC LIMIT 1`,
		r.tenant(), r.ID, node).Scan(&st.Step, &st.MessageID, &st.flags)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read the message of node %s: %w", node, err)
	}
	return st, nil
}

// commit writes a move and, once it is committed, arms its timer. Moves
// of concurrent handlers are group-committed: one transaction writes a
// batch of them, so a burst of triggers or of timers firing together pays
// the database's per-transaction cost once per batch, not once per run.
func (s *Service) commit(ctx context.Context, m *move) error {
	m.run.UpdatedAt = m.now
	if err := s.moves.Do(ctx, m); err != nil {
		return err
	}
	s.metrics.moved(m)
	s.afterCommit(ctx, m)
	return nil
}

// writeMoves is the group commit: every move in one transaction; a move
// whose run moved meanwhile (errStale) or whose contact may not enter
// (errNotEligible) is skipped without failing the others. Should the
// transaction fail, each move is tried again on its own, so one bad move
// does not hold back the rest.
func (s *Service) writeMoves(ctx context.Context, moves []*move) []error {
	errs := make([]error, len(moves))
	err := s.ob.InTx(ctx, func(tx *sql.Tx, emit outbox.Emit) error {
		clear(errs)
		return s.writeBatch(ctx, tx, emit, moves, errs)
	})
	if err == nil {
		return errs
	}
	if len(moves) == 1 {
		errs[0] = err
		return errs
	}
	for i, m := range moves {
		errs[i] = s.writeMoves(ctx, []*move{m})[0]
	}
	return errs
}

func (s *Service) writeBatch(ctx context.Context, tx *sql.Tx, emit outbox.Emit, moves []*move, errs []error) error {
	q := store.NewStmtCache(tx)
	defer q.Close()
	type statsKey struct {
		tenant, workflow string
		version          int64
		statKey
	}
	stats := map[statsKey]int64{}
	for i, m := range moves {
		ok, err := s.writeRun(ctx, q, m)
		if err != nil {
			return err
		}
		if !ok {
			errs[i] = errStale
			if m.newRun {
				errs[i] = errNotEligible
			}
			continue
		}
		if err := s.writeSteps(ctx, q, m); err != nil {
			return err
		}
		for k, n := range m.stats {
			stats[statsKey{m.run.tenant(), m.run.WorkflowID, m.run.Version, k}] += n
		}
		if err := emit(m.events...); err != nil {
			return err
		}
	}
	for k, n := range stats {
		if _, err := q.ExecContext(ctx, `INSERT INTO workflow_node_stats (tenant_id, workflow_id, version, node_id, outcome, count)
			VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (tenant_id, workflow_id, version, node_id, outcome)
			DO UPDATE SET count = workflow_node_stats.count + excluded.count`, k.tenant, k.workflow, k.version, k.node, k.outcome, n); err != nil {
			return fmt.Errorf("count node %s: %w", k.node, err)
		}
	}
	return nil
}

// writeRun inserts a new run or moves an existing one, fenced on the step
// and status it was read at. It reports false, writing nothing, when the
// run moved meanwhile, its trigger already started a run, or the re-entry
// policy keeps the contact out. No statement fails for those, so the
// batch's transaction stays usable on PostgreSQL.
func (s *Service) writeRun(ctx context.Context, q *store.StmtCache, m *move) (bool, error) {
	r := m.run
	if m.newRun {
		return s.enter(ctx, q, m)
	}
	res, err := q.ExecContext(ctx, `UPDATE workflow_runs SET status = $3, node_id = $4, step = $5, wait_kind = $6,
		wait_message_id = $7, wake_at = $8, held_branch = $9, goal_id = $10, reason = $11, updated_at = $12, ended_at = $13
		WHERE tenant_id = $1 AND id = $2 AND step = $14 AND status = $15`,
		r.tenant(), r.ID, r.Status, r.NodeID, r.Step, r.WaitKind, r.waitMessageID, nullTime(r.WakeAt), r.heldBranch,
		r.GoalID, r.Reason, millis(m.now), nullTime(r.EndedAt), m.prevStep, m.prevStatus)
	if err != nil {
		return false, fmt.Errorf("update run %s: %w", r.ID, err)
	}
	n, err := res.RowsAffected()
	return n == 1, err
}

// writeSteps records the path, and frees the contact's entry when the run ended.
func (s *Service) writeSteps(ctx context.Context, q *store.StmtCache, m *move) error {
	r := m.run
	tenant := r.tenant()
	if m.leave != nil {
		if _, err := q.ExecContext(ctx, `UPDATE workflow_run_steps SET branch = $4, left_at = $5 WHERE tenant_id = $1 AND run_id = $2 AND step = $3`,
			tenant, r.ID, m.leave.Step, m.leave.Branch, nullTime(m.leave.LeftAt)); err != nil {
			return fmt.Errorf("update run step: %w", err)
		}
	}
	for _, st := range m.steps {
		if _, err := q.ExecContext(ctx, `INSERT INTO workflow_run_steps (tenant_id, run_id, step, node_id, node_type, branch, message_id, entered_at, left_at)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`, tenant, r.ID, st.Step, st.NodeID, st.NodeType, st.Branch, st.MessageID,
			millis(st.EnteredAt), nullTime(st.LeftAt)); err != nil {
			return fmt.Errorf("insert run step: %w", err)
		}
	}
	if r.ended() {
		if _, err := q.ExecContext(ctx, `UPDATE workflow_entries SET active_run = NULL
			WHERE tenant_id = $1 AND workflow_id = $2 AND contact_id = $3 AND active_run = $4`, tenant, r.WorkflowID, r.ContactID, r.ID); err != nil {
			return fmt.Errorf("release entry: %w", err)
		}
	}
	return nil
}

// enter inserts a new run if its trigger started none yet and the
// re-entry policy lets the contact in; it reports whether it did.
func (s *Service) enter(ctx context.Context, q *store.StmtCache, m *move) (bool, error) {
	r := m.run
	// The run first: a trigger that already started one leaves the entry
	// untouched. ON CONFLICT DO NOTHING rather than a unique violation,
	// which would abort the batch's transaction on PostgreSQL.
	res, err := q.ExecContext(ctx, `INSERT INTO workflow_runs (tenant_id, id, workflow_id, version, contact_id, status, node_id, step,
		wait_kind, wait_message_id, wake_at, trigger_subject, trigger_event_id, correlation_id, reason, started_at, updated_at, ended_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $16, $17)
		ON CONFLICT (tenant_id, workflow_id, trigger_event_id) DO NOTHING`,
		r.tenant(), r.ID, r.WorkflowID, r.Version, r.ContactID, r.Status, r.NodeID, r.Step, r.WaitKind, r.waitMessageID,
		nullTime(r.WakeAt), r.Trigger, r.triggerEventID, r.correlationID, r.Reason, millis(r.StartedAt), nullTime(r.EndedAt))
	if err != nil {
		return false, fmt.Errorf("insert run: %w", err)
	}
	if n, err := res.RowsAffected(); err != nil || n == 0 {
		return false, err
	}
	var entry string
	switch m.def.Reentry {
	case ReentryNever:
		entry = `INSERT INTO workflow_entries (tenant_id, workflow_id, contact_id, active_run, runs) VALUES ($1, $2, $3, $4, 1)
			ON CONFLICT (tenant_id, workflow_id, contact_id) DO NOTHING`
	case ReentryAfterExit:
		entry = `INSERT INTO workflow_entries (tenant_id, workflow_id, contact_id, active_run, runs) VALUES ($1, $2, $3, $4, 1)
			ON CONFLICT (tenant_id, workflow_id, contact_id) DO UPDATE SET active_run = excluded.active_run, runs = workflow_entries.runs + 1
			WHERE workflow_entries.active_run IS NULL`
	default:
		entry = `INSERT INTO workflow_entries (tenant_id, workflow_id, contact_id, active_run, runs) VALUES ($1, $2, $3, $4, 1)
			ON CONFLICT (tenant_id, workflow_id, contact_id) DO UPDATE SET active_run = excluded.active_run, runs = workflow_entries.runs + 1`
	}
	res, err = q.ExecContext(ctx, entry, r.tenant(), r.WorkflowID, r.ContactID, r.ID)
	if err != nil {
		return false, fmt.Errorf("enter workflow: %w", err)
	}
	if n, err := res.RowsAffected(); err != nil || n == 0 {
		// Kept out: take the run back out too.
		if _, derr := q.ExecContext(ctx, `DELETE FROM workflow_runs WHERE tenant_id = $1 AND id = $2`, r.tenant(), r.ID); derr != nil {
			return false, fmt.Errorf("withdraw run: %w", derr)
		}
		return false, err
	}
	return true, nil
}

func nullTime(t *time.Time) any {
	if t == nil {
		return nil
	}
	return millis(*t)
}

// afterCommit arms the run's timer and closes the gap between deciding to
// wait and the commit: a report or a contact change that landed in between
// found the run not yet waiting, so it is looked at once more here.
func (s *Service) afterCommit(ctx context.Context, m *move) {
	r := m.run
	if r.Status != RunWaiting {
		return
	}
	if !m.wake.IsZero() {
		data, _ := json.Marshal(timerData{Tenant: r.tenant(), RunID: r.ID, Step: r.Step})
		if err := s.timers.ScheduleTimer(ctx, timerKey(r.tenant(), r.ID), m.wake, data); err != nil {
			s.log.WarnContext(ctx, "workflow timer not armed; the sweep will wake the run", "tenant", r.tenant(), "run", r.ID, "err", err)
		}
	}
	switch {
	case waitFlag(r.WaitKind) != 0:
		var flags int64
		err := s.db.Reader().QueryRowContext(ctx, `SELECT message_flags FROM workflow_run_steps WHERE tenant_id = $1 AND run_id = $2 AND message_id = $3`,
			r.tenant(), r.ID, r.waitMessageID).Scan(&flags)
		if err == nil && flags&waitFlag(r.WaitKind) != 0 {
			s.wakeLogged(ctx, r.tenant(), r.ID, r.Step, wakeMet)
		}
	case r.WaitKind == waitRule:
		n := m.def.node(r.NodeID)
		if c, err := s.contacts.Contact(ctx, r.tenant(), r.ContactID); err == nil && n.rule.Match(&c, s.clock()) {
			s.wakeLogged(ctx, r.tenant(), r.ID, r.Step, wakeMet)
		}
	}
}

func (s *Service) wakeLogged(ctx context.Context, tenant, runID string, step int64, why wakeReason) {
	if err := s.Wake(ctx, tenant, runID, step, why); err != nil {
		s.log.WarnContext(ctx, "workflow run not woken; its timer or the sweep will", "tenant", tenant, "run", runID, "err", err)
	}
}

// wakeReason says why a waiting run is woken.
type wakeReason int

const (
	// wakeTime: its delay ended or its wait timed out.
	wakeTime wakeReason = iota
	// wakeMet: what it waits for happened.
	wakeMet
	// wakeRelease: its workflow is active again after a pause.
	wakeRelease
)

// Wake moves a run that waits at step. A run that has moved on, ended, or
// waits for something else is left alone, so stale timers and repeated
// reports are harmless.
func (s *Service) Wake(ctx context.Context, tenant, runID string, step int64, why wakeReason) error {
	r, err := s.loadRun(ctx, s.db.Reader(), tenant, runID)
	if err != nil || r == nil || r.ended() || r.Step != step {
		return err
	}
	var branch string
	switch {
	case why == wakeRelease && r.Status == RunHeld:
		branch = r.heldBranch
	case why == wakeRelease || r.Status != RunWaiting:
		return nil
	case why == wakeMet:
		branch = BranchMet
	default:
		// A timer carrying the run's current step was armed for this very
		// wait (steps only grow), so it is never a stale one; firing a
		// little before wake_at only means the server's clock is ahead.
		branch = BranchTimeout
		if r.WaitKind == waitDelay {
			branch = BranchNext
		}
	}
	if c := r.correlationID; c != "" && event.CorrelationID(ctx) == "" {
		ctx = event.WithCorrelationID(ctx, c)
	}
	wf, err := s.head(ctx, s.db.Reader(), tenant, r.WorkflowID)
	if err != nil {
		return err
	}
	def, err := s.definition(ctx, s.db.Reader(), tenant, r.WorkflowID, r.Version)
	if err != nil {
		return err
	}
	m := s.newMove(r, wf, def, false)
	if why == wakeTime && r.WakeAt != nil {
		m.late = m.now.Sub(*r.WakeAt)
	}
	if wf.Status != StatusActive {
		if r.Status == RunHeld {
			return nil
		}
		r.Status, r.heldBranch = RunHeld, branch
		return s.ignoreStale(s.commit(ctx, m))
	}
	r.heldBranch = ""
	n := def.node(r.NodeID)
	leave := &Step{Step: r.Step, NodeID: n.ID, NodeType: n.Type}
	m.leave = leave
	if err := s.leaveStep(ctx, m, leave, branch); err != nil {
		return err
	}
	r.WaitKind, r.waitMessageID, r.WakeAt = "", "", nil
	next := n.Next
	if branch == BranchTimeout {
		next = n.TimeoutNext
	}
	if err := s.execute(ctx, m, next); err != nil {
		return err
	}
	return s.ignoreStale(s.commit(ctx, m))
}

func (s *Service) ignoreStale(err error) error {
	if errors.Is(err, errStale) {
		return nil
	}
	return err
}

// StartRun starts a run of workflow wf for a contact, caused by trigger (an
// event's id and subject). A trigger starts at most one run per workflow,
// and the re-entry policy may keep the contact out; both are quiet no-ops.
func (s *Service) StartRun(ctx context.Context, tenant string, wf *Workflow, contactID, triggerSubject, triggerID string) error {
	var exists int
	err := s.db.Reader().QueryRowContext(ctx, `SELECT COUNT(*) FROM workflow_runs WHERE tenant_id = $1 AND workflow_id = $2 AND trigger_event_id = $3`,
		tenant, wf.ID, triggerID).Scan(&exists)
	if err != nil {
		return fmt.Errorf("look for the trigger's run: %w", err)
	}
	if exists > 0 {
		return nil // a redelivered trigger
	}
	if wf.Reentry != ReentryAlways {
		var active sql.NullString
		err := s.db.Reader().QueryRowContext(ctx, `SELECT active_run FROM workflow_entries WHERE tenant_id = $1 AND workflow_id = $2 AND contact_id = $3`,
			tenant, wf.ID, contactID).Scan(&active)
		switch {
		case errors.Is(err, sql.ErrNoRows):
		case err != nil:
			return fmt.Errorf("read entry: %w", err)
		case wf.Reentry == ReentryNever || active.Valid:
			return nil
		}
	}
	now := s.clock()
	r := &Run{ID: event.NewID(), WorkflowID: wf.ID, Version: wf.Version, ContactID: contactID, Trigger: triggerSubject,
		StartedAt: now, triggerEventID: triggerID, correlationID: event.CorrelationID(ctx), tenantID: tenant}
	m := s.newMove(r, wf, &wf.Definition, true)
	m.now = now
	if err := s.emit(ctx, m, event.WorkflowRunStarted, event.WorkflowRunStartedData{WorkflowRunData: m.runData(), Trigger: triggerSubject}); err != nil {
		return err
	}
	if err := s.execute(ctx, m, wf.Nodes[0].ID); err != nil {
		return err
	}
	err = s.commit(ctx, m)
	if errors.Is(err, errStale) || errors.Is(err, errNotEligible) {
		return nil
	}
	return err
}

// endByGoal ends a run in progress whose contact met goal i.
func (s *Service) endByGoal(ctx context.Context, r *Run, wf *Workflow, def *Definition, i int) error {
	m := s.newMove(r, wf, def, false)
	g := def.Goals[i]
	r.GoalID = g.ID
	m.stats[statKey{r.NodeID, "goal"}]++
	if n := def.node(r.NodeID); n != nil {
		left := m.now
		m.leave = &Step{Step: r.Step, NodeID: n.ID, NodeType: n.Type, Branch: "goal", LeftAt: &left}
	}
	if err := s.end(ctx, m, RunGoalReached, "", ""); err != nil {
		return err
	}
	if err := s.emit(ctx, m, event.WorkflowRunGoalReached, event.WorkflowRunGoalReachedData{WorkflowRunData: m.runData(), GoalID: g.ID, GoalName: g.Name}); err != nil {
		return err
	}
	return s.ignoreStale(s.commit(ctx, m))
}

// endForGoneContact fails a run in progress whose contact was deleted.
func (s *Service) endForGoneContact(ctx context.Context, r *Run, wf *Workflow, def *Definition) error {
	m := s.newMove(r, wf, def, false)
	var st *Step
	if n := def.node(r.NodeID); n != nil {
		st = &Step{Step: r.Step, NodeID: n.ID, NodeType: n.Type}
		m.leave = st
	}
	if err := s.fail(ctx, m, st, "the contact was deleted", "contact_deleted"); err != nil {
		return err
	}
	return s.ignoreStale(s.commit(ctx, m))
}
