package twilio

import (
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"
)

// ErrInvalidWebhook is wrapped by every error of ParseStatusCallback and
// ParseInbound: the request is not one Twilio sends, and a webhook
// handler answers it with 400.
var ErrInvalidWebhook = errors.New("twilio: invalid webhook request")

// MessageStatus is a message's state in Twilio. A status callback reports
// queued, sent, delivered, undelivered and failed for SMS, and read where
// the channel has read receipts; the others are states of the Message
// resource.
type MessageStatus string

// The statuses Twilio documents for the Message resource.
const (
	StatusAccepted           MessageStatus = "accepted"
	StatusScheduled          MessageStatus = "scheduled"
	StatusCanceled           MessageStatus = "canceled"
	StatusQueued             MessageStatus = "queued"
	StatusSending            MessageStatus = "sending"
	StatusSent               MessageStatus = "sent"
	StatusDelivered          MessageStatus = "delivered"
	StatusUndelivered        MessageStatus = "undelivered"
	StatusFailed             MessageStatus = "failed"
	StatusRead               MessageStatus = "read"
	StatusPartiallyDelivered MessageStatus = "partially_delivered"
	StatusReceiving          MessageStatus = "receiving"
	StatusReceived           MessageStatus = "received"
)

// Known reports whether s is one of the statuses above. ParseStatusCallback
// also accepts a well-formed status it does not know, since Twilio adds
// statuses without notice; the caller decides what an unknown one means.
func (s MessageStatus) Known() bool {
	switch s {
	case StatusAccepted, StatusScheduled, StatusCanceled, StatusQueued, StatusSending,
		StatusSent, StatusDelivered, StatusUndelivered, StatusFailed, StatusRead,
		StatusPartiallyDelivered, StatusReceiving, StatusReceived:
		return true
	}
	return false
}

// Failed reports whether s says the message did not reach the recipient.
func (s MessageStatus) Failed() bool { return s == StatusUndelivered || s == StatusFailed }

// StatusCallback is Twilio's report on a message it was asked to send,
// POSTed to the message's StatusCallback URL.
type StatusCallback struct {
	// MessageSid is the Receipt's ExternalID.
	MessageSid          string
	AccountSid          string
	MessagingServiceSid string
	MessageStatus       MessageStatus
	// ErrorCode is Twilio's error code when the message was not
	// delivered ("30003" unreachable handset, "30005" unknown
	// destination, "30006" landline, "30007" carrier filtered, ...),
	// empty otherwise.
	ErrorCode    string
	ErrorMessage string
	From, To     string
}

// ParseStatusCallback reads a status callback's form parameters.
// MessageSid and MessageStatus are required (the legacy SmsSid and
// SmsStatus stand in for them); parameters Twilio adds later are ignored.
func ParseStatusCallback(form url.Values) (StatusCallback, error) {
	bad := func(format string, args ...any) (StatusCallback, error) {
		return StatusCallback{}, fmt.Errorf("%w: status callback: "+format, append([]any{ErrInvalidWebhook}, args...)...)
	}
	cb := StatusCallback{
		MessageSid:          first(form, "MessageSid", "SmsSid"),
		AccountSid:          form.Get("AccountSid"),
		MessagingServiceSid: form.Get("MessagingServiceSid"),
		MessageStatus:       MessageStatus(first(form, "MessageStatus", "SmsStatus")),
		ErrorCode:           form.Get("ErrorCode"),
		ErrorMessage:        form.Get("ErrorMessage"),
		From:                form.Get("From"),
		To:                  form.Get("To"),
	}
	if err := checkSids(cb.MessageSid, cb.AccountSid, cb.MessagingServiceSid); err != "" {
		return bad("%s", err)
	}
	switch {
	case cb.MessageStatus == "":
		return bad("MessageStatus is missing")
	case !wellFormedStatus(string(cb.MessageStatus)):
		return bad("MessageStatus %.40q is not a status (lower-case letters and underscores)", cb.MessageStatus)
	}
	if cb.ErrorCode != "" && (len(cb.ErrorCode) > 10 || !allDigits(cb.ErrorCode)) {
		return bad("ErrorCode %.40q is not a Twilio error code (digits)", cb.ErrorCode)
	}
	return cb, nil
}

// MaxMedia is the most media items Twilio attaches to one message.
const MaxMedia = 10

