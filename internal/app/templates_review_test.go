package app_test

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/alumoutreach/alumoutreach/internal/config"
	"github.com/alumoutreach/alumoutreach/internal/platform/bus/bustest"
	"github.com/alumoutreach/alumoutreach/internal/platform/store"
	"github.com/alumoutreach/alumoutreach/internal/platform/store/storetest"
)

const reunionTemplate = `{"name": %q, "channel": "whatsapp", "content": {"body": "Hi {{contact.firstName}}!",
	"whatsapp": {"name": %q, "language": "en_US", "category": "MARKETING", "body": "Hi {{1}}, join us for the {{2}} on campus.",
	"params": ["{{contact.firstName | default: \"there\"}}", "{{campaign.name}}"]}}}`

// review returns a template's review as the API shows it.
func review(t *testing.T, c client, id string) map[string]any {
	t.Helper()
	status, doc := c.do("GET", "/api/v1/templates/"+id, "")
	if status != 200 {
		t.Fatalf("get template %s: %d %v", id, status, doc)
	}
	r, _ := doc["data"].(map[string]any)["review"].(map[string]any)
	return r
}

// submitTemplate creates a WhatsApp template and submits it for review.
func submitTemplate(t *testing.T, c client, name, providerName string) string {
	t.Helper()
	status, doc := c.do("POST", "/api/v1/templates", fmt.Sprintf(reunionTemplate, name, providerName))
	if status != 201 {
		t.Fatalf("create template: %d %v", status, doc)
	}
	id := doc["data"].(map[string]any)["id"].(string)
	if status, doc := c.do("POST", "/api/v1/templates/"+id+"/review", ""); status != 200 ||
		doc["data"].(map[string]any)["review"].(map[string]any)["status"] != "submitted" {
		t.Fatalf("submit for review: %d %v", status, doc)
	}
	return id
}

// TestWhatsAppReviewInTheSandbox: with no provider account (the default),
// a submitted template goes to the sandbox reviewer through
// TEMPLATES_REVIEW_CONSUMER and comes back approved, with
// template.hsm.approved counted by analytics.
func TestWhatsAppReviewInTheSandbox(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		a := startApp(t, testConfig(t, db.URL()))
		ca, cb := twoTenants(t, a)
		id := submitTemplate(t, ca, "Reunion", "reunion_invite")
		bustest.Eventually(t, 10*time.Second, "the sandbox approves the template", func() bool {
			r := review(t, ca, id)
			return r["status"] == "approved" && r["providerTemplateId"] == "sandbox:reunion_invite:en_US"
		})
		bustest.Eventually(t, 10*time.Second, "analytics counts the submission and the approval", func() bool {
			return total(t, ca, "subject=template.hsm.submitted") == 1 && total(t, ca, "subject=template.hsm.approved") == 1
		})
		if got := total(t, cb, "subject=template.hsm.>"); got != 0 {
			t.Fatalf("tenant B counts %v review events", got)
		}
		// Approved already: submitting again is refused, nothing is published.
		if status, doc := ca.do("POST", "/api/v1/templates/"+id+"/review", ""); status != 409 {
			t.Fatalf("submit an approved template: %d %v", status, doc)
		}
	})
}

// fakeMetaTemplates answers as the Graph API's message_templates endpoint
// of one WhatsApp Business Account: it creates templates, refuses a
// duplicate name and language as Meta does (100 / 2388024), lists them by
// name, refuses templates named refused_* as Meta refuses a variable at
// the end, and fails the first call for names in failOnce with a 500.
type fakeMetaTemplates struct {
	*httptest.Server
	mu        sync.Mutex
	templates []map[string]any
	creates   []metaCall
	failOnce  map[string]bool
}

type metaCall struct {
	path, auth, contentType string
	body                    map[string]any
}

