package app_test

import (
	"fmt"
	"net/url"
	"slices"
	"testing"

	"github.com/alumoutreach/alumoutreach/internal/platform/store"
	"github.com/alumoutreach/alumoutreach/internal/platform/store/storetest"
)

// allPages walks a list route page by page with limit, and returns the
// ids in the order served; it fails on a page over the limit.
func allPages(t *testing.T, c client, path string, limit int) []string {
	t.Helper()
	var ids []string
	cursor := ""
	for range 100 {
		q := fmt.Sprintf("%s?limit=%d", path, limit)
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
			ids = append(ids, it.(map[string]any)["id"].(string))
		}
		next, _ := doc["nextCursor"].(string)
		if next == "" {
			return ids
		}
		cursor = next
	}
	t.Fatalf("GET %s: no last page after 100 pages", path)
	return nil
}

// Campaigns and workflows created in a burst (several in one millisecond)
// come back page after page, newest first, each once, and never another
// tenant's.
func TestCampaignAndWorkflowListsPaginate(t *testing.T) {
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
		for _, tc := range []struct {
			path string
			want []string
		}{{"/api/v1/campaigns", campaigns}, {"/api/v1/workflows", workflows}} {
			for _, limit := range []int{1, 2, 3, n} {
				if got := allPages(t, ca, tc.path, limit); !slices.Equal(got, tc.want) {
					t.Errorf("%s by %d: %v, want %v", tc.path, limit, got, tc.want)
				}
			}
			if got := allPages(t, cb, tc.path, 2); len(got) != 0 {
				t.Errorf("tenant B lists %d of A's in %s", len(got), tc.path)
			}
		}
	})
}
