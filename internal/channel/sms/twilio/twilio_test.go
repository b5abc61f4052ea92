package twilio

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/alumoutreach/alumoutreach/internal/channel"
)

func TestNewValidatesConfig(t *testing.T) {
	t.Parallel()
	valid := Config{AccountSID: testAccountSID, AuthToken: testAuthToken, From: testFrom}
	cases := []struct {
		name   string
		change func(*Config)
		want   []string // substrings of the error; none means valid
	}{
		{"valid E.164 sender", nil, nil},
		{"valid messaging service", func(c *Config) { c.From = testServiceSID }, nil},
		{"valid short code", func(c *Config) { c.From = "894546" }, nil},
		{"valid alphanumeric sender", func(c *Config) { c.From = "Alumni Assn" }, nil},
		{"valid local base URL", func(c *Config) { c.BaseURL = "http://127.0.0.1:8080/" }, nil},
		{"everything missing", func(c *Config) { *c = Config{} }, []string{"AccountSID is empty", "AuthToken is empty", "From is empty"}},
		{"API key instead of account", func(c *Config) { c.AccountSID = "SK0123456789abcdef0123456789abcdef" }, []string{"is not an Account SID"}},
		{"short account SID", func(c *Config) { c.AccountSID = "AC123" }, []string{"AC followed by 32 hex"}},
		{"token with newline", func(c *Config) { c.AuthToken = testAuthToken + "\n" }, []string{"white space"}},
		{"sender without plus", func(c *Config) { c.From = "15017122661" }, []string{"From:", "neither an E.164 number"}},
		{"broken messaging service", func(c *Config) { c.From = "MG123" }, []string{"looks like a Messaging Service SID"}},
		{"alphanumeric sender too long", func(c *Config) { c.From = "AlumniAssociation" }, []string{"From:"}},
		{"base URL without scheme", func(c *Config) { c.BaseURL = "api.twilio.com" }, []string{"BaseURL"}},
		{"negative timeout", func(c *Config) { c.Timeout = -time.Second }, []string{"Timeout -1s is negative"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			cfg := valid
			if c.change != nil {
				c.change(&cfg)
			}
			s, err := New(cfg)
			if len(c.want) == 0 {
				if err != nil || s == nil {
					t.Fatalf("New = %v, %v; want a sender", s, err)
				}
				return
			}
			if err == nil {
				t.Fatalf("New accepted %+v", cfg)
			}
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not say %q", err, w)
				}
			}
			if !strings.HasPrefix(err.Error(), "twilio: invalid config: ") {
				t.Errorf("error %q does not name the package", err)
			}
		})
	}
}

func TestSendRequest(t *testing.T) {
	t.Parallel()
	msg := channel.Message{
		ID: "0190a0c4-0000-7000-8000-000000000001", To: "+15558675310",
		Text:           "Reunion on 12 June & drinks at 7 — RSVP?",
		StatusCallback: "https://alum.example.org/webhooks/twilio/status?tenant=t1",
	}
	cases := []struct {
		name   string
		change func(*Config)
		msg    func(*channel.Message)
		want   url.Values
	}{
		{
			name: "number sender with callback",
			want: url.Values{"To": {"+15558675310"}, "From": {testFrom}, "Body": {msg.Text}, "StatusCallback": {msg.StatusCallback}},
		},
		{
			name:   "messaging service sender",
			change: func(c *Config) { c.From = testServiceSID },
			want:   url.Values{"To": {"+15558675310"}, "MessagingServiceSid": {testServiceSID}, "Body": {msg.Text}, "StatusCallback": {msg.StatusCallback}},
		},
		{
			name: "message's own sender, no callback",
			msg:  func(m *channel.Message) { m.From = "AlumniOffc"; m.StatusCallback = "" },
			want: url.Values{"To": {"+15558675310"}, "From": {"AlumniOffc"}, "Body": {msg.Text}},
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			f := newFakeTwilio(t, nil)
			s := newSender(t, f, c.change)
			m := msg
			if c.msg != nil {
				c.msg(&m)
			}
			rcpt, err := s.Send(context.Background(), m)
			if err != nil {
				t.Fatalf("Send: %v", err)
			}
			if want := (channel.Receipt{Provider: "twilio", ExternalID: testMessageSID}); rcpt != want {
				t.Errorf("receipt = %+v, want %+v", rcpt, want)
			}
			reqs := f.Requests()
			if len(reqs) != 1 {
				t.Fatalf("%d requests, want 1", len(reqs))
			}
			r := reqs[0]
			want := request{
				Method: http.MethodPost, Path: "/2010-04-01/Accounts/" + testAccountSID + "/Messages.json",
				ContentType: "application/x-www-form-urlencoded", Accept: "application/json",
				User: testAccountSID, Pass: testAuthToken, BasicAuth: true, Form: c.want,
			}
			if !reflect.DeepEqual(r, want) {
				t.Errorf("request\n got %+v\nwant %+v", r, want)
			}
		})
	}
}

