package app_test

import (
	"fmt"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/alumoutreach/alumoutreach/internal/platform/bus/bustest"
	"github.com/alumoutreach/alumoutreach/internal/platform/store"
	"github.com/alumoutreach/alumoutreach/internal/platform/store/storetest"
)

// allPages walks a list route (path may carry a query) page by page with
// limit, and returns the items in the order served, each named by key; it
// fails on a page over the limit.
func allPages(t *testing.T, c client, path string, limit int, key func(map[string]any) string) []string {
	t.Helper()
	sep := "?"
	if strings.Contains(path, "?") {
		sep = "&"
	}
	var keys []string
	cursor := ""
	for range 100 {
		q := fmt.Sprintf("%s%slimit=%d", path, sep, limit)
		if cursor != "" {
			q += "&cursor=" + url.QueryEscape(cursor)
		}
		status, doc := c.do("GET", q, "")
		if status != 200 {
			t.Fatalf("GET %s: %d %v", q, status, doc)
		}
		items, _ := doc["data"].([]any)
		if len(items) > limit {
			t.Fatalf("GET %s: %d items, over the limit", q, len(items))
		}
		for _, it := range items {
			keys = append(keys, key(it.(map[string]any)))
		}
		next, _ := doc["nextCursor"].(string)
		if next == "" {
			return keys
		}
		cursor = next
	}
	t.Fatalf("GET %s: no last page after 100 pages", path)
	return nil
}

func idKey(item map[string]any) string { return item["id"].(string) }

// Every cursor-paginated list of the modules that can grow long comes back
// page after page in its order, each item once, whatever the page size,
// and never with another tenant's items: campaigns and workflows created in
// a burst (several in one millisecond), a workflow's runs, the sandbox's
// messages, suppressions across channels.
func TestListsPaginate(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		a := startApp(t, testConfig(t, db.URL()))
		ca, cb := twoTenants(t, a)
		tpl := emailTemplate(t, ca, "Paged")
		_, doc := ca.do("POST", "/api/v1/segments", `{"name": "Everyone", "rules": {"all": [{"field": "email", "op": "exists"}]}}`)
		audience := dataOf(doc)["id"].(string)
		const n = 7
		var campaigns, workflows []string
		for i := range n {
			campaigns = append(campaigns, newCampaign(t, ca, tpl, audience, ""))
			status, doc := ca.do("POST", "/api/v1/workflows", fmt.Sprintf(`{"name": "Paged %d", "trigger": {"event": "contact.created"},
				"nodes": [{"id": "hello", "type": "send", "channel": "email", "templateId": %q}]}`, i, tpl))
			if status != 201 {
				t.Fatalf("create workflow: %d %v", status, doc)
			}
			workflows = append(workflows, dataOf(doc)["id"].(string))
		}
		// Ids are time-ordered, so newest first is their reverse order.
		slices.Reverse(campaigns)
		slices.Reverse(workflows)

		// One workflow greets every new contact: n runs, n sandbox messages.
		workflowAction(t, ca, workflows[0], "activate", "active")
		for i := range n {
			newContact(t, ca, fmt.Sprintf("paged%d@example.org", i), "")
		}
		runsPath := "/api/v1/workflow-runs?workflowId=" + workflows[0]
		bustest.Eventually(t, 20*time.Second, "every contact greeted", func() bool {
			_, doc := ca.do("GET", runsPath+"&status=completed&limit=100", "")
			_, sb := ca.do("GET", "/api/v1/sandbox/messages?limit=100", "")
			return len(doc["data"].([]any)) == n && len(sb["data"].([]any)) == n
		})
		var suppressed []string
		for i := range n {
			ch, addr := "email", fmt.Sprintf("gone%d@example.org", i)
			if i%2 == 1 {
				ch, addr = "sms", fmt.Sprintf("+4477009000%02d", i)
			}
			if status, doc := ca.do("POST", "/api/v1/suppressions", fmt.Sprintf(`{"channel": %q, "address": %q}`, ch, addr)); status != 201 {
				t.Fatalf("suppress: %d %v", status, doc)
			}
			suppressed = append(suppressed, ch+" "+addr)
		}
		slices.Sort(suppressed)
		suppressionKey := func(item map[string]any) string { return item["channel"].(string) + " " + item["address"].(string) }

		for _, tc := range []struct {
			path string
			key  func(map[string]any) string
			want []string // nil: the single page of the first request
		}{
			{"/api/v1/campaigns", idKey, campaigns},
			{"/api/v1/workflows", idKey, workflows},
			{runsPath, idKey, nil},
			{"/api/v1/sandbox/messages", idKey, nil},
			{"/api/v1/suppressions", suppressionKey, suppressed},
		} {
			want := tc.want
			if want == nil {
				want = allPages(t, ca, tc.path, 100, tc.key)
			}
			if len(want) != n {
				t.Fatalf("%s: %d items, want %d", tc.path, len(want), n)
			}
			for _, limit := range []int{1, 2, 3, n} {
				if got := allPages(t, ca, tc.path, limit, tc.key); !slices.Equal(got, want) {
					t.Errorf("%s by %d: %v, want %v", tc.path, limit, got, want)
				}
			}
			if got := allPages(t, cb, tc.path, 2, tc.key); len(got) != 0 {
				t.Errorf("tenant B lists %d of A's items in %s", len(got), tc.path)
			}
		}
		// The filters still filter: one channel, one recipient, one status.
		if got := allPages(t, ca, "/api/v1/suppressions?channel=sms", 2, suppressionKey); len(got) != n/2 {
			t.Errorf("sms suppressions: %v", got)
		}
		if got := allPages(t, ca, "/api/v1/sandbox/messages?to=paged3@example.org", 1, idKey); len(got) != 1 {
			t.Errorf("sandbox messages to one recipient: %v", got)
		}
		if got := allPages(t, ca, runsPath+"&status=failed", 2, idKey); len(got) != 0 {
			t.Errorf("failed runs: %v", got)
		}
	})
}
