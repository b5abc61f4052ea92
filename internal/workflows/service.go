package workflows

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/alumoutreach/alumoutreach/internal/event"
	"github.com/alumoutreach/alumoutreach/internal/platform/fault"
	"github.com/alumoutreach/alumoutreach/internal/platform/groupcommit"
	"github.com/alumoutreach/alumoutreach/internal/platform/outbox"
	"github.com/alumoutreach/alumoutreach/internal/platform/store"
)

// Service owns workflows, their versions and their runs.
type Service struct {
	db        *store.DB
	ob        *outbox.Outbox
	log       *slog.Logger
	contacts  Contacts
	templates Templates
	segments  Segments
	timers    Timers
	metrics   *Metrics
	now       func() time.Time

	// defs caches parsed definitions by tenant/workflow/version: a
	// version never changes once written.
	defsMu sync.RWMutex
	defs   map[string]*Definition
	// wake nudges the sweeper after an activation, so held runs go on at once.
	wake chan struct{}
	// moves group-commits the moves of runs (engine.go).
	moves *groupcommit.Batcher[*move]
}

// NewService returns the workflows service.
func NewService(db *store.DB, ob *outbox.Outbox, log *slog.Logger, contacts Contacts, templates Templates, segments Segments, timers Timers, metrics *Metrics) *Service {
	s := &Service{db: db, ob: ob, log: log, contacts: contacts, templates: templates, segments: segments, timers: timers, metrics: metrics,
		now: time.Now, defs: map[string]*Definition{}, wake: make(chan struct{}, 1)}
	s.moves = groupcommit.New(maxMovesPerCommit, s.writeMoves)
	return s
}

// maxMovesPerCommit bounds a group commit of run moves.
const maxMovesPerCommit = 256

// Start runs the group commit of run moves; the consumers, timers and
// sweep that move runs need it. Stop it after them.
func (s *Service) Start(ctx context.Context) error { return s.moves.Start(ctx) }

// Stop commits the moves handed in and stops.
func (s *Service) Stop() { s.moves.Stop() }

func (s *Service) clock() time.Time { return s.now().UTC().Truncate(time.Millisecond) }

// Template and SegmentExists make the service the catalog definitions are
// checked against.
func (s *Service) Template(ctx context.Context, tenant, id string) (string, bool, error) {
	return s.templates.Template(ctx, tenant, id)
}

// SegmentExists reports whether the tenant has the segment.
func (s *Service) SegmentExists(ctx context.Context, tenant, id string) (bool, error) {
	return s.segments.SegmentExists(ctx, tenant, id)
}

const maxNameLen = 200

func notFound(id string) error {
	e := fault.New(fault.NotFound, "workflow_not_found", "no workflow %q in this tenant", id)
	e.Details = map[string]any{"workflowId": id}
	return e
}

func (s *Service) checkInput(ctx context.Context, tenant string, in *Input) error {
	in.Name = strings.TrimSpace(in.Name)
	if in.Name == "" || len([]rune(in.Name)) > maxNameLen {
		return invalidAt("name", "a workflow needs a name of 1 to %d characters", maxNameLen)
	}
	return in.Definition.validate(ctx, tenant, s)
}