func TestSendFailures(t *testing.T) {
	t.Parallel()
	httpDate := time.Now().Add(90 * time.Second).UTC().Format(http.TimeFormat)
	cases := []struct {
		name      string
		respond   http.HandlerFunc
		permanent bool
		config    bool
		code      string
		message   string
		retry     time.Duration // minimum expected RetryAfter
		retryMax  time.Duration // maximum; 0 means equal to retry
	}{
		{"invalid To", twilioError(400, 21211, "The 'To' number +1555 is not a valid phone number."), true, false, "21211", "not a valid phone number", 0, 0},
		{"unsubscribed recipient", twilioError(400, 21610, "Attempt to send to unsubscribed recipient"), true, false, "21610", "unsubscribed", 0, 0},
		{"not a mobile number", twilioError(400, 21614, "'To' number is not a valid mobile number"), true, false, "21614", "mobile", 0, 0},
		{"region not enabled", twilioError(400, 21408, "Permission to send an SMS has not been enabled for the region indicated by the 'To' number: +4930123456."), true, false, "21408", "region", 0, 0},
		{"unknown 400 code", twilioError(400, 21999, "Something about this request"), true, false, "21999", "Something", 0, 0},
		{"bad credentials", twilioError(401, 20003, "Authenticate", "WWW-Authenticate", `Basic realm="Twilio API"`), false, true, "20003", "Authenticate", 0, 0},
		{"forbidden without body", raw(403, "text/plain", "Forbidden"), false, true, "", "HTTP 403 Forbidden", 0, 0},
		{"account not found", twilioError(404, 20404, "The requested resource /2010-04-01/Accounts/ACx/Messages.json was not found"), false, true, "20404", "not found", 0, 0},
		{"sender not the account's", twilioError(400, 21606, "The From phone number +15005550001 is not a valid, SMS-capable inbound phone number or short code for your account."), false, true, "21606", "SMS-capable", 0, 0},
		{"too many requests, seconds", twilioError(429, 20429, "Too Many Requests", "Retry-After", "7"), false, false, "20429", "Too Many", 7 * time.Second, 0},
		{"queue full", twilioError(400, 21611, "This 'From' number has exceeded the maximum number of queued messages"), false, false, "21611", "queued", 0, 0},
		{"unavailable, HTTP date", twilioError(503, 20503, "Service Unavailable", "Retry-After", httpDate), false, false, "20503", "Unavailable", 80 * time.Second, 91 * time.Second},
		{"gateway HTML", raw(502, "text/html", "<html><body>Bad Gateway</body></html>"), false, false, "", "HTTP 502 Bad Gateway", 0, 0},
		{"internal error JSON", twilioError(500, 20500, "Internal Server Error"), false, false, "20500", "Internal", 0, 0},
		{"error body without code", raw(400, "application/json", `{"message": "Bad request", "status": 400}`), true, false, "", "Bad request (HTTP 400)", 0, 0},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			f := newFakeTwilio(t, c.respond)
			_, err := newSender(t, f, nil).Send(context.Background(), channel.Message{To: "+15558675310", Text: "hello"})
			ce := asChannelError(t, err)
			if ce.Provider != "twilio" || ce.Code != c.code || ce.Permanent != c.permanent {
				t.Errorf("error = %+v; want code %q permanent %v", ce, c.code, c.permanent)
			}
			if channel.IsPermanent(err) != c.permanent {
				t.Errorf("IsPermanent = %v", !c.permanent)
			}
			if got := errors.Is(err, ErrConfiguration); got != c.config {
				t.Errorf("errors.Is(err, ErrConfiguration) = %v, want %v", got, c.config)
			}
			if !strings.Contains(ce.Message, c.message) {
				t.Errorf("message %q does not contain %q", ce.Message, c.message)
			}
			maxRetry := c.retryMax
			if maxRetry == 0 {
				maxRetry = c.retry
			}
			if got := channel.RetryAfter(err); got < c.retry || got > maxRetry {
				t.Errorf("RetryAfter = %v, want %v..%v", got, c.retry, maxRetry)
			}
			if n := len(f.Requests()); n != 1 {
				t.Errorf("%d requests, want 1", n)
			}
		})
	}
}

