package meta

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"
)

// ErrInvalidWebhook is wrapped by every error of ParseWebhook: the body is
// not a WhatsApp Business Account webhook as Meta sends it.
var ErrInvalidWebhook = errors.New("meta: invalid webhook payload")

// Notification is one thing a webhook reports: *InboundMessage,
// *StatusUpdate, *TemplateStatusUpdate, *ErrorNotification or
// *OtherChange. Use a type switch.
type Notification interface {
	// Origin says which account and phone number it concerns.
	Origin() Source
}

// Source says which business account and phone number a notification
// concerns.
type Source struct {
	// BusinessAccountID is the WhatsApp Business Account ID (entry.id).
	BusinessAccountID string
	// PhoneNumberID and DisplayPhoneNumber are the business number's
	// (value.metadata); empty for account-level fields such as template
	// updates.
	PhoneNumberID      string
	DisplayPhoneNumber string
}

// Origin implements Notification.
func (s Source) Origin() Source { return s }

// InboundMessage is a message a WhatsApp user sent to the business.
type InboundMessage struct {
	Source
	// ID is the WhatsApp message ID ("wamid.…").
	ID string
	// From is the sender's WhatsApp ID (phone digits, no '+'). It may be
	// empty for a user who hides the number behind a username; FromUserID,
	// the business-scoped user ID, is then the only identifier.
	From       string
	FromUserID string
	// ContactName is the sender's profile name, when Meta sent one.
	ContactName string
	Timestamp   time.Time
	// Type is Meta's message type: text, button, interactive, image,
	// audio, video, document, sticker, location, contacts, reaction,
	// order, system, unsupported, ...
	Type string
	// Text is what the user wrote or chose: a text's body, a quick-reply
	// button's or interactive reply's title, a media caption, a
	// reaction's emoji.
	Text string
	// Payload is the developer-defined value of a tapped button or
	// interactive reply (a quick-reply payload, a reply's id).
	Payload string
	// ContextID is the ID of the message this one replies or reacts to;
	// a reply to a campaign message names that message's wamid.
	ContextID string
	// MediaID and MimeType describe an attached image, audio, video,
	// document or sticker; fetch it with the media ID.
	MediaID  string
	MimeType string
	// Errors explain an "unsupported" message.
	Errors []WebhookError
	// Raw is the message object as Meta sent it, for the fields above
	// that are not lifted out (locations, contacts, orders, ...).
	Raw json.RawMessage
}

// MessageStatus is a sent message's state as a status webhook reports it.
type MessageStatus string

// The statuses Meta reports for sent messages.
const (
	StatusSent      MessageStatus = "sent"
	StatusDelivered MessageStatus = "delivered"
	StatusRead      MessageStatus = "read"
	StatusFailed    MessageStatus = "failed"
	StatusDeleted   MessageStatus = "deleted"
)

// StatusUpdate is Meta's report on a message the business sent.
type StatusUpdate struct {
	Source
	// MessageID is the wamid, the Receipt's ExternalID.
	MessageID string
	Status    MessageStatus
	Timestamp time.Time
	// RecipientID is the recipient's WhatsApp ID (phone digits);
	// RecipientUserID its business-scoped user ID, when Meta sent one.
	RecipientID     string
	RecipientUserID string
	// CallbackData is the biz_opaque_callback_data sent with the message:
	// our message ID (channel.Message.ID).
	CallbackData string
	// ConversationID, PricingCategory and Billable are the billing data
	// Meta attaches to some statuses; empty when absent.
	ConversationID  string
	PricingCategory string
	Billable        bool
	// Errors say why a failed message failed.
	Errors []WebhookError
}

// TemplateStatusUpdate is a change in a message template's review status
// (field message_template_status_update).
type TemplateStatusUpdate struct {
	Source
	// Time is when Meta sent the notification (entry.time); zero when
	// absent.
	Time time.Time
	// Event is the template's new status: APPROVED, REJECTED, PENDING,
	// PAUSED, DISABLED, FLAGGED, REINSTATED, ARCHIVED, DELETED,
	// PENDING_DELETION, LOCKED, IN_APPEAL, LIMIT_EXCEEDED, ...
	Event        string
	TemplateID   string
	TemplateName string
	// Language is the template's language and locale code, "en_US".
	Language string
	// Reason is why it was rejected (INVALID_FORMAT, PROMOTIONAL, ...),
	// "NONE", or empty.
	Reason   string
	Category string
}

// ErrorNotification reports errors not tied to one message
// (value.errors of the messages field), such as an app-level rate limit.
type ErrorNotification struct {
	Source
	Errors []WebhookError
}

// OtherChange is a webhook field this package does not interpret
// (account_update, message_template_quality_update, ...), kept so that a
// caller can log or handle it.
type OtherChange struct {
	Source
	Field string
	Value json.RawMessage
}

