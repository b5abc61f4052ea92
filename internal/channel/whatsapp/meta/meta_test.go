package meta

import (
	"context"
	"errors"
	"net/http"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/alumoutreach/alumoutreach/internal/channel"
)

func TestNewValidatesConfig(t *testing.T) {
	t.Parallel()
	valid := Config{PhoneNumberID: testPhoneNumberID, AccessToken: testToken}
	cases := []struct {
		name   string
		change func(*Config)
		want   []string
	}{
		{"valid", nil, nil},
		{"valid with version", func(c *Config) { c.APIVersion = "v26.0" }, nil},
		{"everything missing", func(c *Config) { *c = Config{} }, []string{"PhoneNumberID is empty", "AccessToken is empty"}},
		{"phone number instead of its ID", func(c *Config) { c.PhoneNumberID = "+15550783881" }, []string{"is not a phone number ID"}},
		{"token with Bearer prefix", func(c *Config) { c.AccessToken = "Bearer " + testToken }, []string{"white space"}},
		{"version without v", func(c *Config) { c.APIVersion = "25.0" }, []string{"APIVersion \"25.0\""}},
		{"bad base URL", func(c *Config) { c.BaseURL = "graph.facebook.com" }, []string{"BaseURL"}},
		{"negative timeout", func(c *Config) { c.Timeout = -1 }, []string{"negative"}},
		{"valid with business account", func(c *Config) { c.BusinessAccountID = " " + testBusinessID + " " }, nil},
		{"business account not an ID", func(c *Config) { c.BusinessAccountID = "WABA-1" }, []string{"BusinessAccountID \"WABA-1\" is not a WhatsApp Business Account ID"}},
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
					t.Fatalf("New = %v, %v", s, err)
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
			if !strings.HasPrefix(err.Error(), "meta: invalid config: ") {
				t.Errorf("error %q does not name the package", err)
			}
		})
	}
}

func TestSendRequest(t *testing.T) {
	t.Parallel()
	const id = "0193a9c4-7b1e-7c2d-9e8f-0a1b2c3d4e5f"
	cases := []struct {
		name    string
		change  func(*Config)
		msg     channel.Message
		path    string
		payload map[string]any
	}{
		{
			name: "text",
			msg:  channel.Message{ID: id, To: "+16505551234", Text: "Hi Sheena — yes, <vegetarian> & vegan options!"},
			path: "/" + DefaultAPIVersion + "/" + testPhoneNumberID + "/messages",
			payload: map[string]any{
				"messaging_product": "whatsapp", "recipient_type": "individual", "to": "16505551234",
				"type": "text", "text": map[string]any{"body": "Hi Sheena — yes, <vegetarian> & vegan options!"},
				"biz_opaque_callback_data": id,
			},
		},
		{
			name:   "template with parameters, own version and sender",
			change: func(c *Config) { c.APIVersion = "v26.0" },
			msg: channel.Message{ID: id, To: "+919810218674", From: "114896151713920", Text: "ignored",
				Template: &channel.Template{Name: "reunion_invitation", Language: "en_US", Params: []string{"Krish", "12 June"}}},
			path: "/v26.0/114896151713920/messages",
			payload: map[string]any{
				"messaging_product": "whatsapp", "recipient_type": "individual", "to": "919810218674",
				"type": "template", "biz_opaque_callback_data": id,
				"template": map[string]any{
					"name": "reunion_invitation", "language": map[string]any{"code": "en_US"},
					"components": []any{map[string]any{"type": "body", "parameters": []any{
						map[string]any{"type": "text", "text": "Krish"},
						map[string]any{"type": "text", "text": "12 June"},
					}}},
				},
			},
		},
		{
			name: "template without parameters, no message id",
			msg:  channel.Message{To: "+16505551234", Template: &channel.Template{Name: "hello_world", Language: "en_US"}},
			path: "/" + DefaultAPIVersion + "/" + testPhoneNumberID + "/messages",
			payload: map[string]any{
				"messaging_product": "whatsapp", "recipient_type": "individual", "to": "16505551234",
				"type": "template", "template": map[string]any{"name": "hello_world", "language": map[string]any{"code": "en_US"}},
			},
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			f := newFakeGraph(t, nil)
			rcpt, err := newSender(t, f, c.change).Send(context.Background(), c.msg)
			if err != nil {
				t.Fatalf("Send: %v", err)
			}
			if want := (channel.Receipt{Provider: "meta", ExternalID: testWamid}); rcpt != want {
				t.Errorf("receipt = %+v, want %+v", rcpt, want)
			}
			reqs := f.Requests()
			if len(reqs) != 1 {
				t.Fatalf("%d requests, want 1", len(reqs))
			}
			want := request{Method: http.MethodPost, Path: c.path, Authorization: "Bearer " + testToken, ContentType: "application/json", Body: c.payload}
			if !reflect.DeepEqual(reqs[0], want) {
				t.Errorf("request\n got %#v\nwant %#v", reqs[0], want)
			}
		})
	}
}

