package twilio

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/alumoutreach/alumoutreach/internal/channel"
)

// Provider is the name this adapter puts in receipts and errors.
const Provider = "twilio"

const (
	// DefaultBaseURL is Twilio's REST API.
	DefaultBaseURL = "https://api.twilio.com"
	// DefaultTimeout bounds one Send when Config.Timeout is zero.
	DefaultTimeout = 15 * time.Second
	// MaxBodyChars is Twilio's limit on a message body, in characters.
	MaxBodyChars = 1600

	apiVersion = "2010-04-01"
	// maxResponseBytes caps how much of a response is read: a message
	// resource or an error is a few hundred bytes.
	maxResponseBytes = 1 << 20
)

// Config says which Twilio account sends and from where.
type Config struct {
	// AccountSID ("AC" + 32 hex characters) and AuthToken authenticate
	// every request (HTTP Basic auth), and the token signs Twilio's
	// webhooks (see VerifySignature).
	AccountSID string
	AuthToken  string
	// From is the default sender: an E.164 number ("+15017122661"), a short
	// code ("12345"), an alphanumeric sender ID ("AlumniOffice", where the
	// destination country allows one), or a Messaging Service SID ("MG" +
	// 32 hex), which is sent as MessagingServiceSid and lets Twilio pick
	// the number. A Message's own From, when set, takes its place.
	From string
	// BaseURL is the API's address; empty means DefaultBaseURL. Tests
	// point it at a local server.
	BaseURL string
	// HTTPClient sends the requests; nil means a client of this package's
	// own (never http.DefaultClient, which others may change).
	HTTPClient *http.Client
	// Timeout bounds each Send, on top of the caller's context; zero
	// means DefaultTimeout.
	Timeout time.Duration
}

// Sender sends SMS through Twilio's Programmable Messaging API. It is safe
// for concurrent use.
type Sender struct {
	cfg      Config
	endpoint string
	client   *http.Client
	timeout  time.Duration
}

// New checks cfg and returns a Sender. Every problem found is reported at
// once, each with what to set.
func New(cfg Config) (*Sender, error) {
	var problems []error
	bad := func(format string, args ...any) { problems = append(problems, fmt.Errorf(format, args...)) }

	cfg.AccountSID = strings.TrimSpace(cfg.AccountSID)
	cfg.From = strings.TrimSpace(cfg.From)
	switch {
	case cfg.AccountSID == "":
		bad("AccountSID is empty: set it to the Account SID shown in the Twilio Console (AC followed by 32 hex characters)")
	case !isSID(cfg.AccountSID, "AC"):
		bad("AccountSID %q is not an Account SID: it must be AC followed by 32 hex characters (an API key SID, SK..., is not accepted here)", cfg.AccountSID)
	}
	if cfg.AuthToken == "" {
		bad("AuthToken is empty: set it to the account's Auth Token from the Twilio Console")
	} else if strings.TrimSpace(cfg.AuthToken) != cfg.AuthToken {
		bad("AuthToken has leading or trailing white space: copy the token without it")
	}
	if cfg.From == "" {
		bad("From is empty: set it to a Twilio number in E.164 form (+15017122661), a short code, an alphanumeric sender ID, or a Messaging Service SID (MG...)")
	} else if _, _, err := senderParam(cfg.From); err != nil {
		bad("From: %v", err)
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
		return nil, fmt.Errorf("twilio: invalid config: %w", errors.Join(problems...))
	}

	s := &Sender{cfg: cfg, client: cfg.HTTPClient, timeout: cfg.Timeout}
	if s.client == nil {
		s.client = &http.Client{}
	}
	if s.timeout == 0 {
		s.timeout = DefaultTimeout
	}
	s.endpoint = strings.TrimRight(base, "/") + "/" + apiVersion + "/Accounts/" + url.PathEscape(cfg.AccountSID) + "/Messages.json"
	return s, nil
}

// Send hands m to Twilio: m.To gets m.Text from m.From (or Config.From),
// and Twilio reports delivery to m.StatusCallback when it is set. The
// receipt's ExternalID is the Message SID that the status callbacks carry.
//
// Errors are *channel.Error. A message Twilio can never accept as it is
// (empty or over-long body, an invalid, unsubscribed or landline
// recipient) is Permanent, and is refused here without a request where
// that can be told in advance. Throttling, Twilio's own failures and
// network failures are transient, with the wait Twilio asked for in
// RetryAfter. A refused account or configuration (credentials, sender,
// status callback URL) is transient too and wraps ErrConfiguration.
func (s *Sender) Send(ctx context.Context, m channel.Message) (channel.Receipt, error) {
	form, err := s.form(m)
	if err != nil {
		return channel.Receipt{}, err
	}
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()

	header := http.Header{"Content-Type": {"application/x-www-form-urlencoded"}, "Accept": {"application/json"},
		"Authorization": {"Basic " + basicAuth(s.cfg.AccountSID, s.cfg.AuthToken)}}
	ans, err := channel.Post(ctx, s.client, Provider, s.endpoint, strings.NewReader(form.Encode()), header, maxResponseBytes)
	if err != nil {
		return channel.Receipt{}, err
	}
	if ans.StatusCode >= 200 && ans.StatusCode < 300 {
		return accepted(ans.StatusCode, ans.Body, ans.ReadErr)
	}
	return channel.Receipt{}, refusal(ans.Response, ans.Body)
}

