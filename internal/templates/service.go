package templates

import (
	"context"
	"database/sql"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"sync"
	"time"

	"github.com/alumoutreach/alumoutreach/internal/event"
	"github.com/alumoutreach/alumoutreach/internal/platform/fault"
	"github.com/alumoutreach/alumoutreach/internal/platform/outbox"
	"github.com/alumoutreach/alumoutreach/internal/platform/store"
	"github.com/alumoutreach/alumoutreach/internal/templates/render"
)

//go:embed migrations/*.sql
var migrationFiles embed.FS

// ModuleName is the module's name in schema_migrations.
const ModuleName = "templates"

// Migrations returns the module's embedded migrations.
func Migrations() fs.FS {
	sub, _ := fs.Sub(migrationFiles, "migrations")
	return sub
}

// Service keeps templates and their versions.
type Service struct {
	db  *store.DB
	ob  *outbox.Outbox
	log *slog.Logger
	now func() time.Time
	// compiled caches parsed versions by tenant, id and version: versions
	// never change, and parsing a newsletter costs more than rendering it.
	compiled sync.Map // versionKey -> *Compiled
	heads    sync.Map // versionKey{tenant, id} -> head
}

type versionKey struct {
	tenant, id string
	version    int64
}

// NewService returns the service on db (migrated), writing its events to ob.
func NewService(db *store.DB, ob *outbox.Outbox, log *slog.Logger) *Service {
	return &Service{db: db, ob: ob, log: log, now: time.Now}
}

func (s *Service) clock() time.Time { return s.now().UTC().Truncate(time.Millisecond) }

func notFound(id string) error {
	e := fault.New(fault.NotFound, "template_not_found", "no template %q in this tenant", id)
	e.Details = map[string]any{"templateId": id}
	return e
}

// Input is a create or an update; nil fields are left alone by an update.
type Input struct {
	Name    *string  `json:"name"`
	Channel string   `json:"channel"`
	Content *Content `json:"content"`
}

const templateColumns = `t.id, t.name, t.channel, t.status, t.version, t.hsm_status, t.hsm_name, t.hsm_language, t.hsm_category,
	t.hsm_reason, t.hsm_provider_id, t.hsm_submission, t.hsm_version, t.created_at, t.updated_at, v.content`

type querier interface {
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
}

func scanTemplate(r store.Scanner) (*Template, error) {
	var (
		t                Template
		review           Review
		created, updated int64
		content          string
	)
	if err := r.Scan(&t.ID, &t.Name, &t.Channel, &t.Status, &t.Version, &review.Status, &review.Name, &review.Language,
		&review.Category, &review.Reason, &review.ProviderID, &review.submission, &review.version, &created, &updated, &content); err != nil {
		return nil, err
	}
	if err := json.Unmarshal([]byte(content), &t.Content); err != nil {
		return nil, fmt.Errorf("template %s: stored content does not decode: %w", t.ID, err)
	}
	if review.Status != "" {
		t.Review = &review
	}
	t.CreatedAt, t.UpdatedAt = time.UnixMilli(created).UTC(), time.UnixMilli(updated).UTC()
	return &t, nil
}

// get reads a template with the content of version (0 for the current).
func (s *Service) get(ctx context.Context, q querier, tenant, id string, version int64, lock bool) (*Template, error) {
	suffix := ""
	if lock && s.db.Kind() == store.Postgres {
		suffix = " FOR UPDATE OF t"
	}
	t, err := scanTemplate(q.QueryRowContext(ctx, `SELECT `+templateColumns+` FROM templates t
		JOIN template_versions v ON v.tenant_id = t.tenant_id AND v.template_id = t.id
			AND v.version = CASE WHEN CAST($3 AS BIGINT) > 0 THEN CAST($3 AS BIGINT) ELSE t.version END
		WHERE t.tenant_id = $1 AND t.id = $2`+suffix, tenant, id, version))
	if errors.Is(err, sql.ErrNoRows) {
		if version > 0 {
			if _, err := s.get(ctx, q, tenant, id, 0, false); err == nil {
				return nil, fault.New(fault.NotFound, "template_version_not_found", "template %s has no version %d", id, version)
			}
		}
		return nil, notFound(id)
	}
	if err != nil {
		return nil, fmt.Errorf("read template %s: %w", id, err)
	}
	if version > 0 {
		t.Version = version
	}
	return t, nil
}

// Get returns a template with its current content.
func (s *Service) Get(ctx context.Context, tenant, id string) (*Template, error) {
	return s.get(ctx, s.db.Reader(), tenant, id, 0, false)
}

