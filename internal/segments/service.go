package segments

import (
	"context"
	"database/sql"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"io/fs"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/alumoutreach/alumoutreach/internal/event"
	"github.com/alumoutreach/alumoutreach/internal/platform/fault"
	"github.com/alumoutreach/alumoutreach/internal/platform/outbox"
	"github.com/alumoutreach/alumoutreach/internal/platform/store"
	"github.com/alumoutreach/alumoutreach/internal/rule"
)

//go:embed migrations/*.sql
var migrationFiles embed.FS

// ModuleName is the module's name in schema_migrations.
const ModuleName = "segments"

// Migrations returns the module's embedded migrations.
func Migrations() fs.FS {
	sub, _ := fs.Sub(migrationFiles, "migrations")
	return sub
}

const (
	maxNameLen        = 200
	maxDescriptionLen = 2000
	previewSample     = 10
)

// Service keeps segment definitions and their membership.
type Service struct {
	db    *store.DB
	ob    *outbox.Outbox
	log   *slog.Logger
	now   func() time.Time
	chunk int
	// rulesRead, when set (tests), runs in a live update's transaction
	// right after it read the rules.
	rulesRead func()

	mu    sync.Mutex
	cache map[string]*tenantRules
}

// tenantRules are a tenant's compiled segments at one generation.
type tenantRules struct {
	generation int64
	segments   []compiled
}

type compiled struct {
	id   string
	rule *rule.Rule
}

// NewService returns the segments service on db (migrated), writing its
// events to ob.
func NewService(db *store.DB, ob *outbox.Outbox, log *slog.Logger) *Service {
	return &Service{db: db, ob: ob, log: log, now: time.Now, chunk: 10_000, cache: map[string]*tenantRules{}}
}

func (s *Service) clock() time.Time { return s.now().UTC().Truncate(time.Millisecond) }

func notFound(id string) error {
	e := fault.New(fault.NotFound, "segment_not_found", "no segment %q in this tenant", id)
	e.Details = map[string]any{"segmentId": id}
	return e
}

// Input is a segment as a caller sends it; nil fields are left alone by an
// update.
type Input struct {
	Name        *string         `json:"name"`
	Description *string         `json:"description"`
	Rules       json.RawMessage `json:"rules"`
}

// ParseRules validates a rule tree, turning its error into a 400 that
// points at the bad node.
func ParseRules(raw json.RawMessage) (*rule.Rule, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return nil, fault.New(fault.Invalid, "invalid_rule", `rules are required, e.g. {"all": [{"field": "attributes.classYear", "op": "gte", "value": 2010}]}`)
	}
	r, err := rule.Parse(raw)
	if err != nil {
		var re *rule.Error
		if errors.As(err, &re) {
			e := fault.New(fault.Invalid, "invalid_rule", "rules.%s", re.Error())
			if re.Path == "" {
				e.Message = "rules: " + re.Message
			}
			e.Details = map[string]any{"path": re.Path}
			return nil, e
		}
		return nil, fault.Wrap(err, fault.Invalid, "invalid_rule", "rules do not parse")
	}
	return r, nil
}

func checkName(name string) (string, error) {
	n := strings.TrimSpace(name)
	if n == "" || len([]rune(n)) > maxNameLen {
		e := fault.New(fault.Invalid, "invalid_field", "name must be 1 to %d characters", maxNameLen)
		e.Details = map[string]any{"field": "name"}
		return "", e
	}
	return n, nil
}

func checkDescription(d string) error {
	if len([]rune(d)) > maxDescriptionLen {
		e := fault.New(fault.Invalid, "invalid_field", "description is longer than %d characters", maxDescriptionLen)
		e.Details = map[string]any{"field": "description"}
		return e
	}
	return nil
}

