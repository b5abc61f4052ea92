package app_test

import (
	"crypto/hmac"
	"crypto/sha1"
	"encoding/base64"
	"fmt"
	"maps"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/alumoutreach/alumoutreach/internal/app"
	"github.com/alumoutreach/alumoutreach/internal/config"
	"github.com/alumoutreach/alumoutreach/internal/platform/bus/bustest"
	"github.com/alumoutreach/alumoutreach/internal/platform/store"
	"github.com/alumoutreach/alumoutreach/internal/platform/store/storetest"
)

// members returns the contact ids of a segment's first page of members.
func members(t *testing.T, c client, segment string) []string {
	t.Helper()
	status, doc := c.do("GET", "/api/v1/segments/"+segment+"/members", "")
	if status != 200 {
		t.Fatalf("members: %d %v", status, doc)
	}
	var ids []string
	for _, m := range doc["data"].([]any) {
		ids = append(ids, m.(map[string]any)["contactId"].(string))
	}
	return ids
}

// TestContactToSegmentToAnalyticsFlow is the first half of the spec's flow
// 1 through the real bus: contact.created -> SEGMENTS_CONTACT_CONSUMER ->
// segment.member.added -> ANALYTICS_INGEST_CONSUMER, then the membership
// churning as the contact changes.
func TestContactToSegmentToAnalyticsFlow(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		a := startApp(t, testConfig(t, db.URL()))
		ca, cb := twoTenants(t, a)

		status, doc := ca.do("POST", "/api/v1/segments", `{"name": "Recent alumni",
			"rules": {"all": [{"op": "has_tag", "value": "alumni"}, {"field": "attributes.classYear", "op": "gte", "value": 2000}]}}`)
		if status != 201 {
			t.Fatalf("create segment: %d %v", status, doc)
		}
		segID := doc["data"].(map[string]any)["id"].(string)
		bustest.Eventually(t, 10*time.Second, "the new segment evaluated", func() bool {
			_, doc := ca.do("GET", "/api/v1/segments/"+segID, "")
			return doc["data"].(map[string]any)["evaluatedAt"] != nil
		})

		status, doc = ca.do("POST", "/api/v1/contacts", `{"email": "ada@example.org", "tags": ["alumni"], "attributes": {"classYear": 2010}}`)
		if status != 201 {
			t.Fatalf("create contact: %d %v", status, doc)
		}
		contactID := doc["data"].(map[string]any)["id"].(string)
		bustest.Eventually(t, 10*time.Second, "the contact joins the segment", func() bool {
			m := members(t, ca, segID)
			return len(m) == 1 && m[0] == contactID
		})
		bustest.Eventually(t, 10*time.Second, "analytics counts the membership", func() bool {
			return total(t, ca, "subject=segment.member.added") == 1 && total(t, ca, "subject=contact.created") == 1
		})

		// Churn: the contact leaves when its class year drops, and comes
		// back when it is tagged again after losing the tag.
		if status, doc := ca.do("PATCH", "/api/v1/contacts/"+contactID, `{"attributes": {"classYear": 1990}}`); status != 200 {
			t.Fatalf("update contact: %d %v", status, doc)
		}
		bustest.Eventually(t, 10*time.Second, "the contact leaves the segment", func() bool {
			return len(members(t, ca, segID)) == 0 && total(t, ca, "subject=segment.member.removed") == 1
		})
		// Each step waits for its effect, so the counts below are final.
		for _, step := range []struct {
			method, path, body string
			members            int
		}{
			{"PATCH", "/api/v1/contacts/" + contactID, `{"attributes": {"classYear": 2012}}`, 1},
			{"DELETE", "/api/v1/contacts/" + contactID + "/tags/alumni", "", 0},
			{"POST", "/api/v1/contacts/" + contactID + "/tags", `{"tags": ["alumni"]}`, 1},
		} {
			if status, doc := ca.do(step.method, step.path, step.body); status != 200 {
				t.Fatalf("%s %s: %d %v", step.method, step.path, status, doc)
			}
			bustest.Eventually(t, 10*time.Second, fmt.Sprintf("%d member(s) after %s %s", step.members, step.method, step.path), func() bool {
				return len(members(t, ca, segID)) == step.members
			})
		}
		bustest.Eventually(t, 10*time.Second, "every membership change counted once", func() bool {
			return total(t, ca, "subject=segment.member.added") == 3 && total(t, ca, "subject=segment.member.removed") == 2
		})
		_, doc = ca.do("GET", "/api/v1/segments/"+segID, "")
		if got := doc["data"].(map[string]any)["members"].(float64); got != 1 {
			t.Fatalf("member count %v, want 1", got)
		}

		// Erasure empties the segment.
		if status, _ := ca.do("POST", "/api/v1/contacts/"+contactID+"/erase", ""); status != 200 {
			t.Fatalf("erase: %d", status)
		}
		bustest.Eventually(t, 10*time.Second, "the erased contact leaves", func() bool {
			return len(members(t, ca, segID)) == 0
		})

		// Tenant B reaches none of it.
		for _, path := range []string{"/api/v1/segments/" + segID, "/api/v1/segments/" + segID + "/members", "/api/v1/contacts/" + contactID} {
			if status, _ := cb.do("GET", path, ""); status != 404 {
				t.Errorf("tenant B GET %s: %d", path, status)
			}
		}
		if got := total(t, cb, "subject=segment.>"); got != 0 {
			t.Errorf("tenant B counts %v segment events", got)
		}
	})
}

