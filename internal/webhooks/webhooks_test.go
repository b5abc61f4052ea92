package webhooks

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"log/slog"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/alumoutreach/alumoutreach/internal/event"
	"github.com/alumoutreach/alumoutreach/internal/platform/outbox"
	"github.com/alumoutreach/alumoutreach/internal/platform/outbox/outboxtest"
	"github.com/alumoutreach/alumoutreach/internal/platform/store"
	"github.com/alumoutreach/alumoutreach/internal/platform/store/storetest"
)

const (
	tenant      = "tenant-a"
	publicURL   = "https://alumni.example.edu"
	twilioToken = "12345"
	appSecret   = "meta-app-secret"
	verifyToken = "verify-me"
	inboundKey  = "inbound-secret"
)

type tenants map[string]bool

func (t tenants) Exists(_ context.Context, id string) (bool, error) { return t[id], nil }

type reviews struct {
	mu    sync.Mutex
	calls []string
}

func (r *reviews) ApplyReview(_ context.Context, tenant, name, lang string, approved bool, reason, id string) (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.calls = append(r.calls, fmt.Sprint(tenant, name, lang, approved, reason, id))
	return 1, nil
}

type fixture struct {
	t       *testing.T
	mux     *http.ServeMux
	out     *outboxtest.Reader
	key     *ecdsa.PrivateKey
	reviews *reviews
}

