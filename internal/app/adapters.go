package app

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/alumoutreach/alumoutreach/internal/contacts"
	"github.com/alumoutreach/alumoutreach/internal/event"
	"github.com/alumoutreach/alumoutreach/internal/segments"
	"github.com/alumoutreach/alumoutreach/internal/segments/rule"
	"github.com/alumoutreach/alumoutreach/internal/templates"
	"github.com/alumoutreach/alumoutreach/internal/templates/render"
)

// contactSnapshots lets segments read a contact's current state from the
// contacts module without either importing the other.
type contactSnapshots struct{ svc *contacts.Service }

func (c contactSnapshots) ContactSnapshot(ctx context.Context, tenant, id string) (segments.Snapshot, error) {
	ct, err := c.svc.Get(ctx, tenant, id)
	if errors.Is(err, contacts.ErrNotFound) {
		return segments.Snapshot{}, segments.ErrContactNotFound
	}
	if err != nil {
		return segments.Snapshot{}, err
	}
	snap := segments.Snapshot{ID: ct.ID, Version: ct.Version, Deleted: ct.Erased()}
	if snap.Deleted {
		return snap, nil
	}
	attrs, err := decodeAttributes(ct)
	if err != nil {
		return segments.Snapshot{}, err
	}
	snap.Contact = rule.Contact{
		Email: ct.Email, Phone: ct.Phone, FirstName: ct.FirstName, LastName: ct.LastName,
		Locale: ct.Locale, TimeZone: ct.TimeZone, Attributes: attrs, Tags: ct.Tags,
		Consent: rule.Consent{
			Email:    ct.Consent[event.ChannelEmail].Granted,
			SMS:      ct.Consent[event.ChannelSMS].Granted,
			WhatsApp: ct.Consent[event.ChannelWhatsApp].Granted,
		},
		CreatedAt: ct.CreatedAt, UpdatedAt: ct.UpdatedAt,
	}
	return snap, nil
}

// decodeAttributes turns a contact's attributes, kept as JSON, into the Go
// values rules and templates read (string, float64, bool).
func decodeAttributes(ct *contacts.Contact) (map[string]any, error) {
	attrs := make(map[string]any, len(ct.Attributes))
	for k, raw := range ct.Attributes {
		var v any
		if err := json.Unmarshal(raw, &v); err != nil {
			return nil, fmt.Errorf("contact %s attribute %s: %w", ct.ID, k, err)
		}
		attrs[k] = v
	}
	return attrs, nil
}

// templateContacts lets templates preview on a stored contact.
type templateContacts struct{ svc *contacts.Service }

func (c templateContacts) TemplateContact(ctx context.Context, tenant, id string) (render.Contact, error) {
	ct, err := c.svc.Get(ctx, tenant, id)
	if errors.Is(err, contacts.ErrNotFound) {
		return render.Contact{}, templates.ErrContactNotFound
	}
	if err != nil {
		return render.Contact{}, err
	}
	attrs, err := decodeAttributes(ct)
	if err != nil {
		return render.Contact{}, err
	}
	return render.Contact{Email: ct.Email, Phone: ct.Phone, FirstName: ct.FirstName, LastName: ct.LastName,
		Locale: ct.Locale, TimeZone: ct.TimeZone, Tags: ct.Tags, Attributes: attrs}, nil
}
