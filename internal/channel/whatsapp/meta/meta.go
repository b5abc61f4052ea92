package meta

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/alumoutreach/alumoutreach/internal/channel"
)

// Provider is the name this adapter puts in receipts and errors.
const Provider = "meta"

const (
	// DefaultBaseURL is Meta's Graph API.
	DefaultBaseURL = "https://graph.facebook.com"
	// DefaultAPIVersion is the Graph API version requests use when
	// Config.APIVersion is empty. v25.0 (February 2026) is available
	// until July 2028.
	DefaultAPIVersion = "v25.0"
	// DefaultTimeout bounds one Send when Config.Timeout is zero.
	DefaultTimeout = 15 * time.Second
	// MaxTextChars is the Cloud API's limit on a text message's body.
	MaxTextChars = 4096
	// MaxCallbackData is the limit on biz_opaque_callback_data, which
	// carries the message's ID back in status webhooks.
	MaxCallbackData = 512

	maxResponseBytes = 1 << 20
)

var apiVersionPattern = regexp.MustCompile(`^v[1-9][0-9]*\.[0-9]+$`)

// Config says which WhatsApp Business phone number sends, and with which
// token.
type Config struct {
	// PhoneNumberID is the business phone number's ID (digits, from the
	// App Dashboard's WhatsApp > API Setup), not the phone number itself.
	// A Message's own From, when set, takes its place.
	PhoneNumberID string
	// BusinessAccountID is the WhatsApp Business Account's ID (digits,
	// from WhatsApp Manager or the App Dashboard's WhatsApp > API Setup):
	// message templates are created under it (CreateTemplate,
	// FindTemplate). Sending does not need it.
	BusinessAccountID string
	// AccessToken is a system user's (or, for tests, a temporary) access
	// token with the whatsapp_business_messaging permission, and
	// whatsapp_business_management to create message templates.
	AccessToken string
	// APIVersion is the Graph API version, "v25.0"; empty means
	// DefaultAPIVersion.
	APIVersion string
	// BaseURL is the Graph API's address; empty means DefaultBaseURL.
	// Tests point it at a local server.
	BaseURL string
	// HTTPClient sends the requests; nil means a client of this package's
	// own.
	HTTPClient *http.Client
	// Timeout bounds each Send, on top of the caller's context; zero
	// means DefaultTimeout.
	Timeout time.Duration
}

// Sender sends WhatsApp messages through Meta's Cloud API. It is safe for
// concurrent use.
type Sender struct {
	cfg     Config
	base    string
	client  *http.Client
	timeout time.Duration
}

// New checks cfg and returns a Sender. Every problem found is reported at
// once, each with what to set.
func New(cfg Config) (*Sender, error) {
	var problems []error
	bad := func(format string, args ...any) { problems = append(problems, fmt.Errorf(format, args...)) }

	cfg.PhoneNumberID = strings.TrimSpace(cfg.PhoneNumberID)
	switch {
	case cfg.PhoneNumberID == "":
		bad("PhoneNumberID is empty: set it to the business phone number's ID from the App Dashboard (WhatsApp > API Setup)")
	case !allDigits(cfg.PhoneNumberID):
		bad("PhoneNumberID %q is not a phone number ID: it is all digits, and is not the phone number itself", cfg.PhoneNumberID)
	}
	cfg.BusinessAccountID = strings.TrimSpace(cfg.BusinessAccountID)
	if cfg.BusinessAccountID != "" && !allDigits(cfg.BusinessAccountID) {
		bad("BusinessAccountID %q is not a WhatsApp Business Account ID: it is all digits (WhatsApp Manager > Account tools, or WhatsApp > API Setup)", cfg.BusinessAccountID)
	}
	switch {
	case cfg.AccessToken == "":
		bad("AccessToken is empty: set it to a system user access token with the whatsapp_business_messaging permission")
	case strings.ContainsAny(cfg.AccessToken, " \t\r\n"):
		bad("AccessToken contains white space: copy the token without it (and without a \"Bearer \" prefix)")
	}
	if cfg.APIVersion == "" {
		cfg.APIVersion = DefaultAPIVersion
	} else if !apiVersionPattern.MatchString(cfg.APIVersion) {
		bad("APIVersion %q is not a Graph API version such as %s", cfg.APIVersion, DefaultAPIVersion)
	}
	base := cfg.BaseURL
	if base == "" {
		base = DefaultBaseURL
	}
	u, err := url.Parse(base)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
		bad("BaseURL %q is not an http(s) address such as %s", cfg.BaseURL, DefaultBaseURL)
	}
	if cfg.Timeout < 0 {
		bad("Timeout %v is negative: use 0 for the default (%v) or a positive duration", cfg.Timeout, DefaultTimeout)
	}
	if len(problems) > 0 {
		return nil, fmt.Errorf("meta: invalid config: %w", errors.Join(problems...))
	}
	s := &Sender{cfg: cfg, base: strings.TrimRight(base, "/"), client: cfg.HTTPClient, timeout: cfg.Timeout}
	if s.client == nil {
		s.client = &http.Client{}
	}
	if s.timeout == 0 {
		s.timeout = DefaultTimeout
	}
	return s, nil
}

// The request body of POST /{version}/{phone-number-id}/messages.
type sendRequest struct {
	MessagingProduct string        `json:"messaging_product"`
	RecipientType    string        `json:"recipient_type"`
	To               string        `json:"to"`
	Type             string        `json:"type"`
	Text             *textObject   `json:"text,omitempty"`
	Template         *templateBody `json:"template,omitempty"`
	CallbackData     string        `json:"biz_opaque_callback_data,omitempty"`
}

type textObject struct {
	Body string `json:"body"`
}