func newFakeMetaTemplates(t *testing.T, waba, token string) *fakeMetaTemplates {
	f := &fakeMetaTemplates{failOnce: map[string]bool{}}
	path := "/v25.0/" + waba + "/message_templates"
	writeError := func(w http.ResponseWriter, status, code, subcode int, msg, title, userMsg string) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		json.NewEncoder(w).Encode(map[string]any{"error": map[string]any{"message": msg, "type": "OAuthException", "code": code,
			"error_subcode": subcode, "error_user_title": title, "error_user_msg": userMsg, "fbtrace_id": "AfakeTrace"}})
	}
	f.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		defer f.mu.Unlock()
		if r.URL.Path != path || r.Header.Get("Authorization") != "Bearer "+token {
			writeError(w, 400, 100, 33, "Unsupported request: unknown object or missing permissions", "", "")
			return
		}
		w.Header().Set("Content-Type", "application/json")
		if r.Method == http.MethodGet {
			var data []map[string]any
			for _, tpl := range f.templates {
				if tpl["name"] == r.URL.Query().Get("name") {
					data = append(data, tpl)
				}
			}
			json.NewEncoder(w).Encode(map[string]any{"data": data})
			return
		}
		raw, _ := io.ReadAll(r.Body)
		var body map[string]any
		if err := json.Unmarshal(raw, &body); err != nil {
			writeError(w, 400, 100, 0, "Invalid JSON", "", "")
			return
		}
		f.creates = append(f.creates, metaCall{r.URL.Path, r.Header.Get("Authorization"), r.Header.Get("Content-Type"), body})
		name, lang := body["name"].(string), body["language"].(string)
		switch {
		case f.failOnce[name]:
			delete(f.failOnce, name)
			writeError(w, 500, 2, 0, "Service temporarily unavailable", "", "")
			return
		case strings.HasPrefix(name, "refused_"):
			writeError(w, 400, 100, 2388299, "Invalid parameter", "Variables can't be at the start or end of the template",
				"Variables can't be at the start or end of the template.")
			return
		}
		for _, tpl := range f.templates {
			if tpl["name"] == name && tpl["language"] == lang {
				writeError(w, 400, 100, 2388024, "Invalid parameter", "Content in This Language Already Exists",
					"There's already English (US) content for this template. You can create a new template and try again.")
				return
			}
		}
		id := fmt.Sprint(1001 + len(f.templates))
		f.templates = append(f.templates, map[string]any{"id": id, "name": name, "language": lang, "status": "PENDING", "category": body["category"]})
		fmt.Fprintf(w, `{"id":%q,"status":"PENDING","category":%q}`, id, body["category"])
	}))
	t.Cleanup(f.Close)
	return f
}

func (f *fakeMetaTemplates) calls() []metaCall {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]metaCall(nil), f.creates...)
}

func (f *fakeMetaTemplates) setStatus(id, status string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, tpl := range f.templates {
		if tpl["id"] == id {
			tpl["status"] = status
		}
	}
}

func (f *fakeMetaTemplates) count() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.templates)
}

// postMetaWebhook posts body to the tenant's WhatsApp webhook, signed with
// the app secret as Meta signs (X-Hub-Signature-256).
func postMetaWebhook(t *testing.T, base, tenant, secret, body string) {
	t.Helper()
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write([]byte(body))
	req, _ := http.NewRequest("POST", base+"/webhooks/"+tenant+"/whatsapp", strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Hub-Signature-256", "sha256="+hex.EncodeToString(mac.Sum(nil)))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("webhook: %d", resp.StatusCode)
	}
}