// TestMessageThroughPipelineToSandbox: a message asked for through the
// API is queued, consumed by PIPELINE_SEND_CONSUMER through the real bus,
// rendered from the template for the contact, "sent" by the sandbox, and
// counted by analytics; without consent it is blocked and never sent.
func TestMessageThroughPipelineToSandbox(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		a := startApp(t, testConfig(t, db.URL()))
		ca, cb := twoTenants(t, a)
		id := func(doc map[string]any) string { return doc["data"].(map[string]any)["id"].(string) }

		_, doc := ca.do("POST", "/api/v1/contacts", `{"email": "ada@example.org", "firstName": "Ada",
			"consent": {"email": {"granted": true, "source": "signup_form"}}}`)
		ada := id(doc)
		_, doc = ca.do("POST", "/api/v1/contacts", `{"email": "noconsent@example.org"}`)
		other := id(doc)
		status, doc := ca.do("POST", "/api/v1/templates", `{"name": "Welcome", "channel": "email", "content": {
			"subject": "Welcome, {{contact.firstName}}", "html": "<p>Hello {{contact.firstName}}</p>", "from": "alumni@example.edu"}}`)
		if status != 201 {
			t.Fatalf("template: %d %v", status, doc)
		}
		tpl := id(doc)
		ca.do("POST", "/api/v1/templates/"+tpl+"/activate", "")

		status, doc = ca.do("POST", "/api/v1/messages", `{"contactId": "`+ada+`", "channel": "email", "templateId": "`+tpl+`"}`)
		if status != 202 {
			t.Fatalf("send: %d %v", status, doc)
		}
		msg := id(doc)
		_, blockedDoc := ca.do("POST", "/api/v1/messages", `{"contactId": "`+other+`", "channel": "email", "templateId": "`+tpl+`"}`)
		blocked := id(blockedDoc)

		// The sandbox delivers at once: the message is recorded as
		// delivered with its send, with both events and no webhook event.
		bustest.Eventually(t, 10*time.Second, "the message delivered and the other blocked", func() bool {
			_, m := ca.do("GET", "/api/v1/messages/"+msg, "")
			_, b := ca.do("GET", "/api/v1/messages/"+blocked, "")
			return m["data"].(map[string]any)["status"] == "delivered" && b["data"].(map[string]any)["status"] == "blocked"
		})
		_, sb := ca.do("GET", "/api/v1/sandbox/messages", "")
		items := sb["data"].([]any)
		if len(items) != 1 {
			t.Fatalf("sandbox holds %d messages, want 1", len(items))
		}
		got := items[0].(map[string]any)
		html, _ := got["html"].(string)
		if got["subject"] != "Welcome, Ada" || !strings.HasPrefix(html, "<p>Hello Ada</p>") || !strings.Contains(html, "/t/o/") ||
			got["to"] != "ada@example.org" || got["messageId"] != msg {
			t.Fatalf("sandbox message %v", got)
		}
		bustest.Eventually(t, 10*time.Second, "analytics counts the send and the block", func() bool {
			return total(t, ca, "subject=pipeline.message.sent") == 1 && total(t, ca, "subject=pipeline.message.failed") == 1 &&
				total(t, ca, "subject=pipeline.message.delivered") == 1
		})
		if n := total(t, ca, "subject=webhook.email.delivered"); n != 0 {
			t.Fatalf("the sandbox published %v webhook.email.delivered; it delivers without a report", n)
		}
		if status, _ := cb.do("GET", "/api/v1/messages/"+msg, ""); status != 404 {
			t.Fatalf("tenant B reads A's message: %d", status)
		}

		// One-click unsubscribe (RFC 8058) through the List-Unsubscribe link:
		// the contact's email consent is revoked, with its event.
		link := strings.Trim(got["headers"].(map[string]any)["List-Unsubscribe"].(string), "<>")
		u, err := url.Parse(link)
		if err != nil {
			t.Fatal(err)
		}
		resp, err := http.Post("http://"+a.HTTPAddr()+u.Path, "application/x-www-form-urlencoded", strings.NewReader("List-Unsubscribe=One-Click"))
		if err != nil || resp.StatusCode != 200 {
			t.Fatalf("unsubscribe: %v %v", resp, err)
		}
		resp.Body.Close()
		_, c := ca.do("GET", "/api/v1/contacts/"+ada, "")
		if consent := c["data"].(map[string]any)["consent"].(map[string]any)["email"].(map[string]any); consent["granted"] != false || consent["source"] != "unsubscribe_link" {
			t.Fatalf("consent after unsubscribing: %v", consent)
		}
		bustest.Eventually(t, 10*time.Second, "the revocation counted", func() bool {
			return total(t, ca, "subject=contact.consent.revoked") == 1
		})
		if _, sbB := cb.do("GET", "/api/v1/sandbox/messages", ""); len(sbB["data"].([]any)) != 0 {
			t.Fatal("tenant B sees A's sandbox")
		}
	})
}