func newFixture(t *testing.T, db *store.DB) *fixture {
	t.Helper()
	ctx := context.Background()
	if err := db.Migrate(ctx, "outbox", outbox.Migrations()); err != nil {
		t.Fatal(err)
	}
	if err := db.Migrate(ctx, ModuleName, Migrations()); err != nil {
		t.Fatal(err)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	rv := &reviews{}
	svc := New(db, outbox.New(db, 0), slog.New(slog.DiscardHandler), Secrets{PublicURL: publicURL, TwilioAuthToken: twilioToken,
		MetaAppSecret: appSecret, MetaVerifyToken: verifyToken, SendGridKey: &key.PublicKey, InboundKey: inboundKey},
		tenants{tenant: true}, rv, nil)
	mux := http.NewServeMux()
	svc.RegisterRoutes(mux)
	return &fixture{t: t, mux: mux, out: outboxtest.NewReader(t, db), key: key, reviews: rv}
}

func (f *fixture) send(req *http.Request) *httptest.ResponseRecorder {
	f.t.Helper()
	rec := httptest.NewRecorder()
	f.mux.ServeHTTP(rec, req)
	return rec
}

// twilioSignature signs as Twilio documents: HMAC-SHA1, keyed with the auth
// token, of the full URL followed by each POST parameter's name and value
// in name order, base64.
func twilioSignature(token, fullURL string, form url.Values) string {
	keys := make([]string, 0, len(form))
	for k := range form {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	b.WriteString(fullURL)
	for _, k := range keys {
		b.WriteString(k + form.Get(k))
	}
	mac := hmac.New(sha1.New, []byte(token))
	mac.Write([]byte(b.String()))
	return base64.StdEncoding.EncodeToString(mac.Sum(nil))
}

func (f *fixture) twilio(path string, form url.Values, sig string) *httptest.ResponseRecorder {
	f.t.Helper()
	req := httptest.NewRequest("POST", path, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if sig != "" {
		req.Header.Set("X-Twilio-Signature", sig)
	}
	return f.send(req)
}

func (f *fixture) events(want ...string) []event.Envelope {
	f.t.Helper()
	envs := f.out.Next(f.t)
	if got := outboxtest.Subjects(envs); strings.Join(got, ",") != strings.Join(want, ",") {
		f.t.Fatalf("events %v, want %v", got, want)
	}
	for _, e := range envs {
		if e.TenantID != tenant || e.Source != event.SourceWebhooks {
			f.t.Fatalf("event %s tenant %q source %q", e.Type, e.TenantID, e.Source)
		}
	}
	return envs
}

func TestTwilioCallbacks(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := newFixture(t, db)
		path := "/webhooks/" + tenant + "/twilio/status"
		form := url.Values{"MessageSid": {"SM" + strings.Repeat("a", 32)}, "AccountSid": {"AC" + strings.Repeat("b", 32)},
			"MessageStatus": {"undelivered"}, "ErrorCode": {"30003"}, "To": {"+447700900123"}, "From": {"+15005550006"}}
		sig := twilioSignature(twilioToken, publicURL+path, form)
		if rec := f.twilio(path, form, sig); rec.Code != 200 {
			t.Fatalf("status callback: %d %s", rec.Code, rec.Body)
		}
		envs := f.events(event.WebhookSMSDelivered)
		d, _ := event.DecodeData[event.ProviderEventData](envs[0])
		if d.ExternalID != form.Get("MessageSid") || d.Status != "undelivered" || !strings.Contains(d.Reason, "30003") || d.Provider != "twilio" {
			t.Fatalf("payload %+v", d)
		}
		// Twilio retrying the same callback publishes nothing new.
		if rec := f.twilio(path, form, sig); rec.Code != 200 {
			t.Fatalf("retry: %d", rec.Code)
		}
		f.events()
		// Signatures: tampered parameter, wrong token, missing header, another URL.
		tampered := url.Values{}
		for k, v := range form {
			tampered[k] = v
		}
		tampered.Set("MessageStatus", "delivered")
		for name, c := range map[string]struct {
			form url.Values
			sig  string
		}{
			"tampered":    {tampered, sig},
			"wrong token": {form, twilioSignature("other", publicURL+path, form)},
			"missing":     {form, ""},
			"other url":   {form, twilioSignature(twilioToken, publicURL+"/webhooks/other/twilio/status", form)},
		} {
			if rec := f.twilio(path, c.form, c.sig); rec.Code != 401 {
				t.Errorf("%s signature: %d", name, rec.Code)
			}
		}
		f.events()
		// "sent" is the pipeline's own step: acknowledged, not published.
		sent := url.Values{"MessageSid": {"SM" + strings.Repeat("c", 32)}, "AccountSid": {"AC" + strings.Repeat("b", 32)}, "MessageStatus": {"sent"}}
		if rec := f.twilio(path, sent, twilioSignature(twilioToken, publicURL+path, sent)); rec.Code != 200 {
			t.Fatalf("sent callback: %d", rec.Code)
		}
		f.events()
		// Inbound SMS, answered with empty TwiML.
		in := "/webhooks/" + tenant + "/twilio/inbound"
		inbound := url.Values{"MessageSid": {"SM" + strings.Repeat("d", 32)}, "AccountSid": {"AC" + strings.Repeat("b", 32)},
			"From": {"+447700900123"}, "To": {"+15005550006"}, "Body": {"STOP"}, "NumMedia": {"0"}}
		rec := f.twilio(in, inbound, twilioSignature(twilioToken, publicURL+in, inbound))
		if rec.Code != 200 || rec.Header().Get("Content-Type") != "text/xml" || !strings.Contains(rec.Body.String(), "<Response>") {
			t.Fatalf("inbound: %d %q %s", rec.Code, rec.Header().Get("Content-Type"), rec.Body)
		}
		envs = f.events(event.WebhookSMSInbound)
		if d, _ := event.DecodeData[event.InboundMessageData](envs[0]); d.Text != "STOP" || d.From != "+447700900123" {
			t.Fatalf("inbound payload %+v", d)
		}
		// Another tenant's URL for a tenant that does not exist.
		other := "/webhooks/nobody/twilio/status"
		if rec := f.twilio(other, form, twilioSignature(twilioToken, publicURL+other, form)); rec.Code != 404 {
			t.Fatalf("unknown tenant: %d", rec.Code)
		}
	})
}

func metaSignature(body []byte) string {
	mac := hmac.New(sha256.New, []byte(appSecret))
	mac.Write(body)
	return "sha256=" + hex.EncodeToString(mac.Sum(nil))
}

const metaPayload = `{"object": "whatsapp_business_account", "entry": [{"id": "102290129340398", "changes": [
 {"field": "messages", "value": {"messaging_product": "whatsapp", "metadata": {"display_phone_number": "15550783881", "phone_number_id": "106540352242922"},
  "statuses": [
   {"id": "wamid.HBgLMTY1MDM4Nzk0MzkVAgARGBJDQjZCMzlEQUE4OTJBMTE4RTUA", "status": "delivered", "timestamp": "1750030073", "recipient_id": "16505551234", "biz_opaque_callback_data": "msg-1"},
   {"id": "wamid.HBgLMTY1MDM4Nzk0MzkVAgARGBJDQjZCMzlEQUE4OTJBMTE4RTUA", "status": "read", "timestamp": "1750030080", "recipient_id": "16505551234"},
   {"id": "wamid.HBgLMTY1MDM4Nzk0MzkVAgARGBI5QTNDQTVCM0Q0Q0Q2RTY3RTcA", "status": "failed", "timestamp": "1750030090", "recipient_id": "16505551235",
    "errors": [{"code": 131026, "title": "Message undeliverable", "message": "Message undeliverable"}]}],
  "contacts": [{"profile": {"name": "Sheena"}, "wa_id": "16505551234"}],
  "messages": [{"from": "16505551234", "id": "wamid.HBgLMTY1MDM4Nzk0MzkVAgASGBQzQUVBNTk4QjJERUI2OTRBRkVGQwA=", "timestamp": "1750030100", "type": "text", "text": {"body": "See you there!"}}]}},
 {"field": "message_template_status_update", "value": {"event": "APPROVED", "message_template_id": 123456789, "message_template_name": "reunion_invite", "message_template_language": "en_US", "reason": "NONE"}}]}]}`

func (f *fixture) meta(body, sig string) *httptest.ResponseRecorder {
	f.t.Helper()
	req := httptest.NewRequest("POST", "/webhooks/"+tenant+"/whatsapp", strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	if sig != "" {
		req.Header.Set("X-Hub-Signature-256", sig)
	}
	return f.send(req)
}

func TestMetaWebhook(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := newFixture(t, db)
		q := "/webhooks/" + tenant + "/whatsapp?hub.mode=subscribe&hub.verify_token=" + verifyToken + "&hub.challenge=1158201444"
		if rec := f.send(httptest.NewRequest("GET", q, nil)); rec.Code != 200 || rec.Body.String() != "1158201444" {
			t.Fatalf("handshake: %d %s", rec.Code, rec.Body)
		}
		if rec := f.send(httptest.NewRequest("GET", strings.Replace(q, verifyToken, "wrong", 1), nil)); rec.Code != 403 {
			t.Fatalf("handshake with a wrong token: %d", rec.Code)
		}
		if rec := f.meta(metaPayload, metaSignature([]byte(metaPayload))); rec.Code != 200 {
			t.Fatalf("notifications: %d %s", rec.Code, rec.Body)
		}
		envs := f.events(event.WebhookWhatsAppInbound, event.WebhookWhatsAppDelivered, event.WebhookWhatsAppRead, event.WebhookWhatsAppDelivered)
		d, _ := event.DecodeData[event.ProviderEventData](envs[1])
		if d.Status != "delivered" || d.MessageID != "msg-1" || d.RecipientAddress != "+16505551234" {
			t.Fatalf("delivered payload %+v", d)
		}
		if d, _ := event.DecodeData[event.ProviderEventData](envs[3]); d.Status != "failed" || !strings.Contains(d.Reason, "undeliverable") {
			t.Fatalf("failed payload %+v", d)
		}
		if d, _ := event.DecodeData[event.InboundMessageData](envs[0]); d.Text != "See you there!" || d.From != "+16505551234" {
			t.Fatalf("inbound payload %+v", d)
		}
		if len(f.reviews.calls) != 1 || !strings.Contains(f.reviews.calls[0], "reunion_invite") {
			t.Fatalf("template reviews %v", f.reviews.calls)
		}
		// Meta retrying the same payload publishes nothing new.
		f.meta(metaPayload, metaSignature([]byte(metaPayload)))
		f.events()
		tampered := strings.Replace(metaPayload, "See you there!", "Transfer money", 1)
		for name, sig := range map[string]string{"tampered": metaSignature([]byte(metaPayload)), "missing": "", "malformed": "sha256=zz"} {
			body := metaPayload
			if name == "tampered" {
				body = tampered
			}
			if rec := f.meta(body, sig); rec.Code != 401 {
				t.Errorf("%s signature: %d", name, rec.Code)
			}
		}
		if rec := f.meta(`{"object": 1}`, metaSignature([]byte(`{"object": 1}`))); rec.Code != 400 {
			t.Fatalf("signed garbage: %d", rec.Code)
		}
		f.events()
	})
}