func TestSendRefusesBeforeSending(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name   string
		msg    channel.Message
		want   string
		config bool // a setting's failure (transient) rather than the message's
	}{
		{"body over 1600 characters", channel.Message{To: "+15558675310", Text: strings.Repeat("é", 1601)}, "1601 characters, more than Twilio's limit of 1600", false},
		{"empty body", channel.Message{To: "+15558675310", Text: "  \n"}, "body is empty", false},
		{"recipient not E.164", channel.Message{To: "555-867-5310", Text: "hi"}, "not an E.164 phone number", false},
		{"recipient empty", channel.Message{Text: "hi"}, "not an E.164 phone number", false},
		{"bad sender on the message", channel.Message{To: "+15558675310", From: "alumni@example.org", Text: "hi"}, "sender:", true},
		{"bad status callback", channel.Message{To: "+15558675310", Text: "hi", StatusCallback: "/relative"}, "status callback", true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			f := newFakeTwilio(t, nil)
			_, err := newSender(t, f, nil).Send(context.Background(), c.msg)
			ce := asChannelError(t, err)
			if ce.Permanent == c.config || errors.Is(err, ErrConfiguration) != c.config || !strings.Contains(ce.Message, c.want) {
				t.Errorf("error = %v; want one saying %q, permanent %v, configuration %v", err, c.want, !c.config, c.config)
			}
			if n := len(f.Requests()); n != 0 {
				t.Errorf("%d requests reached Twilio, want none", n)
			}
		})
	}

	t.Run("exactly 1600 characters is sent", func(t *testing.T) {
		t.Parallel()
		f := newFakeTwilio(t, nil)
		body := strings.Repeat("é", MaxBodyChars)
		if _, err := newSender(t, f, nil).Send(context.Background(), channel.Message{To: "+15558675310", Text: body}); err != nil {
			t.Fatalf("Send: %v", err)
		}
		if got := f.Requests()[0].Form.Get("Body"); got != body {
			t.Errorf("Twilio got a body of %d bytes, want the %d sent", len(got), len(body))
		}
	})
}

func TestSendAcceptedButUnreadable(t *testing.T) {
	t.Parallel()
	for name, respond := range map[string]http.HandlerFunc{
		"no sid":   raw(201, "application/json", `{"status": "queued"}`),
		"not JSON": raw(201, "text/html", "<html>ok</html>"),
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			f := newFakeTwilio(t, respond)
			_, err := newSender(t, f, nil).Send(context.Background(), channel.Message{To: "+15558675310", Text: "hi"})
			ce := asChannelError(t, err)
			if !ce.Permanent || !strings.Contains(ce.Message, "not retrying") {
				t.Errorf("error = %v; want a permanent one that will not send twice", err)
			}
		})
	}
}

func TestSendTimeout(t *testing.T) {
	t.Parallel()
	f := newFakeTwilio(t, func(w http.ResponseWriter, r *http.Request) {
		<-r.Context().Done() // never answers in time
	})
	s := newSender(t, f, func(c *Config) { c.Timeout = 50 * time.Millisecond })
	_, err := s.Send(context.Background(), channel.Message{To: "+15558675310", Text: "hi"})
	ce := asChannelError(t, err)
	if ce.Permanent || !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("error = %v; want a transient deadline error", err)
	}
}

func TestSendContextCancelled(t *testing.T) {
	t.Parallel()
	arrived := make(chan struct{})
	f := newFakeTwilio(t, func(w http.ResponseWriter, r *http.Request) {
		close(arrived)
		<-r.Context().Done()
	})
	s := newSender(t, f, nil)
	ctx, cancel := context.WithCancel(context.Background())
	go func() { <-arrived; cancel() }()
	_, err := s.Send(ctx, channel.Message{To: "+15558675310", Text: "hi"})
	ce := asChannelError(t, err)
	if ce.Permanent || !errors.Is(err, context.Canceled) {
		t.Errorf("error = %v; want a transient cancellation", err)
	}

	t.Run("already cancelled", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		_, err := s.Send(ctx, channel.Message{To: "+15558675310", Text: "hi"})
		if !errors.Is(err, context.Canceled) || channel.IsPermanent(err) {
			t.Errorf("error = %v; want a transient cancellation", err)
		}
	})
}

func TestSendNetworkFailure(t *testing.T) {
	t.Parallel()
	f := newFakeTwilio(t, nil)
	s := newSender(t, f, nil)
	f.Close() // nothing listens any more
	_, err := s.Send(context.Background(), channel.Message{To: "+15558675310", Text: "hi"})
	ce := asChannelError(t, err)
	if ce.Permanent || ce.Err == nil {
		t.Errorf("error = %+v; want a transient one wrapping the network error", ce)
	}
}

func TestRetryAfter(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 11, 27, 9, 0, 0, 0, time.UTC)
	cases := []struct {
		header string
		want   time.Duration
	}{
		{"", 0},
		{"0", 0},
		{"12", 12 * time.Second},
		{" 3 ", 3 * time.Second},
		{"-5", 0},
		{"1.5", 0},
		{"soon", 0},
		{"99999999999999999999", maxRetryAfter},
		{"Fri, 27 Nov 2026 09:01:30 GMT", 90 * time.Second},
		{"Fri, 27 Nov 2026 08:59:00 GMT", 0},
		{"Sat, 27 Nov 2027 09:00:00 GMT", maxRetryAfter},
	}
	for _, c := range cases {
		if got := retryAfter(c.header, now); got != c.want {
			t.Errorf("retryAfter(%q) = %v, want %v", c.header, got, c.want)
		}
	}
}

// asChannelError fails the test unless err is a *channel.Error.
func asChannelError(t *testing.T, err error) *channel.Error {
	t.Helper()
	var ce *channel.Error
	if !errors.As(err, &ce) {
		t.Fatalf("error %v (%T) is not a *channel.Error", err, err)
	}
	return ce
}
