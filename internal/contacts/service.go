package contacts

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"time"

	"github.com/alumoutreach/alumoutreach/internal/event"
	"github.com/alumoutreach/alumoutreach/internal/platform/fault"
	"github.com/alumoutreach/alumoutreach/internal/platform/outbox"
	"github.com/alumoutreach/alumoutreach/internal/platform/store"
)

// Service changes contacts, each change with its events in one transaction.
type Service struct {
	db  *store.DB
	ob  *outbox.Outbox
	st  sqlStore
	log *slog.Logger
	now func() time.Time
}

// NewService returns the contacts service on db (migrated), writing its
// events to ob.
func NewService(db *store.DB, ob *outbox.Outbox, log *slog.Logger) *Service {
	return &Service{db: db, ob: ob, st: sqlStore{kind: db.Kind()}, log: log, now: time.Now}
}

func (s *Service) clock() time.Time { return s.now().UTC().Truncate(time.Millisecond) }

func notFound(id string) error {
	e := fault.Wrap(ErrNotFound, fault.NotFound, "contact_not_found", "no contact %q in this tenant", id)
	e.Details = map[string]any{"contactId": id}
	return e
}

func erasedConflict(id string) error {
	return fault.New(fault.Conflict, "contact_erased", "contact %s was erased; its data cannot be changed", id)
}

// Get returns a contact with its tags and consent. An erased contact is
// returned as its anonymous remains.
func (s *Service) Get(ctx context.Context, tenant, id string) (*Contact, error) {
	c, err := s.st.get(ctx, s.db.Reader(), tenant, id, false)
	if errors.Is(err, ErrNotFound) {
		return nil, notFound(id)
	}
	return c, err
}

// GetMany returns the tenant's contacts among ids (missing ones are left
// out) with their tags and consent, in three queries whatever their number:
// for senders that read recipients in batches.
func (s *Service) GetMany(ctx context.Context, tenant string, ids []string) ([]*Contact, error) {
	if len(ids) == 0 {
		return nil, nil
	}
	return s.st.getMany(ctx, s.db.Reader(), tenant, ids)
}

// Create stores a new contact; its tags and consent are part of version 1.
func (s *Service) Create(ctx context.Context, tenant string, in Input) (*Contact, error) {
	ctx = event.EnsureCorrelation(ctx)
	var c *Contact
	err := s.ob.InTx(ctx, func(tx *sql.Tx, emit outbox.Emit) error {
		var err error
		c, err = s.create(ctx, tx, emit, tenant, in)
		return err
	})
	return c, err
}

// prepare validates in and builds the contact it describes.
func (s *Service) prepare(in Input, now time.Time) (*Contact, error) {
	if err := in.normalize(); err != nil {
		return nil, err
	}
	tags, err := normalizeTags(in.Tags)
	if err != nil {
		return nil, err
	}
	c := &Contact{ID: event.NewID(), Tags: tags, Consent: map[string]Consent{}, Source: in.Source,
		Version: 1, CreatedAt: now, UpdatedAt: now}
	if c.Source == "" {
		c.Source = "api"
	}
	if err := checkText("source", c.Source, maxSourceLen); err != nil {
		return nil, err
	}
	c.apply(in.Fields)
	if c.Attributes == nil {
		c.Attributes = map[string]json.RawMessage{}
	}
	if c.Email == "" && c.Phone == "" {
		return nil, fault.New(fault.Invalid, "contact_unreachable", "a contact needs an email or a phone number")
	}
	for _, ch := range slices.Sorted(maps.Keys(in.Consent)) {
		con, err := normalizeConsent(ch, in.Consent[ch], now)
		if err != nil {
			return nil, err
		}
		c.Consent[ch] = con
	}
	return c, nil
}

