// Package pipeline sends messages: one row per message, consent and
// suppression checked before anything leaves, the template rendered for the
// recipient, the provider of the channel called once, and every step
// published as pipeline.message.* events.
//
// Owns: messages (one row per source, recipient, channel and step, under a
// unique key: no redelivery, retry or crash makes a second message),
// suppressions (addresses not to send to, per tenant and channel) and
// sandbox_messages (what the sandbox providers "sent", in a database file of
// its own in embedded mode).
//
// Publishes (source "pipeline-service"), each in the transaction that
// records what it reports: pipeline.message.queued (for messages asked
// through the API, and for held messages released when quiet hours end),
// pipeline.message.sent and pipeline.message.failed (blocked messages too,
// with errorCode no_consent, suppressed, no_address, contact_gone,
// frequency_cap, template_error, or the provider's),
// pipeline.message.held (a message held for the recipient's quiet hours,
// with sendAfter; once per hold, a redelivery that finds it held publishes
// nothing), pipeline.message.unsubscribed (the recipient used the message's
// unsubscribe link or one-click POST; once per message), opened and clicked
// (tracking links), and the provider reports PIPELINE_WEBHOOK_CONSUMER
// reads, as delivered, opened, clicked, bounced, complained or failed. held and
// unsubscribed are additions to the specification's subjects.
//
// Consumers: PIPELINE_SEND_CONSUMER (pipeline.message.queued): campaigns,
// workflows and sequences queue messages by publishing that event; the
// consumer creates the row if it does not exist, checks, renders and sends.
//
// Sending happens at most once per row: the row moves from queued to
// sending in a transaction before the provider is called. A retry after a
// transient provider error moves it back to queued first. If the process
// dies between the provider's acceptance and the commit of "sent", the
// redelivered event finds the row in sending: a provider that can be asked
// (the sandbox) is asked; the others are not called again and the message
// ends failed with errorCode outcome_unknown. That window, one provider
// call long, is the price of never sending twice.
//
// HTTP: POST /api/v1/messages, GET /api/v1/messages/{id},
// GET/POST/DELETE /api/v1/suppressions, GET /api/v1/sandbox/messages.
package pipeline