// TestWhatsAppReviewThroughMetaShapedAPI: with whatsapp.provider meta, a
// submitted template is created at a local server that answers as Meta's
// message_templates endpoint; Meta's verdict comes back as a signed
// message_template_status_update webhook. A refusal rejects the template
// with Meta's reason, a second submission of the same name and language
// creates nothing new, and a transient failure is retried.
func TestWhatsAppReviewThroughMetaShapedAPI(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		const waba, token, secret = "102290129340398", "EAAGtesttoken", "meta-app-secret"
		metaAPI := newFakeMetaTemplates(t, waba, token)
		metaAPI.failOnce["homecoming_invite"] = true
		cfg := testConfig(t, db.URL())
		cfg.WhatsApp = config.WhatsAppConfig{Provider: config.ProviderMeta, Meta: config.MetaConfig{PhoneNumberID: "106540352242922",
			BusinessAccountID: waba, AccessToken: token, APIVersion: "v25.0", BaseURL: metaAPI.URL, AppSecret: secret, VerifyToken: "verify-me"}}
		a := startApp(t, cfg)
		ca, _ := twoTenants(t, a)
		tenant := mustTenant(t, a, ca.key)
		base := "http://" + a.HTTPAddr()

		// Submitted: Meta receives the template, and its id is recorded.
		invite := submitTemplate(t, ca, "Reunion", "reunion_invite")
		bustest.Eventually(t, 10*time.Second, "Meta's template id recorded", func() bool {
			r := review(t, ca, invite)
			return r["status"] == "submitted" && r["providerTemplateId"] == "1001"
		})
		calls := metaAPI.calls()
		if len(calls) != 1 {
			t.Fatalf("%d create calls, want 1", len(calls))
		}
		wantBody := map[string]any{"name": "reunion_invite", "language": "en_US", "category": "MARKETING", "components": []any{
			map[string]any{"type": "BODY", "text": "Hi {{1}}, join us for the {{2}} on campus.",
				"example": map[string]any{"body_text": []any{[]any{"Ada", "Spring Reunion"}}}}}}
		if c := calls[0]; c.path != "/v25.0/"+waba+"/message_templates" || c.auth != "Bearer "+token || c.contentType != "application/json" ||
			!reflect.DeepEqual(c.body, wantBody) {
			t.Fatalf("create call %+v", c)
		}

		// Meta's verdict, signed as Meta signs it.
		metaAPI.setStatus("1001", "APPROVED")
		postMetaWebhook(t, base, tenant, secret, `{"object": "whatsapp_business_account", "entry": [{"id": "`+waba+`", "time": 1764230400,
			"changes": [{"field": "message_template_status_update", "value": {"event": "APPROVED", "message_template_id": 1001,
			"message_template_name": "reunion_invite", "message_template_language": "en_US", "reason": "NONE"}}]}]}`)
		bustest.Eventually(t, 10*time.Second, "the template approved and counted", func() bool {
			return review(t, ca, invite)["status"] == "approved" && total(t, ca, "subject=template.hsm.approved") == 1
		})

		// Another of our templates quoting the same provider template: Meta
		// refuses the duplicate, the existing one is looked up and its
		// approval taken over; Meta still holds one template.
		copyID := submitTemplate(t, ca, "Reunion copy", "reunion_invite")
		bustest.Eventually(t, 10*time.Second, "the copy approved from Meta's existing template", func() bool {
			r := review(t, ca, copyID)
			return r["status"] == "approved" && r["providerTemplateId"] == "1001"
		})
		if n := metaAPI.count(); n != 1 {
			t.Fatalf("Meta holds %d templates, want 1", n)
		}

		// Refused by Meta (HTTP 400): rejected with Meta's reason.
		refused := submitTemplate(t, ca, "Refused", "refused_invite")
		bustest.Eventually(t, 10*time.Second, "the refused template rejected and counted", func() bool {
			r := review(t, ca, refused)
			reason, _ := r["reason"].(string)
			return r["status"] == "rejected" && strings.Contains(reason, "Variables can't be at the start or end") &&
				strings.HasPrefix(reason, "Meta error 100") && total(t, ca, "subject=template.hsm.rejected") == 1
		})

		// Meta fails once (HTTP 500): the consumer retries, one template is made.
		homecoming := submitTemplate(t, ca, "Homecoming", "homecoming_invite")
		bustest.Eventually(t, 10*time.Second, "the retried submission recorded", func() bool {
			r := review(t, ca, homecoming)
			return r["status"] == "submitted" && r["providerTemplateId"] == "1002"
		})
		tries := 0
		for _, c := range metaAPI.calls() {
			if c.body["name"] == "homecoming_invite" {
				tries++
			}
		}
		if tries != 2 || metaAPI.count() != 2 {
			t.Fatalf("homecoming: %d create calls (want 2), Meta holds %d templates (want 2)", tries, metaAPI.count())
		}
		if got := total(t, ca, "subject=template.hsm.submitted"); got != 4 {
			t.Fatalf("%v submissions counted, want 4", got)
		}
	})
}