// sendgridSign signs as SendGrid documents: ECDSA P-256 over the
// timestamp followed by the payload, the DER signature in base64.
func (f *fixture) sendgridSign(body []byte, ts string) string {
	f.t.Helper()
	sum := sha256.Sum256(append([]byte(ts), body...))
	sig, err := ecdsa.SignASN1(rand.Reader, f.key, sum[:])
	if err != nil {
		f.t.Fatal(err)
	}
	return base64.StdEncoding.EncodeToString(sig)
}

func TestSendGridEvents(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := newFixture(t, db)
		body := []byte(`[
 {"email": "ada@example.org", "timestamp": 1750030000, "smtp-id": "<m1@example.org>", "event": "processed", "sg_event_id": "e0", "sg_message_id": "s1", "message_id": "m1"},
 {"email": "ada@example.org", "timestamp": 1750030001, "smtp-id": "<m1@example.org>", "event": "delivered", "sg_event_id": "e1", "sg_message_id": "s1", "response": "250 OK", "message_id": "m1"},
 {"email": "ada@example.org", "timestamp": 1750030002, "smtp-id": "<m1@example.org>", "event": "open", "sg_event_id": "e2", "sg_message_id": "s1", "useragent": "x", "ip": "203.0.113.9"},
 {"email": "ada@example.org", "timestamp": 1750030003, "smtp-id": "<m1@example.org>", "event": "click", "sg_event_id": "e3", "sg_message_id": "s1", "url": "https://example.edu/events"},
 {"email": "bob@example.org", "timestamp": 1750030004, "smtp-id": "<m2@example.org>", "event": "bounce", "sg_event_id": "e4", "sg_message_id": "s2", "type": "bounce", "reason": "550 5.1.1 unknown user", "status": "5.1.1"},
 {"email": "eve@example.org", "timestamp": 1750030005, "smtp-id": "<m3@example.org>", "event": "spamreport", "sg_event_id": "e5", "sg_message_id": "s3"}]`)
		ts := "1750030010"
		post := func(b []byte, sig, ts string) *httptest.ResponseRecorder {
			req := httptest.NewRequest("POST", "/webhooks/"+tenant+"/sendgrid/events", bytes.NewReader(b))
			req.Header.Set("Content-Type", "application/json")
			if sig != "" {
				req.Header.Set("X-Twilio-Email-Event-Webhook-Signature", sig)
				req.Header.Set("X-Twilio-Email-Event-Webhook-Timestamp", ts)
			}
			return f.send(req)
		}
		sig := f.sendgridSign(body, ts)
		if rec := post(body, sig, ts); rec.Code != 200 {
			t.Fatalf("events: %d %s", rec.Code, rec.Body)
		}
		envs := f.events(event.WebhookEmailDelivered, event.WebhookEmailOpened, event.WebhookEmailClicked, event.WebhookEmailBounced, event.WebhookEmailComplained)
		for i, want := range []struct{ ext, status, url, bounce string }{
			{"m1@example.org", "delivered", "", ""}, {"m1@example.org", "open", "", ""}, {"m1@example.org", "click", "https://example.edu/events", ""},
			{"m2@example.org", "bounce", "", event.BounceHard}, {"m3@example.org", "spamreport", "", ""},
		} {
			d, _ := event.DecodeData[event.ProviderEventData](envs[i])
			if d.ExternalID != want.ext || d.Status != want.status || d.URL != want.url || d.BounceType != want.bounce || d.Channel != "email" {
				t.Errorf("event %d payload %+v", i, d)
			}
		}
		if rec := post(body, sig, ts); rec.Code != 200 {
			t.Fatalf("retry: %d", rec.Code)
		}
		f.events()
		if rec := post(body, sig, "1750030011"); rec.Code != 401 {
			t.Fatalf("another timestamp: %d", rec.Code)
		}
		if rec := post(append(body[:len(body)-1:len(body)-1], ' ', ']'), sig, ts); rec.Code != 401 {
			t.Fatalf("tampered body: %d", rec.Code)
		}
		if rec := post(body, "", ""); rec.Code != 401 {
			t.Fatalf("unsigned: %d", rec.Code)
		}
		f.events()
	})
}