// WebhookError is an error in a webhook: why a message failed, or why an
// inbound message is unsupported.
type WebhookError struct {
	Code    int
	Title   string
	Message string
	Details string
	Href    string
}

// Permanent reports whether the error code says that sending the same
// message again cannot succeed, as Send would class it. A failed status
// with a code that is not permanent (throughput limits, Meta's own
// failures, the account's configuration) may succeed when sent again.
func (e WebhookError) Permanent() bool { return classOf(e.Code, 0) == permanent }

// ParseWebhook turns a webhook POST body (object
// "whatsapp_business_account") into a flat list of notifications, in the
// order of the payload: each entry's changes, and in a messages change its
// messages, then statuses, then errors. Fields this package does not
// interpret become *OtherChange. A body that is not such a payload, or
// whose messages, statuses or template updates lack their required fields,
// is refused whole with an error wrapping ErrInvalidWebhook that names the
// offending path.
//
// Verify the signature (VerifySignature) on the raw body first.
func ParseWebhook(body []byte) ([]Notification, error) {
	var p struct {
		Object *string `json:"object"`
		Entry  []struct {
			ID      flexString `json:"id"`
			Time    flexString `json:"time"`
			Changes []struct {
				Field string          `json:"field"`
				Value json.RawMessage `json:"value"`
			} `json:"changes"`
		} `json:"entry"`
	}
	if len(bytes.TrimSpace(body)) == 0 {
		return nil, invalid("", "body is empty")
	}
	if err := json.Unmarshal(body, &p); err != nil {
		return nil, invalid("", "body is not a webhook payload: %v", jsonProblem(err))
	}
	switch {
	case p.Object == nil:
		return nil, invalid("", "object is missing")
	case *p.Object != "whatsapp_business_account":
		return nil, invalid("", "object is %.60q, not \"whatsapp_business_account\"", *p.Object)
	case len(p.Entry) == 0:
		return nil, invalid("", "entry is missing or empty")
	}
	var out []Notification
	for i, e := range p.Entry {
		at := fmt.Sprintf("entry[%d]", i)
		if e.ID == "" {
			return nil, invalid(at, "id (the business account ID) is missing")
		}
		for j, c := range e.Changes {
			at := fmt.Sprintf("%s.changes[%d]", at, j)
			src := Source{BusinessAccountID: string(e.ID)}
			var err error
			switch c.Field {
			case "":
				return nil, invalid(at, "field is missing")
			case "messages":
				out, err = appendMessages(out, src, at+".value", c.Value)
			case "message_template_status_update":
				out, err = appendTemplateStatus(out, src, at+".value", e.Time, c.Value)
			default:
				out = append(out, &OtherChange{Source: src, Field: c.Field, Value: c.Value})
			}
			if err != nil {
				return nil, err
			}
		}
	}
	return out, nil
}

// value of the messages field.
type messagesValue struct {
	Metadata struct {
		DisplayPhoneNumber flexString `json:"display_phone_number"`
		PhoneNumberID      flexString `json:"phone_number_id"`
	} `json:"metadata"`
	Contacts []struct {
		Profile struct {
			Name string `json:"name"`
		} `json:"profile"`
		WaID   string `json:"wa_id"`
		UserID string `json:"user_id"`
	} `json:"contacts"`
	Messages []json.RawMessage `json:"messages"`
	Statuses []struct {
		ID              string     `json:"id"`
		Status          string     `json:"status"`
		Timestamp       flexString `json:"timestamp"`
		RecipientID     string     `json:"recipient_id"`
		RecipientUserID string     `json:"recipient_user_id"`
		CallbackData    string     `json:"biz_opaque_callback_data"`
		Conversation    *struct {
			ID string `json:"id"`
		} `json:"conversation"`
		Pricing *struct {
			Billable bool   `json:"billable"`
			Category string `json:"category"`
		} `json:"pricing"`
		Errors []rawError `json:"errors"`
	} `json:"statuses"`
	Errors []rawError `json:"errors"`
}

// an inbound message object.
type rawMessage struct {
	From       string     `json:"from"`
	FromUserID string     `json:"from_user_id"`
	ID         string     `json:"id"`
	Timestamp  flexString `json:"timestamp"`
	Type       string     `json:"type"`
	Context    *struct {
		ID string `json:"id"`
	} `json:"context"`
	Text *struct {
		Body string `json:"body"`
	} `json:"text"`
	Button *struct {
		Text    string `json:"text"`
		Payload string `json:"payload"`
	} `json:"button"`
	Interactive *struct {
		ButtonReply *reply `json:"button_reply"`
		ListReply   *reply `json:"list_reply"`
		NfmReply    *struct {
			Body         string `json:"body"`
			ResponseJSON string `json:"response_json"`
		} `json:"nfm_reply"`
	} `json:"interactive"`
	Image    *media `json:"image"`
	Audio    *media `json:"audio"`
	Video    *media `json:"video"`
	Document *media `json:"document"`
	Sticker  *media `json:"sticker"`
	Reaction *struct {
		MessageID string `json:"message_id"`
		Emoji     string `json:"emoji"`
	} `json:"reaction"`
	Errors []rawError `json:"errors"`
}