// GetVersion returns a template with the content of one version.
func (s *Service) GetVersion(ctx context.Context, tenant, id string, version int64) (*Template, error) {
	if version < 1 {
		return nil, fault.New(fault.Invalid, "invalid_version", "a version is a positive whole number")
	}
	return s.get(ctx, s.db.Reader(), tenant, id, version, false)
}

// List returns the tenant's templates by name after the name after;
// channel and status filter when set.
func (s *Service) List(ctx context.Context, tenant, after, channel, status string, limit int) ([]*Template, error) {
	return store.Collect(ctx, s.db.Reader(), "list templates", scanTemplate, `SELECT `+templateColumns+` FROM templates t
		JOIN template_versions v ON v.tenant_id = t.tenant_id AND v.template_id = t.id AND v.version = t.version
		WHERE t.tenant_id = $1 AND t.name > $2 AND ($3 = '' OR t.channel = $3) AND ($4 = '' OR t.status = $4)
		ORDER BY t.name LIMIT $5`, tenant, after, channel, status, limit)
}

func templateEvent(ctx context.Context, subject, tenant string, t *Template) (event.Envelope, error) {
	return event.New(ctx, subject, event.SourceTemplates, tenant, event.TemplateData{
		TemplateID: t.ID, Name: t.Name, Channel: t.Channel, Version: t.Version})
}

// Create stores a new template as version 1, status created.
func (s *Service) Create(ctx context.Context, tenant string, in Input) (*Template, error) {
	if in.Name == nil {
		in.Name = new(string)
	}
	name, err := checkName(*in.Name)
	if err != nil {
		return nil, err
	}
	if !event.ValidChannel(in.Channel) {
		return nil, invalid("channel", "channel must be email, sms or whatsapp (got %q)", in.Channel)
	}
	if in.Content == nil {
		return nil, invalid("content", "a template needs content")
	}
	if _, err := Compile(in.Channel, *in.Content); err != nil {
		return nil, err
	}
	now := s.clock()
	t := &Template{ID: event.NewID(), Name: name, Channel: in.Channel, Status: StatusCreated, Version: 1,
		Content: *in.Content, CreatedAt: now, UpdatedAt: now}
	ctx = event.EnsureCorrelation(ctx)
	err = s.ob.InTx(ctx, func(tx *sql.Tx, emit outbox.Emit) error {
		if err := s.checkNameFree(ctx, tx, tenant, t.ID, name); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO templates (tenant_id, id, name, channel, status, version, created_at, updated_at)
			VALUES ($1, $2, $3, $4, $5, 1, $6, $6)`, tenant, t.ID, name, t.Channel, t.Status, now.UnixMilli()); err != nil {
			if store.IsUniqueViolation(err) {
				// Another request took the name since the check above.
				return fault.New(fault.Conflict, "template_exists", "another template was just named %q; choose another name", name)
			}
			return fmt.Errorf("insert template: %w", err)
		}
		if err := s.addVersion(ctx, tx, tenant, t); err != nil {
			return err
		}
		env, err := templateEvent(ctx, event.TemplateCreated, tenant, t)
		if err != nil {
			return err
		}
		return emit(env)
	})
	if err != nil {
		return nil, err
	}
	return t, nil
}

func (s *Service) addVersion(ctx context.Context, tx querier, tenant string, t *Template) error {
	content, err := json.Marshal(t.Content)
	if err != nil {
		return fmt.Errorf("encode template content: %w", err)
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO template_versions (tenant_id, template_id, version, content, created_at)
		VALUES ($1, $2, $3, $4, $5)`, tenant, t.ID, t.Version, string(content), t.UpdatedAt.UnixMilli()); err != nil {
		return fmt.Errorf("store template version: %w", err)
	}
	return nil
}

func (s *Service) checkNameFree(ctx context.Context, q querier, tenant, id, name string) error {
	var other string
	err := q.QueryRowContext(ctx, `SELECT id FROM templates WHERE tenant_id = $1 AND name = $2 AND id <> $3`, tenant, name, id).Scan(&other)
	if errors.Is(err, sql.ErrNoRows) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("check template name: %w", err)
	}
	e := fault.New(fault.Conflict, "template_exists", "template %s is already named %q; choose another name", other, name)
	e.Details = map[string]any{"templateId": other}
	return e
}

