package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/alumoutreach/alumoutreach/internal/app"
)

// TestCampaignSurvivesSIGKILL is the campaigns requirement run against the
// real binary: serve killed with SIGKILL in the middle of a campaign and
// restarted ends with exactly one message per recipient in the sandbox.
// The restarted process recognises the lease it held (its instance id is
// kept in the data directory) and takes the campaign back at once,
// resumes at the committed cursor, and the pipeline's send key absorbs
// whatever the killed process had queued but not yet sent.
func TestCampaignSurvivesSIGKILL(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary; skipped with -short")
	}
	t.Parallel()
	const recipients = 1500
	rig := newCrashRig(t)
	dir := rig.dir
	srv := rig.serve(t)
	key, tenantID := rig.tenant(t, "Crash Alumni")

	var csv strings.Builder
	csv.WriteString("email,firstName,consent.email,tags\n")
	for i := range recipients {
		fmt.Fprintf(&csv, "p%d@example.org,P%d,yes,crash-audience\n", i, i)
	}
	file := filepath.Join(t.TempDir(), "alumni.csv")
	if err := os.WriteFile(file, []byte(csv.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	out := rig.tool(t, "contacts", "import", file, "--tenant", tenantID, "--data-dir", dir)
	wantContains(t, "contacts import", out, fmt.Sprintf("%d rows, %d created, 0 updated, 0 failed", recipients, recipients))
	if t.Failed() {
		t.FailNow()
	}

	status, doc := srv.call(t, http.MethodPost, "/api/v1/segments", key,
		`{"name": "Crash audience", "rules": {"all": [{"op": "has_tag", "value": "crash-audience"}]}}`)
	if status != http.StatusCreated {
		t.Fatalf("create segment: %d %v", status, doc)
	}
	segment := str(t, doc, "id")
	pollUntil(t, srv, 60*time.Second, fmt.Sprintf("the segment has all %d members", recipients), func() (bool, string) {
		status, doc := srv.call(t, http.MethodGet, "/api/v1/segments/"+segment, key, "")
		return status == http.StatusOK && num(doc, "members") == recipients, fmt.Sprintf("%d %v", status, doc)
	})

	status, doc = srv.call(t, http.MethodPost, "/api/v1/templates", key, `{"name": "Crash newsletter", "channel": "email", "content": {
		"subject": "News for {{contact.firstName}}", "html": "<p>Dear {{contact.firstName}}, the news.</p>", "from": "alumni@example.edu"}}`)
	if status != http.StatusCreated {
		t.Fatalf("create template: %d %v", status, doc)
	}
	template := str(t, doc, "id")
	if status, doc := srv.call(t, http.MethodPost, "/api/v1/templates/"+template+"/activate", key, ""); status != http.StatusOK {
		t.Fatalf("activate template: %d %v", status, doc)
	}

	// 300 messages/s: the send takes about 5 s, time enough to kill it
	// in the middle.
	status, doc = srv.call(t, http.MethodPost, "/api/v1/campaigns", key, fmt.Sprintf(`{"name": "Crash news", "channel": "email",
		"templateId": %q, "segmentIds": [%q], "rate": 300}`, template, segment))
	if status != http.StatusCreated {
		t.Fatalf("create campaign: %d %v", status, doc)
	}
	campaign := str(t, doc, "id")
	if status, doc := srv.call(t, http.MethodPost, "/api/v1/campaigns/"+campaign+"/start", key, ""); status != http.StatusOK || doc["status"] != "started" {
		t.Fatalf("start campaign: %d %v", status, doc)
	}

	stats := func(p *serveProc) map[string]any {
		t.Helper()
		status, doc := p.call(t, http.MethodGet, "/api/v1/campaigns/"+campaign+"/stats", key, "")
		if status != http.StatusOK {
			t.Fatalf("campaign stats: %d %v", status, doc)
		}
		return doc
	}
	var atKill map[string]any
	pollUntil(t, srv, 60*time.Second, "300 messages sent", func() (bool, string) {
		atKill = stats(srv)
		if atKill["status"] == "completed" {
			t.Fatalf("the campaign completed before it could be killed in the middle: %v", atKill)
		}
		return num(atKill, "sent") >= 300, fmt.Sprintf("%v", atKill)
	})
	if code := srv.stop(t, syscall.SIGKILL, 10*time.Second); code == 0 {
		t.Fatalf("serve exited 0 on SIGKILL")
	}
	sentAtKill := num(atKill, "sent")
	t.Logf("killed serve with %v messages sent and %v queued of %d", sentAtKill, num(atKill, "queued"), recipients)
	if sentAtKill >= recipients*4/5 {
		t.Fatalf("%v of %d already sent when killed: the campaign was not throttled to 300/s (stats %v)", sentAtKill, recipients, atKill)
	}

	// The restart: the same instance takes its campaign back without
	// waiting for its lease to expire.
	killedAt := time.Now()
	srv = rig.serve(t)
	pollUntil(t, srv, 90*time.Second, "the campaign completes after the restart", func() (bool, string) {
		status, doc := srv.call(t, http.MethodGet, "/api/v1/campaigns/"+campaign, key, "")
		return status == http.StatusOK && doc["status"] == "completed", fmt.Sprintf("%d %v", status, doc)
	})
	t.Logf("completed %v after the kill", time.Since(killedAt).Round(100*time.Millisecond))
	st := stats(srv)
	for field, want := range map[string]float64{"recipients": recipients, "queued": recipients, "sent": recipients,
		"skipped": 0, "failed": 0, "pending": 0} {
		if num(st, field) != want {
			t.Errorf("stats after completion: %s = %v, want %v", field, st[field], want)
		}
	}
	if t.Failed() {
		t.FailNow()
	}
	if code := srv.stop(t, syscall.SIGTERM, 20*time.Second); code != 0 {
		t.Fatalf("serve exited %d after SIGTERM, want 0", code)
	}

	// The database itself: one sandbox message per recipient, one
	// pipeline message per contact, all sent.
	ctx := context.Background()
	db, sandbox := openDataDir(t, dir, ""), openDataDir(t, dir, app.SandboxDBFile)
	var total, distinct int
	if err := sandbox.Reader().QueryRowContext(ctx, `SELECT count(*), count(DISTINCT recipient) FROM sandbox_messages`).Scan(&total, &distinct); err != nil {
		t.Fatal(err)
	}
	if total != recipients || distinct != recipients {
		t.Errorf("sandbox: %d messages to %d distinct recipients, want %d and %d", total, distinct, recipients, recipients)
	}
	var msgs, contacts, notSent int
	if err := db.Reader().QueryRowContext(ctx, `SELECT count(*), count(DISTINCT contact_id),
		coalesce(sum(CASE WHEN status IN ('sent', 'delivered') THEN 0 ELSE 1 END), 0)
		FROM messages WHERE tenant_id = $1 AND source_id = $2`, tenantID, campaign).Scan(&msgs, &contacts, &notSent); err != nil {
		t.Fatal(err)
	}
	if msgs != recipients || contacts != recipients || notSent != 0 {
		t.Errorf("messages of the campaign: %d rows for %d contacts, %d neither sent nor delivered; want %d, %d, 0",
			msgs, contacts, notSent, recipients, recipients)
		rows, err := db.Reader().QueryContext(ctx, `SELECT status, count(*) FROM messages WHERE tenant_id = $1 AND source_id = $2 GROUP BY status`, tenantID, campaign)
		if err == nil {
			for rows.Next() {
				var s string
				var n int
				if rows.Scan(&s, &n) == nil {
					t.Logf("messages with status %s: %d", s, n)
				}
			}
			rows.Close()
		}
	}
}

// call sends an API request with body (none when empty) and returns the
// status and the decoded response, its "data" member when it has one.
func (p *serveProc) call(t *testing.T, method, path, key, body string) (int, map[string]any) {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, p.base+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	resp, err := (&http.Client{Timeout: 10 * time.Second}).Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var doc map[string]any
	if err := json.Unmarshal(raw, &doc); err != nil {
		return resp.StatusCode, map[string]any{"raw": string(raw)}
	}
	if data, ok := doc["data"].(map[string]any); ok {
		return resp.StatusCode, data
	}
	return resp.StatusCode, doc
}

// pollUntil calls check until it reports true, failing the test with
// check's last description once within has passed or serve has exited.
func pollUntil(t *testing.T, p *serveProc, within time.Duration, what string, check func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		ok, last := check()
		if ok {
			return
		}
		select {
		case <-p.exited:
			t.Fatalf("serve exited (%v) while waiting for %s; last: %s", p.err, what, last)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("no %s within %v; last: %s", what, within, last)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func str(t *testing.T, doc map[string]any, field string) string {
	t.Helper()
	s, ok := doc[field].(string)
	if !ok || s == "" {
		t.Fatalf("response without %q: %v", field, doc)
	}
	return s
}

// num is a numeric field of a decoded response (-1 when absent).
func num(doc map[string]any, field string) float64 {
	if f, ok := doc[field].(float64); ok {
		return f
	}
	return -1
}

func tailLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = append([]string{fmt.Sprintf("... %d earlier lines", len(lines)-n)}, lines[len(lines)-n:]...)
	}
	return strings.Join(lines, "\n")
}
