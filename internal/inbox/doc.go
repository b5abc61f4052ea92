// Package inbox is the shared inbox: the conversations contacts start by
// writing to us, on any channel, for a team to read, assign and resolve.
//
// Owns: inbox_threads (one conversation per channel and address, with its
// status, assignee and contact) and inbox_messages (each message of a
// thread, once per provider id).
//
// Consumes: webhook.*.inbound through INBOX_WEBHOOK_CONSUMER. Each inbound
// message joins the thread of its sender's address on its channel (a new
// thread when there is none, a closed, pending or snoozed one reopened),
// is matched to a contact by address, and, when the provider's threading
// names one of our sent messages (the email In-Reply-To header,
// WhatsApp's context id), to the pipeline message it answers.
//
// Agents reply from a thread: the reply is recorded in it and handed to
// the pipeline (pipeline.message.queued with the text, sourceType inbox),
// which sends it as written to the address the contact wrote from.
//
// Publishes (source "inbox-service"), in the transaction that records what
// they report: inbox.thread.created, inbox.thread.updated (status changes,
// reopening, waiting after a reply), inbox.thread.assigned,
// inbox.message.received (with a preview, not the body; sequences detect
// replies by it), inbox.message.sent, the replies'
// pipeline.message.queued, inbox.sla.warning and inbox.sla.breach.
//
// Each unanswered message starts a response deadline (first or next
// response) on durable timers, with a sweep for timers lost: a warning
// before it, a breach after it (inbox.sla.warning, inbox.sla.breach), each
// published once; a reply, or setting the thread pending or closed,
// answers it.
//
// HTTP: GET /api/v1/inbox/threads, GET /api/v1/inbox/threads/{id},
// POST /api/v1/inbox/threads/{id}/status, .../assign and .../reply.
package inbox
