package meta

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
)

const (
	testPhoneNumberID = "106540352242922"
	testBusinessID    = "102290129340398"
	testToken         = "EAAJB3cG1BQ0BO7ZC2testtokenZDZD"
	testWamid         = "wamid.HBgLMTY1MDM4Nzk0MzkVAgARGBI3MTE5MjVBOTE3MDk5QUVFM0YA"
)

// request is what the fake Graph API saw of one request.
type request struct {
	Method        string
	Path          string
	Query         string
	Authorization string
	ContentType   string
	Body          map[string]any
}

// fakeGraph is a local server that answers as the Cloud API's messages
// endpoint does and records each request.
type fakeGraph struct {
	*httptest.Server
	mu       sync.Mutex
	requests []request
}

// newFakeGraph starts a fake whose answers come from respond; nil respond
// answers like Meta accepting the message.
func newFakeGraph(t *testing.T, respond http.HandlerFunc) *fakeGraph {
	t.Helper()
	if respond == nil {
		respond = acceptedAnswer(testWamid)
	}
	f := &fakeGraph{}
	f.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		raw, _ := io.ReadAll(r.Body)
		var body map[string]any
		if err := json.Unmarshal(raw, &body); err != nil {
			body = map[string]any{"unparsable": string(raw)}
		}
		f.mu.Lock()
		f.requests = append(f.requests, request{
			Method: r.Method, Path: r.URL.Path, Query: r.URL.RawQuery, Authorization: r.Header.Get("Authorization"),
			ContentType: r.Header.Get("Content-Type"), Body: body,
		})
		f.mu.Unlock()
		respond(w, r)
	}))
	t.Cleanup(f.Close)
	return f
}

func (f *fakeGraph) Requests() []request {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]request(nil), f.requests...)
}

// newSender is a Sender for the fake with the test phone number.
func newSender(t *testing.T, f *fakeGraph, change func(*Config)) *Sender {
	t.Helper()
	cfg := Config{PhoneNumberID: testPhoneNumberID, BusinessAccountID: testBusinessID, AccessToken: testToken, BaseURL: f.URL, HTTPClient: f.Client()}
	if change != nil {
		change(&cfg)
	}
	s, err := New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return s
}

// acceptedAnswer answers as the Cloud API does to an accepted message.
func acceptedAnswer(wamid string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		var req struct {
			To string `json:"to"`
		}
		_ = json.NewDecoder(r.Body).Decode(&req)
		w.Header().Set("Content-Type", "application/json; charset=UTF-8")
		w.Header().Set("x-fb-trace-id", "Az8or2yhqkZfEZ")
		fmt.Fprintf(w, `{"messaging_product":"whatsapp","contacts":[{"input":%q,"wa_id":%q}],"messages":[{"id":%q,"message_status":"accepted"}]}`, req.To, req.To, wamid)
	}
}

// graphError answers with a Graph API error body.
func graphError(status, code, subcode int, message, details string, header ...string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		for i := 0; i+1 < len(header); i += 2 {
			w.Header().Set(header[i], header[i+1])
		}
		e := map[string]any{"message": message, "type": "OAuthException", "code": code, "fbtrace_id": "AbCdEfGh123"}
		if subcode != 0 {
			e["error_subcode"] = subcode
		}
		if details != "" {
			e["error_data"] = map[string]string{"messaging_product": "whatsapp", "details": details}
		}
		w.Header().Set("Content-Type", "application/json; charset=UTF-8")
		w.WriteHeader(status)
		_ = json.NewEncoder(w).Encode(map[string]any{"error": e})
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
