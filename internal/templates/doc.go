// Package templates keeps the message templates of a tenant: email
// (subject, HTML and text bodies, sender), SMS (a body) and WhatsApp (a
// session-window text and/or a provider-approved template), each with its
// placeholders checked when saved (package render) and every content
// change kept as a new immutable version.
//
// Owns: templates (name, channel, lifecycle status, current version, the
// WhatsApp review state: status, provider name, language, category,
// reason, the provider's template id, and the submission in progress) and
// template_versions (content by version).
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
// Consumers:
//   - TEMPLATES_REVIEW_CONSUMER (template.hsm.submitted): hands the
//     submitted version's provider template (name, language, category,
//     body, and examples of its params rendered for a sample contact) to
//     the provider's review through ReviewSubmitter, which the app wires
//     to Meta's message template API (whatsapp.provider meta) or to
//     SandboxReviewer (the default, which approves at once). It records
//     the provider's template id; a verdict the provider gives at once (a
//     refusal of the template, a 4xx with Meta's error; an approval) is
//     applied as a webhook's is, publishing template.hsm.approved or
//     template.hsm.rejected. A failure to reach the provider is returned,
//     so the bus retries and dead-letters it after the last attempt. It
//     acts only on the template's current submission while it awaits its
//     verdict and has not been handed over yet: redelivered and superseded
//     events change nothing, and an applied verdict is never overwritten.
//     Submitting the same name and language twice creates one template at
//     the provider (the adapter takes over the one that exists).
//
// The provider's later verdict arrives through ApplyReview, which the app
// wires to the webhooks module (Meta's message_template_status_update).
//
// HTTP: /api/v1/templates (see HTTP.RegisterRoutes and docs/api.md).
package templates
