package event

import "encoding/json"

// SourceContacts is the envelope source of events the contacts module publishes.
const SourceContacts = "contacts-service"

// Contact subjects. Every event about a change to a contact carries the
// contact's version after that change, so consumers keeping derived state
// (segment membership, workflow triggers) can ignore events that arrive late.
const (
	// ContactCreated announces a new contact with the fields segments evaluate.
	ContactCreated = "contact.created"
	// ContactUpdated lists the profile fields and attributes that changed.
	ContactUpdated = "contact.updated"
	// ContactDeleted tells consumers to drop the contact and, when erased, any copy of its data.
	ContactDeleted = "contact.deleted"
	// ContactTagged reports one tag added to a contact.
	ContactTagged = "contact.tagged"
	// ContactUntagged reports one tag removed from a contact.
	ContactUntagged = "contact.untagged"
	// ContactConsentGranted records an opt-in on one channel; sending may start.
	ContactConsentGranted = "contact.consent.granted"
	// ContactConsentRevoked records an opt-out on one channel; sending must stop.
	ContactConsentRevoked = "contact.consent.revoked"
)

func init() {
	register(ContactCreated, func() Payload { return &ContactCreatedData{} })
	register(ContactUpdated, func() Payload { return &ContactUpdatedData{} })
	register(ContactDeleted, func() Payload { return &ContactDeletedData{} })
	register(ContactTagged, func() Payload { return &ContactTaggedData{} })
	register(ContactUntagged, func() Payload { return &ContactUntaggedData{} })
	register(ContactConsentGranted, func() Payload { return &ContactConsentGrantedData{} })
	register(ContactConsentRevoked, func() Payload { return &ContactConsentRevokedData{} })
}

// ContactCreatedData is the new contact as segments and workflows first see
// it. The first five fields are the specification's example, unchanged.
type ContactCreatedData struct {
	// ContactID identifies the contact in every later event.
	ContactID string `json:"contactId"`
	// Email is the address used on the email channel, if the contact has one.
	Email string `json:"email,omitempty"`
	// Phone is the E.164 number used for SMS and WhatsApp, if any.
	Phone string `json:"phone,omitempty"`
	// Source says how the contact arrived, e.g. "website_signup", "import", "api".
	Source string `json:"source,omitempty"`
	// Attributes are the custom fields, each value kept as raw JSON so that
	// numbers, booleans and nested values reach segment rules unaltered.
	Attributes map[string]json.RawMessage `json:"attributes,omitempty"`
	// FirstName is the given name, for personalisation and segment rules.
	FirstName string `json:"firstName,omitempty"`
	// LastName is the family name, for personalisation and segment rules.
	LastName string `json:"lastName,omitempty"`
	// Tags are the tags the contact was created with; no contact.tagged follows for them.
	Tags []string `json:"tags,omitempty"`
	// Version is the contact's version after creation, 1. The specification's
	// example omits it, so an absent (zero) version must be read as 1.
	Version int64 `json:"version,omitempty"`
}

// Validate requires contactId.
func (d ContactCreatedData) Validate() error {
	var c checker
	c.str("contactId", d.ContactID)
	c.nonNegative("version", d.Version)
	return c.err()
}

// FieldChange is one changed field of a contact. Values are raw JSON; an
// absent or null value means the field was unset before (Old) or after (New).
type FieldChange struct {
	// Old is the value before the change.
	Old json.RawMessage `json:"old,omitempty"`
	// New is the value after the change.
	New json.RawMessage `json:"new,omitempty"`
}

// ContactUpdatedData tells consumers which fields changed so they re-evaluate
// only the rules and goals that read them. Tags and consent have their own
// subjects and never appear here.
type ContactUpdatedData struct {
	// ContactID is the contact that changed.
	ContactID string `json:"contactId"`
	// Version is the contact's version after this change; a consumer that has
	// already applied a higher version ignores the event.
	Version int64 `json:"version"`
	// Changes maps each changed field to its old and new value. Profile fields
	// use their JSON names ("email", "firstName"); custom fields are
	// "attributes.<name>".
	Changes map[string]FieldChange `json:"changes"`
}

// Validate requires contactId, a positive version and at least one change.
func (d ContactUpdatedData) Validate() error {
	var c checker
	c.str("contactId", d.ContactID)
	c.positive("version", d.Version)
	c.nonEmpty("changes", len(d.Changes))
	return c.err()
}

// ContactDeletedData removes a contact from every consumer's view.
type ContactDeletedData struct {
	// ContactID is the contact removed.
	ContactID string `json:"contactId"`
	// Erased is true when personal data was erased on request (GDPR), not
	// merely deleted: consumers must drop every copy of it they hold, analytics included.
	Erased bool `json:"erased"`
	// Version is the contact's last version, the deletion included.
	Version int64 `json:"version"`
}

// Validate requires contactId and a positive version.
func (d ContactDeletedData) Validate() error {
	var c checker
	c.str("contactId", d.ContactID)
	c.positive("version", d.Version)
	return c.err()
}

// ContactTagData is one tag added to or removed from a contact.
type ContactTagData struct {
	// ContactID is the contact whose tags changed.
	ContactID string `json:"contactId"`
	// Tag is the tag added or removed, as the user typed it.
	Tag string `json:"tag"`
	// Version is the contact's version after the change.
	Version int64 `json:"version"`
}

// Validate requires contactId, tag and a positive version.
func (d ContactTagData) Validate() error {
	var c checker
	c.str("contactId", d.ContactID)
	c.str("tag", d.Tag)
	c.positive("version", d.Version)
	return c.err()
}

// ContactTaggedData is the payload of contact.tagged.
type ContactTaggedData = ContactTagData

// ContactUntaggedData is the payload of contact.untagged.
type ContactUntaggedData = ContactTagData

// ContactConsentData is a consent decision on one channel, with what is
// needed to prove it later.
type ContactConsentData struct {
	// ContactID is the contact who decided.
	ContactID string `json:"contactId"`
	// Channel is the channel the decision covers: email, sms or whatsapp.
	Channel string `json:"channel"`
	// Source says where the decision was made, e.g. "signup_form", "import",
	// "unsubscribe_link", "sms_stop", "api".
	Source string `json:"source"`
	// Proof is evidence kept for audits, e.g. the form URL and IP address or
	// the id of the inbound message that said STOP.
	Proof string `json:"proof,omitempty"`
	// At is when the contact decided, which for imports may be long before the event.
	At Time `json:"at"`
	// Version is the contact's version after the change.
	Version int64 `json:"version"`
}

// Validate requires contactId, a valid channel, source, at and a positive version.
func (d ContactConsentData) Validate() error {
	var c checker
	c.str("contactId", d.ContactID)
	c.channel("channel", d.Channel)
	c.str("source", d.Source)
	c.timestamp("at", d.At)
	c.positive("version", d.Version)
	return c.err()
}

// ContactConsentGrantedData is the payload of contact.consent.granted.
type ContactConsentGrantedData = ContactConsentData

// ContactConsentRevokedData is the payload of contact.consent.revoked.
type ContactConsentRevokedData = ContactConsentData