type templateBody struct {
	Name       string      `json:"name"`
	Language   language    `json:"language"`
	Components []component `json:"components,omitempty"`
}

type language struct {
	Code string `json:"code"`
}

type component struct {
	Type       string      `json:"type"`
	Parameters []parameter `json:"parameters"`
}

type parameter struct {
	Type string `json:"type"`
	Text string `json:"text"`
}

// Send hands m to the Cloud API: m.Template when it is set (the only
// kind of message allowed outside the 24-hour customer service window),
// m.Text otherwise, to m.To's digits. m.ID travels as
// biz_opaque_callback_data, so status webhooks name our message too. The
// receipt's ExternalID is the WhatsApp message ID ("wamid.…") that status
// webhooks carry.
//
// Errors are *channel.Error with Meta's error code; see the package
// documentation for how codes are classed.
func (s *Sender) Send(ctx context.Context, m channel.Message) (channel.Receipt, error) {
	phoneID, payload, err := s.request(m)
	if err != nil {
		return channel.Receipt{}, err
	}
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()

	endpoint := s.base + "/" + s.cfg.APIVersion + "/" + url.PathEscape(phoneID) + "/messages"
	header := http.Header{"Authorization": {"Bearer " + s.cfg.AccessToken}, "Content-Type": {"application/json"}, "Accept": {"application/json"}}
	ans, err := channel.Post(ctx, s.client, Provider, endpoint, bytes.NewReader(payload), header, maxResponseBytes)
	if err != nil {
		return channel.Receipt{}, err
	}
	if ans.StatusCode >= 200 && ans.StatusCode < 300 {
		return accepted(ans.StatusCode, ans.Body, ans.ReadErr)
	}
	return channel.Receipt{}, refusal(ans.Response, ans.Body)
}

// accepted reads the message ID out of a 2xx answer
// {"messaging_product":"whatsapp","contacts":[...],"messages":[{"id":"wamid..."}]}.
// Meta has taken the message by then, so an answer without an ID is a
// permanent failure: a retry would send it a second time.
func accepted(status int, body []byte, readErr error) (channel.Receipt, error) {
	var out struct {
		Messages []struct {
			ID string `json:"id"`
		} `json:"messages"`
	}
	if readErr == nil {
		readErr = json.Unmarshal(body, &out)
	}
	if readErr == nil && (len(out.Messages) == 0 || out.Messages[0].ID == "") {
		readErr = errors.New("no message id in the response")
	}
	if readErr != nil {
		return channel.Receipt{}, &channel.Error{
			Provider:  Provider,
			Message:   fmt.Sprintf("Meta accepted the message (HTTP %d) but its answer could not be read; not retrying, which could send it twice", status),
			Permanent: true,
			Err:       readErr,
		}
	}
	return channel.Receipt{Provider: Provider, ExternalID: out.Messages[0].ID}, nil
}

// request builds the request body, refusing what Meta would refuse.
func (s *Sender) request(m channel.Message) (phoneID string, payload []byte, err error) {
	refuse := func(format string, args ...any) error {
		return &channel.Error{Provider: Provider, Message: fmt.Sprintf(format, args...), Permanent: true}
	}
	phoneID = s.cfg.PhoneNumberID
	if f := strings.TrimSpace(m.From); f != "" {
		if !allDigits(f) {
			// The sender comes from settings, not from the message.
			return "", nil, &channel.Error{Provider: Provider, Err: ErrConfiguration,
				Message: fmt.Sprintf("sender %q is not a WhatsApp phone number ID (digits)", f)}
		}
		phoneID = f
	}
	to, ok := recipient(m.To)
	if !ok {
		return "", nil, refuse("recipient %q is not an E.164 phone number such as +16505551234", m.To)
	}
	r := sendRequest{MessagingProduct: "whatsapp", RecipientType: "individual", To: to}
	if m.ID != "" && len(m.ID) <= MaxCallbackData {
		r.CallbackData = m.ID
	}
	if t := m.Template; t != nil {
		if strings.TrimSpace(t.Name) == "" {
			return "", nil, refuse("template has no name")
		}
		if strings.TrimSpace(t.Language) == "" {
			return "", nil, refuse("template %q has no language code (such as en_US)", t.Name)
		}
		r.Type = "template"
		r.Template = &templateBody{Name: t.Name, Language: language{Code: t.Language}}
		if len(t.Params) > 0 {
			params := make([]parameter, len(t.Params))
			for i, p := range t.Params {
				if strings.TrimSpace(p) == "" {
					return "", nil, refuse("template %q parameter {{%d}} is empty, which WhatsApp refuses", t.Name, i+1)
				}
				params[i] = parameter{Type: "text", Text: p}
			}
			r.Template.Components = []component{{Type: "body", Parameters: params}}
		}
	} else {
		if strings.TrimSpace(m.Text) == "" {
			return "", nil, refuse("message has neither text nor a template")
		}
		if n := utf8.RuneCountInString(m.Text); n > MaxTextChars {
			return "", nil, refuse("text has %d characters, more than WhatsApp's limit of %d", n, MaxTextChars)
		}
		r.Type = "text"
		r.Text = &textObject{Body: m.Text}
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(r); err != nil {
		return "", nil, refuse("encoding the message: %v", err)
	}
	return phoneID, bytes.TrimRight(buf.Bytes(), "\n"), nil
}

// recipient turns an E.164 number into the digits the Cloud API takes.
func recipient(to string) (string, bool) {
	if !strings.HasPrefix(to, "+") {
		return "", false
	}
	d := to[1:]
	if len(d) < 2 || len(d) > 15 || d[0] == '0' || !allDigits(d) {
		return "", false
	}
	return d, true
}

func allDigits(s string) bool {
	for _, c := range s {
		if c < '0' || c > '9' {
			return false
		}
	}
	return s != ""
}
