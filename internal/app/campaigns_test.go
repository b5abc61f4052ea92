package app_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/alumoutreach/alumoutreach/internal/app"
	"github.com/alumoutreach/alumoutreach/internal/campaigns"
	"github.com/alumoutreach/alumoutreach/internal/event"
	"github.com/alumoutreach/alumoutreach/internal/platform/bus"
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
			"segmentIds": [%q], "excludeSegmentIds": [%q], "sender": {"from": "news@example.edu", "fromName": "Alumni News"}}`, tpl, audience, optedOut))
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

		waitStatus(t, ca, id, "completed")
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
			if from := m.(map[string]any)["from"]; from != "news@example.edu" {
				t.Fatalf("sent from %v, not the campaign's sender", from)
			}
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
		resp, err := http.Get("http://" + a.HTTPAddr() + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		metrics, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		for _, want := range []string{fmt.Sprintf("campaign_messages_queued_total %d\n", consented+2), "campaigns_running 0\n"} {
			if !strings.Contains(string(metrics), want) {
				t.Errorf("/metrics lacks %q", want)
			}
		}
		if status, _ := cb.do("GET", "/api/v1/campaigns/"+id+"/stats", ""); status != 404 {
			t.Fatalf("tenant B reads A's stats: %d", status)
		}
		if _, doc := cb.do("GET", "/api/v1/campaigns", ""); len(doc["data"].([]any)) != 0 {
			t.Fatalf("tenant B lists A's campaigns: %v", doc)
		}
	})
}

// newCampaign creates and returns a campaign of the template to the
// audience, with extra JSON fields (e.g. `"rate": 20`).
func newCampaign(t *testing.T, c client, tpl, audience, extra string) string {
	t.Helper()
	body := fmt.Sprintf(`{"name": "News %d", "channel": "email", "templateId": %q, "segmentIds": [%q]%s}`, time.Now().UnixNano(), tpl, audience, extra)
	status, doc := c.do("POST", "/api/v1/campaigns", body)
	if status != 201 {
		t.Fatalf("create campaign: %d %v", status, doc)
	}
	return dataOf(doc)["id"].(string)
}

func campaignAction(t *testing.T, c client, id, action, wantStatus string) {
	t.Helper()
	status, doc := c.do("POST", "/api/v1/campaigns/"+id+"/"+action, "")
	if status != 200 || dataOf(doc)["status"] != wantStatus {
		t.Fatalf("%s: %d %v", action, status, doc)
	}
}

// startThrottled starts a campaign at 20 messages a second and returns
// once a few are sent: a send in the middle.
func startThrottled(t *testing.T, c client, tpl, audience string) string {
	t.Helper()
	id := newCampaign(t, c, tpl, audience, `, "rate": 20`)
	campaignAction(t, c, id, "start", "started")
	bustest.Eventually(t, 20*time.Second, "a few messages sent", func() bool {
		return campaignStats(t, c, id)["sent"].(float64) >= 5
	})
	return id
}

// waitStatus waits until the campaign reaches status.
func waitStatus(t *testing.T, c client, id, status string) {
	t.Helper()
	bustest.Eventually(t, 30*time.Second, "campaign "+status, func() bool {
		_, doc := c.do("GET", "/api/v1/campaigns/"+id, "")
		return dataOf(doc)["status"] == status
	})
}

// settled waits until none of the campaign's queued messages is still on
// its way, and returns the stats then.
func settled(t *testing.T, c client, id string) map[string]any {
	t.Helper()
	var st map[string]any
	bustest.Eventually(t, 20*time.Second, "the queued messages settle", func() bool {
		st = campaignStats(t, c, id)
		return st["pending"] == float64(0)
	})
	return st
}

// sandboxRecipients counts the sandbox's messages per address.
func sandboxRecipients(t *testing.T, c client) map[string]int {
	t.Helper()
	_, sb := c.do("GET", "/api/v1/sandbox/messages?limit=500", "")
	to := map[string]int{}
	for _, m := range sb["data"].([]any) {
		to[m.(map[string]any)["to"].(string)]++
	}
	return to
}

// TestCampaignPauseResumeAndCancel pauses a throttled campaign in the
// middle of its send, resumes it to the end with nobody sent twice or
// skipped, and cancels another in the middle.
func TestCampaignPauseResumeAndCancel(t *testing.T) {
	t.Parallel()
	a := startApp(t, testConfig(t, ""))
	c, _ := twoTenants(t, a)
	const consented = 40
	audience, _, tpl := campaignSetup(t, c, consented)
	id := startThrottled(t, c, tpl, audience)
	campaignAction(t, c, id, "pause", "paused")
	paused := settled(t, c, id)
	if paused["queued"].(float64) >= consented {
		t.Fatalf("the pause stopped nothing: %v", paused)
	}
	time.Sleep(300 * time.Millisecond) // long enough for a runner that ignored the pause to queue more
	if again := campaignStats(t, c, id); again["queued"] != paused["queued"] || again["sent"] != paused["sent"] {
		t.Fatalf("sending went on while paused: %v then %v", paused, again)
	}
	if status, _ := c.do("POST", "/api/v1/campaigns/"+id+"/pause", ""); status != 409 {
		t.Fatalf("pause a paused campaign: %d", status)
	}
	campaignAction(t, c, id, "resume", "started")
	waitStatus(t, c, id, "completed")
	// Without an exclusion segment the opted-out member gets it too.
	const sendable = consented + 1
	if st := campaignStats(t, c, id); st["sent"] != float64(sendable) || st["skipped"] != float64(2) {
		t.Fatalf("after resuming: %v", st)
	}
	to := sandboxRecipients(t, c)
	if len(to) != sendable {
		t.Fatalf("%d recipients got the campaign, want %d", len(to), sendable)
	}
	for addr, n := range to {
		if n != 1 {
			t.Fatalf("%s got %d messages", addr, n)
		}
	}

	other := startThrottled(t, c, tpl, audience)
	campaignAction(t, c, other, "cancel", "cancelled")
	cancelled := settled(t, c, other)
	if cancelled["queued"].(float64) >= consented {
		t.Fatalf("the cancel stopped nothing: %v", cancelled)
	}
	for _, action := range []string{"resume", "start", "pause"} {
		if status, _ := c.do("POST", "/api/v1/campaigns/"+other+"/"+action, ""); status != 409 {
			t.Fatalf("%s a cancelled campaign: %d", action, status)
		}
	}
	bustest.Eventually(t, 10*time.Second, "the lifecycle events counted", func() bool {
		return total(t, c, "subject=campaign.paused") == 1 && total(t, c, "subject=campaign.resumed") == 1 &&
			total(t, c, "subject=campaign.cancelled") == 1 && total(t, c, "subject=campaign.completed") == 1
	})
}

// TestScheduledCampaignStartsAfterRestart schedules a campaign, stops the
// process before its time and starts it again after: the durable timer
// fires once the process is back.
func TestScheduledCampaignStartsAfterRestart(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		cfg := testConfig(t, db.URL())
		first, err := app.New(context.Background(), cfg, bustest.Logger(t))
		if err != nil {
			t.Fatal(err)
		}
		if err := first.Start(context.Background()); err != nil {
			t.Fatal(err)
		}
		_, key, err := first.Tenants().Create(context.Background(), "Alumni")
		if err != nil {
			t.Fatal(err)
		}
		c := client{t, "http://" + first.HTTPAddr(), key}
		audience, _, tpl := campaignSetup(t, c, 3)
		id := newCampaign(t, c, tpl, audience, "")
		at := time.Now().Add(1500 * time.Millisecond).UTC()
		status, doc := c.do("POST", "/api/v1/campaigns/"+id+"/schedule", `{"at": "`+at.Format(time.RFC3339Nano)+`"}`)
		if status != 200 || dataOf(doc)["status"] != "scheduled" {
			t.Fatalf("schedule: %d %v", status, doc)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := first.Shutdown(ctx); err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Until(at) + 500*time.Millisecond) // the start time passes while nothing runs

		second := startApp(t, cfg)
		c.base = "http://" + second.HTTPAddr()
		var started map[string]any
		bustest.Eventually(t, 30*time.Second, "the overdue campaign starts and completes", func() bool {
			_, doc := c.do("GET", "/api/v1/campaigns/"+id, "")
			started = dataOf(doc)
			return started["status"] == "completed"
		})
		startedAt, _ := time.Parse(time.RFC3339Nano, started["startedAt"].(string))
		if startedAt.Before(at) {
			t.Fatalf("started at %s, before its time %s", startedAt, at)
		}
		if st := campaignStats(t, c, id); st["sent"] != float64(3+1) { // the opted-out member too: no exclusion here
			t.Fatalf("stats: %v", st)
		}
	})
}

// TestCampaignAtEachRecipientsLocalTime schedules a campaign for the
// current time of day in each recipient's zone: the recipient far east
// (whose time passed hours ago) and the one in UTC get it now, the one
// far west not before their own clock says so.
func TestCampaignAtEachRecipientsLocalTime(t *testing.T) {
	t.Parallel()
	a := startApp(t, testConfig(t, ""))
	c, _ := twoTenants(t, a)
	for _, p := range []struct{ name, zone string }{{"east", "Pacific/Kiritimati"}, {"utc", "UTC"}, {"west", "Etc/GMT+12"}} {
		if status, doc := c.do("POST", "/api/v1/contacts", fmt.Sprintf(`{"email": "%s@example.org", "timeZone": %q, "tags": ["alumni"],
			"consent": {"email": {"granted": true, "source": "signup_form"}}}`, p.name, p.zone)); status != 201 {
			t.Fatalf("contact: %d %v", status, doc)
		}
	}
	_, doc := c.do("POST", "/api/v1/segments", `{"name": "Alumni", "rules": {"all": [{"op": "has_tag", "value": "alumni"}]}}`)
	audience := dataOf(doc)["id"].(string)
	_, doc = c.do("POST", "/api/v1/templates", `{"name": "Hello", "channel": "email", "content": {"subject": "Hi", "html": "<p>Hi</p>", "from": "alumni@example.edu"}}`)
	tpl := dataOf(doc)["id"].(string)
	c.do("POST", "/api/v1/templates/"+tpl+"/activate", "")
	bustest.Eventually(t, 20*time.Second, "the segment evaluated", func() bool { return len(members(t, c, audience)) == 3 })

	id := newCampaign(t, c, tpl, audience, "")
	now := time.Now().UTC()
	status, doc := c.do("POST", "/api/v1/campaigns/"+id+"/schedule", fmt.Sprintf(`{"localTime": %q, "date": %q, "timeZone": "UTC"}`,
		now.Format("15:04"), now.Format(time.DateOnly)))
	if status != 200 {
		t.Fatalf("schedule: %d %v", status, doc)
	}
	bustest.Eventually(t, 30*time.Second, "east and utc sent", func() bool {
		st := campaignStats(t, c, id)
		return st["sent"] == float64(2) && st["recipients"] == float64(3)
	})
	to := sandboxRecipients(t, c)
	if to["east@example.org"] != 1 || to["utc@example.org"] != 1 || to["west@example.org"] != 0 {
		t.Fatalf("sandbox: %v", to)
	}
	time.Sleep(300 * time.Millisecond) // a runner that ignored send times would queue west now
	if st := campaignStats(t, c, id); st["queued"] != float64(2) || st["status"] != "started" {
		t.Fatalf("west queued before their time: %v", st)
	}
	campaignAction(t, c, id, "cancel", "cancelled")
}

// TestCampaignStatsExactUnderRedelivery delivers every event to the
// tracking consumer twice, and opens one message twice: each status
// counts once, each open once per open.
func TestCampaignStatsExactUnderRedelivery(t *testing.T) {
	t.Parallel()
	twice := app.WithHandlerWrapper(func(consumer string, h bus.Handler) bus.Handler {
		if consumer != campaigns.TrackingConsumerName {
			return h
		}
		return func(ctx context.Context, env event.Envelope) error {
			if err := h(ctx, env); err != nil {
				return err
			}
			return h(ctx, env)
		}
	})
	a := startApp(t, testConfig(t, ""), twice)
	c, _ := twoTenants(t, a)
	const consented = 8
	audience, _, tpl := campaignSetup(t, c, consented)
	id := newCampaign(t, c, tpl, audience, "")
	campaignAction(t, c, id, "start", "started")
	const sendable = consented + 1 // no exclusion segment: the opted-out member too
	bustest.Eventually(t, 30*time.Second, "sent and delivered", func() bool {
		st := campaignStats(t, c, id)
		return st["delivered"] == float64(sendable)
	})
	_, sb := c.do("GET", "/api/v1/sandbox/messages?limit=1", "")
	html := sb["data"].([]any)[0].(map[string]any)["html"].(string)
	pixel := html[strings.Index(html, "/t/o/"):]
	pixel = pixel[:strings.IndexByte(pixel, '"')]
	for range 2 {
		resp, err := http.Get("http://" + a.HTTPAddr() + pixel)
		if err != nil || resp.StatusCode != 200 {
			t.Fatalf("open: %v %v", resp, err)
		}
		resp.Body.Close()
	}
	bustest.Eventually(t, 20*time.Second, "the opens counted and the campaign completed", func() bool {
		st := campaignStats(t, c, id)
		return st["opened"] == float64(2) && st["status"] == "completed"
	})
	st := campaignStats(t, c, id)
	if st["sent"] != float64(sendable) || st["delivered"] != float64(sendable) || st["uniqueOpened"] != float64(1) ||
		st["skipped"] != float64(2) || st["status"] != "completed" {
		t.Fatalf("stats under redelivery: %v", st)
	}
	bustest.Eventually(t, 20*time.Second, "each status re-published once", func() bool {
		return total(t, c, "subject=campaign.message.sent") == sendable && total(t, c, "subject=campaign.message.opened") == 2
	})
}

// TestCampaignRefusesBadInput: each bad request is a 4xx naming what to
// fix, and leaves nothing stored or published.
func TestCampaignRefusesBadInput(t *testing.T) {
	t.Parallel()
	a := startApp(t, testConfig(t, ""))
	c, other := twoTenants(t, a)
	audience, _, tpl := campaignSetup(t, c, 1)
	_, doc := c.do("POST", "/api/v1/templates", `{"name": "Text", "channel": "sms", "content": {"body": "Hi"}}`)
	smsTpl := dataOf(doc)["id"].(string)
	_, doc = other.do("POST", "/api/v1/segments", `{"name": "Theirs", "rules": {"all": [{"op": "has_tag", "value": "x"}]}}`)
	theirSegment := dataOf(doc)["id"].(string)
	ok := fmt.Sprintf(`"channel": "email", "templateId": %q, "segmentIds": [%q]`, tpl, audience)
	for _, tc := range []struct {
		name, body string
		status     int
		code, says string
	}{
		{"not JSON", `{"name": `, 400, "invalid_json", ""},
		{"unknown field", `{"name": "N", "audience": "all", ` + ok + `}`, 400, "", "audience"},
		{"no name", `{` + ok + `}`, 400, "invalid_field", "required"},
		{"bad channel", fmt.Sprintf(`{"name": "N", "channel": "fax", "templateId": %q, "segmentIds": [%q]}`, tpl, audience), 400, "invalid_field", "email, sms or whatsapp"},
		{"unknown template", fmt.Sprintf(`{"name": "N", "channel": "email", "templateId": "nope", "segmentIds": [%q]}`, audience), 400, "invalid_field", `no template "nope"`},
		{"template of another channel", fmt.Sprintf(`{"name": "N", "channel": "email", "templateId": %q, "segmentIds": [%q]}`, smsTpl, audience), 400, "invalid_field", "is for sms"},
		{"no segments", fmt.Sprintf(`{"name": "N", "channel": "email", "templateId": %q, "segmentIds": []}`, tpl), 400, "invalid_field", "segmentIds takes 1 to 20"},
		{"another tenant's segment", fmt.Sprintf(`{"name": "N", "channel": "email", "templateId": %q, "segmentIds": [%q]}`, tpl, theirSegment), 400, "invalid_field", "no segment"},
		{"bad sender", `{"name": "N", "sender": {"from": "not an address"}, ` + ok + `}`, 400, "invalid_field", "sender.from"},
		{"negative rate", `{"name": "N", "rate": -1, ` + ok + `}`, 400, "invalid_field", "rate"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			status, doc := c.do("POST", "/api/v1/campaigns", tc.body)
			e, _ := doc["error"].(map[string]any)
			if status != tc.status || (tc.code != "" && e["code"] != tc.code) || !strings.Contains(fmt.Sprint(e["message"]), tc.says) {
				t.Fatalf("got %d %v; want %d %s saying %q", status, doc, tc.status, tc.code, tc.says)
			}
		})
	}
	if _, doc := c.do("GET", "/api/v1/campaigns", ""); len(doc["data"].([]any)) != 0 {
		t.Fatalf("refused campaigns were stored: %v", doc)
	}
	id := newCampaign(t, c, tpl, audience, "")
	for _, tc := range []struct{ name, body, says string }{
		{"past", `{"at": "2020-01-01T00:00:00Z"}`, "in the past"},
		{"bad zone", `{"at": "2099-01-01T09:00", "timeZone": "Nowhere/City"}`, "IANA"},
		{"empty", `{}`, "give at"},
	} {
		if status, doc := c.do("POST", "/api/v1/campaigns/"+id+"/schedule", tc.body); status != 400 || !strings.Contains(fmt.Sprint(doc["error"]), tc.says) {
			t.Fatalf("schedule %s: %d %v", tc.name, status, doc)
		}
	}
	if status, _ := c.do("POST", "/api/v1/campaigns/nope/schedule", `{}`); status != 404 {
		t.Fatalf("schedule an unknown campaign: %d, want 404 before any check of the schedule", status)
	}
	if status, doc := c.do("GET", "/api/v1/campaigns/"+id+"/report?interval=week", ""); status != 400 || !strings.Contains(fmt.Sprint(doc["error"]), "minute, hour or day") {
		t.Fatalf("report by week: %d %v", status, doc)
	}
	// A scheduled campaign whose template is archived before its time
	// cannot start then: it is cancelled, saying why.
	doomed := newCampaign(t, c, tpl, audience, "")
	at := time.Now().Add(time.Second).UTC().Format(time.RFC3339Nano)
	if status, doc := c.do("POST", "/api/v1/campaigns/"+doomed+"/schedule", `{"at": "`+at+`"}`); status != 200 {
		t.Fatalf("schedule: %d %v", status, doc)
	}
	c.do("POST", "/api/v1/templates/"+tpl+"/archive", "")
	if status, doc := c.do("POST", "/api/v1/campaigns/"+id+"/start", ""); status != 409 || !strings.Contains(fmt.Sprint(doc["error"]), "template_not_active") {
		t.Fatalf("start with an archived template: %d %v", status, doc)
	}
	waitStatus(t, c, doomed, "cancelled") // at its time
	bustest.Eventually(t, 10*time.Second, "the two campaigns created, one scheduled and cancelled", func() bool {
		return total(t, c, "subject=campaign.created") == 2 && total(t, c, "subject=campaign.scheduled") == 1 &&
			total(t, c, "subject=campaign.cancelled") == 1
	})
	if n := total(t, c, "subject=campaign.started"); n != 0 {
		t.Fatalf("%v campaigns started", n)
	}
}
