package sequences

import (
	"context"
	"database/sql"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"time"

	"github.com/alumoutreach/alumoutreach/internal/event"
	"github.com/alumoutreach/alumoutreach/internal/platform/fault"
	"github.com/alumoutreach/alumoutreach/internal/platform/outbox"
	"github.com/alumoutreach/alumoutreach/internal/platform/store"
)

//go:embed migrations/*.sql
var migrationFiles embed.FS

// ModuleName is the module's name in schema_migrations.
const ModuleName = "sequences"

// Migrations returns the module's embedded migrations.
func Migrations() fs.FS {
	sub, _ := fs.Sub(migrationFiles, "migrations")
	return sub
}

// Service keeps sequences and runs their enrollments.
type Service struct {
	db        *store.DB
	ob        *outbox.Outbox
	log       *slog.Logger
	templates Templates
	contacts  Contacts
	timers    Timers
	now       func() time.Time
}

// NewService returns the sequences over db; steps run on timers.
func NewService(db *store.DB, ob *outbox.Outbox, log *slog.Logger, templates Templates, contacts Contacts, timers Timers) *Service {
	return &Service{db: db, ob: ob, log: log, templates: templates, contacts: contacts, timers: timers, now: time.Now}
}

func (s *Service) clock() time.Time { return s.now().UTC().Truncate(time.Millisecond) }

const sequenceColumns = `id, name, owner_id, exit_on_reply, steps, status, created_at, updated_at`

func scanSequence(r store.Scanner) (*Sequence, error) {
	var (
		q           Sequence
		exit        int
		steps       string
		created, up int64
	)
	if err := r.Scan(&q.ID, &q.Name, &q.OwnerID, &exit, &steps, &q.Status, &created, &up); err != nil {
		return nil, err
	}
	if err := json.Unmarshal([]byte(steps), &q.Steps); err != nil {
		return nil, fmt.Errorf("sequence %s: stored steps do not decode: %w", q.ID, err)
	}
	for i := range q.Steps {
		q.Steps[i].delay, _ = ParseDelay(q.Steps[i].Delay) // checked when the sequence was created
	}
	q.ExitOnReply = exit == 1
	q.CreatedAt, q.UpdatedAt = time.UnixMilli(created).UTC(), time.UnixMilli(up).UTC()
	return &q, nil
}

func notFound(id string) error {
	e := fault.New(fault.NotFound, "sequence_not_found", "no sequence %q in this tenant", id)
	e.Details = map[string]any{"sequenceId": id}
	return e
}

func sequenceData(q *Sequence) event.SequenceData {
	return event.SequenceData{SequenceID: q.ID, Name: q.Name, OwnerID: q.OwnerID}
}

