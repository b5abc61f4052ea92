package segments

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
	"github.com/alumoutreach/alumoutreach/internal/platform/store"
	"github.com/alumoutreach/alumoutreach/internal/rule"
)

// contactRef is what every contact.* payload carries.
type contactRef struct {
	ContactID string `json:"contactId"`
	Version   int64  `json:"version"`
}

// ContactHandler returns the SEGMENTS_CONTACT_CONSUMER handler.
func (s *Service) ContactHandler(src ContactSource) bus.Handler {
	return func(ctx context.Context, env event.Envelope) error {
		var ref contactRef
		if err := json.Unmarshal(env.Data, &ref); err != nil || ref.ContactID == "" {
			return bus.Permanent(fmt.Errorf("%w: %s without a contactId", event.ErrInvalid, env.Type))
		}
		snap, err := src.ContactSnapshot(ctx, env.TenantID, ref.ContactID)
		switch {
		case errors.Is(err, ErrContactNotFound):
			// Gone for good: whatever version the event names, the
			// contact is a member of nothing.
			snap = Snapshot{ID: ref.ContactID, Version: max(ref.Version, 1), Deleted: true}
		case err != nil:
			return fmt.Errorf("read contact %s: %w", ref.ContactID, err)
		}
		_, err = s.Apply(ctx, env.TenantID, snap)
		return err
	}
}

// Apply stores snap in the module's copy of the contact unless a version
// as new is there already, and records and publishes the membership
// changes it causes. It reports how many memberships changed.
func (s *Service) Apply(ctx context.Context, tenant string, snap Snapshot) (int, error) {
	attrs, tags, err := snap.Contact.JSONColumns()
	if err != nil {
		return 0, bus.Permanent(fmt.Errorf("contact %s: %w", snap.ID, err))
	}
	changes := 0
	err = s.ob.InTx(ctx, func(tx *sql.Tx, emit outbox.Emit) error {
		changes = 0
		if err := s.lockRules(ctx, tx, tenant, false); err != nil {
			return err
		}
		fresh, err := s.storeSnapshot(ctx, tx, tenant, snap, attrs, tags)
		if err != nil || !fresh {
			return err
		}
		segs, err := s.rules(ctx, tx, tenant)
		if err != nil {
			return err
		}
		if s.rulesRead != nil {
			s.rulesRead()
		}
		current, err := s.memberships(ctx, tx, tenant, snap.ID)
		if err != nil {
			return err
		}
		now := s.clock()
		var flips []flip
		for _, seg := range segs {
			if want := !snap.Deleted && seg.rule.Match(&snap.Contact, now); want != current[seg.id] {
				flips = append(flips, flip{segment: seg.id, member: want})
			}
		}
		changes, err = s.decide(ctx, tx, emit, tenant, snap.ID, snap.Version, flips, now)
		return err
	})
	return changes, err
}

