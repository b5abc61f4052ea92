// Package webhooks receives what providers report — delivery statuses,
// opens, clicks, bounces, complaints, inbound messages, WhatsApp template
// reviews — checks each provider's signature, and publishes it as the
// spec's webhook.* events, once per report however often the provider
// retries.
//
// Routes (public: authenticated by the provider's signature, never an API
// key; the tenant is the first path element, so each tenant's provider
// account points at its own URLs):
//
//	POST /webhooks/{tenant}/sendgrid/events   SendGrid Event Webhook, ECDSA-signed
//	POST /webhooks/{tenant}/sendgrid/inbound  SendGrid Inbound Parse, with ?key= the configured email.inbound-key
//	POST /webhooks/{tenant}/twilio/status     Twilio status callbacks, X-Twilio-Signature
//	POST /webhooks/{tenant}/twilio/inbound    Twilio inbound SMS, X-Twilio-Signature
//	GET  /webhooks/{tenant}/whatsapp          Meta's subscription handshake (hub.verify_token)
//	POST /webhooks/{tenant}/whatsapp          Meta WhatsApp notifications, X-Hub-Signature-256
//
// A missing or bad signature is a 401 and publishes nothing; an unknown
// tenant a 404. A malformed but signed body is a 400 (the provider's bug,
// not worth its retries).
//
// Owns: webhook_receipts (the provider keys already published, for
// dedupe; pruned after the providers' retry horizon).
//
// Publishes (source "webhooks-service"): webhook.email.delivered, opened,
// clicked, bounced, complained, inbound; webhook.sms.delivered (every
// Twilio delivery status, in status: delivered, undelivered, failed),
// webhook.sms.inbound; webhook.whatsapp.delivered (delivered, or failed
// in status), webhook.whatsapp.read, webhook.whatsapp.inbound. A WhatsApp
// template's review verdict goes to the templates module through Reviews.
//
// Consumers: none. The pipeline's PIPELINE_WEBHOOK_CONSUMER turns the
// status events into pipeline.message.* by externalId.
package webhooks
