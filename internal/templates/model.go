package templates

import (
	"errors"
	"fmt"
	"net/mail"
	"regexp"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/alumoutreach/alumoutreach/internal/event"
	"github.com/alumoutreach/alumoutreach/internal/platform/fault"
	"github.com/alumoutreach/alumoutreach/internal/templates/render"
)

// Lifecycle statuses.
const (
	StatusCreated  = "created"
	StatusActive   = "active"
	StatusArchived = "archived"
)

// WhatsApp review statuses of a template.
const (
	ReviewSubmitted = "submitted"
	ReviewApproved  = "approved"
	ReviewRejected  = "rejected"
)

// Template is a template with its current content.
type Template struct {
	ID      string  `json:"id"`
	Name    string  `json:"name"`
	Channel string  `json:"channel"`
	Status  string  `json:"status"`
	Version int64   `json:"version"`
	Content Content `json:"content"`
	// Review is the WhatsApp provider's review of the template, when submitted.
	Review    *Review   `json:"review,omitempty"`
	CreatedAt time.Time `json:"createdAt"`
	UpdatedAt time.Time `json:"updatedAt"`
}

// Review follows a WhatsApp template through the provider's review.
type Review struct {
	Status   string `json:"status"`
	Name     string `json:"name"`
	Language string `json:"language"`
	Category string `json:"category"`
	Reason   string `json:"reason,omitempty"`
	// ProviderID is the provider's id of the template (Meta's template
	// ID), once the provider has given one.
	ProviderID string `json:"providerTemplateId,omitempty"`

	// submission is the id of the template.hsm.submitted event of the
	// current submission; version the template version it submitted.
	submission string
	version    int64
}

// Content is one version of a template's content. Which fields apply
// depends on the channel.
type Content struct {
	// Email.
	Subject  string `json:"subject,omitempty"`
	HTML     string `json:"html,omitempty"`
	Text     string `json:"text,omitempty"`
	From     string `json:"from,omitempty"`
	FromName string `json:"fromName,omitempty"`
	ReplyTo  string `json:"replyTo,omitempty"`
	// SMS, and WhatsApp inside the 24-hour session window.
	Body string `json:"body,omitempty"`
	// WhatsApp outside the session window: a provider-approved template.
	WhatsApp *WhatsAppTemplate `json:"whatsapp,omitempty"`
	// Defaults fill variables that are missing when a message is rendered,
	// e.g. {"contact.firstName": "friend"}.
	Defaults map[string]string `json:"defaults,omitempty"`
}

// WhatsAppTemplate is the provider template a WhatsApp message quotes.
type WhatsAppTemplate struct {
	// Name and Language identify the template at the provider.
	Name     string `json:"name"`
	Language string `json:"language"`
	// Category is the provider's category: MARKETING, UTILITY or AUTHENTICATION.
	Category string `json:"category"`
	// Body is the template text as submitted for review, with {{1}}, {{2}}, ...
	Body string `json:"body"`
	// Params fill {{1}}, {{2}}, ... in order; each may use placeholders.
	Params []string `json:"params,omitempty"`
}

// Limits that keep a template far below the event and message size limits.
const (
	maxNameLen    = 200
	maxSubjectLen = 998
	maxSMSBody    = 1600
	maxWABody     = 4096
	maxParams     = 20
)

var (
	waNamePattern     = regexp.MustCompile(`^[a-z0-9_]{1,512}$`)
	waLanguagePattern = regexp.MustCompile(`^[a-z]{2,3}(_[A-Z]{2})?$`)
	waCategories      = []string{"MARKETING", "UTILITY", "AUTHENTICATION"}
	waParamPattern    = regexp.MustCompile(`\{\{(\d+)\}\}`)
)

func invalid(field, format string, args ...any) *fault.Error {
	e := fault.New(fault.Invalid, "invalid_template", "%s: "+format, append([]any{field}, args...)...)
	e.Details = map[string]any{"field": field}
	return e
}

// renderError reports a placeholder mistake in field with its position.
func renderError(field string, err error) error {
	var re *render.Error
	if errors.As(err, &re) {
		e := fault.New(fault.Invalid, "invalid_template", "%s: line %d, column %d: %s", field, re.Line, re.Column, re.Message)
		e.Details = map[string]any{"field": field, "line": re.Line, "column": re.Column}
		return e
	}
	return invalid(field, "%v", err)
}

// Compiled is a content version ready to render.
type Compiled struct {
	Content Content
	Subject *render.Template
	HTML    *render.Template
	Text    *render.Template
	Body    *render.Template
	Params  []*render.Template
}

