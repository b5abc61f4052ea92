// Package meta sends WhatsApp messages through Meta's WhatsApp Cloud API
// (Graph API, DefaultAPIVersion v25.0 unless Config.APIVersion says
// otherwise) and reads the webhooks Meta sends back.
//
// Sending: Sender.Send POSTs JSON to
// {BaseURL}/{version}/{phone-number-id}/messages with the access token as
// a Bearer token: {"messaging_product":"whatsapp","recipient_type":
// "individual","to":<E.164 digits without '+'>,"type":"text","text":
// {"body":...}}, or, when the message has a Template, "type":"template"
// with the template's name, language code and its parameters as one body
// component of text parameters. The message's ID is sent as
// biz_opaque_callback_data (up to 512 bytes), which Meta echoes in every
// status webhook, so a report can be matched even before the wamid is
// stored. The wamid of Meta's answer is the receipt's ExternalID.
//
// Failures are *channel.Error with Provider "meta" and Code set to Meta's
// error code (error.message and error_data.details, with the fbtrace_id
// Meta support asks for, in Message). Codes are classed before HTTP
// statuses, since Meta sends most refusals as HTTP 400:
//   - Permanent (the pipeline fails the message): 131026 undeliverable,
//     131047 re-engagement (more than 24 hours since the user last wrote:
//     only a template can go), 131051 unsupported type, 132000/132001 and
//     the other 132xxx template errors, 131050 user stopped marketing
//     messages, 100 and 131008/131009 invalid or missing parameters,
//     131049 withheld "to maintain healthy ecosystem engagement" (a
//     per-user cap on marketing messages; Meta says to wait at least 24
//     hours, far beyond the pipeline's retries, so the campaign decides
//     whether to send again later), and any other 4xx without a known
//     code. Empty or over-long text (4096 characters), a recipient that is
//     not E.164, and a template without a name, language or with an empty
//     parameter are refused before any request.
//   - Transient (the pipeline retries): 130429 throughput, 131048 spam
//     rate limit, 131056 pair rate limit, 4 and 80007 rate limits, 1, 2,
//     131000, 131016, 131057 and 133004 Meta's own failures, HTTP 429 and
//     5xx, a Retry-After header when Meta sends one, and network failures
//     and timeouts (errors.Is finds context.Canceled or DeadlineExceeded).
//   - Configuration (transient, wrapping ErrConfiguration): 190 invalid or
//     expired token, 0 authentication, 3/10/200-299 permissions, 100 with
//     subcode 33 (unknown phone number ID), 2500 (unknown path: wrong base
//     URL or version), 33, 368, 131005, 131031, 131037, 131042, 131045,
//     133010 (account, number or billing state), HTTP 401/403 without a
//     known code, and a Message.From that is not a phone number ID
//     (refused before any request). An expired token is the
//     operator's to fix and says nothing about the message: as a transient
//     failure each message reaches the dead-letter queue after the
//     pipeline's retries and can be replayed once the token is replaced,
//     where a permanent one would have failed the whole campaign for good.
//     errors.Is(err, ErrConfiguration) tells them apart for alerting.
//
// The Cloud API accepts a message before delivering it: most delivery
// failures (131026, 131047, 131049, ...) arrive later as a "failed"
// StatusUpdate whose Errors carry the same codes; WebhookError.Permanent
// classes them as Send would. A network failure after Meta got the request
// may make a retry send twice (the API takes no idempotency key); a 2xx
// answer without a wamid is permanent, because the message has been taken.
//
// Message templates: CreateTemplate submits a template for Meta's review,
// POSTing {"name","language","category","components":[{"type":"BODY",
// "text":...,"example":{"body_text":[[...]]}}]} to
// {BaseURL}/{version}/{business-account-id}/message_templates
// (Config.BusinessAccountID; the token needs whatsapp_business_management)
// and reading {"id","status","category"}. Meta's verdict usually arrives
// later as a message_template_status_update webhook. A name and language
// that exist already (error 100, subcode 2388024) are not created twice:
// CreateTemplate looks the template up (FindTemplate: GET
// .../message_templates?name=...) and returns it with Existing set, so a
// retry after a lost answer is safe. Other refusals are classed as Send's:
// a 4xx about the template (100 with its subcodes, such as 2388023, the
// name's content still being deleted) is permanent, and Meta's
// error_user_msg is added to the error's Message; throttling, 5xx and
// network failures are transient; token, permission and account errors
// (190, 10, 200-299, 100/33 for an unknown business account ID) wrap
// ErrConfiguration.
//
// Webhooks: VerifySignature checks X-Hub-Signature-256 ("sha256=" and the
// hex HMAC-SHA256 of the raw body keyed with the app secret, constant
// time); VerifyChallenge answers the hub.mode=subscribe GET; ParseWebhook
// turns a whatsapp_business_account payload into a flat list of
// notifications: inbound messages, statuses (sent, delivered, read,
// failed), message_template_status_update events, value-level errors, and
// fields it does not interpret as *OtherChange. Inbound messages carry the
// business-scoped user ID (from_user_id) beside the phone number, which
// users with a WhatsApp username may not share.
package meta
