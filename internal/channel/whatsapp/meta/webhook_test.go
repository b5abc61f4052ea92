package meta

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

func readFixture(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

var testSource = Source{BusinessAccountID: "102290129340398", PhoneNumberID: "106540352242922", DisplayPhoneNumber: "15550783881"}

// withoutRaw drops the raw JSON of inbound messages so that tables can
// compare the lifted fields.
func withoutRaw(ns []Notification) []Notification {
	out := make([]Notification, len(ns))
	for i, n := range ns {
		if m, ok := n.(*InboundMessage); ok {
			c := *m
			c.Raw = nil
			n = &c
		}
		if o, ok := n.(*OtherChange); ok {
			c := *o
			c.Value = json.RawMessage(compact(o.Value))
			n = &c
		}
		out[i] = n
	}
	return out
}

func compact(b []byte) []byte {
	var buf bytes.Buffer
	if err := json.Compact(&buf, b); err != nil {
		return b
	}
	return buf.Bytes()
}

func TestParseWebhook(t *testing.T) {
	t.Parallel()
	unix := func(s int64) time.Time { return time.Unix(s, 0).UTC() }
	campaignWamid := "wamid.HBgLMTY1MDM4Nzk0MzkVAgARGBI3MTE5MjVBOTE3MDk5QUVFM0YA"
	cases := []struct {
		file string
		want []Notification
	}{
		{"inbound_text.json", []Notification{
			&InboundMessage{Source: testSource, ID: "wamid.HBgLMTY1MDM4Nzk0MzkVAgASGBQzQTRBNjU5OUFFRTAzODEwMTQ0RgA=",
				From: "16505551234", ContactName: "Sheena Nelson", Timestamp: unix(1749416383), Type: "text",
				Text: "Does the reunion dinner have a vegetarian option?"},
		}},
		{"inbound_mixed.json", []Notification{
			&InboundMessage{Source: testSource, ID: "wamid.HBgMOTE5ODEwMjE4Njc0FQIAEhggQUM4Q0I2MzlGQzA0NDhFOUIwOTJGMjVERTZCRDY3MTMA",
				From: "919810218674", FromUserID: "IN.1410018717833190", ContactName: "Krish Thakur", Timestamp: unix(1779372805),
				Type: "button", Text: "Yes, I'll be there", Payload: "rsvp_yes", ContextID: campaignWamid},
			&InboundMessage{Source: testSource, ID: "wamid.HBgMOTE5ODEwMjE4Njc0FQIAEhggMDFBQkNERUYwMTIzNDU2Nzg5QUJDREVGMDEyMzQA",
				From: "919810218674", ContactName: "Krish Thakur", Timestamp: unix(1779372811), Type: "interactive",
				Text: "Become a mentor", Payload: "mentor-opt-in", ContextID: "wamid.HBgLMTY1MDM4Nzk0MzkVAgARGBJCOTY3NDc0NDFDRUI3NTA0Q0UA"},
			&InboundMessage{Source: testSource, ID: "wamid.HBgMOTE5ODEwMjE4Njc0FQIAEhggMDJBQkNERUYwMTIzNDU2Nzg5QUJDREVGMDEyMzQA",
				From: "919810218674", ContactName: "Krish Thakur", Timestamp: unix(1779372820), Type: "interactive",
				Text: "Berlin chapter", Payload: "chapter-berlin"},
			&InboundMessage{Source: testSource, ID: "wamid.HBgNNTUxMTk4NzY1NDMyMRUCABIYIDAzQUJDREVGMDEyMzQ1Njc4OUFCQ0RFRjAxMjM0AA==",
				FromUserID: "BR.88412093317702251", ContactName: "Ana Lima", Timestamp: unix(1779372900), Type: "image",
				Text: "Our class photo, 2016", MediaID: "1003383421387256", MimeType: "image/jpeg"},
			&InboundMessage{Source: testSource, ID: "wamid.HBgMOTE5ODEwMjE4Njc0FQIAEhggMDRBQkNERUYwMTIzNDU2Nzg5QUJDREVGMDEyMzQA",
				From: "919810218674", ContactName: "Krish Thakur", Timestamp: unix(1779372950), Type: "reaction",
				Text: "👍", ContextID: campaignWamid},
			&InboundMessage{Source: testSource, ID: "wamid.HBgMOTE5ODEwMjE4Njc0FQIAEhggMDVBQkNERUYwMTIzNDU2Nzg5QUJDREVGMDEyMzQA",
				From: "919810218674", ContactName: "Krish Thakur", Timestamp: unix(1779373000), Type: "unsupported",
				Errors: []WebhookError{{Code: 131051, Title: "Message type unknown", Message: "Message type unknown", Details: "Message type is currently not supported."}}},
		}},
		{"statuses.json", []Notification{
			&StatusUpdate{Source: testSource, MessageID: campaignWamid, Status: StatusSent, Timestamp: unix(1750263773),
				RecipientID: "16505551234", CallbackData: "0193a9c4-7b1e-7c2d-9e8f-0a1b2c3d4e5f",
				ConversationID: "6ceb9d929c04d8e1b1ec2c7e6e8d0a2f", PricingCategory: "marketing", Billable: true},
			&StatusUpdate{Source: testSource, MessageID: campaignWamid, Status: StatusDelivered, Timestamp: unix(1750263775),
				RecipientID: "16505551234", RecipientUserID: "US.13491208655302741918", CallbackData: "0193a9c4-7b1e-7c2d-9e8f-0a1b2c3d4e5f",
				PricingCategory: "marketing", Billable: true},
			&StatusUpdate{Source: testSource, MessageID: campaignWamid, Status: StatusRead, Timestamp: unix(1750263900),
				RecipientID: "16505551234", CallbackData: "0193a9c4-7b1e-7c2d-9e8f-0a1b2c3d4e5f"},
			&StatusUpdate{Source: testSource, MessageID: "wamid.HBgLMTY1MDM4Nzk0MzkVAgARGBJCOTY3NDc0NDFDRUI3NTA0Q0UA", Status: StatusFailed,
				Timestamp: unix(1750264001), RecipientID: "16505559876", CallbackData: "0193a9c4-7b1e-7c2d-9e8f-0a1b2c3d4e60",
				Errors: []WebhookError{{Code: 131049, Title: "This message was not delivered to maintain healthy ecosystem engagement.",
					Message: "This message was not delivered to maintain healthy ecosystem engagement.",
					Details: "In order to maintain a healthy ecosystem engagement, the message failed to be delivered.",
					Href:    "https://developers.facebook.com/docs/whatsapp/cloud-api/support/error-codes/"}}},
			&StatusUpdate{Source: testSource, MessageID: "wamid.HBgLMTY1MDU1NTk4NzYVAgARGBI5QTNDQTVCM0Q0Q0Q2RTY3MEQA", Status: StatusFailed,
				Timestamp: unix(1750264002), RecipientID: "16505559877",
				Errors: []WebhookError{{Code: 130429, Title: "Rate limit hit", Message: "Rate limit hit",
					Details: "Message failed to send because there were too many messages sent from this phone number in a short period of time",
					Href:    "https://developers.facebook.com/docs/whatsapp/cloud-api/support/error-codes/"}}},
		}},
		{"template_status.json", []Notification{
			&TemplateStatusUpdate{Source: Source{BusinessAccountID: "102290129340398"}, Time: unix(1751247548), Event: "APPROVED",
				TemplateID: "1689556908129832", TemplateName: "reunion_invitation", Language: "en_US", Reason: "NONE", Category: "MARKETING"},
			&TemplateStatusUpdate{Source: Source{BusinessAccountID: "102290129340398"}, Time: unix(1751247600), Event: "REJECTED",
				TemplateID: "1689556908129835", TemplateName: "giving_day_reminder", Language: "en", Reason: "INVALID_FORMAT", Category: "MARKETING"},
		}},
		{"errors_and_other.json", []Notification{
			&ErrorNotification{Source: testSource, Errors: []WebhookError{{Code: 130429, Title: "Rate limit hit", Message: "Rate limit hit",
				Details: "Message failed to send because there were too many messages sent from this phone number in a short period of time",
				Href:    "/documentation/business-messaging/whatsapp/support/error-codes"}}},
			&OtherChange{Source: Source{BusinessAccountID: "102290129340398"}, Field: "account_update",
				Value: json.RawMessage(`{"phone_number":"15550783881","event":"VERIFIED_ACCOUNT"}`)},
		}},
	}
	for _, c := range cases {
		t.Run(c.file, func(t *testing.T) {
			t.Parallel()
			got, err := ParseWebhook(readFixture(t, c.file))
			if err != nil {
				t.Fatal(err)
			}
			if g := withoutRaw(got); !reflect.DeepEqual(g, c.want) {
				for i := range max(len(g), len(c.want)) {
					var gi, wi Notification
					if i < len(g) {
						gi = g[i]
					}
					if i < len(c.want) {
						wi = c.want[i]
					}
					if !reflect.DeepEqual(gi, wi) {
						t.Errorf("notification %d\n got %+v\nwant %+v", i, gi, wi)
					}
				}
			}
		})
	}

	t.Run("raw message kept", func(t *testing.T) {
		t.Parallel()
		got, err := ParseWebhook(readFixture(t, "inbound_mixed.json"))
		if err != nil {
			t.Fatal(err)
		}
		var image struct {
			Image struct {
				SHA256 string `json:"sha256"`
			} `json:"image"`
		}
		if err := json.Unmarshal(got[3].(*InboundMessage).Raw, &image); err != nil || image.Image.SHA256 == "" {
			t.Errorf("raw image message lost its sha256: %v", err)
		}
	})

	t.Run("error classes", func(t *testing.T) {
		t.Parallel()
		if !(WebhookError{Code: 131049}).Permanent() || (WebhookError{Code: 130429}).Permanent() || (WebhookError{Code: 190}).Permanent() {
			t.Error("WebhookError.Permanent classes codes unlike Send")
		}
	})

	t.Run("origin", func(t *testing.T) {
		t.Parallel()
		got, _ := ParseWebhook(readFixture(t, "statuses.json"))
		if got[0].Origin() != testSource {
			t.Errorf("Origin = %+v", got[0].Origin())
		}
	})
}

func TestParseWebhookRefuses(t *testing.T) {
	t.Parallel()
	statuses := string(readFixture(t, "statuses.json"))
	inbound := string(readFixture(t, "inbound_text.json"))
	templates := string(readFixture(t, "template_status.json"))
	cases := []struct {
		name string
		body string
		want string
	}{
		{"empty body", " \n", "body is empty"},
		{"not JSON", "<xml/>", "malformed JSON"},
		{"truncated", statuses[:len(statuses)/2], "malformed JSON"},
		{"JSON array", "[]", "the body has a JSON array"},
		{"no object", `{"entry":[]}`, "object is missing"},
		{"other object", `{"object":"instagram","entry":[{"id":"1","changes":[]}]}`, `object is "instagram"`},
		{"no entries", `{"object":"whatsapp_business_account","entry":[]}`, "entry is missing or empty"},
		{"entry wrong type", `{"object":"whatsapp_business_account","entry":{"id":"1"}}`, "entry has a JSON object"},
		{"entry without id", `{"object":"whatsapp_business_account","entry":[{"changes":[]}]}`, "entry[0]: id"},
		{"change without field", `{"object":"whatsapp_business_account","entry":[{"id":"1","changes":[{"value":{}}]}]}`, "entry[0].changes[0]: field is missing"},
		{"messages value null", `{"object":"whatsapp_business_account","entry":[{"id":"1","changes":[{"field":"messages","value":null}]}]}`, "entry[0].changes[0].value: value is missing"},
		{"status without id", strings.Replace(statuses, `"id": "wamid.HBgLMTY1MDU1NTk4NzYVAgARGBI5QTNDQTVCM0Q0Q0Q2RTY3MEQA",`, "", 1), "entry[0].changes[0].value.statuses[4]: id is missing"},
		{"status without status", strings.Replace(statuses, `"status": "read",`, "", 1), "statuses[2]: status is missing"},
		{"status bad timestamp", strings.Replace(statuses, `"timestamp": "1750263900"`, `"timestamp": "yesterday"`, 1), `statuses[2]: timestamp: "yesterday" is not a Unix time`},
		{"status timestamp in ms", strings.Replace(statuses, `"timestamp": "1750263900"`, `"timestamp": "1750263900000"`, 1), "is not a Unix time in seconds"},
		{"error code not a number", strings.Replace(statuses, `"code": 130429`, `"code": "rate"`, 1), `errors[0].code "rate" is not a number`},
		{"message without sender", strings.Replace(inbound, `"from": "16505551234",`, "", 1), "messages[0]: from (and from_user_id) is missing"},
		{"message without type", strings.Replace(inbound, `"type": "text",`, "", 1), "messages[0]: type is missing"},
		{"message without timestamp", strings.Replace(inbound, `"timestamp": "1749416383",`, "", 1), "messages[0]: timestamp: missing"},
		{"message body wrong type", strings.Replace(inbound, `"text": {`, `"text": ["x"], "x": {`, 1), "text has a JSON array"},
		{"template without event", strings.Replace(templates, `"event": "APPROVED",`, "", 1), "entry[0].changes[0].value: event is missing"},
		{"template without id or name", `{"object":"whatsapp_business_account","entry":[{"id":"1","changes":[{"field":"message_template_status_update","value":{"event":"APPROVED"}}]}]}`, "message_template_id and message_template_name are missing"},
		{"template id an object", strings.Replace(templates, `"message_template_id": 1689556908129832`, `"message_template_id": {}`, 1), "neither a string nor a number"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			got, err := ParseWebhook([]byte(c.body))
			if !errors.Is(err, ErrInvalidWebhook) || !strings.Contains(err.Error(), c.want) {
				t.Errorf("ParseWebhook = %v, %v; want ErrInvalidWebhook saying %q", got, err, c.want)
			}
			if got != nil {
				t.Errorf("notifications returned with an error: %v", got)
			}
		})
	}
}