func TestSendFailures(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name      string
		respond   http.HandlerFunc
		permanent bool
		config    bool
		code      string
		message   string
		retry     time.Duration
	}{
		{"re-engagement", graphError(400, 131047, 0, "(#131047) Re-engagement message", "Message failed to send because more than 24 hours have passed since the customer last replied to this number."), true, false, "131047", "Re-engagement message: Message failed to send because more than 24 hours", 0},
		{"undeliverable", graphError(400, 131026, 0, "(#131026) Message Undeliverable", ""), true, false, "131026", "Undeliverable (fbtrace_id AbCdEfGh123)", 0},
		{"unsupported type", graphError(400, 131051, 0, "(#131051) Unsupported message type", ""), true, false, "131051", "Unsupported", 0},
		{"template params", graphError(400, 132000, 0, "(#132000) Number of parameters does not match the expected number of params", "body: number of localizable_params (1) does not match the expected number of params (2)"), true, false, "132000", "localizable_params", 0},
		{"template missing", graphError(404, 132001, 0, "(#132001) Template name does not exist in the translation", "template name (reunion_invitation) does not exist in en_US"), true, false, "132001", "does not exist", 0},
		{"healthy ecosystem", graphError(400, 131049, 0, "(#131049) This message was not delivered to maintain healthy ecosystem engagement.", ""), true, false, "131049", "ecosystem", 0},
		{"invalid parameter", graphError(400, 100, 0, "(#100) Invalid parameter", "Parameter 'to' is invalid"), true, false, "100", "Invalid parameter", 0},
		{"unknown 400 code", graphError(400, 139999, 0, "(#139999) Something new", ""), true, false, "139999", "Something new", 0},
		{"throughput", graphError(400, 130429, 2494055, "(#130429) Rate limit hit", "Message failed to send because there were too many messages sent from this phone number in a short period of time"), false, false, "130429", "Rate limit hit", 0},
		{"spam rate limit", graphError(400, 131048, 0, "(#131048) Spam rate limit hit", ""), false, false, "131048", "Spam", 0},
		{"pair rate limit", graphError(400, 131056, 0, "(#131056) (Business Account, Consumer Account) pair rate limit hit", ""), false, false, "131056", "pair rate limit", 0},
		{"app rate limit with Retry-After", graphError(429, 4, 0, "(#4) Application request limit reached", "", "Retry-After", "30"), false, false, "4", "request limit", 30 * time.Second},
		{"unknown error, transient", graphError(500, 1, 0, "An unknown error occurred", ""), false, false, "1", "unknown error", 0},
		{"service unavailable plain", raw(503, "text/html; charset=utf-8", "<html>Service Unavailable</html>"), false, false, "", "HTTP 503 Service Unavailable", 0},
		{"expired token", graphError(401, 190, 463, "Error validating access token: Session has expired on Friday, 27-Nov-26 08:00:00 PST.", "", "WWW-Authenticate", `OAuth "Facebook Platform" "invalid_token" "Error validating access token"`), false, true, "190", "Session has expired", 0},
		{"permission denied", graphError(403, 10, 0, "(#10) Application does not have permission for this action", ""), false, true, "10", "permission", 0},
		{"API permission range", graphError(403, 200, 0, "(#200) Requires whatsapp_business_messaging permission", ""), false, true, "200", "Requires", 0},
		{"unknown phone number ID", graphError(400, 100, 33, "Unsupported post request. Object with ID '106540352242922' does not exist, cannot be loaded due to missing permissions, or does not support this operation.", ""), false, true, "100", "does not exist", 0},
		{"account locked", graphError(400, 131031, 0, "(#131031) Business Account locked", ""), false, true, "131031", "locked", 0},
		{"401 without body", raw(401, "text/plain", ""), false, true, "", "HTTP 401 Unauthorized", 0},
		{"error body without code", raw(400, "application/json", `{"error":{"message":"Bad request"}}`), true, false, "", "Bad request (HTTP 400)", 0},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			f := newFakeGraph(t, c.respond)
			_, err := newSender(t, f, nil).Send(context.Background(), channel.Message{To: "+16505551234", Text: "hi"})
			ce := asChannelError(t, err)
			if ce.Provider != "meta" || ce.Code != c.code || ce.Permanent != c.permanent {
				t.Errorf("error = %+v; want code %q permanent %v", ce, c.code, c.permanent)
			}
			if got := errors.Is(err, ErrConfiguration); got != c.config {
				t.Errorf("errors.Is(err, ErrConfiguration) = %v, want %v", got, c.config)
			}
			if !strings.Contains(ce.Message, c.message) {
				t.Errorf("message %q does not contain %q", ce.Message, c.message)
			}
			if got := channel.RetryAfter(err); got != c.retry {
				t.Errorf("RetryAfter = %v, want %v", got, c.retry)
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
		{"text too long", channel.Message{To: "+16505551234", Text: strings.Repeat("ü", MaxTextChars+1)}, "4097 characters", false},
		{"nothing to send", channel.Message{To: "+16505551234", Text: " "}, "neither text nor a template", false},
		{"recipient without plus", channel.Message{To: "16505551234", Text: "hi"}, "not an E.164", false},
		{"recipient with spaces", channel.Message{To: "+1 650 555 1234", Text: "hi"}, "not an E.164", false},
		{"recipient too long", channel.Message{To: "+1234567890123456", Text: "hi"}, "not an E.164", false},
		{"sender not an ID", channel.Message{To: "+16505551234", From: "+15550783881", Text: "hi"}, "not a WhatsApp phone number ID", true},
		{"template without name", channel.Message{To: "+16505551234", Template: &channel.Template{Language: "en_US"}}, "no name", false},
		{"template without language", channel.Message{To: "+16505551234", Template: &channel.Template{Name: "x"}}, "no language code", false},
		{"template empty parameter", channel.Message{To: "+16505551234", Template: &channel.Template{Name: "x", Language: "en", Params: []string{"a", ""}}}, "parameter {{2}} is empty", false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			f := newFakeGraph(t, nil)
			_, err := newSender(t, f, nil).Send(context.Background(), c.msg)
			ce := asChannelError(t, err)
			if ce.Permanent == c.config || errors.Is(err, ErrConfiguration) != c.config || !strings.Contains(ce.Message, c.want) {
				t.Errorf("error = %v; want one saying %q, permanent %v, configuration %v", err, c.want, !c.config, c.config)
			}
			if n := len(f.Requests()); n != 0 {
				t.Errorf("%d requests reached Meta, want none", n)
			}
		})
	}

	t.Run("4096 characters and a long id are sent, the id left out", func(t *testing.T) {
		t.Parallel()
		f := newFakeGraph(t, nil)
		text := strings.Repeat("ü", MaxTextChars)
		msg := channel.Message{ID: strings.Repeat("x", MaxCallbackData+1), To: "+16505551234", Text: text}
		if _, err := newSender(t, f, nil).Send(context.Background(), msg); err != nil {
			t.Fatalf("Send: %v", err)
		}
		body := f.Requests()[0].Body
		if _, ok := body["biz_opaque_callback_data"]; ok {
			t.Error("an over-long id was sent as biz_opaque_callback_data")
		}
		if got := body["text"].(map[string]any)["body"]; got != text {
			t.Error("the text did not arrive whole")
		}
	})
}