// Create stores a new sequence, status created, and publishes
// sequence.created.
func (s *Service) Create(ctx context.Context, tenant string, in Input) (*Sequence, error) {
	if err := in.validate(ctx, tenant, s.templates); err != nil {
		return nil, err
	}
	now := s.clock()
	q := &Sequence{ID: event.NewID(), Name: in.Name, OwnerID: in.OwnerID, ExitOnReply: in.ExitOnReply == nil || *in.ExitOnReply,
		Steps: in.Steps, Status: StatusCreated, CreatedAt: now, UpdatedAt: now}
	steps, err := json.Marshal(q.Steps)
	if err != nil {
		return nil, err
	}
	exit := 0
	if q.ExitOnReply {
		exit = 1
	}
	err = s.ob.InTx(ctx, func(tx *sql.Tx, emit outbox.Emit) error {
		var one int
		err := tx.QueryRowContext(ctx, `SELECT 1 FROM sequences WHERE tenant_id = $1 AND name = $2`, tenant, q.Name).Scan(&one)
		if err == nil {
			return fault.New(fault.Conflict, "sequence_name_taken", "a sequence named %q exists in this tenant; pick another name", q.Name)
		}
		if !errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("check sequence name: %w", err)
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO sequences (tenant_id, id, name, owner_id, exit_on_reply, steps, status, created_at, updated_at)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8)`, tenant, q.ID, q.Name, q.OwnerID, exit, string(steps), q.Status, now.UnixMilli()); err != nil {
			return fmt.Errorf("insert sequence: %w", err)
		}
		env, err := event.New(ctx, event.SequenceCreated, event.SourceSequences, tenant, sequenceData(q))
		if err != nil {
			return err
		}
		return emit(env)
	})
	if err != nil {
		return nil, err
	}
	return q, nil
}

// Get returns one sequence.
func (s *Service) Get(ctx context.Context, tenant, id string) (*Sequence, error) {
	return s.get(ctx, s.db.Reader(), tenant, id)
}

type queryRower interface {
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

func (s *Service) get(ctx context.Context, q queryRower, tenant, id string) (*Sequence, error) {
	seq, err := scanSequence(q.QueryRowContext(ctx, `SELECT `+sequenceColumns+` FROM sequences WHERE tenant_id = $1 AND id = $2`, tenant, id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, notFound(id)
	}
	if err != nil {
		return nil, fmt.Errorf("read sequence: %w", err)
	}
	return seq, nil
}

// ListCursor is where a page of sequences or enrollments ends.
type ListCursor struct {
	CreatedAt int64  `json:"c"`
	ID        string `json:"i"`
}

// List returns the tenant's sequences, newest first.
func (s *Service) List(ctx context.Context, tenant string, before *ListCursor, limit int) ([]*Sequence, error) {
	var w store.Where
	w.And("tenant_id = ?", tenant)
	if before != nil {
		w.And("(created_at, id) < (?, ?)", before.CreatedAt, before.ID)
	}
	return store.Collect(ctx, s.db.Reader(), "list sequences", scanSequence, `SELECT `+sequenceColumns+` FROM sequences `+w.String()+
		fmt.Sprintf(` ORDER BY created_at DESC, id DESC LIMIT %d`, limit), w.Args()...)
}

// Activate lets a sequence take enrollments and run steps, publishing
// sequence.activated.
func (s *Service) Activate(ctx context.Context, tenant, id string) (*Sequence, error) {
	return s.transition(ctx, tenant, id, StatusActive, event.SequenceActivated, StatusCreated, StatusPaused)
}

// Pause stops a sequence's steps (enrollments keep their place), publishing
// sequence.paused.
func (s *Service) Pause(ctx context.Context, tenant, id string) (*Sequence, error) {
	return s.transition(ctx, tenant, id, StatusPaused, event.SequencePaused, StatusActive)
}

func (s *Service) transition(ctx context.Context, tenant, id, to, subject string, from ...string) (*Sequence, error) {
	var out *Sequence
	err := s.ob.InTx(ctx, func(tx *sql.Tx, emit outbox.Emit) error {
		q, err := s.get(ctx, tx, tenant, id)
		if err != nil {
			return err
		}
		allowed := false
		for _, f := range from {
			allowed = allowed || q.Status == f
		}
		if !allowed {
			e := fault.New(fault.Conflict, "illegal_transition", "a %s sequence cannot become %s", q.Status, to)
			e.Details = map[string]any{"status": q.Status, "allowedFrom": from}
			return e
		}
		now := s.clock()
		if _, err := tx.ExecContext(ctx, `UPDATE sequences SET status = $3, updated_at = $4 WHERE tenant_id = $1 AND id = $2`,
			tenant, id, to, now.UnixMilli()); err != nil {
			return fmt.Errorf("update sequence: %w", err)
		}
		q.Status, q.UpdatedAt = to, now
		out = q
		env, err := event.New(ctx, subject, event.SourceSequences, tenant, sequenceData(q))
		if err != nil {
			return err
		}
		return emit(env)
	})
	return out, err
}