// TestSMSThroughTwilioShapedAPI: with sms.provider twilio, a message goes
// through the real Twilio adapter to a local server that answers as
// Twilio's Messages API does, with the status callback URL of the
// message's tenant.
func TestSMSThroughTwilioShapedAPI(t *testing.T) {
	t.Parallel()
	type call struct {
		path string
		form url.Values
		user string
	}
	calls := make(chan call, 4)
	twilioAPI := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		user, _, _ := r.BasicAuth()
		r.ParseForm()
		calls <- call{r.URL.Path, r.PostForm, user}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusCreated)
		fmt.Fprintf(w, `{"sid": "SM%032d", "status": "queued", "to": %q, "from": "+15005550006", "body": %q}`, 1, r.PostForm.Get("To"), r.PostForm.Get("Body"))
	}))
	t.Cleanup(twilioAPI.Close)

	cfg := testConfig(t, "")
	cfg.PublicURL = "https://alumni.example.edu"
	cfg.SMS.Provider = config.ProviderTwilio
	cfg.SMS.Twilio = config.TwilioConfig{AccountSID: "AC00000000000000000000000000000001", AuthToken: "secret-token", From: "+15005550006", BaseURL: twilioAPI.URL}
	a := startApp(t, cfg)
	ca, _ := twoTenants(t, a)
	tenant := mustTenant(t, a, ca.key)
	id := func(doc map[string]any) string { return doc["data"].(map[string]any)["id"].(string) }
	_, doc := ca.do("POST", "/api/v1/contacts", `{"phone": "+44 7700 900123", "firstName": "Grace",
		"consent": {"sms": {"granted": true, "source": "sms_keyword", "proof": "JOIN"}}}`)
	contact := id(doc)
	_, doc = ca.do("POST", "/api/v1/templates", `{"name": "Reminder", "channel": "sms", "content": {"body": "Hi {{contact.firstName}}, reunion on Saturday!"}}`)
	tpl := id(doc)
	ca.do("POST", "/api/v1/templates/"+tpl+"/activate", "")
	status, doc := ca.do("POST", "/api/v1/messages", `{"contactId": "`+contact+`", "channel": "sms", "templateId": "`+tpl+`"}`)
	if status != 202 {
		t.Fatalf("send: %d %v", status, doc)
	}
	msg := id(doc)
	var c call
	select {
	case c = <-calls:
	case <-time.After(10 * time.Second):
		t.Fatal("the Twilio-shaped API was never called")
	}
	if c.path != "/2010-04-01/Accounts/"+cfg.SMS.Twilio.AccountSID+"/Messages.json" || c.user != cfg.SMS.Twilio.AccountSID ||
		c.form.Get("To") != "+447700900123" || c.form.Get("From") != "+15005550006" || c.form.Get("Body") != "Hi Grace, reunion on Saturday!" ||
		c.form.Get("StatusCallback") != "https://alumni.example.edu/webhooks/"+tenant+"/twilio/status" {
		t.Fatalf("Twilio request %+v", c)
	}
	bustest.Eventually(t, 10*time.Second, "the message recorded as sent with Twilio's sid", func() bool {
		_, m := ca.do("GET", "/api/v1/messages/"+msg, "")
		d := m["data"].(map[string]any)
		return d["status"] == "sent" && d["provider"] == "twilio" && strings.HasPrefix(d["externalId"].(string), "SM")
	})
	select {
	case extra := <-calls:
		t.Fatalf("a second call to the provider: %+v", extra)
	case <-time.After(200 * time.Millisecond):
	}

	// Twilio reports the delivery to the status callback, signed with the
	// auth token as Twilio signs: the message becomes delivered.
	_, m := ca.do("GET", "/api/v1/messages/"+msg, "")
	sid := m["data"].(map[string]any)["externalId"].(string)
	if status := postTwilio(t, a, cfg, "/webhooks/"+tenant+"/twilio/status", url.Values{"MessageSid": {sid},
		"AccountSid": {cfg.SMS.Twilio.AccountSID}, "MessageStatus": {"delivered"}, "To": {"+447700900123"}, "From": {"+15005550006"}}); status != 200 {
		t.Fatalf("status callback: %d", status)
	}
	bustest.Eventually(t, 10*time.Second, "the message delivered", func() bool {
		_, m := ca.do("GET", "/api/v1/messages/"+msg, "")
		return m["data"].(map[string]any)["status"] == "delivered" && total(t, ca, "subject=pipeline.message.delivered") == 1
	})
}

