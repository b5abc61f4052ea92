package pipeline

import (
	"context"
	"errors"
	"time"

	"github.com/alumoutreach/alumoutreach/internal/channel"
)

// ConsumerName is the durable consumer that sends queued messages.
const ConsumerName = "PIPELINE_SEND_CONSUMER"

// Message statuses in the messages table.
const (
	StatusQueued  = "queued"
	StatusSending = "sending"
	StatusSent    = "sent"
	StatusFailed  = "failed"
	StatusBlocked = "blocked"
	// StatusHeld waits for the end of the recipient's quiet hours.
	StatusHeld = "held"
)

// SourceAPI marks messages asked for through POST /api/v1/messages.
const SourceAPI = "api"

// Message is one message to one recipient on one channel.
type Message struct {
	ID              string     `json:"id"`
	SourceType      string     `json:"sourceType"`
	SourceID        string     `json:"sourceId"`
	Step            string     `json:"step,omitempty"`
	ContactID       string     `json:"contactId"`
	Channel         string     `json:"channel"`
	TemplateID      string     `json:"templateId,omitempty"`
	TemplateVersion int64      `json:"templateVersion,omitempty"`
	Recipient       string     `json:"recipient"`
	Subject         string     `json:"subject,omitempty"`
	Status          string     `json:"status"`
	Attempts        int        `json:"attempts"`
	Provider        string     `json:"provider,omitempty"`
	ExternalID      string     `json:"externalId,omitempty"`
	ErrorCode       string     `json:"errorCode,omitempty"`
	Error           string     `json:"error,omitempty"`
	CreatedAt       time.Time  `json:"createdAt"`
	UpdatedAt       time.Time  `json:"updatedAt"`
	SentAt          *time.Time `json:"sentAt,omitempty"`
	// SendAfter is when a message held for quiet hours goes out.
	SendAfter  *time.Time `json:"sendAfter,omitempty"`
	sourceName string
	runID      string
	sender     Sender
	// body is the text of a message written by hand, sent instead of a
	// template (TemplateID empty); inReplyTo the Message-ID of the email it
	// answers.
	body      string
	inReplyTo string
}

// handWritten reports whether m is sent as written (an agent's reply)
// rather than rendered from a template.
func (m *Message) handWritten() bool { return m.TemplateID == "" && m.body != "" }

// ErrRecipientNotFound is what a ContactSource returns for a contact that
// does not exist (or was erased).
var ErrRecipientNotFound = errors.New("recipient not found")

// Recipient is a contact as the pipeline needs it: where to send, whether
// it may, and what templates may say about it.
type Recipient struct {
	ContactID                                           string
	Email, Phone, FirstName, LastName, Locale, TimeZone string
	Tags                                                []string
	Attributes                                          map[string]any
	// Consent is the channels the contact agreed to be reached on.
	Consent map[string]bool
}

// Address returns the recipient's address on channel, "" when none.
func (r Recipient) Address(ch string) string {
	if ch == "email" {
		return r.Email
	}
	return r.Phone
}

// ContactSource reads recipients; the app wires it to the contacts module.
type ContactSource interface {
	Recipient(ctx context.Context, tenant, contactID string) (Recipient, error)
}

// RenderRequest is what a template is rendered with.
type RenderRequest struct {
	Recipient      Recipient
	MessageID      string
	SourceID       string
	SourceName     string
	UnsubscribeURL string
	// Draft allows a template that is not active: test sends try drafts.
	Draft bool
}

// Content is a rendered message, ready for a provider.
type Content struct {
	Version                   int64
	Subject, HTML, Text, Body string
	From, FromName, ReplyTo   string
	WhatsApp                  *channel.Template
}

// ErrTemplate wraps a template that cannot be rendered (missing, not of
// the channel, broken): the message fails instead of being retried.
var ErrTemplate = errors.New("template cannot be rendered")

// Renderer renders templates; the app wires it to the templates module.
type Renderer interface {
	Render(ctx context.Context, tenant, templateID string, version int64, channel string, req RenderRequest) (Content, error)
}

// Provider hands a message to one channel's provider.
type Provider interface {
	Send(ctx context.Context, m channel.Message) (channel.Receipt, error)
}

// Lookup is implemented by providers that can say whether they accepted a
// message (by our id) before a crash: the sandbox. For them a message left
// in "sending" is resolved instead of failed.
type Lookup interface {
	Accepted(ctx context.Context, tenant, messageID string) (channel.Receipt, bool, error)
}

// Sender is the email sender a requester chose for a message, overriding
// the template's; empty fields keep the template's.
type Sender struct {
	From     string `json:"from,omitempty"`
	FromName string `json:"fromName,omitempty"`
	ReplyTo  string `json:"replyTo,omitempty"`
}
