package cli

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/alumoutreach/alumoutreach/internal/app"
)

// TestWorkflowRunsSurviveSIGKILL: serve killed with SIGKILL while a
// thousand runs are being started and are waiting in a delay, then
// restarted, ends with every run completed and exactly two messages per
// contact: no run lost, no node executed twice. Triggers the killed
// process had not acknowledged are redelivered and start nothing twice
// (one run per workflow and trigger); delays that ended while nothing ran
// fire at the restart, and a timer the kill lost (armed just before it) is
// made up for by the sweep.
func TestWorkflowRunsSurviveSIGKILL(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary; skipped with -short")
	}
	t.Parallel()
	const contacts = 1000
	rig := newCrashRig(t)
	dir := rig.dir
	srv := rig.serve(t)
	key, tenantID := rig.tenant(t, "Crash Alumni")
	status, doc := srv.call(t, http.MethodPost, "/api/v1/templates", key, `{"name": "Hello", "channel": "email", "content": {
		"subject": "Hello {{contact.firstName}}", "html": "<p>Dear {{contact.firstName}}</p>", "from": "alumni@example.edu"}}`)
	if status != http.StatusCreated {
		t.Fatalf("create template: %d %v", status, doc)
	}
	template := str(t, doc, "id")
	if status, doc := srv.call(t, http.MethodPost, "/api/v1/templates/"+template+"/activate", key, ""); status != http.StatusOK {
		t.Fatalf("activate template: %d %v", status, doc)
	}
	status, doc = srv.call(t, http.MethodPost, "/api/v1/workflows", key, fmt.Sprintf(`{"name": "Welcome", "trigger": {"event": "contact.created"},
		"nodes": [{"id": "hello", "type": "send", "channel": "email", "templateId": %q, "next": "pause"},
		          {"id": "pause", "type": "delay", "duration": "3s", "next": "again"},
		          {"id": "again", "type": "send", "channel": "email", "templateId": %q}]}`, template, template))
	if status != http.StatusCreated {
		t.Fatalf("create workflow: %d %v", status, doc)
	}
	workflow := str(t, doc, "id")
	if status, doc := srv.call(t, http.MethodPost, "/api/v1/workflows/"+workflow+"/activate", key, ""); status != http.StatusOK {
		t.Fatalf("activate workflow: %d %v", status, doc)
	}

	var csv strings.Builder
	csv.WriteString("email,firstName,consent.email\n")
	for i := range contacts {
		fmt.Fprintf(&csv, "w%d@example.org,W%d,yes\n", i, i)
	}
	file := filepath.Join(t.TempDir(), "alumni.csv")
	if err := os.WriteFile(file, []byte(csv.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	out := rig.tool(t, "contacts", "import", file, "--tenant", tenantID, "--data-dir", dir)
	wantContains(t, "contacts import", out, fmt.Sprintf("%d rows, %d created, 0 updated, 0 failed", contacts, contacts))
	if t.Failed() {
		t.FailNow()
	}
	runs := func(p *serveProc) map[string]any {
		t.Helper()
		status, doc := p.call(t, http.MethodGet, "/api/v1/workflows/"+workflow+"/stats", key, "")
		if status != http.StatusOK {
			t.Fatalf("workflow stats: %d %v", status, doc)
		}
		r, _ := doc["runs"].(map[string]any)
		return r
	}
	var atKill map[string]any
	pollUntil(t, srv, 60*time.Second, "a hundred runs started", func() (bool, string) {
		atKill = runs(srv)
		return num(atKill, "waiting")+num(atKill, "completed") >= 100, fmt.Sprintf("%v", atKill)
	})
	if num(atKill, "completed") == contacts {
		t.Fatalf("every run completed before the kill: %v", atKill)
	}
	t.Logf("killed with runs %v", atKill)
	killedAt := time.Now()
	if code := srv.stop(t, syscall.SIGKILL, 10*time.Second); code == 0 {
		t.Fatalf("serve exited 0 on SIGKILL")
	}

	srv = rig.serve(t)
	pollUntil(t, srv, 90*time.Second, "every run completed after the restart", func() (bool, string) {
		r := runs(srv)
		return num(r, "completed") == contacts, fmt.Sprintf("%v", r)
	})
	// A completed run has queued its last message; the pipeline sends it
	// a moment later.
	pollUntil(t, srv, 60*time.Second, "every message sent", func() (bool, string) {
		status, doc := srv.call(t, http.MethodGet, "/api/v1/analytics/events/counts?subject=pipeline.message.sent", key, "")
		return status == http.StatusOK && num(doc, "total") == 2*contacts, fmt.Sprintf("%d %v", status, doc["total"])
	})
	if code := srv.stop(t, syscall.SIGTERM, 20*time.Second); code != 0 {
		t.Fatalf("serve exited %d after SIGTERM, want 0", code)
	}

	ctx := context.Background()
	db, sandbox := openDataDir(t, dir, ""), openDataDir(t, dir, app.SandboxDBFile)
	var total, distinct int
	if err := sandbox.Reader().QueryRowContext(ctx, `SELECT count(*), count(DISTINCT recipient) FROM sandbox_messages`).Scan(&total, &distinct); err != nil {
		t.Fatal(err)
	}
	if total != 2*contacts || distinct != contacts {
		t.Errorf("sandbox: %d messages to %d recipients, want %d to %d", total, distinct, 2*contacts, contacts)
		rows, err := db.Reader().QueryContext(ctx, `SELECT status, coalesce(error_code, ''), count(*) FROM messages WHERE tenant_id = $1 GROUP BY status, error_code`, tenantID)
		if err == nil {
			for rows.Next() {
				var s, code string
				var n int
				if rows.Scan(&s, &code, &n) == nil {
					t.Logf("messages with status %s %s: %d", s, code, n)
				}
			}
			rows.Close()
		}
		rows, err = db.Reader().QueryContext(ctx, `SELECT st.node_id, count(*), min(st.entered_at), max(st.entered_at) FROM workflow_run_steps st
			WHERE st.tenant_id = $1 AND st.message_id <> '' AND NOT EXISTS (SELECT 1 FROM messages m WHERE m.tenant_id = st.tenant_id AND m.id = st.message_id)
			GROUP BY st.node_id`, tenantID)
		if err == nil {
			for rows.Next() {
				var node string
				var n int
				var lo, hi int64
				if rows.Scan(&node, &n, &lo, &hi) == nil {
					t.Logf("messages of node %s never reached the pipeline: %d, queued %v to %v", node, n, time.UnixMilli(lo), time.UnixMilli(hi))
				}
			}
			rows.Close()
		} else {
			t.Log(err)
		}
		var outboxRows, cursor int64
		_ = db.Reader().QueryRowContext(ctx, `SELECT count(*) FROM outbox WHERE subject = 'pipeline.message.queued'`).Scan(&outboxRows)
		_ = db.Reader().QueryRowContext(ctx, `SELECT published_seq FROM outbox_relay`).Scan(&cursor)
		t.Logf("outbox: %d pipeline.message.queued rows kept, relay cursor %d; killed at %v", outboxRows, cursor, killedAt)
	}
	var runRows, runContacts, steps int
	if err := db.Reader().QueryRowContext(ctx, `SELECT count(*), count(DISTINCT contact_id) FROM workflow_runs WHERE tenant_id = $1`, tenantID).
		Scan(&runRows, &runContacts); err != nil {
		t.Fatal(err)
	}
	if err := db.Reader().QueryRowContext(ctx, `SELECT count(*) FROM workflow_run_steps WHERE tenant_id = $1`, tenantID).Scan(&steps); err != nil {
		t.Fatal(err)
	}
	if runRows != contacts || runContacts != contacts || steps != 3*contacts {
		t.Errorf("%d runs for %d contacts with %d steps; want %d, %d, %d", runRows, runContacts, steps, contacts, contacts, 3*contacts)
	}
}