func basicAuth(user, pass string) string {
	return base64.StdEncoding.EncodeToString([]byte(user + ":" + pass))
}

// accepted reads the Message SID out of a 2xx answer. Twilio has taken the
// message by then, so an answer without a SID is a permanent failure: a
// retry would send the text a second time.
func accepted(status int, body []byte, readErr error) (channel.Receipt, error) {
	var msg struct {
		SID string `json:"sid"`
	}
	if readErr == nil {
		readErr = json.Unmarshal(body, &msg)
	}
	if readErr == nil && msg.SID == "" {
		readErr = errors.New("no sid in the response")
	}
	if readErr != nil {
		return channel.Receipt{}, &channel.Error{
			Provider:  Provider,
			Message:   fmt.Sprintf("Twilio accepted the message (HTTP %d) but its answer could not be read; not retrying, which could send it twice", status),
			Permanent: true,
			Err:       readErr,
		}
	}
	return channel.Receipt{Provider: Provider, ExternalID: msg.SID}, nil
}

// form builds the request body, refusing what Twilio would refuse.
func (s *Sender) form(m channel.Message) (url.Values, error) {
	refuse := func(format string, args ...any) error {
		return &channel.Error{Provider: Provider, Message: fmt.Sprintf(format, args...), Permanent: true}
	}
	// The sender and the callback URL come from settings, not from the
	// message: a bad one is a configuration failure.
	misconfigured := func(format string, args ...any) error {
		return &channel.Error{Provider: Provider, Message: fmt.Sprintf(format, args...), Err: ErrConfiguration}
	}
	if !isE164(m.To) {
		return nil, refuse("recipient %q is not an E.164 phone number such as +15558675310", m.To)
	}
	if strings.TrimSpace(m.Text) == "" {
		return nil, refuse("message body is empty")
	}
	if n := utf8.RuneCountInString(m.Text); n > MaxBodyChars {
		return nil, refuse("message body has %d characters, more than Twilio's limit of %d", n, MaxBodyChars)
	}
	from := s.cfg.From
	if f := strings.TrimSpace(m.From); f != "" {
		from = f
	}
	key, value, err := senderParam(from)
	if err != nil {
		return nil, misconfigured("sender: %v", err)
	}
	form := url.Values{}
	form.Set("To", m.To)
	form.Set(key, value)
	form.Set("Body", m.Text)
	if m.StatusCallback != "" {
		u, err := url.Parse(m.StatusCallback)
		if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			return nil, misconfigured("status callback %q is not an http(s) URL", m.StatusCallback)
		}
		form.Set("StatusCallback", m.StatusCallback)
	}
	return form, nil
}

// senderParam says which request parameter carries a sender: a Messaging
// Service SID goes in MessagingServiceSid, anything else in From.
func senderParam(from string) (key, value string, err error) {
	switch {
	case strings.HasPrefix(from, "MG"):
		if !isSID(from, "MG") {
			return "", "", fmt.Errorf("%q looks like a Messaging Service SID but is not MG followed by 32 hex characters", from)
		}
		return "MessagingServiceSid", from, nil
	case isE164(from), isShortCode(from), isAlphanumericSender(from):
		return "From", from, nil
	}
	return "", "", fmt.Errorf("%q is neither an E.164 number (+15017122661), a short code (3 to 8 digits), an alphanumeric sender ID (1 to 11 letters, digits or spaces, at least one letter) nor a Messaging Service SID (MG...)", from)
}

// isSID reports whether s is prefix followed by 32 hex digits, the form of
// every Twilio SID.
func isSID(s, prefix string) bool {
	if len(s) != 34 || !strings.HasPrefix(s, prefix) {
		return false
	}
	for _, c := range s[2:] {
		if !isHex(c) {
			return false
		}
	}
	return true
}

func isHex(c rune) bool {
	return ('0' <= c && c <= '9') || ('a' <= c && c <= 'f') || ('A' <= c && c <= 'F')
}

// isE164 reports whether s is "+" and 2 to 15 digits, the first not 0.
func isE164(s string) bool {
	if len(s) < 3 || len(s) > 16 || s[0] != '+' || s[1] == '0' {
		return false
	}
	return allDigits(s[1:])
}

func isShortCode(s string) bool { return len(s) >= 3 && len(s) <= 8 && allDigits(s) }

func isAlphanumericSender(s string) bool {
	if len(s) == 0 || len(s) > 11 || s[0] == ' ' || s[len(s)-1] == ' ' {
		return false
	}
	letter := false
	for _, c := range s {
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z':
			letter = true
		case '0' <= c && c <= '9', c == ' ':
		default:
			return false
		}
	}
	return letter
}

func allDigits(s string) bool {
	for _, c := range s {
		if c < '0' || c > '9' {
			return false
		}
	}
	return s != ""
}
