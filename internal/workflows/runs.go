package workflows

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/alumoutreach/alumoutreach/internal/platform/fault"
	"github.com/alumoutreach/alumoutreach/internal/platform/store"
)

const runColumns = `tenant_id, id, workflow_id, version, contact_id, status, node_id, step, wait_kind, wait_message_id, wake_at,
	held_branch, trigger_subject, trigger_event_id, correlation_id, goal_id, reason, started_at, updated_at, ended_at`

func scanRun(sc store.Scanner) (*Run, error) {
	var (
		r                Run
		wake, ended      sql.NullInt64
		started, updated int64
	)
	if err := sc.Scan(&r.tenantID, &r.ID, &r.WorkflowID, &r.Version, &r.ContactID, &r.Status, &r.NodeID, &r.Step, &r.WaitKind,
		&r.waitMessageID, &wake, &r.heldBranch, &r.Trigger, &r.triggerEventID, &r.correlationID, &r.GoalID, &r.Reason,
		&started, &updated, &ended); err != nil {
		return nil, err
	}
	r.WakeAt, r.EndedAt = optMillis(wake), optMillis(ended)
	r.StartedAt, r.UpdatedAt = fromMillis(started), fromMillis(updated)
	return &r, nil
}

// loadRun returns a run, or nil when there is none.
func (s *Service) loadRun(ctx context.Context, q querier, tenant, id string) (*Run, error) {
	r, err := scanRun(q.QueryRowContext(ctx, `SELECT `+runColumns+` FROM workflow_runs WHERE tenant_id = $1 AND id = $2`, tenant, id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read run %s: %w", id, err)
	}
	return r, nil
}

func (s *Service) queryRuns(ctx context.Context, where string, args ...any) ([]*Run, error) {
	return store.Collect(ctx, s.db.Reader(), "read runs", scanRun, `SELECT `+runColumns+` FROM workflow_runs `+where, args...)
}

// RunFilter selects runs to list; empty fields select all.
type RunFilter struct {
	WorkflowID string
	ContactID  string
	Status     string
}

// ListRuns returns runs, newest first (run ids are time-ordered), after
// the run id before.
func (s *Service) ListRuns(ctx context.Context, tenant string, f RunFilter, before string, limit int) ([]*Run, error) {
	var w store.Where
	w.And("tenant_id = ?", tenant)
	w.AndIf("workflow_id = ?", f.WorkflowID)
	w.AndIf("contact_id = ?", f.ContactID)
	w.AndIf("status = ?", f.Status)
	w.AndIf("id < ?", before)
	return s.queryRuns(ctx, w.String()+fmt.Sprintf(` ORDER BY id DESC LIMIT %d`, limit), w.Args()...)
}

// GetRun returns one run with the path it took.
func (s *Service) GetRun(ctx context.Context, tenant, id string) (*Run, error) {
	r, err := s.loadRun(ctx, s.db.Reader(), tenant, id)
	if err != nil {
		return nil, err
	}
	if r == nil {
		e := fault.New(fault.NotFound, "run_not_found", "no workflow run %q in this tenant", id)
		e.Details = map[string]any{"runId": id}
		return nil, e
	}
	rows, err := s.db.Reader().QueryContext(ctx, `SELECT step, node_id, node_type, branch, message_id, message_flags, entered_at, left_at
		FROM workflow_run_steps WHERE tenant_id = $1 AND run_id = $2 ORDER BY step`, tenant, id)
	if err != nil {
		return nil, fmt.Errorf("read run path: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var (
			st      Step
			entered int64
			left    sql.NullInt64
		)
		if err := rows.Scan(&st.Step, &st.NodeID, &st.NodeType, &st.Branch, &st.MessageID, &st.flags, &entered, &left); err != nil {
			return nil, fmt.Errorf("read run path: %w", err)
		}
		st.EnteredAt, st.LeftAt = fromMillis(entered), optMillis(left)
		r.Path = append(r.Path, st)
	}
	return r, rows.Err()
}

// Stats returns the builder view of a workflow version (its current one
// when version is 0).
func (s *Service) Stats(ctx context.Context, tenant, id string, version int64) (*Stats, error) {
	w, err := s.Get(ctx, tenant, id, version)
	if err != nil {
		return nil, err
	}
	st := &Stats{WorkflowID: id, Version: w.Version, Runs: map[string]int64{}, Nodes: map[string]*NodeStats{}}
	for _, status := range runStatuses {
		st.Runs[status] = 0
	}
	for _, n := range w.Nodes {
		st.Nodes[n.ID] = &NodeStats{Exits: map[string]int64{}}
	}
	rows, err := s.db.Reader().QueryContext(ctx, `SELECT status, COUNT(*) FROM workflow_runs
		WHERE tenant_id = $1 AND workflow_id = $2 AND version = $3 GROUP BY status`, tenant, id, w.Version)
	if err != nil {
		return nil, fmt.Errorf("count runs: %w", err)
	}
	for rows.Next() {
		var (
			status string
			n      int64
		)
		if err := rows.Scan(&status, &n); err != nil {
			rows.Close()
			return nil, err
		}
		st.Runs[status] = n
	}
	rows.Close()
	rows, err = s.db.Reader().QueryContext(ctx, `SELECT node_id, outcome, count FROM workflow_node_stats
		WHERE tenant_id = $1 AND workflow_id = $2 AND version = $3`, tenant, id, w.Version)
	if err != nil {
		return nil, fmt.Errorf("read node stats: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var (
			node, outcome string
			n             int64
		)
		if err := rows.Scan(&node, &outcome, &n); err != nil {
			return nil, err
		}
		ns := st.Nodes[node]
		if ns == nil {
			continue
		}
		if outcome == "entered" {
			ns.Entered = n
		} else {
			ns.Exits[outcome] = n
		}
	}
	return st, rows.Err()
}
