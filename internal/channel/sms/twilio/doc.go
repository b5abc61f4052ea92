// Package twilio sends SMS through Twilio's Programmable Messaging REST
// API (version 2010-04-01) and reads the webhooks Twilio sends back.
//
// Sending: Sender.Send POSTs form-encoded To, From (or
// MessagingServiceSid, when the sender is a Messaging Service SID "MG..."),
// Body and StatusCallback to
// {BaseURL}/2010-04-01/Accounts/{AccountSid}/Messages.json with HTTP Basic
// auth (Account SID : Auth Token), and returns the Message SID of Twilio's
// 201 answer as the receipt's ExternalID.
//
// Failures are *channel.Error with Provider "twilio" and Code set to
// Twilio's error code. How they are classed:
//   - Permanent (the pipeline fails the message): a body that is empty or
//     longer than Twilio's 1600 characters, a recipient that is not E.164
//     (both refused before any request), and Twilio's refusals of the
//     message or recipient: 21211 invalid To, 21610 unsubscribed (STOP),
//     21614 not a mobile number, 21408 region not enabled, and any other
//     4xx whose code is not listed below. 21408 is the account's geographic
//     permission, not the message, but it is deliberate more often than
//     not, and one dead letter per foreign recipient would bury the DLQ.
//   - Transient (the pipeline retries): HTTP 429 and 5xx (Twilio's
//     Retry-After, seconds or a date, is in RetryAfter), 20429, 14107 and
//     21611 throttling, and network failures and timeouts, including a
//     cancelled context (errors.Is finds context.Canceled or
//     DeadlineExceeded).
//   - Configuration (transient, wrapping ErrConfiguration): HTTP 401/403
//     and 20003 rejected credentials, 20005 inactive account, 20404 unknown
//     account, 21212/21606/21659/21660 a sender that is not the account's,
//     21703-21705 a Messaging Service that cannot send, 21609 and a sender
//     or StatusCallback URL of the wrong form (refused before any request:
//     both come from settings, not from the message). Every message would
//     fail alike until an operator fixes the setting; as transient failures
//     they reach the dead-letter queue after the pipeline's retries and can
//     be replayed then, where permanent ones would have failed a whole
//     campaign for good. errors.Is(err, ErrConfiguration) tells them apart
//     for alerting.
//
// A network failure after Twilio got the request may make a retry send
// twice: the Messages API takes no idempotency key. The opposite case, a
// 2xx answer whose Message SID cannot be read, is permanent, because the
// message has been taken and a retry would certainly send it twice.
//
// The body limit counts characters (Unicode code points), as a person
// does; should Twilio count a body as longer, its own 21617 refusal is
// permanent as well.
//
// Webhooks: VerifySignature checks the X-Twilio-Signature header (HMAC-SHA1
// of the full URL and the sorted POST parameters, keyed with the auth
// token, base64; compared in constant time). ParseStatusCallback reads a
// delivery report and ParseInbound an incoming message; both ignore
// parameters Twilio adds later and wrap ErrInvalidWebhook when a required
// one is missing or malformed. Twilio's status callbacks carry only its own
// Message SID, so the pipeline matches them on the receipt's ExternalID (or
// puts its message id in the StatusCallback URL's query).
package twilio
