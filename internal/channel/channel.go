// Package channel is what the pipeline's provider adapters share: the
// message they hand to a provider, the receipt they get back, and one way
// to say whether a failure is worth retrying. The adapters live below it,
// one package per provider (email/smtp, sms/twilio, whatsapp/meta, and
// their sandbox twins); the pipeline declares the interface it needs of
// them.
package channel

import (
	"errors"
	"fmt"
	"time"
)

// Message is one message to one recipient, already rendered.
type Message struct {
	// Tenant is the tenant the message belongs to, for providers that keep
	// per-tenant accounts or storage (the sandbox).
	Tenant string
	// ID is our message id. Adapters pass it to the provider where the
	// provider keeps a client reference (so a report can be matched even
	// before the provider's id is stored) and use it in the email
	// Message-ID.
	ID string
	// To is an email address or an E.164 phone number.
	To string
	// From is the sender address or number (or, for WhatsApp, the phone
	// number id the business sends from).
	From string
	// FromName is the display name of an email sender.
	FromName string
	// ReplyTo is an email reply address.
	ReplyTo string
	// Subject, HTML and Text are an email's content; Text alone is the
	// body of an SMS or of a WhatsApp session message.
	Subject string
	HTML    string
	Text    string
	// Headers are extra email headers, such as List-Unsubscribe.
	Headers map[string]string
	// Template is an approved WhatsApp template, sent instead of Text
	// outside the 24-hour session window.
	Template *Template
	// StatusCallback is the URL a provider should report delivery to,
	// where the provider takes one per message (Twilio).
	StatusCallback string
}

// Template is a provider-approved WhatsApp template and its parameters.
type Template struct {
	Name     string `json:"name"`
	Language string `json:"language"`
	// Params fill the body's {{1}}, {{2}}, ... in order.
	Params []string `json:"params"`
}

// Receipt is the provider's acceptance of a message.
type Receipt struct {
	// Provider names the adapter, e.g. "smtp", "twilio", "meta", "sandbox".
	Provider string
	// ExternalID is the provider's id of the message, which its delivery
	// reports carry.
	ExternalID string
}

// Error is a provider's refusal or a failure to reach it.
type Error struct {
	Provider string
	// Code is the provider's error code ("21211", "550", "131026") when it
	// gave one.
	Code    string
	Message string
	// Permanent is true when sending the same message again cannot succeed
	// (bad address, rejected content, unknown template): the pipeline fails
	// the message instead of retrying it.
	Permanent bool
	// RetryAfter is how long the provider asked us to wait, when it did.
	RetryAfter time.Duration
	Err        error
}

func (e *Error) Error() string {
	kind := "transient"
	if e.Permanent {
		kind = "permanent"
	}
	s := fmt.Sprintf("%s: %s failure", e.Provider, kind)
	if e.Code != "" {
		s += " " + e.Code
	}
	if e.Message != "" {
		s += ": " + e.Message
	}
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	return s
}

func (e *Error) Unwrap() error { return e.Err }

// ErrUnknownOutcome marks a failure after the message was handed over in
// full (the connection died awaiting the provider's answer): the provider
// may have accepted it. Sending again could send it twice; the pipeline
// records the message as failed with outcome_unknown instead.
var ErrUnknownOutcome = errors.New("the provider may have accepted the message; its answer was lost")

// IsPermanent reports whether err says the message can never be sent as it
// is. Anything that is not a channel Error (a network failure, a timeout)
// is transient.
func IsPermanent(err error) bool {
	var e *Error
	return errors.As(err, &e) && e.Permanent
}

// RetryAfter returns the wait a provider asked for, or 0.
func RetryAfter(err error) time.Duration {
	var e *Error
	if errors.As(err, &e) {
		return e.RetryAfter
	}
	return 0
}
