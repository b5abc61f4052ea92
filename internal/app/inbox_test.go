package app_test

import (
	"bytes"
	"fmt"
	"mime/multipart"
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/alumoutreach/alumoutreach/internal/app"
	"github.com/alumoutreach/alumoutreach/internal/event"
	"github.com/alumoutreach/alumoutreach/internal/platform/bus/bustest"
	"github.com/alumoutreach/alumoutreach/internal/platform/store"
	"github.com/alumoutreach/alumoutreach/internal/platform/store/storetest"
)

// postInboundEmail posts an email to the tenant's SendGrid Inbound Parse
// endpoint as SendGrid does (multipart form, the raw headers in "headers")
// and returns the status.
func postInboundEmail(t *testing.T, a *app.App, tenant, key, from, messageID, inReplyTo, subject, text string) int {
	t.Helper()
	var b bytes.Buffer
	mw := multipart.NewWriter(&b)
	headers := "Message-ID: <" + messageID + ">\r\nSubject: " + subject + "\r\n"
	if inReplyTo != "" {
		headers += "In-Reply-To: <" + inReplyTo + ">\r\n"
	}
	for k, v := range map[string]string{"from": from, "to": "replies@alumni.example.edu", "subject": subject, "text": text,
		"headers": headers, "envelope": `{"to": ["replies@alumni.example.edu"], "from": "x@example.org"}`,
		"charsets": `{"text": "UTF-8", "subject": "UTF-8"}`, "attachments": "0"} {
		mw.WriteField(k, v)
	}
	mw.Close()
	req, _ := http.NewRequest("POST", "http://"+a.HTTPAddr()+"/webhooks/"+tenant+"/sendgrid/inbound?key="+url.QueryEscape(key), &b)
	req.Header.Set("Content-Type", mw.FormDataContentType())
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// threadsOf lists the client's inbox threads matching query.
func threadsOf(t *testing.T, c client, query string) []map[string]any {
	t.Helper()
	status, doc := c.do("GET", "/api/v1/inbox/threads?"+query, "")
	if status != 200 {
		t.Fatalf("list threads %s: %d %v", query, status, doc)
	}
	var out []map[string]any
	for _, it := range doc["data"].([]any) {
		out = append(out, it.(map[string]any))
	}
	return out
}

// The spec's inbound flow through the real bus: a reply by email (SendGrid
// Inbound Parse) and an SMS (Twilio) become webhook.*.inbound, which
// INBOX_WEBHOOK_CONSUMER threads per channel and address, matched to the
// contact and to the message replied to, publishing inbox.thread.created
// and inbox.message.received; the team closes, reassigns, and a new message
// reopens the thread. Redeliveries add nothing; tenants see only their own.
func TestInboxThreadsInboundMessages(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		cfg := testConfig(t, db.URL())
		cfg.PublicURL = "https://alumni.example.edu"
		cfg.Email.InboundKey = "inbound-secret"
		cfg.SMS.Twilio.AuthToken = "secret-token"
		a := startApp(t, cfg)
		ca, cb := twoTenants(t, a)
		tenant := mustTenant(t, a, ca.key)
		ada := newContact(t, ca, "ada@example.org", `, "phone": "+44 7700 900123"`)
		tpl := emailTemplate(t, ca, "Reunion")
		status, doc := ca.do("POST", "/api/v1/messages", `{"contactId": "`+ada+`", "channel": "email", "templateId": "`+tpl+`"}`)
		if status != 202 {
			t.Fatalf("send: %d %v", status, doc)
		}
		sent := dataOf(doc)["id"].(string)
		var externalID string
		bustest.Eventually(t, 10*time.Second, "the message sent", func() bool {
			_, m := ca.do("GET", "/api/v1/messages/"+sent, "")
			externalID, _ = dataOf(m)["externalId"].(string)
			return externalID != ""
		})

		// Ada replies; the provider's threading names our message.
		if status := postInboundEmail(t, a, tenant, "wrong", "Ada <ada@example.org>", "reply-1@example.org", externalID, "Re: Reunion", "I will come!"); status != 401 {
			t.Fatalf("inbound with a wrong key: %d", status)
		}
		if status := postInboundEmail(t, a, tenant, cfg.Email.InboundKey, "Ada Lovelace <Ada@Example.org>", "reply-1@example.org", externalID,
			"Re: Reunion", "I will come!\n\nAda"); status != 200 {
			t.Fatalf("inbound: %d", status)
		}
		var thread map[string]any
		bustest.Eventually(t, 10*time.Second, "the reply threaded", func() bool {
			ts := threadsOf(t, ca, "")
			if len(ts) == 1 {
				thread = ts[0]
			}
			return len(ts) == 1 && total(t, ca, "subject=inbox.message.received") == 1
		})
		if thread["channel"] != "email" || thread["address"] != "ada@example.org" || thread["contactId"] != ada ||
			thread["subject"] != "Re: Reunion" || thread["status"] != "open" || thread["messages"] != float64(1) {
			t.Fatalf("thread %v", thread)
		}
		id := thread["id"].(string)
		status, doc = ca.do("GET", "/api/v1/inbox/threads/"+id, "")
		conv, _ := dataOf(doc)["conversation"].([]any)
		if status != 200 || len(conv) != 1 {
			t.Fatalf("thread: %d %v", status, doc)
		}
		if m := conv[0].(map[string]any); m["direction"] != "in" || m["inReplyTo"] != sent || m["externalId"] != "reply-1@example.org" ||
			m["text"] != "I will come!\n\nAda" || m["provider"] != "sendgrid" {
			t.Fatalf("message %v", m)
		}
		if n := total(t, ca, "subject=inbox.thread.created"); n != 1 {
			t.Fatalf("%v inbox.thread.created", n)
		}

		// The same inbound message delivered again (a provider's retry that
		// the webhook's own check missed, a redelivery) is recorded once.
		again := event.InboundMessageData{Provider: "sendgrid", Channel: event.ChannelEmail, ExternalID: "reply-1@example.org",
			From: "ada@example.org", To: "replies@alumni.example.edu", Text: "I will come!", ReceivedAt: event.Time{Time: time.Now()}}
		emit(t, a, event.WebhookEmailInbound, tenant, again)
		emit(t, a, event.WebhookEmailInbound, tenant, again)
		bustest.Eventually(t, 10*time.Second, "both copies handled", func() bool {
			return total(t, ca, "subject=webhook.email.inbound") == 3
		})

		// The team closes it and assigns it; a new message reopens it.
		for _, tc := range []struct {
			path, body string
			want       int
			code       string
		}{
			{"/status", `{"status": "archived"}`, 400, "invalid_status"},
			{"/status", `{"status": "closed", "note": "x"}`, 400, "unknown_field"},
			{"/status", `{"status": `, 400, "invalid_json"},
			{"/assign", `{"assigneeId": "agent\u0007"}`, 400, "invalid_field"},
			{"/assign", `{"assigneeId": " agent-7"}`, 400, "invalid_field"},
		} {
			status, doc := ca.do("POST", "/api/v1/inbox/threads/"+id+tc.path, tc.body)
			if e, _ := doc["error"].(map[string]any); status != tc.want || e["code"] != tc.code {
				t.Errorf("POST %s %s: %d %v, want %d %s", tc.path, tc.body, status, doc, tc.want, tc.code)
			}
		}
		for _, step := range []struct{ path, body, field, want string }{
			{"/status", `{"status": "closed"}`, "status", "closed"},
			{"/status", `{"status": "closed"}`, "status", "closed"}, // no change, no event
			{"/assign", `{"assigneeId": "agent-7", "assignedBy": "lead-1"}`, "assigneeId", "agent-7"},
			{"/assign", `{"assigneeId": "agent-7"}`, "assigneeId", "agent-7"},
		} {
			status, doc := ca.do("POST", "/api/v1/inbox/threads/"+id+step.path, step.body)
			if status != 200 || dataOf(doc)[step.field] != step.want {
				t.Fatalf("POST %s %s: %d %v", step.path, step.body, status, doc)
			}
		}
		if status := postInboundEmail(t, a, tenant, cfg.Email.InboundKey, "ada@example.org", "reply-2@example.org", "", "Re: Reunion", "Can I bring a guest?"); status != 200 {
			t.Fatalf("second inbound: %d", status)
		}
		bustest.Eventually(t, 10*time.Second, "the thread reopened", func() bool {
			ts := threadsOf(t, ca, "status=open")
			return len(ts) == 1 && ts[0]["messages"] == float64(2) && ts[0]["assigneeId"] == "agent-7"
		})
		bustest.Eventually(t, 10*time.Second, "the events counted", func() bool {
			return total(t, ca, "subject=inbox.thread.updated") == 2 && total(t, ca, "subject=inbox.thread.assigned") == 1 &&
				total(t, ca, "subject=inbox.message.received") == 2 && total(t, ca, "subject=inbox.thread.created") == 1
		})

		// SMS from Ada's number, and from a number that is nobody's, by
		// Twilio: two SMS threads, one matched to Ada.
		for i, from := range []string{"+447700900123", "+447700900999"} {
			if status := postTwilio(t, a, cfg, "/webhooks/"+tenant+"/twilio/inbound", url.Values{"MessageSid": {fmt.Sprintf("SM%032d", i+1)},
				"AccountSid": {"AC00000000000000000000000000000001"}, "From": {from}, "To": {"+15005550006"}, "Body": {"See you there"},
				"NumMedia": {"0"}}); status != 200 {
				t.Fatalf("twilio inbound: %d", status)
			}
		}
		bustest.Eventually(t, 10*time.Second, "the SMS threaded", func() bool { return len(threadsOf(t, ca, "channel=sms")) == 2 })
		if ts := threadsOf(t, ca, "contactId="+ada); len(ts) != 2 {
			t.Errorf("Ada's threads: %v", ts)
		}
		if ts := threadsOf(t, ca, "channel=sms&assigneeId=agent-7"); len(ts) != 0 {
			t.Errorf("assigned SMS threads: %v", ts)
		}
		for _, q := range []string{"status=archived", "channel=fax", "sort=new"} {
			if status, _ := ca.do("GET", "/api/v1/inbox/threads?"+q, ""); status != 400 {
				t.Errorf("list ?%s: %d, want 400", q, status)
			}
		}

		// Tenant B sees none of it, and cannot touch it.
		if ts := threadsOf(t, cb, ""); len(ts) != 0 {
			t.Errorf("tenant B lists %d threads", len(ts))
		}
		for _, r := range []struct{ method, path, body string }{
			{"GET", "", ""}, {"POST", "/status", `{"status": "open"}`}, {"POST", "/assign", `{"assigneeId": "b"}`},
		} {
			if status, doc := cb.do(r.method, "/api/v1/inbox/threads/"+id+r.path, r.body); status != 404 {
				t.Errorf("tenant B %s %s: %d %v", r.method, r.path, status, doc)
			}
		}
		if status, doc := ca.do("GET", "/api/v1/inbox/threads/"+id, ""); status != 200 || len(dataOf(doc)["conversation"].([]any)) != 2 {
			t.Errorf("thread after all: %d %v", status, doc)
		}
		if got := counterValue(t, a, "inbox_messages_received_total"); got != 4 {
			t.Errorf("inbox_messages_received_total %v, want 4", got)
		}
		if got := counterValue(t, a, "inbox_messages_received_total", "channel", "sms"); got != 2 {
			t.Errorf("inbox_messages_received_total{channel=sms} %v, want 2", got)
		}
	})
}
