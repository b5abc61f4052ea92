package app_test

import (
	"fmt"
	"testing"
	"time"

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
