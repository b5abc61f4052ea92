package app_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/alumoutreach/alumoutreach/internal/platform/bus/bustest"
	"github.com/alumoutreach/alumoutreach/internal/platform/store"
	"github.com/alumoutreach/alumoutreach/internal/platform/store/storetest"
)

func dataOf(doc map[string]any) map[string]any { m, _ := doc["data"].(map[string]any); return m }

// campaignSetup makes, in c's tenant, consented alumni (n of them), two
// without email consent, one opted out, a segment of all of them, an
// exclusion segment of the opted-out, and an active email template. It
// returns the two segment ids and the template id once both segments are
// evaluated.
func campaignSetup(t *testing.T, c client, n int) (audience, optedOut, template string) {
	t.Helper()
	for i := range n {
		if status, doc := c.do("POST", "/api/v1/contacts", fmt.Sprintf(`{"email": "alum%d@example.org", "firstName": "Alum%d", "tags": ["alumni"],
			"consent": {"email": {"granted": true, "source": "signup_form"}}}`, i, i)); status != 201 {
			t.Fatalf("contact: %d %v", status, doc)
		}
	}
	for i := range 2 {
		c.do("POST", "/api/v1/contacts", fmt.Sprintf(`{"email": "noconsent%d@example.org", "tags": ["alumni"]}`, i))
	}
	c.do("POST", "/api/v1/contacts", `{"email": "optout@example.org", "tags": ["alumni", "optout"],
		"consent": {"email": {"granted": true, "source": "signup_form"}}}`)
	_, doc := c.do("POST", "/api/v1/segments", `{"name": "Alumni", "rules": {"all": [{"op": "has_tag", "value": "alumni"}]}}`)
	audience = dataOf(doc)["id"].(string)
	_, doc = c.do("POST", "/api/v1/segments", `{"name": "Opted out", "rules": {"all": [{"op": "has_tag", "value": "optout"}]}}`)
	optedOut = dataOf(doc)["id"].(string)
	status, doc := c.do("POST", "/api/v1/templates", `{"name": "Newsletter", "channel": "email", "content": {
		"subject": "News for {{contact.firstName}}", "html": "<p>Dear {{contact.firstName}}, <a href=\"https://example.edu/news\">news</a></p>",
		"from": "alumni@example.edu"}}`)
	if status != 201 {
		t.Fatalf("template: %d %v", status, doc)
	}
	template = dataOf(doc)["id"].(string)
	if status, doc := c.do("POST", "/api/v1/templates/"+template+"/activate", ""); status != 200 {
		t.Fatalf("activate: %d %v", status, doc)
	}
	bustest.Eventually(t, 20*time.Second, "both segments evaluated with every member", func() bool {
		return len(members(t, c, audience)) == n+3 && len(members(t, c, optedOut)) == 1
	})
	return audience, optedOut, template
}

func campaignStats(t *testing.T, c client, id string) map[string]any {
	t.Helper()
	status, doc := c.do("GET", "/api/v1/campaigns/"+id+"/stats", "")
	if status != 200 {
		t.Fatalf("stats: %d %v", status, doc)
	}
	return dataOf(doc)
}