type reply struct {
	ID    string `json:"id"`
	Title string `json:"title"`
}

type media struct {
	ID       string `json:"id"`
	MimeType string `json:"mime_type"`
	Caption  string `json:"caption"`
}

type rawError struct {
	Code      flexString `json:"code"`
	Title     string     `json:"title"`
	Message   string     `json:"message"`
	ErrorData struct {
		Details string `json:"details"`
	} `json:"error_data"`
	// Details is where older payloads put error_data.details.
	Details string `json:"details"`
	Href    string `json:"href"`
}

func appendMessages(out []Notification, src Source, at string, raw json.RawMessage) ([]Notification, error) {
	var v messagesValue
	if err := decodeValue(raw, &v); err != nil {
		return nil, invalid(at, "%v", err)
	}
	src.PhoneNumberID = string(v.Metadata.PhoneNumberID)
	src.DisplayPhoneNumber = string(v.Metadata.DisplayPhoneNumber)
	names := map[string]string{}
	for _, c := range v.Contacts {
		if c.WaID != "" {
			names["wa:"+c.WaID] = c.Profile.Name
		}
		if c.UserID != "" {
			names["user:"+c.UserID] = c.Profile.Name
		}
	}

	for k, rawMsg := range v.Messages {
		at := fmt.Sprintf("%s.messages[%d]", at, k)
		var m rawMessage
		if err := json.Unmarshal(rawMsg, &m); err != nil {
			return nil, invalid(at, "%v", jsonProblem(err))
		}
		in := &InboundMessage{Source: src, ID: m.ID, From: m.From, FromUserID: m.FromUserID, Type: m.Type, Raw: rawMsg}
		switch {
		case m.ID == "":
			return nil, invalid(at, "id is missing")
		case m.From == "" && m.FromUserID == "":
			return nil, invalid(at, "from (and from_user_id) is missing")
		case m.Type == "":
			return nil, invalid(at, "type is missing")
		}
		var err error
		if in.Timestamp, err = unixTime(m.Timestamp); err != nil {
			return nil, invalid(at, "timestamp: %v", err)
		}
		if in.ContactName = names["wa:"+m.From]; in.ContactName == "" && m.FromUserID != "" {
			in.ContactName = names["user:"+m.FromUserID]
		}
		if m.Context != nil {
			in.ContextID = m.Context.ID
		}
		lift(in, &m)
		if in.Errors, err = webhookErrors(m.Errors); err != nil {
			return nil, invalid(at, "%v", err)
		}
		out = append(out, in)
	}

	for k, s := range v.Statuses {
		at := fmt.Sprintf("%s.statuses[%d]", at, k)
		u := &StatusUpdate{
			Source: src, MessageID: s.ID, Status: MessageStatus(s.Status), RecipientID: s.RecipientID,
			RecipientUserID: s.RecipientUserID, CallbackData: s.CallbackData,
		}
		switch {
		case s.ID == "":
			return nil, invalid(at, "id is missing")
		case s.Status == "":
			return nil, invalid(at, "status is missing")
		}
		var err error
		if u.Timestamp, err = unixTime(s.Timestamp); err != nil {
			return nil, invalid(at, "timestamp: %v", err)
		}
		if s.Conversation != nil {
			u.ConversationID = s.Conversation.ID
		}
		if s.Pricing != nil {
			u.PricingCategory, u.Billable = s.Pricing.Category, s.Pricing.Billable
		}
		if u.Errors, err = webhookErrors(s.Errors); err != nil {
			return nil, invalid(at, "%v", err)
		}
		out = append(out, u)
	}

	if len(v.Errors) > 0 {
		errs, err := webhookErrors(v.Errors)
		if err != nil {
			return nil, invalid(at, "%v", err)
		}
		out = append(out, &ErrorNotification{Source: src, Errors: errs})
	}
	return out, nil
}

