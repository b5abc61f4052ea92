// Package templates keeps the message templates of a tenant: email
// (subject, HTML and text bodies, sender), SMS (a body) and WhatsApp (a
// session-window text and/or a provider-approved template), each with its
// placeholders checked when saved (package render) and every content
// change kept as a new immutable version.
//
// Owns: templates (name, channel, lifecycle status, current version, the
// WhatsApp review state) and template_versions (content by version).
//
// Lifecycle: created -> active (activate) -> archived (archive), and back
// to active; content may change while created or active (a new version
// each time); delete only when not active. A template in use must be
// active; an archived one can no longer be picked for new sends.
//
// Publishes (source "templates-service"): template.created,
// template.updated (a new version), template.activated, template.archived,
// template.deleted, template.hsm.submitted, template.hsm.approved,
// template.hsm.rejected.
//
// Consumers: none. The provider's review verdict on a WhatsApp template
// arrives through ApplyReview, which the app wires to the webhooks module.
//
// HTTP: /api/v1/templates (see HTTP.RegisterRoutes and docs/api.md).
package templates