// Create stores a segment; SEGMENTS_DEFINITION_CONSUMER then evaluates it.
func (s *Service) Create(ctx context.Context, tenant string, in Input) (*Segment, error) {
	if in.Name == nil {
		in.Name = new(string)
	}
	name, err := checkName(*in.Name)
	if err != nil {
		return nil, err
	}
	r, err := ParseRules(in.Rules)
	if err != nil {
		return nil, err
	}
	desc := ""
	if in.Description != nil {
		desc = *in.Description
	}
	if err := checkDescription(desc); err != nil {
		return nil, err
	}
	canon, _ := r.MarshalJSON()
	now := s.clock()
	seg := &Segment{ID: event.NewID(), Name: name, Description: desc, Rules: canon, Version: 1, CreatedAt: now, UpdatedAt: now}
	ctx = event.EnsureCorrelation(ctx)
	err = s.ob.InTx(ctx, func(tx *sql.Tx, emit outbox.Emit) error {
		if err := s.lockRules(ctx, tx, tenant, true); err != nil {
			return err
		}
		if err := s.checkNameFree(ctx, tx, tenant, seg.ID, name); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO segments (tenant_id, id, name, description, rules, version, created_at, updated_at)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $7)`, tenant, seg.ID, name, desc, string(canon), seg.Version, now.UnixMilli()); err != nil {
			if store.IsUniqueViolation(err) {
				// Another request took the name since the check above.
				return fault.New(fault.Conflict, "segment_exists", "another segment was just named %q; choose another name", name)
			}
			return fmt.Errorf("insert segment: %w", err)
		}
		if err := bumpGeneration(ctx, tx, tenant); err != nil {
			return err
		}
		env, err := event.New(ctx, event.SegmentCreated, event.SourceSegments, tenant, event.SegmentCreatedData{
			SegmentID: seg.ID, Name: name, Kind: event.SegmentKindDynamic, Version: seg.Version})
		if err != nil {
			return err
		}
		return emit(env)
	})
	if err != nil {
		return nil, err
	}
	return seg, nil
}

func (s *Service) checkNameFree(ctx context.Context, tx *sql.Tx, tenant, id, name string) error {
	var other string
	err := tx.QueryRowContext(ctx, `SELECT id FROM segments WHERE tenant_id = $1 AND name = $2 AND id <> $3`, tenant, name, id).Scan(&other)
	if errors.Is(err, sql.ErrNoRows) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("check segment name: %w", err)
	}
	e := fault.New(fault.Conflict, "segment_exists", "segment %s is already named %q; choose another name", other, name)
	e.Details = map[string]any{"segmentId": other}
	return e
}

// rulesLockClass is the first key of the segments' advisory locks on
// PostgreSQL (the second is the tenant's); the two-key space does not
// overlap the one-key locks of migrations.
const rulesLockClass = 7165002

// lockRules takes, on PostgreSQL, the tenant's rules lock for the rest of
// tx: shared for a live update, which reads the rules; exclusive for a
// change to them. Under READ COMMITTED a live update could otherwise read
// the rules just before a new segment committed, and commit its copy of
// the contact just after the segment's first evaluation read the copies:
// neither would see the other, and the contact would be missing from the
// segment until it changed again. With the lock, a change waits for the
// live updates in flight, and a live update that starts later reads the
// new rules. Taken first in its transaction, before any row lock, it
// cannot close a cycle with them. SQLite's single writer serializes these
// transactions already.
func (s *Service) lockRules(ctx context.Context, tx *sql.Tx, tenant string, exclusive bool) error {
	if s.db.Kind() != store.Postgres {
		return nil
	}
	fn := "pg_advisory_xact_lock_shared"
	if exclusive {
		fn = "pg_advisory_xact_lock"
	}
	h := fnv.New32a()
	h.Write([]byte(tenant))
	if _, err := tx.ExecContext(ctx, `SELECT `+fn+`($1, $2)`, int32(rulesLockClass), int32(h.Sum32())); err != nil {
		return fmt.Errorf("lock the segment rules of tenant %s: %w", tenant, err)
	}
	return nil
}

func bumpGeneration(ctx context.Context, tx *sql.Tx, tenant string) error {
	_, err := tx.ExecContext(ctx, `INSERT INTO segment_generations (tenant_id, generation) VALUES ($1, 1)
		ON CONFLICT (tenant_id) DO UPDATE SET generation = segment_generations.generation + 1`, tenant)
	if err != nil {
		return fmt.Errorf("bump segment generation: %w", err)
	}
	return nil
}

const segmentColumns = `id, name, description, rules, version, member_count, evaluated_at, created_at, updated_at`

func scanSegment(r store.Scanner) (*Segment, error) {
	var (
		seg              Segment
		rules            string
		evaluated        sql.NullInt64
		created, updated int64
	)
	if err := r.Scan(&seg.ID, &seg.Name, &seg.Description, &rules, &seg.Version, &seg.Members, &evaluated, &created, &updated); err != nil {
		return nil, err
	}
	seg.Rules = json.RawMessage(rules)
	if evaluated.Valid {
		t := time.UnixMilli(evaluated.Int64).UTC()
		seg.EvaluatedAt = &t
	}
	seg.CreatedAt, seg.UpdatedAt = time.UnixMilli(created).UTC(), time.UnixMilli(updated).UTC()
	return &seg, nil
}

type querier interface {
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

func (s *Service) get(ctx context.Context, q querier, tenant, id string) (*Segment, error) {
	seg, err := scanSegment(q.QueryRowContext(ctx, `SELECT `+segmentColumns+` FROM segments WHERE tenant_id = $1 AND id = $2`, tenant, id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, notFound(id)
	}
	if err != nil {
		return nil, fmt.Errorf("read segment %s: %w", id, err)
	}
	return seg, nil
}

// Get returns one segment.
func (s *Service) Get(ctx context.Context, tenant, id string) (*Segment, error) {
	return s.get(ctx, s.db.Reader(), tenant, id)
}

// List returns the tenant's segments by name, after the name after.
func (s *Service) List(ctx context.Context, tenant, after string, limit int) ([]*Segment, error) {
	return store.Collect(ctx, s.db.Reader(), "list segments", scanSegment, `SELECT `+segmentColumns+` FROM segments WHERE tenant_id = $1 AND name > $2
		ORDER BY name LIMIT $3`, tenant, after, limit)
}

// Update changes name, description or rules. New rules raise the version
// and are evaluated by SEGMENTS_DEFINITION_CONSUMER.
func (s *Service) Update(ctx context.Context, tenant, id string, in Input) (*Segment, error) {
	var (
		r    *rule.Rule
		err  error
		name string
	)
	if in.Name != nil {
		if name, err = checkName(*in.Name); err != nil {
			return nil, err
		}
	}
	if in.Description != nil {
		if err := checkDescription(*in.Description); err != nil {
			return nil, err
		}
	}
	if in.Rules != nil {
		if r, err = ParseRules(in.Rules); err != nil {
			return nil, err
		}
	}
	ctx = event.EnsureCorrelation(ctx)
	var seg *Segment
	err = s.ob.InTx(ctx, func(tx *sql.Tx, emit outbox.Emit) error {
		// Whether the rules change is known only below; updates are
		// rare enough to take the lock for each.
		if err := s.lockRules(ctx, tx, tenant, true); err != nil {
			return err
		}
		var err error
		if seg, err = s.get(ctx, tx, tenant, id); err != nil {
			return err
		}
		changed, rulesChanged := false, false
		if in.Name != nil && name != seg.Name {
			if err := s.checkNameFree(ctx, tx, tenant, id, name); err != nil {
				return err
			}
			seg.Name, changed = name, true
		}
		if in.Description != nil && *in.Description != seg.Description {
			seg.Description, changed = *in.Description, true
		}
		if r != nil {
			if canon, _ := r.MarshalJSON(); string(canon) != string(seg.Rules) {
				seg.Rules, changed, rulesChanged = canon, true, true
			}
		}
		if !changed {
			return nil
		}
		seg.Version++
		seg.UpdatedAt = s.clock()
		if _, err := tx.ExecContext(ctx, `UPDATE segments SET name = $3, description = $4, rules = $5, version = $6, updated_at = $7
			WHERE tenant_id = $1 AND id = $2`, tenant, id, seg.Name, seg.Description, string(seg.Rules), seg.Version, seg.UpdatedAt.UnixMilli()); err != nil {
			if store.IsUniqueViolation(err) {
				return fault.New(fault.Conflict, "segment_exists", "another segment was just named %q; choose another name", seg.Name)
			}
			return fmt.Errorf("update segment %s: %w", id, err)
		}
		if rulesChanged {
			if err := bumpGeneration(ctx, tx, tenant); err != nil {
				return err
			}
		}
		env, err := event.New(ctx, event.SegmentUpdated, event.SourceSegments, tenant, event.SegmentUpdatedData{
			SegmentID: id, Name: seg.Name, Kind: event.SegmentKindDynamic, Version: seg.Version, RulesChanged: rulesChanged})
		if err != nil {
			return err
		}
		return emit(env)
	})
	if err != nil {
		return nil, err
	}
	return seg, nil
}

// Delete removes a segment and its membership. No member.removed events
// follow: segment.deleted tells consumers to drop the whole membership.
func (s *Service) Delete(ctx context.Context, tenant, id string) error {
	ctx = event.EnsureCorrelation(ctx)
	return s.ob.InTx(ctx, func(tx *sql.Tx, emit outbox.Emit) error {
		if err := s.lockRules(ctx, tx, tenant, true); err != nil {
			return err
		}
		seg, err := s.get(ctx, tx, tenant, id)
		if err != nil {
			return err
		}
		for _, q := range []string{`DELETE FROM segment_members WHERE tenant_id = $1 AND segment_id = $2`, `DELETE FROM segments WHERE tenant_id = $1 AND id = $2`} {
			if _, err := tx.ExecContext(ctx, q, tenant, id); err != nil {
				return fmt.Errorf("delete segment %s: %w", id, err)
			}
		}
		if err := bumpGeneration(ctx, tx, tenant); err != nil {
			return err
		}
		env, err := event.New(ctx, event.SegmentDeleted, event.SourceSegments, tenant, event.SegmentDeletedData{SegmentID: id, Name: seg.Name})
		if err != nil {
			return err
		}
		return emit(env)
	})
}

// Preview counts and samples the contacts rules select now, saving nothing.
func (s *Service) Preview(ctx context.Context, tenant string, rules json.RawMessage) (*Preview, error) {
	r, err := ParseRules(rules)
	if err != nil {
		return nil, err
	}
	where, args := r.SQL(s.db.Kind(), "c", s.clock(), 2)
	args = append([]any{tenant}, args...)
	from := ` FROM segment_contacts c WHERE c.tenant_id = $1 AND c.deleted = 0 AND (` + where + `)`
	p := &Preview{Sample: []SampleContact{}}
	if err := s.db.Reader().QueryRowContext(ctx, `SELECT count(*)`+from, args...).Scan(&p.Count); err != nil {
		return nil, fmt.Errorf("preview count: %w", err)
	}
	rows, err := s.db.Reader().QueryContext(ctx, `SELECT c.contact_id, c.email, c.phone, c.first_name, c.last_name`+from+
		fmt.Sprintf(` ORDER BY c.contact_id LIMIT %d`, previewSample), args...)
	if err != nil {
		return nil, fmt.Errorf("preview sample: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var c SampleContact
		if err := rows.Scan(&c.ContactID, &c.Email, &c.Phone, &c.FirstName, &c.LastName); err != nil {
			return nil, fmt.Errorf("preview sample: %w", err)
		}
		p.Sample = append(p.Sample, c)
	}
	return p, rows.Err()
}

// Members returns up to limit members of a segment after contact id after.
func (s *Service) Members(ctx context.Context, tenant, id, after string, limit int) ([]Member, error) {
	if _, err := s.Get(ctx, tenant, id); err != nil {
		return nil, err
	}
	rows, err := s.db.Reader().QueryContext(ctx, `SELECT contact_id, contact_version, changed_at FROM segment_members
		WHERE tenant_id = $1 AND segment_id = $2 AND is_member = 1 AND contact_id > $3 ORDER BY contact_id LIMIT $4`, tenant, id, after, limit)
	if err != nil {
		return nil, fmt.Errorf("list members: %w", err)
	}
	defer rows.Close()
	var out []Member
	for rows.Next() {
		var (
			m     Member
			since int64
		)
		if err := rows.Scan(&m.ContactID, &m.ContactVersion, &since); err != nil {
			return nil, fmt.Errorf("list members: %w", err)
		}
		m.Since = time.UnixMilli(since).UTC()
		out = append(out, m)
	}
	return out, rows.Err()
}

// Recipient is a member as a campaign's audience needs it.
type Recipient struct {
	ContactID string
	// TimeZone is the contact's IANA zone, "" when unknown.
	TimeZone string
}

// Recipients returns up to limit members of a segment after contact id
// after, in contact id order, with their time zones from the module's
// copy of each contact: what a campaign freezes as its audience.
func (s *Service) Recipients(ctx context.Context, tenant, id, after string, limit int) ([]Recipient, error) {
	rows, err := s.db.Reader().QueryContext(ctx, `SELECT m.contact_id, COALESCE(c.time_zone, '') FROM segment_members m
		LEFT JOIN segment_contacts c ON c.tenant_id = m.tenant_id AND c.contact_id = m.contact_id
		WHERE m.tenant_id = $1 AND m.segment_id = $2 AND m.is_member = 1 AND m.contact_id > $3
		ORDER BY m.contact_id LIMIT $4`, tenant, id, after, limit)
	if err != nil {
		return nil, fmt.Errorf("list recipients of segment %s: %w", id, err)
	}
	defer rows.Close()
	var out []Recipient
	for rows.Next() {
		var r Recipient
		if err := rows.Scan(&r.ContactID, &r.TimeZone); err != nil {
			return nil, fmt.Errorf("list recipients of segment %s: %w", id, err)
		}
		out = append(out, r)
	}
	return out, rows.Err()
}