// TestCampaignFlow is the spec's flow 2 through the real bus:
// campaign.started -> pipeline.message.queued -> PIPELINE_SEND_CONSUMER ->
// pipeline.message.sent -> CAMPAIGNS_TRACKING_CONSUMER ->
// campaign.message.sent -> ANALYTICS_INGEST_CONSUMER, with the lifecycle's
// illegal transitions refused and the other tenant kept out.
func TestCampaignFlow(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		a := startApp(t, testConfig(t, db.URL()))
		ca, cb := twoTenants(t, a)
		const consented = 12
		audience, optedOut, tpl := campaignSetup(t, ca, consented)

		status, doc := ca.do("POST", "/api/v1/campaigns", fmt.Sprintf(`{"name": "Autumn news", "channel": "email", "templateId": %q,
			"segmentIds": [%q], "excludeSegmentIds": [%q]}`, tpl, audience, optedOut))
		if status != 201 {
			t.Fatalf("create: %d %v", status, doc)
		}
		id := dataOf(doc)["id"].(string)
		if dataOf(doc)["status"] != "created" {
			t.Fatalf("new campaign: %v", doc)
		}
		for _, action := range []string{"pause", "resume"} {
			if status, doc := ca.do("POST", "/api/v1/campaigns/"+id+"/"+action, ""); status != 409 ||
				doc["error"].(map[string]any)["code"] != "illegal_transition" {
				t.Fatalf("%s a created campaign: %d %v", action, status, doc)
			}
		}
		if status, _ := cb.do("POST", "/api/v1/campaigns/"+id+"/start", ""); status != 404 {
			t.Fatalf("tenant B starts A's campaign: %d", status)
		}
		if status, doc := ca.do("POST", "/api/v1/campaigns/"+id+"/start", ""); status != 200 || dataOf(doc)["status"] != "started" {
			t.Fatalf("start: %d %v", status, doc)
		}
		if status, _ := ca.do("PATCH", "/api/v1/campaigns/"+id, `{"name": "Too late"}`); status != 409 {
			t.Fatalf("edit a started campaign: %d", status)
		}

		bustest.Eventually(t, 30*time.Second, "the campaign completes", func() bool {
			_, doc := ca.do("GET", "/api/v1/campaigns/"+id, "")
			return dataOf(doc)["status"] == "completed"
		})
		st := campaignStats(t, ca, id)
		// The opted-out member is excluded; the two without consent are
		// queued, and the pipeline skips them.
		if st["recipients"] != float64(consented+2) || st["queued"] != float64(consented+2) || st["sent"] != float64(consented) ||
			st["skipped"] != float64(2) || st["failed"] != float64(0) || st["pending"] != float64(0) {
			t.Fatalf("stats after completion: %v", st)
		}
		_, sb := ca.do("GET", "/api/v1/sandbox/messages?limit=100", "")
		to := map[string]int{}
		for _, m := range sb["data"].([]any) {
			to[m.(map[string]any)["to"].(string)]++
		}
		if len(to) != consented || to["optout@example.org"] != 0 {
			t.Fatalf("sandbox recipients: %v", to)
		}
		for addr, n := range to {
			if n != 1 || !strings.HasPrefix(addr, "alum") {
				t.Fatalf("sandbox recipients: %v", to)
			}
		}
		bustest.Eventually(t, 20*time.Second, "deliveries tracked and everything counted by analytics", func() bool {
			st := campaignStats(t, ca, id)
			return st["delivered"] == float64(consented) &&
				total(t, ca, "subject=campaign.message.sent") == consented && total(t, ca, "subject=campaign.message.delivered") == consented &&
				total(t, ca, "subject=campaign.started") == 1 && total(t, ca, "subject=campaign.completed") == 1
		})
		status, doc = ca.do("GET", "/api/v1/campaigns/"+id+"/report?interval=minute", "")
		if status != 200 {
			t.Fatalf("report: %d %v", status, doc)
		}
		rep := dataOf(doc)
		if rep["rates"].(map[string]any)["delivery"] != float64(1) || len(rep["timeline"].([]any)) == 0 {
			t.Fatalf("report: %v", rep)
		}
		if status, _ := ca.do("POST", "/api/v1/campaigns/"+id+"/cancel", ""); status != 409 {
			t.Fatalf("cancel a completed campaign: %d", status)
		}
		if status, _ := cb.do("GET", "/api/v1/campaigns/"+id+"/stats", ""); status != 404 {
			t.Fatalf("tenant B reads A's stats: %d", status)
		}
		if _, doc := cb.do("GET", "/api/v1/campaigns", ""); len(doc["data"].([]any)) != 0 {
			t.Fatalf("tenant B lists A's campaigns: %v", doc)
		}
	})
}
