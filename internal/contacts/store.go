package contacts

import (
	"context"
	"database/sql"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"slices"
	"strings"
	"time"

	"github.com/alumoutreach/alumoutreach/internal/platform/fault"
	"github.com/alumoutreach/alumoutreach/internal/platform/store"
)

//go:embed migrations/*.sql
var migrationFiles embed.FS

// ModuleName is the module's name in schema_migrations.
const ModuleName = "contacts"

// Migrations returns the module's embedded migrations.
func Migrations() fs.FS {
	sub, _ := fs.Sub(migrationFiles, "migrations")
	return sub
}

// Migrate creates or updates the module's tables in db.
func Migrate(ctx context.Context, db *store.DB) error {
	return db.Migrate(ctx, ModuleName, Migrations())
}

// querier is what both *sql.DB and *sql.Tx offer.
type querier interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// sqlStore is the module's SQL, shared by SQLite and PostgreSQL.
type sqlStore struct {
	kind store.Kind
}

const contactColumns = `id, email, phone, first_name, last_name, locale, time_zone, attributes, source, version, created_at, updated_at, erased_at`

func nullable(s string) any {
	if s == "" {
		return nil
	}
	return s
}

func encodeAttributes(a map[string]json.RawMessage) string {
	if len(a) == 0 {
		return "{}"
	}
	b, err := json.Marshal(a)
	if err != nil {
		panic(fmt.Sprintf("contacts: attributes were validated but do not marshal: %v", err))
	}
	return string(b)
}

func scanContact(r store.Scanner) (*Contact, error) { return scanContactWith(r) }

// scanContactWith scans contactColumns, then more into extra.
func scanContactWith(r store.Scanner, extra ...any) (*Contact, error) {
	var (
		c                Contact
		email, phone     sql.NullString
		attrs            []byte
		created, updated int64
		erased           sql.NullInt64
	)
	if err := r.Scan(append([]any{&c.ID, &email, &phone, &c.FirstName, &c.LastName, &c.Locale, &c.TimeZone,
		&attrs, &c.Source, &c.Version, &created, &updated, &erased}, extra...)...); err != nil {
		return nil, err
	}
	c.Email, c.Phone = email.String, phone.String
	if err := json.Unmarshal(attrs, &c.Attributes); err != nil {
		return nil, fmt.Errorf("contact %s: stored attributes do not decode: %w", c.ID, err)
	}
	if c.Attributes == nil {
		c.Attributes = map[string]json.RawMessage{}
	}
	c.CreatedAt = time.UnixMilli(created).UTC()
	c.UpdatedAt = time.UnixMilli(updated).UTC()
	if erased.Valid {
		t := time.UnixMilli(erased.Int64).UTC()
		c.ErasedAt = &t
	}
	c.Tags = []string{}
	c.Consent = map[string]Consent{}
	return &c, nil
}