// postTwilio posts form to path as Twilio does, signed as Twilio documents
// it (HMAC-SHA1 over the public URL and the sorted parameters, keyed with
// the auth token), and returns the status.
func postTwilio(t *testing.T, a *app.App, cfg config.Config, path string, form url.Values) int {
	t.Helper()
	signed := cfg.PublicURL + path
	for _, k := range slices.Sorted(maps.Keys(form)) {
		signed += k + form.Get(k)
	}
	mac := hmac.New(sha1.New, []byte(cfg.SMS.Twilio.AuthToken))
	mac.Write([]byte(signed))
	req, _ := http.NewRequest("POST", "http://"+a.HTTPAddr()+path, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("X-Twilio-Signature", base64.StdEncoding.EncodeToString(mac.Sum(nil)))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// TestTestSendOfADraft: a template still in draft can be sent as a test
// to the caller's own address; it cannot be sent to contacts.
func TestTestSendOfADraft(t *testing.T) {
	t.Parallel()
	a := startApp(t, testConfig(t, ""))
	ca, _ := twoTenants(t, a)
	_, doc := ca.do("POST", "/api/v1/templates", `{"name": "Draft", "channel": "email", "content": {"subject": "Draft for {{contact.firstName | default: \"you\"}}", "text": "Hi"}}`)
	tpl := doc["data"].(map[string]any)["id"].(string)
	status, doc := ca.do("POST", "/api/v1/messages/test", `{"templateId": "`+tpl+`", "channel": "email", "to": "editor@example.edu"}`)
	if status != 200 || doc["data"].(map[string]any)["subject"] != "Draft for you" {
		t.Fatalf("test send of a draft: %d %v", status, doc)
	}
	_, sb := ca.do("GET", "/api/v1/sandbox/messages?to=editor@example.edu", "")
	if len(sb["data"].([]any)) != 1 {
		t.Fatalf("sandbox %v", sb)
	}
	ca.do("POST", "/api/v1/templates/"+tpl+"/archive", "")
	if status, doc := ca.do("POST", "/api/v1/messages/test", `{"templateId": "`+tpl+`", "channel": "email", "to": "editor@example.edu"}`); status != 400 {
		t.Fatalf("test send of an archived template: %d %v", status, doc)
	}
}
