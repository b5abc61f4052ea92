// Package sendgrid reads the webhooks Twilio SendGrid posts about email:
// the Event Webhook, which reports what became of the messages we sent,
// and Inbound Parse, which delivers the mail people send to the parse
// domain (replies to our messages). It is the email provider webhook
// format AlumOutreach accepts; the pipeline and inbox handlers under
// /webhooks/... call it and turn what it returns into events.
//
// # Event Webhook
//
// SendGrid POSTs application/json: an array of event objects, batched
// (every 30 seconds or 768 KB per SendGrid server), delivered at least
// once and retried for up to 24 hours until the endpoint answers 2xx.
//
// Signed Event Webhook: SendGrid signs the timestamp header value followed
// by the raw body with ECDSA P-256 over SHA-256, and posts the base64 of
// the ASN.1 DER signature in X-Twilio-Email-Event-Webhook-Signature and
// the Unix time in X-Twilio-Email-Event-Webhook-Timestamp. ParsePublicKey
// reads the verification key from SendGrid's settings (base64 PKIX DER;
// PEM accepted) once, at start-up; VerifySignature checks a request;
// TimestampFresh refuses old signed payloads replayed. A handler reads the
// raw body (bounded), verifies it, then calls ParseEvents on the same
// bytes, and answers 401 to a bad signature and 400 to ErrInvalidWebhook.
//
// ParseEvents returns one Event per object, in order. Each must have
// event, email, timestamp and sg_event_id; the whole body is refused, with
// an error naming the event's index, when one lacks them or the body is
// not an array of objects. Decisions:
//   - Event types SendGrid adds later are kept, with Type.Known() false,
//     so that a new type never makes SendGrid retry a batch that also
//     carries deliveries. account_status_change, an account-level event
//     SendGrid documents (opt-in) without a recipient, is known and the
//     only type that may lack email; its "type" is AccountStatus. The
//     event name is lower-cased (SendGrid's own docs show "Processed").
//   - email is not checked to be an address: a dropped event with reason
//     "Invalid" carries exactly the malformed address that was refused.
//   - timestamp is Unix seconds as a number or a string of digits; a
//     13- or 14-digit value is read as milliseconds, as in SendGrid's
//     documented Single Send example.
//   - SMTPID is the smtp-id field without angle brackets: the Message-ID
//     we set when sending through SendGrid's SMTP relay, which matches a
//     report to our message even before SGMessageID is stored.
//   - CustomArgs are the unique/custom arguments, which SendGrid flattens
//     into the event: every field with a string value that is not
//     SendGrid's own. SendGrid's own are a fixed list (event, email,
//     timestamp, smtp-id, category, type, reason, status, response, url,
//     ip, useragent, asm_group_id, marketing_campaign_*, singlesend_*,
//     template_*, pool, newsletter, ...) and every field starting with
//     "sg_"; a custom argument with one of those names is overwritten by
//     SendGrid anyway. The pipeline sets "message_id" and "tenant_id".
//     Custom arguments that are not strings (SendGrid requires strings)
//     are dropped.
//   - The fields Event lifts out must have the JSON type SendGrid sends
//     (attempt and asm_group_id may be numbers or strings of digits);
//     other fields are ignored.
//
// Consumers deduplicate on SGEventID: SendGrid may post an event twice.
//
// # Inbound Parse
//
// SendGrid POSTs multipart/form-data. ParseInbound reads it as a stream:
// text fields are kept up to a memory budget, attachment bodies are
// counted (Attachment.Size) and dropped, so a large attachment costs no
// memory and no temporary file. A body cut short is refused, also where
// mime/multipart would take it for the end of the form. The parse setting must not use "Send Raw"
// (the whole MIME message in one field), which is refused with an error
// that says so.
//
// Fields SendGrid writes (envelope, charsets, attachment-info,
// content-ids, spam_score, attachments) must be well-formed, or the post
// is refused as not SendGrid's. Fields copied from the sender's message
// are taken as they come: a badly formed message is still someone's
// reply, and SendGrid retries a parse post only on a 5xx answer (for up
// to three days), so refusing one with a 4xx loses the mail for good. So From is the parsed From header, else the envelope sender; To
// the parsed To header, else the envelope recipients; the post is refused
// only when neither gives a sender, or a recipient. Headers is the raw
// header block parsed with net/textproto, lines that are not header
// fields skipped; MessageID, InReplyTo (its first ID) and References
// come from it, without angle brackets, for threading replies.
//
// Charsets: SendGrid posts from, to, cc, subject, text and html in the
// message's own charset and names it in the charsets field. UTF-8 is
// kept; ISO-8859-1 and Windows-1252 are decoded with a built-in table,
// ISO-8859-1 read as Windows-1252 as the WHATWG Encoding Standard does
// (mail labelled ISO-8859-1 that uses 0x80-0x9F means curly quotes and
// dashes); US-ASCII holding 8-bit bytes is read as Windows-1252 too. Any
// other charset (ISO-2022-JP, KOI8-R, GB2312, ...) is left as the bytes
// received, not valid UTF-8, and Inbound.Charsets says which it is; the
// standard library has no tables for them and the module takes no
// dependency for them. RFC 2047 encoded-words left in the subject or in
// display names are decoded for the same charsets.
//
// SendGrid can also sign Inbound Parse posts (a webhook security policy,
// ECDSA as for events). ParseInbound does not check signatures: a handler
// that wants to buffers the raw body, checks it with VerifySignature and
// hands ParseInbound a request reading that buffer.
package sendgrid