func TestSendGridInbound(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := newFixture(t, db)
		var b bytes.Buffer
		mw := multipart.NewWriter(&b)
		for k, v := range map[string]string{
			"from": "Ada Lovelace <ada@example.org>", "to": "replies@alumni.example.edu", "subject": "Re: Welcome",
			"text": "Thanks, I will come!", "headers": "Message-ID: <reply-1@example.org>\r\nIn-Reply-To: <m1@alumni.example.edu>\r\nSubject: Re: Welcome\r\n",
			"envelope": `{"to": ["replies@alumni.example.edu"], "from": "ada@example.org"}`, "charsets": `{"text": "UTF-8", "subject": "UTF-8"}`,
			"attachments": "0", "spam_score": "0.1",
		} {
			mw.WriteField(k, v)
		}
		mw.Close()
		post := func(key string) *httptest.ResponseRecorder {
			req := httptest.NewRequest("POST", "/webhooks/"+tenant+"/sendgrid/inbound?key="+key, bytes.NewReader(b.Bytes()))
			req.Header.Set("Content-Type", mw.FormDataContentType())
			return f.send(req)
		}
		if rec := post("wrong"); rec.Code != 401 {
			t.Fatalf("wrong key: %d", rec.Code)
		}
		f.events()
		if rec := post(inboundKey); rec.Code != 200 {
			t.Fatalf("inbound: %d %s", rec.Code, rec.Body)
		}
		envs := f.events(event.WebhookEmailInbound)
		d, _ := event.DecodeData[event.InboundMessageData](envs[0])
		if d.From != "ada@example.org" || d.ExternalID != "reply-1@example.org" || d.InReplyTo != "m1@alumni.example.edu" || d.Text != "Thanks, I will come!" {
			t.Fatalf("inbound payload %+v", d)
		}
		post(inboundKey)
		f.events()
	})
}