// TestWebhookRoundTrip posts a signed payload over HTTP, as Meta does, to a
// handler that verifies and parses it the way the webhooks module will.
func TestWebhookRoundTrip(t *testing.T) {
	t.Parallel()
	type result struct {
		ok  bool
		ns  []Notification
		err error
	}
	got := make(chan result, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodGet {
			if c, ok := VerifyChallenge(r.URL.Query(), "alum-verify"); ok {
				w.Header().Set("Content-Type", "text/plain")
				_, _ = w.Write([]byte(c))
				return
			}
			w.WriteHeader(http.StatusForbidden)
			return
		}
		body, _ := readAll(r)
		ok := VerifySignature(testAppSecret, body, r.Header.Get(SignatureHeader))
		ns, err := ParseWebhook(body)
		got <- result{ok, ns, err}
	}))
	defer srv.Close()

	resp, err := srv.Client().Get(srv.URL + "/webhooks/meta?hub.mode=subscribe&hub.challenge=1158201444&hub.verify_token=alum-verify")
	if err != nil {
		t.Fatal(err)
	}
	challenge, _ := readAllResp(resp)
	if resp.StatusCode != 200 || string(challenge) != "1158201444" {
		t.Errorf("handshake answered %d %q", resp.StatusCode, challenge)
	}

	body := readFixture(t, "statuses.json")
	req, _ := http.NewRequest(http.MethodPost, srv.URL+"/webhooks/meta", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set(SignatureHeader, metaSignature(t, testAppSecret, body))
	resp, err = srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	r := <-got
	if !r.ok || r.err != nil || len(r.ns) != 5 {
		t.Errorf("verified %v, parsed %d notifications, %v", r.ok, len(r.ns), r.err)
	}
}

func readAll(r *http.Request) ([]byte, error) {
	var b bytes.Buffer
	_, err := b.ReadFrom(r.Body)
	return b.Bytes(), err
}

func readAllResp(r *http.Response) ([]byte, error) {
	defer r.Body.Close()
	var b bytes.Buffer
	_, err := b.ReadFrom(r.Body)
	return b.Bytes(), err
}