// InboundMessage is a message someone sent to one of the account's
// numbers, POSTed to the number's (or Messaging Service's) webhook.
type InboundMessage struct {
	MessageSid          string
	AccountSid          string
	MessagingServiceSid string
	// From is the sender (E.164 for SMS); To is the account's number.
	From, To string
	Body     string
	// NumMedia is len(Media): the MMS attachments, in order.
	NumMedia    int
	Media       []Media
	NumSegments int
	// OptOutType is "STOP", "START" or "HELP" when Twilio's Advanced
	// Opt-Out recognised the message as such a keyword; empty otherwise.
	OptOutType string
}

// Media is one attachment of an inbound message. Fetching URL needs the
// account's credentials when the account enforces HTTP auth on media.
type Media struct {
	URL         string
	ContentType string
}

// ParseInbound reads an incoming-message webhook's form parameters.
// MessageSid, From and To are required; Body may be empty when media is
// attached.
func ParseInbound(form url.Values) (InboundMessage, error) {
	bad := func(format string, args ...any) (InboundMessage, error) {
		return InboundMessage{}, fmt.Errorf("%w: inbound message: "+format, append([]any{ErrInvalidWebhook}, args...)...)
	}
	in := InboundMessage{
		MessageSid:          first(form, "MessageSid", "SmsMessageSid", "SmsSid"),
		AccountSid:          form.Get("AccountSid"),
		MessagingServiceSid: form.Get("MessagingServiceSid"),
		From:                form.Get("From"),
		To:                  form.Get("To"),
		Body:                form.Get("Body"),
		OptOutType:          form.Get("OptOutType"),
	}
	if err := checkSids(in.MessageSid, in.AccountSid, in.MessagingServiceSid); err != "" {
		return bad("%s", err)
	}
	if in.From == "" {
		return bad("From is missing")
	}
	if in.To == "" {
		return bad("To is missing")
	}
	var err error
	if in.NumSegments, err = count(form, "NumSegments", 0); err != nil {
		return bad("%v", err)
	}
	if in.NumMedia, err = count(form, "NumMedia", MaxMedia); err != nil {
		return bad("%v", err)
	}
	for i := range in.NumMedia {
		raw := form.Get("MediaUrl" + strconv.Itoa(i))
		if raw == "" {
			return bad("NumMedia is %d but MediaUrl%d is missing", in.NumMedia, i)
		}
		if u, err := url.Parse(raw); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			return bad("MediaUrl%d %.80q is not an http(s) URL", i, raw)
		}
		in.Media = append(in.Media, Media{URL: raw, ContentType: form.Get("MediaContentType" + strconv.Itoa(i))})
	}
	return in, nil
}

// first is the first non-empty value among the named parameters.
func first(form url.Values, names ...string) string {
	for _, n := range names {
		if v := form.Get(n); v != "" {
			return v
		}
	}
	return ""
}

// checkSids checks the message SID (required) and the account and
// service SIDs (when present); it returns what is wrong, or "".
func checkSids(message, account, service string) string {
	switch {
	case message == "":
		return "MessageSid is missing"
	case !isSID(message, message[:min(2, len(message))]) || !isUpperLetters(message[:2]):
		return fmt.Sprintf("MessageSid %.40q is not a Message SID (two capital letters such as SM or MM, then 32 hex characters)", message)
	case account != "" && !isSID(account, "AC"):
		return fmt.Sprintf("AccountSid %.40q is not an Account SID (AC followed by 32 hex characters)", account)
	case service != "" && !isSID(service, "MG"):
		return fmt.Sprintf("MessagingServiceSid %.40q is not a Messaging Service SID (MG followed by 32 hex characters)", service)
	}
	return ""
}

func isUpperLetters(s string) bool {
	for _, c := range s {
		if c < 'A' || c > 'Z' {
			return false
		}
	}
	return true
}

func wellFormedStatus(s string) bool {
	if len(s) > 32 {
		return false
	}
	for _, c := range s {
		if (c < 'a' || c > 'z') && c != '_' {
			return false
		}
	}
	return s != ""
}

// count reads an optional non-negative count parameter, at most limit
// when limit > 0.
func count(form url.Values, name string, limit int) (int, error) {
	v := strings.TrimSpace(form.Get(name))
	if v == "" {
		return 0, nil
	}
	n, err := strconv.Atoi(v)
	switch {
	case err != nil || n < 0 || len(v) > 6:
		return 0, fmt.Errorf("%s %.20q is not a count", name, v)
	case limit > 0 && n > limit:
		return 0, fmt.Errorf("%s is %d, more than Twilio's %d", name, n, limit)
	}
	return n, nil
}