func TestSendAcceptedButUnreadable(t *testing.T) {
	t.Parallel()
	for name, respond := range map[string]http.HandlerFunc{
		"no messages": raw(200, "application/json", `{"messaging_product":"whatsapp","contacts":[{"input":"16505551234","wa_id":"16505551234"}]}`),
		"empty id":    raw(200, "application/json", `{"messages":[{"id":""}]}`),
		"not JSON":    raw(200, "text/html", "<html>ok</html>"),
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			f := newFakeGraph(t, respond)
			_, err := newSender(t, f, nil).Send(context.Background(), channel.Message{To: "+16505551234", Text: "hi"})
			ce := asChannelError(t, err)
			if !ce.Permanent || !strings.Contains(ce.Message, "not retrying") {
				t.Errorf("error = %v; want a permanent one that will not send twice", err)
			}
		})
	}
}

func TestSendTimeout(t *testing.T) {
	t.Parallel()
	f := newFakeGraph(t, func(w http.ResponseWriter, r *http.Request) { <-r.Context().Done() })
	s := newSender(t, f, func(c *Config) { c.Timeout = 50 * time.Millisecond })
	_, err := s.Send(context.Background(), channel.Message{To: "+16505551234", Text: "hi"})
	if ce := asChannelError(t, err); ce.Permanent || !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("error = %v; want a transient deadline error", err)
	}
}

func TestSendContextCancelled(t *testing.T) {
	t.Parallel()
	arrived := make(chan struct{})
	f := newFakeGraph(t, func(w http.ResponseWriter, r *http.Request) {
		close(arrived)
		<-r.Context().Done()
	})
	s := newSender(t, f, nil)
	ctx, cancel := context.WithCancel(context.Background())
	go func() { <-arrived; cancel() }()
	_, err := s.Send(ctx, channel.Message{To: "+16505551234", Text: "hi"})
	if ce := asChannelError(t, err); ce.Permanent || !errors.Is(err, context.Canceled) {
		t.Errorf("error = %v; want a transient cancellation", err)
	}
}

func TestSendNetworkFailure(t *testing.T) {
	t.Parallel()
	f := newFakeGraph(t, nil)
	s := newSender(t, f, nil)
	f.Close()
	_, err := s.Send(context.Background(), channel.Message{To: "+16505551234", Text: "hi"})
	if ce := asChannelError(t, err); ce.Permanent || ce.Err == nil {
		t.Errorf("error = %+v; want a transient one wrapping the network error", ce)
	}
}

func TestRetryAfter(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 11, 27, 9, 0, 0, 0, time.UTC)
	for header, want := range map[string]time.Duration{
		"": 0, "5": 5 * time.Second, "x": 0, "-1": 0,
		"Fri, 27 Nov 2026 09:00:10 GMT": 10 * time.Second,
		"99999999999999999999":          maxRetryAfter,
	} {
		if got := retryAfter(header, now); got != want {
			t.Errorf("retryAfter(%q) = %v, want %v", header, got, want)
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