// lift copies the type-specific fields that matter to the inbox.
func lift(in *InboundMessage, m *rawMessage) {
	switch {
	case m.Text != nil:
		in.Text = m.Text.Body
	case m.Button != nil:
		in.Text, in.Payload = m.Button.Text, m.Button.Payload
	case m.Interactive != nil:
		switch i := m.Interactive; {
		case i.ButtonReply != nil:
			in.Text, in.Payload = i.ButtonReply.Title, i.ButtonReply.ID
		case i.ListReply != nil:
			in.Text, in.Payload = i.ListReply.Title, i.ListReply.ID
		case i.NfmReply != nil:
			in.Text, in.Payload = i.NfmReply.Body, i.NfmReply.ResponseJSON
		}
	case m.Reaction != nil:
		in.Text, in.ContextID = m.Reaction.Emoji, m.Reaction.MessageID
	}
	for _, md := range []*media{m.Image, m.Audio, m.Video, m.Document, m.Sticker} {
		if md != nil {
			in.MediaID, in.MimeType = md.ID, md.MimeType
			if in.Text == "" {
				in.Text = md.Caption
			}
			break
		}
	}
}

func appendTemplateStatus(out []Notification, src Source, at string, entryTime flexString, raw json.RawMessage) ([]Notification, error) {
	var v struct {
		Event    string     `json:"event"`
		ID       flexString `json:"message_template_id"`
		Name     string     `json:"message_template_name"`
		Language string     `json:"message_template_language"`
		Reason   string     `json:"reason"`
		Category string     `json:"message_template_category"`
	}
	if err := decodeValue(raw, &v); err != nil {
		return nil, invalid(at, "%v", err)
	}
	switch {
	case v.Event == "":
		return nil, invalid(at, "event is missing")
	case v.ID == "" && v.Name == "":
		return nil, invalid(at, "message_template_id and message_template_name are missing")
	}
	u := &TemplateStatusUpdate{
		Source: src, Event: v.Event, TemplateID: string(v.ID), TemplateName: v.Name,
		Language: v.Language, Reason: v.Reason, Category: v.Category,
	}
	if entryTime != "" {
		t, err := unixTime(entryTime)
		if err != nil {
			return nil, invalid(at, "entry time: %v", err)
		}
		u.Time = t
	}
	return append(out, u), nil
}

func webhookErrors(raw []rawError) ([]WebhookError, error) {
	if len(raw) == 0 {
		return nil, nil
	}
	out := make([]WebhookError, len(raw))
	for i, r := range raw {
		code, err := strconv.Atoi(string(r.Code))
		if err != nil {
			return nil, fmt.Errorf("errors[%d].code %.20q is not a number", i, r.Code)
		}
		details := r.ErrorData.Details
		if details == "" {
			details = r.Details
		}
		out[i] = WebhookError{Code: code, Title: r.Title, Message: r.Message, Details: details, Href: r.Href}
	}
	return out, nil
}

// decodeValue decodes a change's value, which must be an object.
func decodeValue(raw json.RawMessage, v any) error {
	if len(bytes.TrimSpace(raw)) == 0 || bytes.Equal(bytes.TrimSpace(raw), []byte("null")) {
		return errors.New("value is missing")
	}
	if err := json.Unmarshal(raw, v); err != nil {
		return jsonProblem(err)
	}
	return nil
}

// unixTime reads Meta's timestamps: Unix seconds, as a string or number.
func unixTime(s flexString) (time.Time, error) {
	if s == "" {
		return time.Time{}, errors.New("missing")
	}
	n, err := strconv.ParseInt(string(s), 10, 64)
	// Up to the year 5138: anything larger is not a Unix time in seconds.
	if err != nil || n <= 0 || n >= 1e11 {
		return time.Time{}, fmt.Errorf("%.30q is not a Unix time in seconds", s)
	}
	return time.Unix(n, 0).UTC(), nil
}

// flexString holds a JSON string or number as its text: Meta sends IDs
// and timestamps as either.
type flexString string

func (f *flexString) UnmarshalJSON(b []byte) error {
	switch {
	case bytes.Equal(b, []byte("null")):
		*f = ""
	case len(b) > 0 && b[0] == '"':
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		*f = flexString(s)
	default:
		var n json.Number
		if err := json.Unmarshal(b, &n); err != nil {
			return fmt.Errorf("an ID, code or timestamp is %.30s, neither a string nor a number", b)
		}
		*f = flexString(n)
	}
	return nil
}

// jsonProblem says what is wrong in JSON terms, without Go type names.
func jsonProblem(err error) error {
	var typeErr *json.UnmarshalTypeError
	if errors.As(err, &typeErr) {
		where := typeErr.Field
		if where == "" {
			where = "the body"
		}
		return fmt.Errorf("%s has a JSON %s where the payload needs another type", where, typeErr.Value)
	}
	var syntaxErr *json.SyntaxError
	if errors.As(err, &syntaxErr) {
		return fmt.Errorf("malformed JSON at byte %d: %v", syntaxErr.Offset, syntaxErr)
	}
	return err
}

func invalid(at, format string, args ...any) error {
	msg := fmt.Sprintf(format, args...)
	if at != "" {
		msg = at + ": " + msg
	}
	return fmt.Errorf("%w: %s", ErrInvalidWebhook, msg)
}