// storeSnapshot writes snap over the stored copy when it is newer (or
// deletes a live copy), and reports whether it did.
func (s *Service) storeSnapshot(ctx context.Context, tx *sql.Tx, tenant string, snap Snapshot, attrs, tags []byte) (bool, error) {
	c := snap.Contact
	deleted := 0
	if snap.Deleted {
		deleted = 1
		c = rule.Contact{}
		attrs, tags = []byte("{}"), []byte("[]")
	}
	res, err := tx.ExecContext(ctx, `INSERT INTO segment_contacts (tenant_id, contact_id, version, deleted, email, phone, first_name,
		last_name, locale, time_zone, attributes, tags, consent_email, consent_sms, consent_whatsapp, created_at, updated_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, `+s.jsonParam(11)+`, `+s.jsonParam(12)+`, $13, $14, $15, $16, $17)
		ON CONFLICT (tenant_id, contact_id) DO UPDATE SET version = excluded.version, deleted = excluded.deleted,
			email = excluded.email, phone = excluded.phone, first_name = excluded.first_name, last_name = excluded.last_name,
			locale = excluded.locale, time_zone = excluded.time_zone, attributes = excluded.attributes, tags = excluded.tags,
			consent_email = excluded.consent_email, consent_sms = excluded.consent_sms, consent_whatsapp = excluded.consent_whatsapp,
			created_at = excluded.created_at, updated_at = excluded.updated_at
		WHERE segment_contacts.version < excluded.version OR (excluded.deleted = 1 AND segment_contacts.deleted = 0)`,
		tenant, snap.ID, snap.Version, deleted, c.Email, c.Phone, c.FirstName, c.LastName, c.Locale, c.TimeZone,
		string(attrs), string(tags), b2i(c.Consent.Email), b2i(c.Consent.SMS), b2i(c.Consent.WhatsApp),
		c.CreatedAt.UnixMilli(), c.UpdatedAt.UnixMilli())
	if err != nil {
		return false, fmt.Errorf("store contact %s: %w", snap.ID, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, fmt.Errorf("store contact %s: %w", snap.ID, err)
	}
	return n == 1, nil
}

// jsonParam is placeholder n of a JSON column. SQLite stores it as its
// binary JSONB, which rules read about twice as fast as JSON text
// (measured over a million contacts); PostgreSQL's column is JSONB already.
func (s *Service) jsonParam(n int) string {
	if s.db.Kind() == store.SQLite {
		return fmt.Sprintf("jsonb($%d)", n)
	}
	return fmt.Sprintf("$%d", n)
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

// rules returns the tenant's compiled segments, reloaded when the tenant's
// generation moved (in this process or another).
func (s *Service) rules(ctx context.Context, tx *sql.Tx, tenant string) ([]compiled, error) {
	var gen int64
	err := tx.QueryRowContext(ctx, `SELECT generation FROM segment_generations WHERE tenant_id = $1`, tenant).Scan(&gen)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("read segment generation: %w", err)
	}
	s.mu.Lock()
	cached := s.cache[tenant]
	s.mu.Unlock()
	if cached != nil && cached.generation == gen {
		return cached.segments, nil
	}
	rows, err := tx.QueryContext(ctx, `SELECT id, rules FROM segments WHERE tenant_id = $1 ORDER BY id`, tenant)
	if err != nil {
		return nil, fmt.Errorf("load segments: %w", err)
	}
	defer rows.Close()
	var segs []compiled
	for rows.Next() {
		var id, raw string
		if err := rows.Scan(&id, &raw); err != nil {
			return nil, fmt.Errorf("load segments: %w", err)
		}
		r, err := rule.Parse([]byte(raw))
		if err != nil {
			return nil, fmt.Errorf("segment %s: stored rules do not parse: %w", id, err)
		}
		segs = append(segs, compiled{id: id, rule: r})
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("load segments: %w", err)
	}
	s.mu.Lock()
	s.cache[tenant] = &tenantRules{generation: gen, segments: segs}
	s.mu.Unlock()
	return segs, nil
}

// memberships returns the segments the contact is a member of.
func (s *Service) memberships(ctx context.Context, tx *sql.Tx, tenant, contact string) (map[string]bool, error) {
	rows, err := tx.QueryContext(ctx, `SELECT segment_id FROM segment_members WHERE tenant_id = $1 AND contact_id = $2 AND is_member = 1`, tenant, contact)
	if err != nil {
		return nil, fmt.Errorf("read memberships: %w", err)
	}
	defer rows.Close()
	out := map[string]bool{}
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return nil, fmt.Errorf("read memberships: %w", err)
		}
		out[id] = true
	}
	return out, rows.Err()
}

// flip is a membership a contact should change.
type flip struct {
	segment string
	member  bool
}

// decide records the flips of contact as of version, each unless a
// decision on a newer version is there, and publishes the ones recorded.
// It reports how many it recorded. The statements are prepared once per
// call: parsing SQL again for each of a hundred segments would cost more
// than running it.
func (s *Service) decide(ctx context.Context, tx *sql.Tx, emit outbox.Emit, tenant, contact string, version int64, flips []flip, now time.Time) (int, error) {
	if len(flips) == 0 {
		return 0, nil
	}
	upsert, err := tx.PrepareContext(ctx, `INSERT INTO segment_members (tenant_id, segment_id, contact_id, contact_version, is_member, changed_at)
		VALUES ($1, $2, $3, $4, $5, $6)
		ON CONFLICT (tenant_id, segment_id, contact_id) DO UPDATE SET is_member = excluded.is_member,
			contact_version = excluded.contact_version, changed_at = excluded.changed_at
		WHERE segment_members.contact_version <= excluded.contact_version AND segment_members.is_member <> excluded.is_member`)
	if err != nil {
		return 0, fmt.Errorf("prepare membership: %w", err)
	}
	defer upsert.Close()
	count, err := tx.PrepareContext(ctx, `UPDATE segments SET member_count = member_count + $3 WHERE tenant_id = $1 AND id = $2`)
	if err != nil {
		return 0, fmt.Errorf("prepare member count: %w", err)
	}
	defer count.Close()
	envs := make([]event.Envelope, 0, len(flips))
	for _, f := range flips {
		res, err := upsert.ExecContext(ctx, tenant, f.segment, contact, version, b2i(f.member), now.UnixMilli())
		if err != nil {
			return 0, fmt.Errorf("record membership: %w", err)
		}
		if n, err := res.RowsAffected(); err != nil || n == 0 {
			if err != nil {
				return 0, fmt.Errorf("record membership: %w", err)
			}
			continue
		}
		delta := int64(1)
		if !f.member {
			delta = -1
		}
		if _, err := count.ExecContext(ctx, tenant, f.segment, delta); err != nil {
			return 0, fmt.Errorf("count members: %w", err)
		}
		env, err := memberEvent(ctx, tenant, f.segment, contact, version, f.member)
		if err != nil {
			return 0, err
		}
		envs = append(envs, env)
	}
	return len(envs), emit(envs...)
}

func memberEvent(ctx context.Context, tenant, segment, contact string, version int64, member bool) (event.Envelope, error) {
	subject := event.SegmentMemberRemoved
	if member {
		subject = event.SegmentMemberAdded
	}
	return event.New(ctx, subject, event.SourceSegments, tenant, event.SegmentMemberData{
		SegmentID: segment, ContactID: contact, ContactVersion: version})
}