// Create stores a workflow (status created, version 1) and publishes
// workflow.created.
func (s *Service) Create(ctx context.Context, tenant string, in Input) (*Workflow, error) {
	if err := s.checkInput(ctx, tenant, &in); err != nil {
		return nil, err
	}
	now := s.clock()
	w := &Workflow{ID: event.NewID(), Name: in.Name, Status: StatusCreated, Version: 1, Definition: in.Definition, CreatedAt: now, UpdatedAt: now}
	def, err := json.Marshal(&w.Definition)
	if err != nil {
		return nil, fmt.Errorf("encode definition: %w", err)
	}
	err = s.ob.InTx(ctx, func(tx *sql.Tx, emit outbox.Emit) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO workflows (tenant_id, id, name, status, version, trigger_event, trigger_key, created_at, updated_at)
			VALUES ($1, $2, $3, $4, 1, $5, $6, $7, $7)`, tenant, w.ID, w.Name, w.Status, w.Trigger.Event, w.triggerKey, millis(now))
		if store.IsUniqueViolation(err) {
			return fault.New(fault.Conflict, "workflow_name_taken", "another workflow is named %q; pick another name", w.Name)
		}
		if err != nil {
			return fmt.Errorf("insert workflow: %w", err)
		}
		if err := insertVersion(ctx, tx, tenant, w.ID, 1, def, now); err != nil {
			return err
		}
		return s.emitState(ctx, emit, event.WorkflowCreated, tenant, w)
	})
	if err != nil {
		return nil, err
	}
	return w, nil
}

func insertVersion(ctx context.Context, tx *sql.Tx, tenant, id string, version int64, def []byte, now time.Time) error {
	if _, err := tx.ExecContext(ctx, `INSERT INTO workflow_versions (tenant_id, workflow_id, version, definition, created_at)
		VALUES ($1, $2, $3, $4, $5)`, tenant, id, version, string(def), millis(now)); err != nil {
		return fmt.Errorf("insert workflow version: %w", err)
	}
	return nil
}

func (s *Service) emitState(ctx context.Context, emit outbox.Emit, subject, tenant string, w *Workflow) error {
	env, err := event.New(ctx, subject, event.SourceWorkflows, tenant, event.WorkflowData{
		WorkflowID: w.ID, Name: w.Name, Version: w.Version, Trigger: w.Trigger.Event})
	if err != nil {
		return fmt.Errorf("%s event: %w", subject, err)
	}
	return emit(env)
}

// Update stores in as the workflow's next version. Runs in progress finish
// on the version they started with; new runs start on this one. ifVersion,
// when positive, must be the current version.
func (s *Service) Update(ctx context.Context, tenant, id string, in Input, ifVersion int64) (*Workflow, error) {
	if err := s.checkInput(ctx, tenant, &in); err != nil {
		return nil, err
	}
	def, err := json.Marshal(&in.Definition)
	if err != nil {
		return nil, fmt.Errorf("encode definition: %w", err)
	}
	var w *Workflow
	err = s.ob.InTx(ctx, func(tx *sql.Tx, _ outbox.Emit) error {
		cur, err := s.head(ctx, tx, tenant, id)
		if err != nil {
			return err
		}
		if ifVersion > 0 && cur.Version != ifVersion {
			return fault.New(fault.Conflict, "version_mismatch", "workflow %s is at version %d, not %d; read it again and reapply your change", id, cur.Version, ifVersion)
		}
		now := s.clock()
		w = &Workflow{ID: id, Name: in.Name, Status: cur.Status, Version: cur.Version + 1, Definition: in.Definition, CreatedAt: cur.CreatedAt, UpdatedAt: now}
		res, err := tx.ExecContext(ctx, `UPDATE workflows SET name = $3, version = $4, trigger_event = $5, trigger_key = $6, updated_at = $7
			WHERE tenant_id = $1 AND id = $2 AND version = $8`, tenant, id, w.Name, w.Version, w.Trigger.Event, w.triggerKey, millis(now), cur.Version)
		if store.IsUniqueViolation(err) {
			return fault.New(fault.Conflict, "workflow_name_taken", "another workflow is named %q; pick another name", w.Name)
		}
		if err != nil {
			return fmt.Errorf("update workflow: %w", err)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return fault.New(fault.Conflict, "version_mismatch", "workflow %s changed while this edit was saved; read it again", id)
		}
		return insertVersion(ctx, tx, tenant, id, w.Version, def, now)
	})
	if err != nil {
		return nil, err
	}
	return w, nil
}

// Activate starts (or restarts) runs on the workflow's trigger; runs held
// while it was paused go on. Every template a send node names must be active.
func (s *Service) Activate(ctx context.Context, tenant, id string) (*Workflow, error) {
	w, err := s.Get(ctx, tenant, id, 0)
	if err != nil {
		return nil, err
	}
	for i, n := range w.Nodes {
		if n.Type != NodeSend {
			continue
		}
		_, active, err := s.templates.Template(ctx, tenant, n.TemplateID)
		if errors.Is(err, ErrTemplateNotFound) {
			return nil, fault.New(fault.Conflict, "template_gone", "%s: template %q no longer exists; edit the workflow first", nodePath(i, &n), n.TemplateID)
		}
		if err != nil {
			return nil, err
		}
		if !active {
			return nil, fault.New(fault.Conflict, "template_inactive", "%s: template %q is not active; activate it before the workflow", nodePath(i, &n), n.TemplateID)
		}
	}
	w, err = s.transition(ctx, tenant, id, "activate", StatusActive, []string{StatusCreated, StatusPaused}, event.WorkflowActivated)
	if err == nil {
		select {
		case s.wake <- struct{}{}:
		default:
		}
	}
	return w, err
}

// Pause stops new runs; runs in progress hold where they are.
func (s *Service) Pause(ctx context.Context, tenant, id string) (*Workflow, error) {
	return s.transition(ctx, tenant, id, "pause", StatusPaused, []string{StatusActive}, event.WorkflowPaused)
}

func (s *Service) transition(ctx context.Context, tenant, id, action, to string, from []string, subject string) (*Workflow, error) {
	var w *Workflow
	err := s.ob.InTx(ctx, func(tx *sql.Tx, emit outbox.Emit) error {
		var err error
		if w, err = s.head(ctx, tx, tenant, id); err != nil {
			return err
		}
		if !slices.Contains(from, w.Status) {
			e := fault.New(fault.Conflict, "illegal_transition", "cannot %s a workflow that is %s; it must be %s", action, w.Status, strings.Join(from, " or "))
			e.Details = map[string]any{"status": w.Status, "allowedFrom": from}
			return e
		}
		w.Status, w.UpdatedAt = to, s.clock()
		if _, err := tx.ExecContext(ctx, `UPDATE workflows SET status = $3, updated_at = $4 WHERE tenant_id = $1 AND id = $2`,
			tenant, id, to, millis(w.UpdatedAt)); err != nil {
			return fmt.Errorf("update workflow status: %w", err)
		}
		def, err := s.definition(ctx, tx, tenant, id, w.Version)
		if err != nil {
			return err
		}
		w.Definition = *def
		return s.emitState(ctx, emit, subject, tenant, w)
	})
	if err != nil {
		return nil, err
	}
	return w, nil
}

// head reads a workflow's row without its definition.
func (s *Service) head(ctx context.Context, q querier, tenant, id string) (*Workflow, error) {
	var (
		w                  Workflow
		created, updated   int64
		triggerEvent, tkey string
	)
	err := q.QueryRowContext(ctx, `SELECT id, name, status, version, trigger_event, trigger_key, created_at, updated_at
		FROM workflows WHERE tenant_id = $1 AND id = $2`, tenant, id).
		Scan(&w.ID, &w.Name, &w.Status, &w.Version, &triggerEvent, &tkey, &created, &updated)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, notFound(id)
	}
	if err != nil {
		return nil, fmt.Errorf("read workflow %s: %w", id, err)
	}
	w.CreatedAt, w.UpdatedAt = fromMillis(created), fromMillis(updated)
	return &w, nil
}

// Get returns a workflow with its current definition, or with the
// definition of version when version is positive.
func (s *Service) Get(ctx context.Context, tenant, id string, version int64) (*Workflow, error) {
	w, err := s.head(ctx, s.db.Reader(), tenant, id)
	if err != nil {
		return nil, err
	}
	if version <= 0 {
		version = w.Version
	}
	def, err := s.definition(ctx, s.db.Reader(), tenant, id, version)
	if err != nil {
		return nil, err
	}
	w.Version, w.Definition = version, *def
	return w, nil
}

// definition returns a stored version, parsed and ready to run.
func (s *Service) definition(ctx context.Context, q querier, tenant, id string, version int64) (*Definition, error) {
	key := tenant + "/" + id + "/" + fmt.Sprint(version)
	s.defsMu.RLock()
	d := s.defs[key]
	s.defsMu.RUnlock()
	if d != nil {
		return d, nil
	}
	var raw string
	err := q.QueryRowContext(ctx, `SELECT definition FROM workflow_versions WHERE tenant_id = $1 AND workflow_id = $2 AND version = $3`,
		tenant, id, version).Scan(&raw)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fault.New(fault.NotFound, "version_not_found", "workflow %s has no version %d", id, version)
	}
	if err != nil {
		return nil, fmt.Errorf("read workflow %s version %d: %w", id, version, err)
	}
	d = &Definition{}
	if err := json.Unmarshal([]byte(raw), d); err != nil {
		return nil, fmt.Errorf("decode workflow %s version %d: %w", id, version, err)
	}
	if err := d.validate(ctx, tenant, nil); err != nil {
		return nil, fmt.Errorf("stored workflow %s version %d no longer validates: %w", id, version, err)
	}
	s.defsMu.Lock()
	if len(s.defs) >= 10_000 {
		clear(s.defs) // versions in use are read back at once
	}
	s.defs[key] = d
	s.defsMu.Unlock()
	return d, nil
}

// ListCursor is where a page of workflows or runs ends.
type ListCursor struct {
	CreatedAt int64  `json:"c"`
	ID        string `json:"i"`
}

// List returns the tenant's workflows, newest first, optionally of one status.
func (s *Service) List(ctx context.Context, tenant, status string, before *ListCursor, limit int) ([]*Workflow, error) {
	q := `SELECT id FROM workflows WHERE tenant_id = $1 AND ($2 = '' OR status = $2)`
	args := []any{tenant, status}
	if before != nil {
		q += ` AND (created_at, id) < ($3, $4)`
		args = append(args, before.CreatedAt, before.ID)
	}
	q += fmt.Sprintf(` ORDER BY created_at DESC, id DESC LIMIT %d`, limit)
	rows, err := s.db.Reader().QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("list workflows: %w", err)
	}
	var ids []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			rows.Close()
			return nil, err
		}
		ids = append(ids, id)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	out := make([]*Workflow, 0, len(ids))
	for _, id := range ids {
		w, err := s.Get(ctx, tenant, id, 0)
		if err != nil {
			return nil, err
		}
		out = append(out, w)
	}
	return out, nil
}

// PostEvent publishes a custom event about a contact; workflows with a
// custom trigger of that name start runs on it.
func (s *Service) PostEvent(ctx context.Context, tenant string, in event.WorkflowEventReceivedData) (event.Envelope, error) {
	if !idPattern.MatchString(in.Name) {
		return event.Envelope{}, invalidAt("name", "custom event names are 1 to 64 letters, digits, '-' or '_' (got %q)", in.Name)
	}
	if in.ContactID == "" {
		return event.Envelope{}, invalidAt("contactId", "name the contact the event is about")
	}
	if len(in.Properties) > 0 && in.Properties[0] != '{' {
		return event.Envelope{}, invalidAt("properties", "must be a JSON object")
	}
	if _, err := s.contacts.Contact(ctx, tenant, in.ContactID); errors.Is(err, ErrContactNotFound) {
		e := fault.New(fault.NotFound, "contact_not_found", "no contact %q in this tenant", in.ContactID)
		e.Details = map[string]any{"field": "contactId"}
		return event.Envelope{}, e
	} else if err != nil {
		return event.Envelope{}, err
	}
	ctx = event.EnsureCorrelation(ctx)
	env, err := event.New(ctx, event.WorkflowEventReceived, event.SourceWorkflows, tenant, in)
	if err != nil {
		return event.Envelope{}, fault.Wrap(err, fault.Invalid, "invalid_event", "the event does not validate")
	}
	err = s.ob.InTx(ctx, func(_ *sql.Tx, emit outbox.Emit) error { return emit(env) })
	return env, err
}
