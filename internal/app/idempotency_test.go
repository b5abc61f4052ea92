package app_test

import (
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/alumoutreach/alumoutreach/internal/platform/store"
	"github.com/alumoutreach/alumoutreach/internal/platform/store/storetest"
)

// post sends a JSON POST with an Idempotency-Key and returns status,
// headers and body.
func post(t *testing.T, c client, path, key, body string) (int, http.Header, string) {
	t.Helper()
	req, err := http.NewRequest("POST", c.base+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+c.key)
	req.Header.Set("Content-Type", "application/json")
	if key != "" {
		req.Header.Set("Idempotency-Key", key)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, string(raw)
}

func TestIdempotencyKeyReplaysTheFirstAnswer(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		a := startApp(t, testConfig(t, db.URL()))
		ca, cb := twoTenants(t, a)
		body := `{"email": "once@example.org"}`

		status, h1, first := post(t, ca, "/api/v1/contacts", "create-once-1", body)
		if status != 201 || h1.Get("Idempotent-Replayed") != "" {
			t.Fatalf("first: %d %s", status, first)
		}
		status, h2, again := post(t, ca, "/api/v1/contacts", "create-once-1", body)
		if status != 201 || again != first || h2.Get("Idempotent-Replayed") != "true" || h2.Get("Location") != h1.Get("Location") {
			t.Fatalf("retry: %d %v %s, want the first answer %s", status, h2, again, first)
		}
		_, doc := ca.do("GET", "/api/v1/contacts", "")
		if n := len(doc["data"].([]any)); n != 1 {
			t.Fatalf("%d contacts after a retried create, want 1", n)
		}
		// The same key for another request is refused.
		if status, _, resp := post(t, ca, "/api/v1/contacts", "create-once-1", `{"email": "other@example.org"}`); status != 409 || !strings.Contains(resp, "idempotency_key_reused") {
			t.Fatalf("reused key: %d %s", status, resp)
		}
		// A client error is an answer too: replayed, not retried.
		status, _, bad := post(t, ca, "/api/v1/contacts", "bad-1", `{"email": "nope"}`)
		if status != 400 {
			t.Fatalf("bad create: %d %s", status, bad)
		}
		if status, h, again := post(t, ca, "/api/v1/contacts", "bad-1", `{"email": "nope"}`); status != 400 || again != bad || h.Get("Idempotent-Replayed") != "true" {
			t.Fatalf("bad retry: %d %s", status, again)
		}
		// Keys are per tenant.
		if status, _, resp := post(t, cb, "/api/v1/contacts", "create-once-1", body); status != 201 || resp == first {
			t.Fatalf("tenant B with A's key string: %d %s", status, resp)
		}
		for _, key := range []string{strings.Repeat("k", 256), "naïve-key", "two words"} {
			if status, _, resp := post(t, ca, "/api/v1/contacts", key, body); status != 400 || !strings.Contains(resp, "invalid_idempotency_key") {
				t.Errorf("key %q: %d %s", key, status, resp)
			}
		}
		// Without a key nothing changes: a second create conflicts as usual.
		if status, _, resp := post(t, ca, "/api/v1/contacts", "", body); status != 409 {
			t.Fatalf("create without a key: %d %s", status, resp)
		}
	})
}