// change runs fn on the locked template in a transaction that stores what
// fn changed (fn returns the subject of the event to publish, or "" when
// nothing changed).
func (s *Service) change(ctx context.Context, tenant, id string, fn func(tx querier, t *Template) (string, error)) (*Template, error) {
	ctx = event.EnsureCorrelation(ctx)
	var t *Template
	err := s.ob.InTx(ctx, func(tx *sql.Tx, emit outbox.Emit) error {
		var err error
		if t, err = s.get(ctx, tx, tenant, id, 0, true); err != nil {
			return err
		}
		before := t.UpdatedAt
		t.UpdatedAt = s.clock()
		subject, err := fn(tx, t)
		if err != nil || subject == "" {
			t.UpdatedAt = before
			return err
		}
		if _, err := tx.ExecContext(ctx, `UPDATE templates SET name = $3, status = $4, version = $5, updated_at = $6
			WHERE tenant_id = $1 AND id = $2`, tenant, id, t.Name, t.Status, t.Version, t.UpdatedAt.UnixMilli()); err != nil {
			if store.IsUniqueViolation(err) {
				return fault.New(fault.Conflict, "template_exists", "another template was just named %q; choose another name", t.Name)
			}
			return fmt.Errorf("update template %s: %w", id, err)
		}
		env, err := templateEvent(ctx, subject, tenant, t)
		if err != nil {
			return err
		}
		return emit(env)
	})
	if err != nil {
		return nil, err
	}
	s.heads.Delete(versionKey{tenant: tenant, id: id}) // this instance sees the change at once
	return t, nil
}

// Update renames a template or gives it new content, which becomes a new
// version; versions already used keep their content.
func (s *Service) Update(ctx context.Context, tenant, id string, in Input) (*Template, error) {
	var name string
	if in.Name != nil {
		var err error
		if name, err = checkName(*in.Name); err != nil {
			return nil, err
		}
	}
	return s.change(ctx, tenant, id, func(tx querier, t *Template) (string, error) {
		if in.Channel != "" && in.Channel != t.Channel {
			return "", invalid("channel", "a template's channel cannot change (it is %s); create another template", t.Channel)
		}
		if t.Status == StatusArchived {
			return "", fault.New(fault.Conflict, "template_archived", "template %s is archived; activate it before changing it", id)
		}
		changed := false
		if in.Name != nil && name != t.Name {
			if err := s.checkNameFree(ctx, tx, tenant, id, name); err != nil {
				return "", err
			}
			t.Name, changed = name, true
		}
		if in.Content != nil {
			if _, err := Compile(t.Channel, *in.Content); err != nil {
				return "", err
			}
			old, _ := json.Marshal(t.Content)
			now, _ := json.Marshal(*in.Content)
			if string(old) != string(now) {
				t.Content = *in.Content
				t.Version++
				if err := s.addVersion(ctx, tx, tenant, t); err != nil {
					return "", err
				}
				changed = true
			}
		}
		if !changed {
			return "", nil
		}
		return event.TemplateUpdated, nil
	})
}

// transitions are the lifecycle moves: from which statuses each goes.
var transitions = map[string]struct {
	to      string
	from    []string
	subject string
}{
	"activate": {StatusActive, []string{StatusCreated, StatusArchived}, event.TemplateActivated},
	"archive":  {StatusArchived, []string{StatusActive, StatusCreated}, event.TemplateArchived},
}

// Transition applies a lifecycle action ("activate" or "archive").
func (s *Service) Transition(ctx context.Context, tenant, id, action string) (*Template, error) {
	tr, ok := transitions[action]
	if !ok {
		return nil, fault.New(fault.Invalid, "invalid_action", "unknown action %q; use activate or archive", action)
	}
	return s.change(ctx, tenant, id, func(_ querier, t *Template) (string, error) {
		if t.Status == tr.to {
			return "", nil // already there: repeating the call is harmless
		}
		for _, from := range tr.from {
			if t.Status == from {
				t.Status = tr.to
				return tr.subject, nil
			}
		}
		return "", fault.New(fault.Conflict, "invalid_transition", "template %s is %s; %s applies to %v templates", id, t.Status, action, tr.from)
	})
}

// Delete removes a template that is not active, with all its versions.
func (s *Service) Delete(ctx context.Context, tenant, id string) error {
	ctx = event.EnsureCorrelation(ctx)
	return s.ob.InTx(ctx, func(tx *sql.Tx, emit outbox.Emit) error {
		t, err := s.get(ctx, tx, tenant, id, 0, true)
		if err != nil {
			return err
		}
		if t.Status == StatusActive {
			return fault.New(fault.Conflict, "template_in_use", "template %s is active and may be in use; archive it first", id)
		}
		for _, q := range []string{`DELETE FROM template_versions WHERE tenant_id = $1 AND template_id = $2`, `DELETE FROM templates WHERE tenant_id = $1 AND id = $2`} {
			if _, err := tx.ExecContext(ctx, q, tenant, id); err != nil {
				return fmt.Errorf("delete template %s: %w", id, err)
			}
		}
		env, err := event.New(ctx, event.TemplateDeleted, event.SourceTemplates, tenant, event.TemplateDeletedData{TemplateID: id, Name: t.Name})
		if err != nil {
			return err
		}
		s.heads.Delete(versionKey{tenant: tenant, id: id})
		return emit(env)
	})
}

