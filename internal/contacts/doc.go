// Package contacts keeps the people a tenant reaches: their profile,
// custom attributes, tags and consent per channel, and imports them in bulk.
//
// Owns: the tables contacts (profile, attributes, version, erasure mark),
// contact_tags, contact_consents and contact_imports (+ contact_import_errors).
// Email and phone are unique per tenant. Every change raises the contact's
// version by one and commits with its events in one transaction (the
// outbox), so consumers see every change exactly as it was stored, and can
// order them by version.
//
// Publishes (source "contacts-service"): contact.created, contact.updated
// (with old and new value of each changed field), contact.deleted (erased
// or not), contact.tagged, contact.untagged, contact.consent.granted,
// contact.consent.revoked. All events of one change carry the same version.
//
// Consumers: none.
//
// HTTP: /api/v1/contacts (see HTTP.RegisterRoutes and docs/api.md), and
// the imports under /api/v1/contacts/imports.
//
// Other modules read contacts synchronously through Service.Get only where
// the app wires it (segments reads the snapshot of a changed contact).
package contacts
