package app_test

import (
	"bytes"
	"fmt"
	"mime/multipart"
	"net/http"
	"net/url"
	"strings"
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

		// An agent replies: the reply goes through the pipeline to the
		// address Ada wrote from, the thread waits for her (pending).
		status, doc = ca.do("POST", "/api/v1/inbox/threads/"+id+"/reply", `{"text": "Of course, bring them along!", "authorId": "agent-7"}`)
		if status != 202 || dataOf(doc)["direction"] != "out" || dataOf(doc)["subject"] != "Re: Reunion" || dataOf(doc)["authorId"] != "agent-7" {
			t.Fatalf("reply: %d %v", status, doc)
		}
		reply := dataOf(doc)["id"].(string)
		bustest.Eventually(t, 10*time.Second, "the reply sent", func() bool {
			_, m := ca.do("GET", "/api/v1/messages/"+reply, "")
			_, sb := ca.do("GET", "/api/v1/sandbox/messages?to=ada@example.org", "")
			got := false
			for _, it := range sb["data"].([]any) {
				x := it.(map[string]any)
				headers, _ := x["headers"].(map[string]any)
				// Threaded after Ada's latest email in her mail client.
				got = got || x["messageId"] == reply && x["subject"] == "Re: Reunion" && x["text"] == "Of course, bring them along!" &&
					headers["In-Reply-To"] == "<reply-2@example.org>" && headers["References"] == "<reply-2@example.org>"
			}
			return dataOf(m)["status"] == "delivered" && dataOf(m)["sourceType"] == "inbox" && got
		})
		if ts := threadsOf(t, ca, "status=pending"); len(ts) != 1 || ts[0]["messages"] != float64(3) {
			t.Fatalf("after the reply: %v", ts)
		}
		for _, tc := range []struct{ body, code string }{
			{`{"text": "  "}`, "invalid_field"},
			{`{"text": "x", "subject": "two\nlines"}`, "invalid_field"},
			{`{"text": "x", "authorId": " a"}`, "invalid_field"},
			{`{"text": "x", "cc": "b@example.org"}`, "unknown_field"},
		} {
			if status, doc := ca.do("POST", "/api/v1/inbox/threads/"+id+"/reply", tc.body); status != 400 || doc["error"].(map[string]any)["code"] != tc.code {
				t.Errorf("reply %s: %d %v, want 400 %s", tc.body, status, doc, tc.code)
			}
		}
		// A suppressed address gets no reply: the pipeline blocks it.
		ca.do("POST", "/api/v1/suppressions", `{"channel": "email", "address": "ada@example.org"}`)
		_, doc = ca.do("POST", "/api/v1/inbox/threads/"+id+"/reply", `{"text": "One more thing"}`)
		blocked := dataOf(doc)["id"].(string)
		bustest.Eventually(t, 10*time.Second, "the reply to a suppressed address blocked", func() bool {
			_, m := ca.do("GET", "/api/v1/messages/"+blocked, "")
			return dataOf(m)["status"] == "blocked" && dataOf(m)["errorCode"] == "suppressed"
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
		adas := threadsOf(t, ca, "contactId="+ada)
		if len(adas) != 2 {
			t.Fatalf("Ada's threads: %v", adas)
		}
		// Ada never agreed to SMS, but she wrote to us: a reply needs no
		// consent. The number that is nobody's cannot be replied to.
		var smsThread, strangerThread string
		for _, th := range threadsOf(t, ca, "channel=sms") {
			if th["contactId"] == ada {
				smsThread = th["id"].(string)
			} else {
				strangerThread = th["id"].(string)
			}
		}
		status, doc = ca.do("POST", "/api/v1/inbox/threads/"+smsThread+"/reply", `{"text": "Parking is free on Saturdays."}`)
		if status != 202 {
			t.Fatalf("SMS reply: %d %v", status, doc)
		}
		smsReply := dataOf(doc)["id"].(string)
		bustest.Eventually(t, 10*time.Second, "the SMS reply sent", func() bool {
			_, m := ca.do("GET", "/api/v1/messages/"+smsReply, "")
			return dataOf(m)["status"] == "delivered" && dataOf(m)["recipient"] == "+447700900123"
		})
		if status, doc := ca.do("POST", "/api/v1/inbox/threads/"+smsThread+"/reply", fmt.Sprintf(`{"text": %q}`, strings.Repeat("x", 1601))); status != 400 ||
			doc["error"].(map[string]any)["code"] != "reply_too_long" {
			t.Errorf("an SMS reply of 1,601 characters: %d %v", status, doc)
		}
		if status, doc := ca.do("POST", "/api/v1/inbox/threads/"+strangerThread+"/reply", `{"text": "Who is this?"}`); status != 409 ||
			doc["error"].(map[string]any)["code"] != "thread_without_contact" {
			t.Errorf("a reply to a stranger: %d %v", status, doc)
		}
		// WhatsApp takes free text only within 24 hours of the contact's
		// last message.
		emit(t, a, event.WebhookWhatsAppInbound, tenant, event.InboundMessageData{Provider: "meta", Channel: event.ChannelWhatsApp,
			ExternalID: "wamid.old", From: "+447700900123", To: "1098765432", Text: "Hello?", ReceivedAt: event.Time{Time: time.Now().Add(-25 * time.Hour)}})
		var waThread string
		bustest.Eventually(t, 10*time.Second, "the WhatsApp message threaded", func() bool {
			ts := threadsOf(t, ca, "channel=whatsapp")
			if len(ts) == 1 {
				waThread = ts[0]["id"].(string)
			}
			return waThread != ""
		})
		if status, doc := ca.do("POST", "/api/v1/inbox/threads/"+waThread+"/reply", `{"text": "Hi Ada"}`); status != 409 ||
			doc["error"].(map[string]any)["code"] != "whatsapp_session_closed" {
			t.Errorf("a WhatsApp reply after 25 hours: %d %v", status, doc)
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
		if status, doc := ca.do("GET", "/api/v1/inbox/threads/"+id, ""); status != 200 || len(dataOf(doc)["conversation"].([]any)) != 4 {
			t.Errorf("thread after all: %d %v", status, doc)
		}
		bustest.Eventually(t, 10*time.Second, "the replies counted", func() bool {
			return total(t, ca, "subject=inbox.message.sent") == 3
		})
		if status, _ := cb.do("POST", "/api/v1/inbox/threads/"+id+"/reply", `{"text": "hi"}`); status != 404 {
			t.Errorf("tenant B replies in A's thread: %d", status)
		}
		if got := counterValue(t, a, "inbox_messages_received_total"); got != 5 {
			t.Errorf("inbox_messages_received_total %v, want 5", got)
		}
		if got := counterValue(t, a, "inbox_messages_received_total", "channel", "sms"); got != 2 {
			t.Errorf("inbox_messages_received_total{channel=sms} %v, want 2", got)
		}
	})
}

// Response deadlines on real durable timers: a thread nobody answers is
// warned about, then breached; one answered in time is neither; after a
// reply, the contact's next message starts a next-response deadline.
func TestInboxResponseDeadlines(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		cfg := testConfig(t, db.URL())
		cfg.Inbox.FirstResponse, cfg.Inbox.NextResponse, cfg.Inbox.WarningBefore = 3*time.Second, 3*time.Second, 2*time.Second
		a := startApp(t, cfg)
		ca, _ := twoTenants(t, a)
		tenant := mustTenant(t, a, ca.key)
		newContact(t, ca, "ada@example.org", "")
		newContact(t, ca, "bob@example.org", "")
		// A deadline counts from when the provider received the message.
		inbound := func(from, id string, at time.Time) {
			emit(t, a, event.WebhookEmailInbound, tenant, event.InboundMessageData{Provider: "sendgrid", Channel: event.ChannelEmail,
				ExternalID: id, From: from, To: "replies@alumni.example.edu", Subject: "Question", Text: "Hello?", ReceivedAt: event.Time{Time: at}})
		}
		thread := func(address string) map[string]any {
			for _, th := range threadsOf(t, ca, "") {
				if th["address"] == address {
					return th
				}
			}
			return nil
		}
		inbound("ada@example.org", "a1@example.org", time.Now())
		// Bob's message is stamped an hour ahead, so the reply below always
		// comes before his warning, however slow the machine.
		inbound("bob@example.org", "b1@example.org", time.Now().Add(time.Hour))
		bustest.Eventually(t, 10*time.Second, "both threads with a deadline", func() bool {
			ada, bob := thread("ada@example.org"), thread("bob@example.org")
			return ada != nil && bob != nil && ada["responseDueAt"] != nil && bob["sla"] == "due"
		})
		ada, bob := thread("ada@example.org")["id"].(string), thread("bob@example.org")["id"].(string)
		if status, doc := ca.do("POST", "/api/v1/inbox/threads/"+bob+"/reply", `{"text": "Hi Bob"}`); status != 202 {
			t.Fatalf("reply: %d %v", status, doc)
		}
		if th := thread("bob@example.org"); th["responseDueAt"] != nil || th["sla"] != nil {
			t.Fatalf("Bob's thread after the reply: %v", th)
		}
		bustest.Eventually(t, 15*time.Second, "Ada's deadline warned, then breached", func() bool {
			return thread("ada@example.org")["sla"] == "breached" && total(t, ca, "subject=inbox.sla.breach") == 1
		})
		if n := total(t, ca, "subject=inbox.sla.warning"); n != 1 {
			t.Errorf("%v inbox.sla.warning, want 1 (Ada's only)", n)
		}
		if ts := threadsOf(t, ca, "sla=breached"); len(ts) != 1 || ts[0]["id"] != ada {
			t.Errorf("breached threads: %v", ts)
		}
		if ts := threadsOf(t, ca, "sla=due"); len(ts) != 0 {
			t.Errorf("threads due: %v", ts)
		}
		if status, _ := ca.do("GET", "/api/v1/inbox/threads?sla=late", ""); status != 400 {
			t.Errorf("?sla=late: %d, want 400", status)
		}

		// Ada is answered; her next message starts a next-response deadline.
		if status, doc := ca.do("POST", "/api/v1/inbox/threads/"+ada+"/reply", `{"text": "Sorry for the wait, Ada"}`); status != 202 {
			t.Fatalf("reply: %d %v", status, doc)
		}
		inbound("ada@example.org", "a2@example.org", time.Now())
		bustest.Eventually(t, 15*time.Second, "the next-response deadline breached", func() bool {
			return total(t, ca, "subject=inbox.sla.breach") == 2 && total(t, ca, "subject=inbox.sla.warning") == 2
		})
		if th := thread("ada@example.org"); th["sla"] != "breached" {
			t.Errorf("Ada's thread: %v", th)
		}
		if th := thread("bob@example.org"); th["sla"] != nil {
			t.Errorf("Bob's thread got a deadline: %v", th)
		}
		for _, c := range []struct {
			labels []string
			want   float64
		}{
			{[]string{"stage", "breach"}, 2},
			{[]string{"stage", "warning", "kind", "first_response"}, 1},
			{[]string{"stage", "warning", "kind", "next_response"}, 1},
		} {
			if got := counterValue(t, a, "inbox_sla_reached_total", c.labels...); got != c.want {
				t.Errorf("inbox_sla_reached_total%v = %v, want %v", c.labels, got, c.want)
			}
		}
	})
}