// create validates and inserts in inside tx, emitting its events.
func (s *Service) create(ctx context.Context, tx querier, emit outbox.Emit, tenant string, in Input) (*Contact, error) {
	c, err := s.prepare(in, s.clock())
	if err != nil {
		return nil, err
	}
	if err := s.st.insert(ctx, tx, tenant, c); err != nil {
		return nil, err
	}
	return c, s.emitCreated(ctx, emit, tenant, c)
}

func (s *Service) emitCreated(ctx context.Context, emit outbox.Emit, tenant string, c *Contact) error {
	envs := make([]event.Envelope, 0, 1+len(c.Consent))
	env, err := event.New(ctx, event.ContactCreated, event.SourceContacts, tenant, event.ContactCreatedData{
		ContactID: c.ID, Email: c.Email, Phone: c.Phone, Source: c.Source, Attributes: c.Attributes,
		FirstName: c.FirstName, LastName: c.LastName, Tags: c.Tags, Version: c.Version,
	})
	if err != nil {
		return fmt.Errorf("contact.created event: %w", err)
	}
	envs = append(envs, env)
	for _, ch := range slices.Sorted(maps.Keys(c.Consent)) {
		env, err := consentEvent(ctx, tenant, c, ch)
		if err != nil {
			return err
		}
		envs = append(envs, env)
	}
	return emit(envs...)
}

func consentEvent(ctx context.Context, tenant string, c *Contact, channel string) (event.Envelope, error) {
	con := c.Consent[channel]
	subject := event.ContactConsentRevoked
	if con.Granted {
		subject = event.ContactConsentGranted
	}
	env, err := event.New(ctx, subject, event.SourceContacts, tenant, event.ContactConsentData{
		ContactID: c.ID, Channel: channel, Source: con.Source, Proof: con.Proof,
		At: event.Time{Time: con.At}, Version: c.Version,
	})
	if err != nil {
		return env, fmt.Errorf("%s event: %w", subject, err)
	}
	return env, nil
}

// locked reads the contact for a change inside tx: locked on PostgreSQL,
// missing and erased contacts refused.
func (s *Service) locked(ctx context.Context, tx querier, tenant, id string) (*Contact, error) {
	c, err := s.st.get(ctx, tx, tenant, id, true)
	switch {
	case errors.Is(err, ErrNotFound):
		return nil, notFound(id)
	case err != nil:
		return nil, err
	case c.Erased():
		return nil, erasedConflict(id)
	}
	return c, nil
}