// Rendered is a template filled for one recipient.
type Rendered struct {
	Subject  string            `json:"subject,omitempty"`
	HTML     string            `json:"html,omitempty"`
	Text     string            `json:"text,omitempty"`
	Body     string            `json:"body,omitempty"`
	WhatsApp *RenderedWhatsApp `json:"whatsapp,omitempty"`
	Version  int64             `json:"version"`
	// Channel and Status are the template's, for senders to check.
	Channel string `json:"channel"`
	Status  string `json:"status"`
	// From, FromName and ReplyTo are an email template's sender.
	From     string `json:"from,omitempty"`
	FromName string `json:"fromName,omitempty"`
	ReplyTo  string `json:"replyTo,omitempty"`
}

// RenderedWhatsApp is a provider template with its parameters filled.
type RenderedWhatsApp struct {
	Name     string   `json:"name"`
	Language string   `json:"language"`
	Params   []string `json:"params"`
}

// Render fills a compiled version for one recipient.
func (c *Compiled) Render(data *render.Data) (*Rendered, error) {
	out := &Rendered{}
	fill := func(t *render.Template) (string, error) {
		if t == nil {
			return "", nil
		}
		return t.Render(data, c.Content.Defaults)
	}
	var err error
	for _, p := range []struct {
		t   *render.Template
		dst *string
	}{{c.Subject, &out.Subject}, {c.HTML, &out.HTML}, {c.Text, &out.Text}, {c.Body, &out.Body}} {
		if *p.dst, err = fill(p.t); err != nil {
			return nil, err
		}
	}
	if w := c.Content.WhatsApp; w != nil {
		out.WhatsApp = &RenderedWhatsApp{Name: w.Name, Language: w.Language, Params: make([]string, len(c.Params))}
		for i, p := range c.Params {
			if out.WhatsApp.Params[i], err = fill(p); err != nil {
				return nil, err
			}
		}
	}
	return out, nil
}

// Render fills version (0 for the current) of a template for one recipient.
// Compiled versions are cached (versions never change), so a send reads
// only the template's status and current version from the database.
func (s *Service) Render(ctx context.Context, tenant, id string, version int64, data *render.Data) (*Rendered, error) {
	ch, status, current, err := s.head(ctx, tenant, id)
	if err != nil {
		return nil, err
	}
	if version <= 0 {
		version = current
	}
	key := versionKey{tenant, id, version}
	var c *Compiled
	if cached, ok := s.compiled.Load(key); ok {
		c = cached.(*Compiled)
	} else {
		t, err := s.get(ctx, s.db.Reader(), tenant, id, version, false)
		if err != nil {
			return nil, err
		}
		if c, err = Compile(t.Channel, t.Content); err != nil {
			return nil, fmt.Errorf("template %s version %d no longer compiles: %w", id, version, err)
		}
		s.compiled.Store(key, c)
	}
	r, err := c.Render(data)
	if err != nil {
		return nil, err
	}
	r.Version, r.Channel, r.Status = version, ch, status
	r.From, r.FromName, r.ReplyTo = c.Content.From, c.Content.FromName, c.Content.ReplyTo
	return r, nil
}

// headTTL is how long a template's channel, status and current version are
// trusted from memory by Render: a campaign renders the same template
// thousands of times a second, and an archive or a new version takes
// effect within it.
const headTTL = time.Second

type head struct {
	channel, status string
	version         int64
	read            time.Time
}

func (s *Service) head(ctx context.Context, tenant, id string) (string, string, int64, error) {
	key := versionKey{tenant: tenant, id: id}
	if h, ok := s.heads.Load(key); ok && time.Since(h.(head).read) < headTTL {
		h := h.(head)
		return h.channel, h.status, h.version, nil
	}
	var h head
	err := s.db.Reader().QueryRowContext(ctx, `SELECT channel, status, version FROM templates WHERE tenant_id = $1 AND id = $2`,
		tenant, id).Scan(&h.channel, &h.status, &h.version)
	if errors.Is(err, sql.ErrNoRows) {
		return "", "", 0, notFound(id)
	}
	if err != nil {
		return "", "", 0, fmt.Errorf("read template %s: %w", id, err)
	}
	h.read = time.Now()
	s.heads.Store(key, h)
	return h.channel, h.status, h.version, nil
}