// Compile checks c for channel and parses every part. It is what a save
// refuses on, and what senders render with.
func Compile(channel string, c Content) (*Compiled, error) {
	out := &Compiled{Content: c}
	parse := func(field, src string, kind render.Kind) (*render.Template, error) {
		if src == "" {
			return nil, nil
		}
		t, err := render.Parse(src, kind)
		if err != nil {
			return nil, renderError(field, err)
		}
		return t, nil
	}
	var err error
	switch channel {
	case event.ChannelEmail:
		if strings.TrimSpace(c.Subject) == "" {
			return nil, invalid("subject", "an email template needs a subject")
		}
		if utf8.RuneCountInString(c.Subject) > maxSubjectLen || strings.ContainsAny(c.Subject, "\r\n") {
			return nil, invalid("subject", "a subject is one line of at most %d characters", maxSubjectLen)
		}
		if c.HTML == "" && c.Text == "" {
			return nil, invalid("html", "an email template needs an HTML body, a text body, or both")
		}
		for _, a := range []struct{ field, v string }{{"from", c.From}, {"replyTo", c.ReplyTo}} {
			if a.v != "" {
				if addr, err := mail.ParseAddress(a.v); err != nil || addr.Address != a.v {
					return nil, invalid(a.field, "%q is not an email address such as alumni@example.edu", a.v)
				}
			}
		}
		if strings.ContainsAny(c.FromName, "\r\n") {
			return nil, invalid("fromName", "a sender name is one line")
		}
		if c.Body != "" || c.WhatsApp != nil {
			return nil, invalid("body", "email templates use subject, html and text, not body or whatsapp")
		}
		if out.Subject, err = parse("subject", c.Subject, render.Text); err != nil {
			return nil, err
		}
		if out.HTML, err = parse("html", c.HTML, render.HTML); err != nil {
			return nil, err
		}
		if out.Text, err = parse("text", c.Text, render.Text); err != nil {
			return nil, err
		}
	case event.ChannelSMS:
		if err := noEmailSender(c); err != nil {
			return nil, err
		}
		if strings.TrimSpace(c.Body) == "" {
			return nil, invalid("body", "an SMS template needs a body")
		}
		if utf8.RuneCountInString(c.Body) > maxSMSBody {
			return nil, invalid("body", "an SMS body is at most %d characters", maxSMSBody)
		}
		if c.Subject != "" || c.HTML != "" || c.Text != "" || c.WhatsApp != nil {
			return nil, invalid("body", "SMS templates have only a body")
		}
		if out.Body, err = parse("body", c.Body, render.Text); err != nil {
			return nil, err
		}
	case event.ChannelWhatsApp:
		if err := noEmailSender(c); err != nil {
			return nil, err
		}
		if c.Body == "" && c.WhatsApp == nil {
			return nil, invalid("body", "a WhatsApp template needs a session body, an approved provider template (whatsapp), or both")
		}
		if c.Subject != "" || c.HTML != "" || c.Text != "" {
			return nil, invalid("body", "WhatsApp templates use body and whatsapp, not email fields")
		}
		if utf8.RuneCountInString(c.Body) > maxWABody {
			return nil, invalid("body", "a WhatsApp body is at most %d characters", maxWABody)
		}
		if out.Body, err = parse("body", c.Body, render.Text); err != nil {
			return nil, err
		}
		if w := c.WhatsApp; w != nil {
			if err := checkWhatsApp(w); err != nil {
				return nil, err
			}
			for i, p := range w.Params {
				t, err := parse(fmt.Sprintf("whatsapp.params[%d]", i), p, render.Text)
				if err != nil {
					return nil, err
				}
				out.Params = append(out.Params, t)
			}
		}
	default:
		return nil, invalid("channel", "unknown channel %q; use email, sms or whatsapp", channel)
	}
	for k := range c.Defaults {
		if !render.KnownVariable(k) {
			return nil, invalid("defaults", "%q is not a template variable (e.g. contact.firstName)", k)
		}
	}
	return out, nil
}

// noEmailSender refuses email sender fields on SMS and WhatsApp templates:
// those channels send from the provider's configured number.
func noEmailSender(c Content) error {
	if c.From != "" || c.FromName != "" || c.ReplyTo != "" {
		return invalid("from", "from, fromName and replyTo belong to email templates; SMS and WhatsApp send from the provider's number")
	}
	return nil
}

func checkWhatsApp(w *WhatsAppTemplate) error {
	if !waNamePattern.MatchString(w.Name) {
		return invalid("whatsapp.name", "a provider template name is lower-case letters, digits and _ (got %q)", w.Name)
	}
	if !waLanguagePattern.MatchString(w.Language) {
		return invalid("whatsapp.language", "the language is a provider code such as en or en_US (got %q)", w.Language)
	}
	if !slices.Contains(waCategories, w.Category) {
		return invalid("whatsapp.category", "the category is MARKETING, UTILITY or AUTHENTICATION (got %q)", w.Category)
	}
	if strings.TrimSpace(w.Body) == "" || utf8.RuneCountInString(w.Body) > 1024 {
		return invalid("whatsapp.body", "the template text as submitted for review is 1 to 1024 characters")
	}
	if len(w.Params) > maxParams {
		return invalid("whatsapp.params", "at most %d parameters", maxParams)
	}
	// The provider fills {{1}}..{{n}} from the parameters in order: each
	// must have one, and each parameter a place.
	highest := 0
	for _, m := range waParamPattern.FindAllStringSubmatch(w.Body, -1) {
		var n int
		fmt.Sscan(m[1], &n)
		highest = max(highest, n)
	}
	if highest != len(w.Params) {
		return invalid("whatsapp.params", "the template text uses {{1}} to {{%d}}; give exactly %d parameters (got %d)", highest, highest, len(w.Params))
	}
	return nil
}

func checkName(name string) (string, error) {
	n := strings.TrimSpace(name)
	if n == "" || utf8.RuneCountInString(n) > maxNameLen {
		return "", invalid("name", "a name is 1 to %d characters", maxNameLen)
	}
	return n, nil
}