// change runs fn on the locked contact, its version already raised and
// its time set, and, when fn reports a change, stores the contact and
// emits the events fn returns. When nothing changed the contact comes back
// as it was.
func (s *Service) change(ctx context.Context, tenant, id string, fn func(tx querier, c *Contact) ([]event.Envelope, bool, error)) (*Contact, error) {
	ctx = event.EnsureCorrelation(ctx)
	var out *Contact
	err := s.ob.InTx(ctx, func(tx *sql.Tx, emit outbox.Emit) error {
		c, err := s.locked(ctx, tx, tenant, id)
		if err != nil {
			return err
		}
		out = c
		before := c.UpdatedAt
		c.Version++
		c.UpdatedAt = s.clock()
		envs, changed, err := fn(tx, c)
		if err != nil || !changed {
			c.Version, c.UpdatedAt = c.Version-1, before
			return err
		}
		if err := s.st.update(ctx, tx, tenant, c); err != nil {
			return err
		}
		return emit(envs...)
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// Update applies a partial update. ifVersion, when positive, must be the
// contact's current version (optimistic concurrency); a stale one is a
// conflict. An update that changes nothing raises no version and no event.
func (s *Service) Update(ctx context.Context, tenant, id string, f Fields, ifVersion int64) (*Contact, error) {
	if err := f.normalize(); err != nil {
		return nil, err
	}
	return s.change(ctx, tenant, id, func(_ querier, c *Contact) ([]event.Envelope, bool, error) {
		if ifVersion > 0 && c.Version-1 != ifVersion {
			return nil, false, fault.New(fault.Conflict, "version_mismatch",
				"contact %s is at version %d, not %d; read it again and reapply your change", id, c.Version-1, ifVersion)
		}
		return s.updateFields(ctx, tenant, c, f)
	})
}

func (s *Service) updateFields(ctx context.Context, tenant string, c *Contact, f Fields) ([]event.Envelope, bool, error) {
	changes := c.apply(f)
	if len(changes) == 0 {
		return nil, false, nil
	}
	if c.Email == "" && c.Phone == "" {
		return nil, false, fault.New(fault.Invalid, "contact_unreachable", "a contact needs an email or a phone number; it cannot lose both")
	}
	if len(c.Attributes) > maxAttributes {
		return nil, false, invalidField("attributes", "a contact holds at most %d attributes (this change would make %d)", maxAttributes, len(c.Attributes))
	}
	env, err := event.New(ctx, event.ContactUpdated, event.SourceContacts, tenant, event.ContactUpdatedData{
		ContactID: c.ID, Version: c.Version, Changes: changes,
	})
	if err != nil {
		return nil, false, fmt.Errorf("contact.updated event: %w", err)
	}
	return []event.Envelope{env}, true, nil
}

// Upsert finds the tenant's contact by email, else by phone, and updates
// it with in (tags and consent added), or creates it. It reports whether
// the contact was created. Email and phone naming two different contacts
// is a conflict.
func (s *Service) Upsert(ctx context.Context, tenant string, in Input) (*Contact, bool, error) {
	ctx = event.EnsureCorrelation(ctx)
	var (
		c       *Contact
		created bool
	)
	err := s.ob.InTx(ctx, func(tx *sql.Tx, emit outbox.Emit) error {
		var err error
		c, created, _, err = s.upsert(ctx, tx, emit, tenant, in)
		return err
	})
	return c, created, err
}

func (s *Service) upsert(ctx context.Context, tx querier, emit outbox.Emit, tenant string, in Input) (c *Contact, created, changed bool, err error) {
	if err := in.normalize(); err != nil {
		return nil, false, false, err
	}
	id, err := s.match(ctx, tx, tenant, in.Fields)
	if err != nil {
		return nil, false, false, err
	}
	if id == "" {
		if in.Source == "" {
			in.Source = "upsert"
		}
		c, err := s.create(ctx, tx, emit, tenant, in)
		return c, true, true, err
	}
	tags, err := normalizeTags(in.Tags)
	if err != nil {
		return nil, false, false, err
	}
	if c, err = s.locked(ctx, tx, tenant, id); err != nil {
		return nil, false, false, err
	}
	now, before := s.clock(), c.UpdatedAt
	c.Version++
	c.UpdatedAt = now
	envs, changed, err := s.updateFields(ctx, tenant, c, in.Fields)
	if err != nil {
		return nil, false, false, err
	}
	tagEnvs, err := s.addTags(ctx, tx, tenant, c, tags)
	if err != nil {
		return nil, false, false, err
	}
	envs = append(envs, tagEnvs...)
	for _, ch := range slices.Sorted(maps.Keys(in.Consent)) {
		env, ok, err := s.decide(ctx, tx, tenant, c, ch, in.Consent[ch], now)
		if err != nil {
			return nil, false, false, err
		}
		if ok {
			envs = append(envs, env)
		}
	}
	if !changed && len(envs) == 0 {
		c.Version--
		c.UpdatedAt = before
		return c, false, false, nil
	}
	if err := s.st.update(ctx, tx, tenant, c); err != nil {
		return nil, false, false, err
	}
	return c, false, true, emit(envs...)
}

// match finds the contact an upsert is about: by email first, then phone.
func (s *Service) match(ctx context.Context, q querier, tenant string, f Fields) (string, error) {
	var byEmail, byPhone string
	if f.Email != nil && *f.Email != "" {
		id, err := s.st.findBy(ctx, q, tenant, "email", *f.Email)
		if err != nil && !errors.Is(err, ErrNotFound) {
			return "", err
		}
		byEmail = id
	}
	if f.Phone != nil && *f.Phone != "" {
		id, err := s.st.findBy(ctx, q, tenant, "phone", *f.Phone)
		if err != nil && !errors.Is(err, ErrNotFound) {
			return "", err
		}
		byPhone = id
	}
	if byEmail == "" && byPhone == "" && (f.Email == nil || *f.Email == "") && (f.Phone == nil || *f.Phone == "") {
		return "", fault.New(fault.Invalid, "contact_unreachable", "an upsert needs an email or a phone number to find the contact by")
	}
	if byEmail != "" && byPhone != "" && byEmail != byPhone {
		e := fault.New(fault.Conflict, "contact_ambiguous", "email %s belongs to contact %s and phone %s to contact %s; update them separately", *f.Email, byEmail, *f.Phone, byPhone)
		e.Details = map[string]any{"emailContactId": byEmail, "phoneContactId": byPhone}
		return "", e
	}
	if byEmail != "" {
		return byEmail, nil
	}
	return byPhone, nil
}

// IDByAddress returns the id of the tenant's contact with address on
// channel: the email address for email, the phone number for SMS and
// WhatsApp; "" when the address is no contact's, or not a valid one.
func (s *Service) IDByAddress(ctx context.Context, tenant, channel, address string) (string, error) {
	field, normalize := "phone", NormalizePhone
	if channel == event.ChannelEmail {
		field, normalize = "email", NormalizeEmail
	}
	value, err := normalize(address)
	if err != nil {
		return "", nil // an address no contact can have
	}
	id, err := s.st.findBy(ctx, s.db.Reader(), tenant, field, value)
	if errors.Is(err, ErrNotFound) {
		return "", nil
	}
	return id, err
}

// AddTags adds tags the contact does not have yet, one contact.tagged each.
func (s *Service) AddTags(ctx context.Context, tenant, id string, tags []string) (*Contact, error) {
	tags, err := normalizeTags(tags)
	if err != nil {
		return nil, err
	}
	if len(tags) == 0 {
		return nil, invalidField("tags", "send at least one tag")
	}
	return s.change(ctx, tenant, id, func(tx querier, c *Contact) ([]event.Envelope, bool, error) {
		envs, err := s.addTags(ctx, tx, tenant, c, tags)
		return envs, len(envs) > 0, err
	})
}

// addTags stores the tags c lacks (c.Version already raised) and returns
// their events.
func (s *Service) addTags(ctx context.Context, tx querier, tenant string, c *Contact, tags []string) ([]event.Envelope, error) {
	var envs []event.Envelope
	for _, t := range tags {
		if slices.Contains(c.Tags, t) {
			continue
		}
		if len(c.Tags) >= maxTags {
			return nil, invalidField("tags", "a contact holds at most %d tags", maxTags)
		}
		if err := s.st.addTag(ctx, tx, tenant, c.ID, t); err != nil {
			return nil, err
		}
		c.Tags = append(c.Tags, t)
		env, err := event.New(ctx, event.ContactTagged, event.SourceContacts, tenant, event.ContactTaggedData{ContactID: c.ID, Tag: t, Version: c.Version})
		if err != nil {
			return nil, fmt.Errorf("contact.tagged event: %w", err)
		}
		envs = append(envs, env)
	}
	slices.Sort(c.Tags)
	return envs, nil
}

// RemoveTag removes one tag; removing a tag the contact lacks changes nothing.
func (s *Service) RemoveTag(ctx context.Context, tenant, id, tag string) (*Contact, error) {
	tag, err := NormalizeTag(tag)
	if err != nil {
		return nil, err
	}
	return s.change(ctx, tenant, id, func(tx querier, c *Contact) ([]event.Envelope, bool, error) {
		i := slices.Index(c.Tags, tag)
		if i < 0 {
			return nil, false, nil
		}
		c.Tags = slices.Delete(c.Tags, i, i+1)
		if err := s.st.removeTag(ctx, tx, tenant, id, tag); err != nil {
			return nil, false, err
		}
		env, err := event.New(ctx, event.ContactUntagged, event.SourceContacts, tenant, event.ContactUntaggedData{ContactID: id, Tag: tag, Version: c.Version})
		if err != nil {
			return nil, false, fmt.Errorf("contact.untagged event: %w", err)
		}
		return []event.Envelope{env}, true, nil
	})
}

// SetConsent records a decision on channel. A decision that repeats the
// current one changes nothing: the first proof of an opt-in is the one that
// matters, and consumers must not see a second "granted".
func (s *Service) SetConsent(ctx context.Context, tenant, id, channel string, in ConsentInput) (*Contact, error) {
	now := s.clock()
	if _, err := normalizeConsent(channel, in, now); err != nil {
		return nil, err
	}
	return s.change(ctx, tenant, id, func(tx querier, c *Contact) ([]event.Envelope, bool, error) {
		env, changed, err := s.decide(ctx, tx, tenant, c, channel, in, now)
		if err != nil || !changed {
			return nil, false, err
		}
		return []event.Envelope{env}, true, nil
	})
}

// decide records a consent decision (c.Version already raised) when it
// changes the channel's status, and returns its event.
func (s *Service) decide(ctx context.Context, tx querier, tenant string, c *Contact, channel string, in ConsentInput, now time.Time) (event.Envelope, bool, error) {
	con, err := normalizeConsent(channel, in, now)
	if err != nil {
		return event.Envelope{}, false, err
	}
	if cur, ok := c.Consent[channel]; ok && cur.Granted == con.Granted {
		return event.Envelope{}, false, nil
	}
	if err := s.st.putConsent(ctx, tx, tenant, c.ID, channel, con); err != nil {
		return event.Envelope{}, false, err
	}
	c.Consent[channel] = con
	env, err := consentEvent(ctx, tenant, c, channel)
	return env, err == nil, err
}

// Delete removes a contact and everything about it.
func (s *Service) Delete(ctx context.Context, tenant, id string) error {
	return s.remove(ctx, tenant, id, false)
}

// Erase removes a contact's personal data on request, keeping its id as an
// anonymous record, and tells every consumer to drop its copies.
func (s *Service) Erase(ctx context.Context, tenant, id string) error {
	return s.remove(ctx, tenant, id, true)
}

func (s *Service) remove(ctx context.Context, tenant, id string, erase bool) error {
	ctx = event.EnsureCorrelation(ctx)
	return s.ob.InTx(ctx, func(tx *sql.Tx, emit outbox.Emit) error {
		c, err := s.st.get(ctx, tx, tenant, id, true)
		if errors.Is(err, ErrNotFound) {
			return notFound(id)
		}
		if err != nil {
			return err
		}
		if c.Erased() && erase {
			return nil // erasing twice is done already
		}
		version := c.Version + 1
		if erase {
			now := s.clock()
			*c = Contact{ID: c.ID, Attributes: nil, Version: version, CreatedAt: c.CreatedAt, UpdatedAt: now, ErasedAt: &now}
			if err := s.st.deleteDetails(ctx, tx, tenant, id); err != nil {
				return err
			}
			err = s.st.update(ctx, tx, tenant, c)
		} else {
			err = s.st.delete(ctx, tx, tenant, id)
		}
		if err != nil {
			return err
		}
		env, err := event.New(ctx, event.ContactDeleted, event.SourceContacts, tenant, event.ContactDeletedData{ContactID: id, Erased: erase, Version: version})
		if err != nil {
			return fmt.Errorf("contact.deleted event: %w", err)
		}
		return emit(env)
	})
}
