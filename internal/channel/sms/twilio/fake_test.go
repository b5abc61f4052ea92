package twilio

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sync"
	"testing"
	"time"
)

const (
	testAccountSID = "AC0123456789abcdef0123456789abcdef"
	testAuthToken  = "8c1d0e2f3a4b5c6d7e8f9a0b1c2d3e4f"
	testFrom       = "+15017122661"
	testServiceSID = "MG9752274e9e519418a7406176694466fa"
	testMessageSID = "SM1f0e8ae6ade43cb3c0ce4525424e404f"
)

// request is what the fake Twilio saw of one request.
type request struct {
	Method      string
	Path        string
	ContentType string
	Accept      string
	User, Pass  string
	BasicAuth   bool
	Form        url.Values
}

// fakeTwilio is a local server that answers as Twilio's Messages resource
// does and records each request.
type fakeTwilio struct {
	*httptest.Server
	mu       sync.Mutex
	requests []request
}

// newFakeTwilio starts a fake whose answers come from respond; nil
// respond answers like Twilio accepting the message.
func newFakeTwilio(t *testing.T, respond http.HandlerFunc) *fakeTwilio {
	t.Helper()
	if respond == nil {
		respond = created(testMessageSID)
	}
	f := &fakeTwilio{}
	f.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		raw, _ := io.ReadAll(r.Body)
		form, _ := url.ParseQuery(string(raw))
		user, pass, ok := r.BasicAuth()
		f.mu.Lock()
		f.requests = append(f.requests, request{
			Method: r.Method, Path: r.URL.Path,
			ContentType: r.Header.Get("Content-Type"), Accept: r.Header.Get("Accept"),
			User: user, Pass: pass, BasicAuth: ok, Form: form,
		})
		f.mu.Unlock()
		respond(w, r)
	}))
	t.Cleanup(f.Close)
	return f
}

func (f *fakeTwilio) Requests() []request {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]request(nil), f.requests...)
}

// newSender is a Sender for the fake with the test account.
func newSender(t *testing.T, f *fakeTwilio, change func(*Config)) *Sender {
	t.Helper()
	cfg := Config{AccountSID: testAccountSID, AuthToken: testAuthToken, From: testFrom, BaseURL: f.URL, HTTPClient: f.Client()}
	if change != nil {
		change(&cfg)
	}
	s, err := New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return s
}

// created answers as Twilio does to an accepted message: 201 and the new
// Message resource.
func created(sid string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		_ = r.ParseForm()
		now := time.Now().UTC().Format(time.RFC1123Z)
		var service any
		if s := r.PostForm.Get("MessagingServiceSid"); s != "" {
			service = s
		}
		body := map[string]any{
			"account_sid": testAccountSID, "api_version": "2010-04-01", "body": r.PostForm.Get("Body"),
			"date_created": now, "date_sent": nil, "date_updated": now, "direction": "outbound-api",
			"error_code": nil, "error_message": nil, "from": r.PostForm.Get("From"),
			"messaging_service_sid": service, "num_media": "0", "num_segments": "1",
			"price": nil, "price_unit": "USD", "sid": sid, "status": "queued",
			"subresource_uris": map[string]string{
				"media": "/2010-04-01/Accounts/" + testAccountSID + "/Messages/" + sid + "/Media.json",
			},
			"to":  r.PostForm.Get("To"),
			"uri": "/2010-04-01/Accounts/" + testAccountSID + "/Messages/" + sid + ".json",
		}
		w.Header().Set("Content-Type", "application/json; charset=utf-8")
		w.Header().Set("Twilio-Request-Id", "RQ00000000000000000000000000000000")
		w.WriteHeader(http.StatusCreated)
		_ = json.NewEncoder(w).Encode(body)
	}
}

// twilioError answers as Twilio does when it refuses a request.
func twilioError(status, code int, message string, header ...string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		for i := 0; i+1 < len(header); i += 2 {
			w.Header().Set(header[i], header[i+1])
		}
		w.Header().Set("Content-Type", "application/json; charset=utf-8")
		w.WriteHeader(status)
		fmt.Fprintf(w, `{"code": %d, "message": %q, "more_info": "https://www.twilio.com/docs/errors/%d", "status": %d}`, code, message, code, status)
	}
}

// raw answers with a fixed status, content type and body.
func raw(status int, contentType, body string, header ...string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		for i := 0; i+1 < len(header); i += 2 {
			w.Header().Set(header[i], header[i+1])
		}
		w.Header().Set("Content-Type", contentType)
		w.WriteHeader(status)
		_, _ = io.WriteString(w, body)
	}
}