// get reads one contact with its tags and consent; forUpdate locks the row
// on PostgreSQL for the rest of the transaction (SQLite has one writer).
func (s sqlStore) get(ctx context.Context, q querier, tenant, id string, forUpdate bool) (*Contact, error) {
	lock := ""
	if forUpdate && s.kind == store.Postgres {
		lock = " FOR UPDATE"
	}
	c, err := scanContact(q.QueryRowContext(ctx,
		`SELECT `+contactColumns+` FROM contacts WHERE tenant_id = $1 AND id = $2`+lock, tenant, id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("read contact %s: %w", id, err)
	}
	if err := s.loadDetails(ctx, q, tenant, []*Contact{c}); err != nil {
		return nil, err
	}
	return c, nil
}

// getMany reads the contacts ids, with their tags and consent, in one
// statement: the pipeline reads its recipients this way before each send,
// mostly one or two at a time, and three queries cost more than the rows.
// Tags and consent come aggregated as JSON (SQLite's json_group_array,
// PostgreSQL's json_agg).
func (s sqlStore) getMany(ctx context.Context, q querier, tenant string, ids []string) ([]*Contact, error) {
	args := make([]any, 0, len(ids)+1)
	args = append(args, tenant)
	var in strings.Builder
	for i, id := range ids {
		if i > 0 {
			in.WriteByte(',')
		}
		fmt.Fprintf(&in, "$%d", i+2)
		args = append(args, id)
	}
	tags, consents := `(SELECT json_group_array(tag) FROM contact_tags t WHERE t.tenant_id = c.tenant_id AND t.contact_id = c.id)`,
		`(SELECT json_group_array(json_array(channel, granted, source, proof, decided_at)) FROM contact_consents k WHERE k.tenant_id = c.tenant_id AND k.contact_id = c.id)`
	if s.kind == store.Postgres {
		tags = `(SELECT coalesce(json_agg(tag), '[]'::json)::text FROM contact_tags t WHERE t.tenant_id = c.tenant_id AND t.contact_id = c.id)`
		consents = `(SELECT coalesce(json_agg(json_build_array(channel, granted, source, proof, decided_at)), '[]'::json)::text FROM contact_consents k WHERE k.tenant_id = c.tenant_id AND k.contact_id = c.id)`
	}
	rows, err := q.QueryContext(ctx, `SELECT `+prefixedContactColumns+`, `+tags+`, `+consents+`
		FROM contacts c WHERE c.tenant_id = $1 AND c.id IN (`+in.String()+`)`, args...)
	if err != nil {
		return nil, fmt.Errorf("read contacts: %w", err)
	}
	defer rows.Close()
	var out []*Contact
	for rows.Next() {
		var tagsJSON, consentJSON []byte
		c, err := scanContactWith(rows, &tagsJSON, &consentJSON)
		if err != nil {
			return nil, fmt.Errorf("read contacts: %w", err)
		}
		if err := decodeDetails(c, tagsJSON, consentJSON); err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read contacts: %w", err)
	}
	return out, nil
}

var prefixedContactColumns = prefixed("c.", contactColumns)

// consentRow is a consent decision as getMany aggregates it: [channel,
// granted, source, proof, decided_at].
type consentRow struct {
	channel, source, proof string
	granted                int
	at                     int64
}

func (r *consentRow) UnmarshalJSON(b []byte) error {
	return json.Unmarshal(b, &[]any{&r.channel, &r.granted, &r.source, &r.proof, &r.at})
}

// decodeDetails fills c's tags (sorted, as loadDetails reads them) and
// consent from getMany's aggregates.
func decodeDetails(c *Contact, tagsJSON, consentJSON []byte) error {
	if err := json.Unmarshal(tagsJSON, &c.Tags); err != nil {
		return fmt.Errorf("contact %s: tags do not decode: %w", c.ID, err)
	}
	slices.Sort(c.Tags)
	var consents []consentRow
	if err := json.Unmarshal(consentJSON, &consents); err != nil {
		return fmt.Errorf("contact %s: consent does not decode: %w", c.ID, err)
	}
	for _, k := range consents {
		c.Consent[k.channel] = Consent{Granted: k.granted == 1, Source: k.source, Proof: k.proof, At: time.UnixMilli(k.at).UTC()}
	}
	return nil
}

// loadDetails fills the tags and consent of cs in two queries.
func (s sqlStore) loadDetails(ctx context.Context, q querier, tenant string, cs []*Contact) error {
	if len(cs) == 0 {
		return nil
	}
	byID := make(map[string]*Contact, len(cs))
	args := make([]any, 0, len(cs)+1)
	args = append(args, tenant)
	var in strings.Builder
	for i, c := range cs {
		byID[c.ID] = c
		if i > 0 {
			in.WriteByte(',')
		}
		fmt.Fprintf(&in, "$%d", i+2)
		args = append(args, c.ID)
	}
	rows, err := q.QueryContext(ctx, `SELECT contact_id, tag FROM contact_tags WHERE tenant_id = $1 AND contact_id IN (`+in.String()+`) ORDER BY contact_id, tag`, args...)
	if err != nil {
		return fmt.Errorf("read contact tags: %w", err)
	}
	for rows.Next() {
		var id, tag string
		if err := rows.Scan(&id, &tag); err != nil {
			rows.Close()
			return fmt.Errorf("read contact tags: %w", err)
		}
		byID[id].Tags = append(byID[id].Tags, tag)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return fmt.Errorf("read contact tags: %w", err)
	}
	rows, err = q.QueryContext(ctx, `SELECT contact_id, channel, granted, source, proof, decided_at FROM contact_consents WHERE tenant_id = $1 AND contact_id IN (`+in.String()+`)`, args...)
	if err != nil {
		return fmt.Errorf("read contact consent: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var (
			id, channel string
			granted     int
			con         Consent
			at          int64
		)
		if err := rows.Scan(&id, &channel, &granted, &con.Source, &con.Proof, &at); err != nil {
			return fmt.Errorf("read contact consent: %w", err)
		}
		con.Granted = granted == 1
		con.At = time.UnixMilli(at).UTC()
		byID[id].Consent[channel] = con
	}
	return rows.Err()
}

// insert writes a new contact, its tags and consent. A taken email or phone
// is a conflict naming the contact that has it.
func (s sqlStore) insert(ctx context.Context, tx querier, tenant string, c *Contact) error {
	// PostgreSQL aborts the whole transaction on a unique violation, so the
	// addresses are checked first; SQLite undoes only the statement, so the
	// check runs only when the insert fails (a fifth of an import's time).
	if s.kind == store.Postgres {
		if err := s.conflict(ctx, tx, tenant, c); err != nil {
			return err
		}
	}
	_, err := tx.ExecContext(ctx, `INSERT INTO contacts (tenant_id, `+contactColumns+`)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, NULL)`,
		tenant, c.ID, nullable(c.Email), nullable(c.Phone), c.FirstName, c.LastName, c.Locale, c.TimeZone,
		encodeAttributes(c.Attributes), c.Source, c.Version, c.CreatedAt.UnixMilli(), c.UpdatedAt.UnixMilli())
	if err != nil {
		if store.IsUniqueViolation(err) {
			if cerr := s.conflict(ctx, tx, tenant, c); s.kind == store.SQLite && cerr != nil {
				return cerr
			}
			return errTaken
		}
		return fmt.Errorf("insert contact: %w", err)
	}
	for _, t := range c.Tags {
		if err := s.addTag(ctx, tx, tenant, c.ID, t); err != nil {
			return err
		}
	}
	for ch, con := range c.Consent {
		if err := s.putConsent(ctx, tx, tenant, c.ID, ch, con); err != nil {
			return err
		}
	}
	return nil
}

// update writes c's profile, attributes and version.
func (s sqlStore) update(ctx context.Context, tx querier, tenant string, c *Contact) error {
	if err := s.conflict(ctx, tx, tenant, c); err != nil {
		return err
	}
	_, err := tx.ExecContext(ctx, `UPDATE contacts SET email = $3, phone = $4, first_name = $5, last_name = $6,
		locale = $7, time_zone = $8, attributes = $9, version = $10, updated_at = $11, erased_at = $12
		WHERE tenant_id = $1 AND id = $2`,
		tenant, c.ID, nullable(c.Email), nullable(c.Phone), c.FirstName, c.LastName, c.Locale, c.TimeZone,
		encodeAttributes(c.Attributes), c.Version, c.UpdatedAt.UnixMilli(), erasedMs(c))
	if err != nil {
		if store.IsUniqueViolation(err) {
			return errTaken
		}
		return fmt.Errorf("update contact %s: %w", c.ID, err)
	}
	return nil
}

func erasedMs(c *Contact) any {
	if c.ErasedAt == nil {
		return nil
	}
	return c.ErasedAt.UnixMilli()
}

// errTaken is a unique violation the check before the write could not see:
// another transaction took the address in between. PostgreSQL has aborted
// the transaction by then, so it cannot be asked who.
var errTaken = fault.New(fault.Conflict, "contact_exists", "another contact took the same email or phone a moment ago; retry to see which")

// conflict checks, before a write, whether another contact of the tenant
// has c's email or phone, and names it.
func (s sqlStore) conflict(ctx context.Context, q querier, tenant string, c *Contact) error {
	for _, k := range []struct{ field, value string }{{"email", c.Email}, {"phone", c.Phone}} {
		if k.value == "" {
			continue
		}
		id, err := s.findBy(ctx, q, tenant, k.field, k.value)
		if err != nil && !errors.Is(err, ErrNotFound) {
			return err
		}
		if err == nil && id != c.ID {
			e := fault.New(fault.Conflict, "contact_exists", "contact %s already has %s %s; update that contact, or use the upsert endpoint", id, k.field, k.value)
			e.Details = map[string]any{"field": k.field, "contactId": id}
			return e
		}
	}
	return nil
}

// findBy returns the id of the tenant's contact with the given email or phone.
func (s sqlStore) findBy(ctx context.Context, q querier, tenant, field, value string) (string, error) {
	col := map[string]string{"email": "email", "phone": "phone"}[field]
	if col == "" {
		panic("contacts: findBy on " + field)
	}
	var id string
	err := q.QueryRowContext(ctx, `SELECT id FROM contacts WHERE tenant_id = $1 AND `+col+` = $2`, tenant, value).Scan(&id)
	if errors.Is(err, sql.ErrNoRows) {
		return "", ErrNotFound
	}
	if err != nil {
		return "", fmt.Errorf("find contact by %s: %w", field, err)
	}
	return id, nil
}

func (s sqlStore) addTag(ctx context.Context, tx querier, tenant, id, tag string) error {
	if _, err := tx.ExecContext(ctx, `INSERT INTO contact_tags (tenant_id, contact_id, tag) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING`, tenant, id, tag); err != nil {
		return fmt.Errorf("tag contact %s: %w", id, err)
	}
	return nil
}

func (s sqlStore) removeTag(ctx context.Context, tx querier, tenant, id, tag string) error {
	if _, err := tx.ExecContext(ctx, `DELETE FROM contact_tags WHERE tenant_id = $1 AND contact_id = $2 AND tag = $3`, tenant, id, tag); err != nil {
		return fmt.Errorf("untag contact %s: %w", id, err)
	}
	return nil
}

func (s sqlStore) putConsent(ctx context.Context, tx querier, tenant, id, channel string, c Consent) error {
	granted := 0
	if c.Granted {
		granted = 1
	}
	_, err := tx.ExecContext(ctx, `INSERT INTO contact_consents (tenant_id, contact_id, channel, granted, source, proof, decided_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7)
		ON CONFLICT (tenant_id, contact_id, channel) DO UPDATE SET granted = excluded.granted, source = excluded.source,
			proof = excluded.proof, decided_at = excluded.decided_at`,
		tenant, id, channel, granted, c.Source, c.Proof, c.At.UnixMilli())
	if err != nil {
		return fmt.Errorf("record %s consent of contact %s: %w", channel, id, err)
	}
	return nil
}

// deleteDetails removes a contact's tags and consent.
func (s sqlStore) deleteDetails(ctx context.Context, tx querier, tenant, id string) error {
	for _, table := range []string{"contact_tags", "contact_consents"} {
		if _, err := tx.ExecContext(ctx, `DELETE FROM `+table+` WHERE tenant_id = $1 AND contact_id = $2`, tenant, id); err != nil {
			return fmt.Errorf("delete %s of contact %s: %w", table, id, err)
		}
	}
	return nil
}

func (s sqlStore) delete(ctx context.Context, tx querier, tenant, id string) error {
	if err := s.deleteDetails(ctx, tx, tenant, id); err != nil {
		return err
	}
	if _, err := tx.ExecContext(ctx, `DELETE FROM contacts WHERE tenant_id = $1 AND id = $2`, tenant, id); err != nil {
		return fmt.Errorf("delete contact %s: %w", id, err)
	}
	return nil
}
