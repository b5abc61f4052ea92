package app_test

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/alumoutreach/alumoutreach/internal/app"
	"github.com/alumoutreach/alumoutreach/internal/event"
	"github.com/alumoutreach/alumoutreach/internal/platform/bus"
	"github.com/alumoutreach/alumoutreach/internal/platform/bus/bustest"
	"github.com/alumoutreach/alumoutreach/internal/platform/store"
	"github.com/alumoutreach/alumoutreach/internal/platform/store/storetest"
	"github.com/alumoutreach/alumoutreach/internal/workflows"
)

// emailTemplate creates and activates an email template named name.
func emailTemplate(t *testing.T, c client, name string) string {
	t.Helper()
	status, doc := c.do("POST", "/api/v1/templates", fmt.Sprintf(`{"name": %q, "channel": "email", "content": {
		"subject": "%s for {{contact.firstName}}", "html": "<p>Dear {{contact.firstName}}, <a href=\"https://example.edu/give\">give</a></p>",
		"from": "alumni@example.edu"}}`, name, name))
	if status != 201 {
		t.Fatalf("template: %d %v", status, doc)
	}
	id := dataOf(doc)["id"].(string)
	if status, doc := c.do("POST", "/api/v1/templates/"+id+"/activate", ""); status != 200 {
		t.Fatalf("activate template: %d %v", status, doc)
	}
	return id
}

// newWorkflow creates a workflow from body and activates it.
func newWorkflow(t *testing.T, c client, body string) string {
	t.Helper()
	status, doc := c.do("POST", "/api/v1/workflows", body)
	if status != 201 {
		t.Fatalf("create workflow: %d %v", status, doc)
	}
	id := dataOf(doc)["id"].(string)
	workflowAction(t, c, id, "activate", "active")
	return id
}

func workflowAction(t *testing.T, c client, id, action, want string) {
	t.Helper()
	if status, doc := c.do("POST", "/api/v1/workflows/"+id+"/"+action, ""); status != 200 || dataOf(doc)["status"] != want {
		t.Fatalf("%s workflow: %d %v", action, status, doc)
	}
}

// newContact creates a contact with email consent and returns its id.
func newContact(t *testing.T, c client, email, extra string) string {
	t.Helper()
	status, doc := c.do("POST", "/api/v1/contacts", fmt.Sprintf(`{"email": %q, "firstName": "Ada",
		"consent": {"email": {"granted": true, "source": "signup_form"}}%s}`, email, extra))
	if status != 201 {
		t.Fatalf("contact: %d %v", status, doc)
	}
	return dataOf(doc)["id"].(string)
}

// runsOf lists the runs of a workflow (and contact, when set).
func runsOf(t *testing.T, c client, workflowID, contactID string) []map[string]any {
	t.Helper()
	status, doc := c.do("GET", "/api/v1/workflow-runs?limit=500&workflowId="+workflowID+"&contactId="+contactID, "")
	if status != 200 {
		t.Fatalf("runs: %d %v", status, doc)
	}
	var out []map[string]any
	for _, r := range doc["data"].([]any) {
		out = append(out, r.(map[string]any))
	}
	return out
}

// onlyRun waits for the contact's one run of the workflow to reach status,
// and returns it with its path.
func onlyRun(t *testing.T, c client, workflowID, contactID, status string) map[string]any {
	t.Helper()
	var runs []map[string]any
	bustest.Eventually(t, 30*time.Second, "the run "+status, func() bool {
		runs = runsOf(t, c, workflowID, contactID)
		return len(runs) == 1 && runs[0]["status"] == status
	})
	_, doc := c.do("GET", "/api/v1/workflow-runs/"+runs[0]["id"].(string), "")
	return dataOf(doc)
}

// pathOf is a run's path as "node:branch" items.
func pathOf(run map[string]any) string {
	var parts []string
	for _, s := range run["path"].([]any) {
		st := s.(map[string]any)
		b, _ := st["branch"].(string)
		parts = append(parts, st["nodeId"].(string)+":"+b)
	}
	return strings.Join(parts, " ")
}

// TestWorkflowFlow is the spec's flow 1 through the real bus:
// contact.created -> SEGMENTS_CONTACT_CONSUMER -> segment.member.added ->
// WORKFLOWS_TRIGGER_CONSUMER -> workflow.run.started ->
// pipeline.message.queued -> PIPELINE_SEND_CONSUMER -> the sandbox, with
// the request's correlation id on the message, every node type that does
// not wait, and the other tenant kept out.
func TestWorkflowFlow(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		a := startApp(t, testConfig(t, db.URL()))
		ca, cb := twoTenants(t, a)
		welcome := emailTemplate(t, ca, "Welcome")
		thanks := emailTemplate(t, ca, "Thanks")
		_, doc := ca.do("POST", "/api/v1/segments", `{"name": "Donors", "rules": {"all": [{"op": "has_tag", "value": "donor"}]}}`)
		donors := dataOf(doc)["id"].(string)
		wf := newWorkflow(t, ca, fmt.Sprintf(`{"name": "Donor welcome",
			"trigger": {"event": "segment.member.added", "segmentId": %q},
			"nodes": [
				{"id": "welcome", "type": "send", "channel": "email", "templateId": %q, "next": "mark"},
				{"id": "mark", "type": "update_contact", "setAttributes": {"welcomed": true}, "addTags": ["welcomed"], "next": "recent"},
				{"id": "recent", "type": "condition", "rule": {"field": "attributes.classYear", "op": "gte", "value": 2000}, "yes": "thank", "no": "done"},
				{"id": "thank", "type": "send", "channel": "email", "templateId": %q, "next": "ab"},
				{"id": "ab", "type": "split", "branches": [{"name": "a", "percent": 50}, {"name": "b", "percent": 50, "next": "done"}]},
				{"id": "done", "type": "exit"}
			]}`, donors, welcome, thanks))

		req, _ := http.NewRequest("POST", "http://"+a.HTTPAddr()+"/api/v1/contacts", strings.NewReader(`{"email": "ada@example.org", "firstName": "Ada",
			"tags": ["donor"], "attributes": {"classYear": 2004}, "consent": {"email": {"granted": true, "source": "signup_form"}}}`))
		req.Header.Set("Authorization", "Bearer "+ca.key)
		req.Header.Set("X-Correlation-Id", "corr-flow-one")
		resp, err := http.DefaultClient.Do(req)
		if err != nil || resp.StatusCode != 201 {
			t.Fatalf("create contact: %v %v", resp, err)
		}
		resp.Body.Close()
		old := newContact(t, ca, "bo@example.org", `, "tags": ["donor"], "attributes": {"classYear": 1980}`)
		// Tenant B's donor must not enter A's workflow.
		newContact(t, cb, "cy@example.org", `, "tags": ["donor"]`)

		_, doc = ca.do("GET", "/api/v1/contacts?email=ada@example.org", "")
		ada := doc["data"].([]any)[0].(map[string]any)["id"].(string)
		run := onlyRun(t, ca, wf, ada, "completed")
		if p := pathOf(run); p != "welcome:next mark:next recent:yes thank:next ab:a" && p != "welcome:next mark:next recent:yes thank:next ab:b done:exit" {
			t.Fatalf("Ada's path: %s", p)
		}
		if run["trigger"] != event.SegmentMemberAdded {
			t.Fatalf("run: %v", run)
		}
		if p := pathOf(onlyRun(t, ca, wf, old, "completed")); p != "welcome:next mark:next recent:no done:exit" {
			t.Fatalf("Bo's path: %s", p)
		}
		bustest.Eventually(t, 20*time.Second, "three messages in the sandbox", func() bool {
			to := sandboxRecipients(t, ca)
			return to["ada@example.org"] == 2 && to["bo@example.org"] == 1
		})
		_, doc = ca.do("GET", "/api/v1/contacts/"+ada, "")
		if ct := dataOf(doc); ct["attributes"].(map[string]any)["welcomed"] != true || !strings.Contains(fmt.Sprint(ct["tags"]), "welcomed") {
			t.Fatalf("update_contact did not reach the contact: %v", ct)
		}
		// The correlation id of the request that created Ada reaches the
		// messages her run sent.
		bustest.Eventually(t, 10*time.Second, "the message's correlation", func() bool {
			raw, err := a.Bus().JetStream().Stream(context.Background(), bus.EventsStream)
			if err != nil {
				return false
			}
			found := false
			for seq := uint64(1); ; seq++ {
				m, err := raw.GetMsg(context.Background(), seq)
				if err != nil {
					break
				}
				if m.Subject != event.PipelineMessageSent {
					continue
				}
				env, err := event.Decode(m.Data)
				if err != nil {
					t.Fatal(err)
				}
				d, _ := event.DecodeData[event.MessageData](env)
				if d.ContactID == ada && d.SourceType == event.MessageSourceWorkflow {
					if env.CorrelationID != "corr-flow-one" {
						t.Fatalf("workflow message correlation %q, want corr-flow-one", env.CorrelationID)
					}
					found = true
				}
			}
			return found
		})
		status, doc := ca.do("GET", "/api/v1/workflows/"+wf+"/stats", "")
		nodes := dataOf(doc)["nodes"].(map[string]any)
		if status != 200 || nodes["welcome"].(map[string]any)["entered"] != float64(2) ||
			nodes["recent"].(map[string]any)["exits"].(map[string]any)["yes"] != float64(1) ||
			nodes["recent"].(map[string]any)["exits"].(map[string]any)["no"] != float64(1) ||
			dataOf(doc)["runs"].(map[string]any)["completed"] != float64(2) {
			t.Fatalf("stats: %d %v", status, doc)
		}
		bustest.Eventually(t, 10*time.Second, "the run events in analytics", func() bool {
			return total(t, ca, "subject=workflow.run.started") == 2 && total(t, ca, "subject=workflow.run.completed") == 2
		})

		// Tenant B sees none of it.
		if status, _ := cb.do("GET", "/api/v1/workflows/"+wf, ""); status != 404 {
			t.Fatalf("tenant B reads A's workflow: %d", status)
		}
		if status, _ := cb.do("GET", "/api/v1/workflow-runs/"+run["id"].(string), ""); status != 404 {
			t.Fatalf("tenant B reads A's run: %d", status)
		}
		if runs := runsOf(t, cb, "", ""); len(runs) != 0 {
			t.Fatalf("tenant B lists runs: %v", runs)
		}
		if status, _ := cb.do("POST", "/api/v1/workflows/"+wf+"/pause", ""); status != 404 {
			t.Fatalf("tenant B pauses A's workflow: %d", status)
		}
	})
}

// TestWorkflowWaits: a goal reached during a delay ends the run; a wait
// for an open is met by the open; a wait for a rule is met by a contact
// change, or times out.
func TestWorkflowWaits(t *testing.T) {
	t.Parallel()
	a := startApp(t, testConfig(t, ""))
	c, _ := twoTenants(t, a)
	tpl := emailTemplate(t, c, "Appeal")

	goal := newWorkflow(t, c, fmt.Sprintf(`{"name": "Appeal", "trigger": {"event": "contact.tagged", "tag": "prospect"},
		"nodes": [{"id": "wait", "type": "delay", "duration": "1h", "next": "ask"},
		          {"id": "ask", "type": "send", "channel": "email", "templateId": %q}],
		"goals": [{"id": "gave", "name": "Gave", "rule": {"field": "attributes.gave", "op": "eq", "value": true}}]}`, tpl))
	opened := newWorkflow(t, c, fmt.Sprintf(`{"name": "Opened?", "trigger": {"event": "custom", "name": "open_test"},
		"nodes": [{"id": "mail", "type": "send", "channel": "email", "templateId": %q, "next": "seen"},
		          {"id": "seen", "type": "wait_until", "event": "opened", "nodeId": "mail", "timeout": "1h", "next": "engaged", "timeoutNext": "cold"},
		          {"id": "engaged", "type": "update_contact", "addTags": ["engaged"]},
		          {"id": "cold", "type": "update_contact", "addTags": ["cold"]}]}`, tpl))
	rsvp := newWorkflow(t, c, `{"name": "RSVP", "trigger": {"event": "custom", "name": "invited"},
		"nodes": [{"id": "rsvp", "type": "wait_until", "rule": {"field": "attributes.rsvp", "op": "eq", "value": true}, "timeout": "2s",
		           "next": "coming", "timeoutNext": "silent"},
		          {"id": "coming", "type": "update_contact", "addTags": ["coming"]},
		          {"id": "silent", "type": "update_contact", "addTags": ["silent"]}]}`)

	// Goal during the delay.
	donor := newContact(t, c, "donor@example.org", "")
	c.do("POST", "/api/v1/contacts/"+donor+"/tags", `{"tags": ["prospect"]}`)
	onlyRun(t, c, goal, donor, "waiting")
	if status, doc := c.do("PATCH", "/api/v1/contacts/"+donor, `{"attributes": {"gave": true}}`); status != 200 {
		t.Fatalf("patch: %d %v", status, doc)
	}
	run := onlyRun(t, c, goal, donor, "goal_reached")
	if run["goalId"] != "gave" || pathOf(run) != "wait:goal" {
		t.Fatalf("goal run: %v", run)
	}
	bustest.Eventually(t, 10*time.Second, "goal_reached published", func() bool {
		return total(t, c, "subject=workflow.run.goal_reached") == 1
	})

	// Wait for an open, met by the open pixel.
	reader := newContact(t, c, "reader@example.org", "")
	if status, doc := c.do("POST", "/api/v1/workflow-events", fmt.Sprintf(`{"name": "open_test", "contactId": %q}`, reader)); status != 202 {
		t.Fatalf("post event: %d %v", status, doc)
	}
	onlyRun(t, c, opened, reader, "waiting")
	var html string
	bustest.Eventually(t, 20*time.Second, "the message in the sandbox", func() bool {
		_, sb := c.do("GET", "/api/v1/sandbox/messages?limit=50", "")
		for _, m := range sb["data"].([]any) {
			if m.(map[string]any)["to"] == "reader@example.org" {
				html = m.(map[string]any)["html"].(string)
				return true
			}
		}
		return false
	})
	pixel := html[strings.Index(html, "/t/o/"):]
	resp, err := http.Get("http://" + a.HTTPAddr() + pixel[:strings.IndexByte(pixel, '"')])
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("open: %v %v", resp, err)
	}
	resp.Body.Close()
	if p := pathOf(onlyRun(t, c, opened, reader, "completed")); p != "mail:next seen:met engaged:next" {
		t.Fatalf("open path: %s", p)
	}

	// Wait for a rule: met by a change, or timed out.
	yes := newContact(t, c, "yes@example.org", "")
	no := newContact(t, c, "no@example.org", "")
	for _, id := range []string{yes, no} {
		c.do("POST", "/api/v1/workflow-events", fmt.Sprintf(`{"name": "invited", "contactId": %q}`, id))
		onlyRun(t, c, rsvp, id, "waiting")
	}
	c.do("PATCH", "/api/v1/contacts/"+yes, `{"attributes": {"rsvp": true}}`)
	if p := pathOf(onlyRun(t, c, rsvp, yes, "completed")); p != "rsvp:met coming:next" {
		t.Fatalf("rsvp met path: %s", p)
	}
	if p := pathOf(onlyRun(t, c, rsvp, no, "completed")); p != "rsvp:timeout silent:next" {
		t.Fatalf("rsvp timeout path: %s", p)
	}
}

// TestWorkflowReentryPolicies: never, after_exit and always, and a
// redelivered trigger that never starts a second run.
func TestWorkflowReentryPolicies(t *testing.T) {
	t.Parallel()
	twice := app.WithHandlerWrapper(func(consumer string, h bus.Handler) bus.Handler {
		if consumer != workflows.TriggerConsumerName {
			return h
		}
		return func(ctx context.Context, env event.Envelope) error {
			if err := h(ctx, env); err != nil {
				return err
			}
			return h(ctx, env)
		}
	})
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		reentryPolicies(t, db, twice)
	})
}

func reentryPolicies(t *testing.T, db *store.DB, twice app.Option) {
	a := startApp(t, testConfig(t, db.URL()), twice)
	c, _ := twoTenants(t, a)
	ids := map[string]string{}
	for _, policy := range []string{"never", "after_exit", "always"} {
		ids[policy] = newWorkflow(t, c, fmt.Sprintf(`{"name": "Gift %s", "trigger": {"event": "custom", "name": "gift"}, "reentry": %q,
			"nodes": [{"id": "wait", "type": "delay", "duration": "1h"}],
			"goals": [{"id": "done", "rule": {"field": "attributes.stage", "op": "eq", "value": "done"}}]}`, policy, policy))
	}
	ct := newContact(t, c, "giver@example.org", "")
	gift := func() {
		t.Helper()
		if status, doc := c.do("POST", "/api/v1/workflow-events", fmt.Sprintf(`{"name": "gift", "contactId": %q, "properties": {"amount": 50}}`, ct)); status != 202 {
			t.Fatalf("post event: %d %v", status, doc)
		}
	}
	counts := func(want map[string]int) {
		t.Helper()
		bustest.Eventually(t, 20*time.Second, fmt.Sprint("runs ", want), func() bool {
			for policy, n := range want {
				if len(runsOf(t, c, ids[policy], ct)) != n {
					return false
				}
			}
			return true
		})
	}
	gift()
	counts(map[string]int{"never": 1, "after_exit": 1, "always": 1})
	gift()
	counts(map[string]int{"never": 1, "after_exit": 1, "always": 2})
	// Every run ends by its goal; then only after_exit and always let the
	// contact in again.
	c.do("PATCH", "/api/v1/contacts/"+ct, `{"attributes": {"stage": "done"}}`)
	bustest.Eventually(t, 20*time.Second, "every run ended by the goal", func() bool {
		for _, id := range ids {
			for _, r := range runsOf(t, c, id, ct) {
				if r["status"] != "goal_reached" {
					return false
				}
			}
		}
		return true
	})
	c.do("PATCH", "/api/v1/contacts/"+ct, `{"attributes": {"stage": "again"}}`)
	gift()
	counts(map[string]int{"never": 1, "after_exit": 2, "always": 3})
	// Each trigger was handled twice; still one run.started per run.
	bustest.Eventually(t, 10*time.Second, "one run.started per run", func() bool {
		return total(t, c, "subject=workflow.run.started") == 6
	})
}

// TestWorkflowPauseVersionsAndRestart: a paused workflow starts no run
// and holds the ones that wake; activated again, they go on. A run
// finishes on the version it started with. A run waiting in a delay
// when the process stops goes on after the restart.
func TestWorkflowPauseVersionsAndRestart(t *testing.T) {
	t.Parallel()
	cfg := testConfig(t, "")
	a := startApp(t, cfg)
	c, _ := twoTenants(t, a)
	tpl := emailTemplate(t, c, "Reminder")
	body := func(name, last string) string {
		return fmt.Sprintf(`{"name": %q, "trigger": {"event": "custom", "name": "remind"}, "reentry": "always",
			"nodes": [{"id": "wait", "type": "delay", "duration": "2s", "next": "last"}, %s]}`, name, last)
	}
	wf := newWorkflow(t, c, body("Remind", fmt.Sprintf(`{"id": "last", "type": "send", "channel": "email", "templateId": %q}`, tpl)))
	first := newContact(t, c, "first@example.org", "")
	c.do("POST", "/api/v1/workflow-events", fmt.Sprintf(`{"name": "remind", "contactId": %q}`, first))
	onlyRun(t, c, wf, first, "waiting")
	workflowAction(t, c, wf, "pause", "paused")
	// Not started while paused.
	late := newContact(t, c, "late@example.org", "")
	c.do("POST", "/api/v1/workflow-events", fmt.Sprintf(`{"name": "remind", "contactId": %q}`, late))
	run := onlyRun(t, c, wf, first, "held")
	if len(runsOf(t, c, wf, late)) != 0 {
		t.Fatal("a paused workflow started a run")
	}
	// A new version while the run holds: it finishes on version 1.
	status, doc := c.do("PUT", "/api/v1/workflows/"+wf, body("Remind", `{"id": "last", "type": "update_contact", "addTags": ["v2"]}`))
	if status != 200 || dataOf(doc)["version"] != float64(2) {
		t.Fatalf("new version: %d %v", status, doc)
	}
	if status, _ := c.do("POST", "/api/v1/workflows/"+wf+"/pause", ""); status != 409 {
		t.Fatalf("pause a paused workflow: %d", status)
	}
	workflowAction(t, c, wf, "activate", "active")
	run = onlyRun(t, c, wf, first, "completed")
	if run["version"] != float64(1) || pathOf(run) != "wait:next last:next" {
		t.Fatalf("held run: %v", run)
	}
	bustest.Eventually(t, 20*time.Second, "version 1 sent its message", func() bool {
		return sandboxRecipients(t, c)["first@example.org"] == 1
	})

	// Version 2, with the process stopped during the delay.
	second := newContact(t, c, "second@example.org", "")
	c.do("POST", "/api/v1/workflow-events", fmt.Sprintf(`{"name": "remind", "contactId": %q}`, second))
	onlyRun(t, c, wf, second, "waiting")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := a.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	time.Sleep(2500 * time.Millisecond) // the delay ends while nothing runs
	a = startApp(t, cfg)
	c.base = "http://" + a.HTTPAddr()
	run = onlyRun(t, c, wf, second, "completed")
	if run["version"] != float64(2) || pathOf(run) != "wait:next last:next" {
		t.Fatalf("run across the restart: %v", run)
	}
	_, doc = c.do("GET", "/api/v1/contacts/"+second, "")
	if !strings.Contains(fmt.Sprint(dataOf(doc)["tags"]), "v2") {
		t.Fatalf("version 2 did not tag: %v", doc)
	}
}

// TestWorkflowRefusesBadDefinitions: each bad definition is a 400 that
// names the node or field to fix, and nothing is stored.
func TestWorkflowRefusesBadDefinitions(t *testing.T) {
	t.Parallel()
	a := startApp(t, testConfig(t, ""))
	c, _ := twoTenants(t, a)
	tpl := emailTemplate(t, c, "Hello")
	send := fmt.Sprintf(`{"id": "s", "type": "send", "channel": "email", "templateId": %q}`, tpl)
	trig := `"trigger": {"event": "contact.created"}`
	for _, tc := range []struct{ name, body, want string }{
		{"no name", `{"name": "", ` + trig + `, "nodes": [` + send + `]}`, "name"},
		{"bad trigger", `{"name": "x", "trigger": {"event": "contact.exploded"}, "nodes": [` + send + `]}`, "trigger.event"},
		{"unknown segment", `{"name": "x", "trigger": {"event": "segment.member.added", "segmentId": "nope"}, "nodes": [` + send + `]}`, `no segment "nope"`},
		{"unknown template", `{"name": "x", ` + trig + `, "nodes": [{"id": "s", "type": "send", "channel": "email", "templateId": "nope"}]}`, `nodes[0] ("s").templateId: no template "nope"`},
		{"wrong channel", `{"name": "x", ` + trig + fmt.Sprintf(`, "nodes": [{"id": "s", "type": "send", "channel": "sms", "templateId": %q}]}`, tpl), "is a email template, not sms"},
		{"unreachable", `{"name": "x", ` + trig + `, "nodes": [` + send + `, {"id": "lost", "type": "exit"}]}`, `nodes[1] ("lost"): no run can reach this node`},
		{"cycle", `{"name": "x", ` + trig + `, "nodes": [{"id": "a", "type": "condition", "rule": {"op": "has_tag", "value": "x"}, "yes": "b", "no": "b"},
			{"id": "b", "type": "update_contact", "addTags": ["y"], "next": "a"}]}`, "cycle without a delay"},
		{"bad rule", `{"name": "x", ` + trig + `, "nodes": [{"id": "a", "type": "condition", "rule": {"all": [{"field": "email", "op": "sings"}]}}]}`, `nodes[0] ("a").rule.all[0]`},
		{"dangling next", `{"name": "x", ` + trig + `, "nodes": [{"id": "a", "type": "delay", "duration": "1h", "next": "ghost"}]}`, `no node has id "ghost"`},
		{"split sum", `{"name": "x", ` + trig + `, "nodes": [{"id": "a", "type": "split", "branches": [{"name": "a", "percent": 50}, {"name": "b", "percent": 40}]}]}`, "add up to 90"},
		{"wait without timeout", `{"name": "x", ` + trig + `, "nodes": [` + send + `, {"id": "w", "type": "wait_until", "event": "opened", "nodeId": "s"}]}`, "timeout"},
		{"bad delay", `{"name": "x", ` + trig + `, "nodes": [{"id": "a", "type": "delay", "duration": "soon"}]}`, `nodes[0] ("a").duration`},
		{"unknown type", `{"name": "x", ` + trig + `, "nodes": [{"id": "a", "type": "teleport"}]}`, `nodes[0] ("a").type`},
		{"unknown field", `{"name": "x", ` + trig + `, "nodes": [` + send + `], "colour": "blue"}`, "colour"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			status, doc := c.do("POST", "/api/v1/workflows", tc.body)
			msg, _ := doc["error"].(map[string]any)["message"].(string)
			if status != 400 || !strings.Contains(msg, tc.want) {
				t.Fatalf("%d %v, want 400 mentioning %q", status, doc, tc.want)
			}
		})
	}
	if _, doc := c.do("GET", "/api/v1/workflows", ""); len(doc["data"].([]any)) != 0 {
		t.Fatalf("a refused workflow was stored: %v", doc)
	}
	// Activation needs active templates.
	_, doc := c.do("POST", "/api/v1/templates", `{"name": "Draft", "channel": "email", "content": {"subject": "s", "html": "<p>x</p>", "from": "a@example.edu"}}`)
	draft := dataOf(doc)["id"].(string)
	status, doc := c.do("POST", "/api/v1/workflows", fmt.Sprintf(`{"name": "Drafty", %s, "nodes": [{"id": "s", "type": "send", "channel": "email", "templateId": %q}]}`, trig, draft))
	if status != 201 {
		t.Fatalf("create: %d %v", status, doc)
	}
	id := dataOf(doc)["id"].(string)
	if status, doc := c.do("POST", "/api/v1/workflows/"+id+"/activate", ""); status != 409 || doc["error"].(map[string]any)["code"] != "template_inactive" {
		t.Fatalf("activate with a draft template: %d %v", status, doc)
	}
	if status, doc := c.do("POST", "/api/v1/workflows/"+id+"/pause", ""); status != 409 || doc["error"].(map[string]any)["code"] != "illegal_transition" {
		t.Fatalf("pause a created workflow: %d %v", status, doc)
	}
	if status, _ := c.do("POST", "/api/v1/workflow-events", `{"name": "gift", "contactId": "nobody"}`); status != 404 {
		t.Fatalf("event for an unknown contact: %d", status)
	}
	if status, _ := c.do("POST", "/api/v1/workflow-events", `{"name": "no spaces", "contactId": "x"}`); status != 400 {
		t.Fatalf("bad event name: %d", status)
	}
}

// TestWorkflowTriggers: contact.updated with a rule on the new values,
// and segment.member.removed, start runs only when they match.
func TestWorkflowTriggers(t *testing.T) {
	t.Parallel()
	a := startApp(t, testConfig(t, ""))
	c, _ := twoTenants(t, a)
	_, doc := c.do("POST", "/api/v1/segments", `{"name": "Members", "rules": {"all": [{"op": "has_tag", "value": "member"}]}}`)
	memberSeg := dataOf(doc)["id"].(string)
	graduated := newWorkflow(t, c, `{"name": "Graduated", "reentry": "always",
		"trigger": {"event": "contact.updated", "rule": {"field": "attributes.stage", "op": "eq", "value": "alumni"}},
		"nodes": [{"id": "mark", "type": "update_contact", "addTags": ["graduate"]}]}`)
	lapsed := newWorkflow(t, c, fmt.Sprintf(`{"name": "Lapsed", "trigger": {"event": "segment.member.removed", "segmentId": %q},
		"nodes": [{"id": "mark", "type": "update_contact", "setAttributes": {"lapsed": true}}]}`, memberSeg))

	student := newContact(t, c, "student@example.org", `, "tags": ["member"], "attributes": {"stage": "student"}`)
	c.do("PATCH", "/api/v1/contacts/"+student, `{"attributes": {"stage": "student", "year": 3}}`) // no match
	c.do("PATCH", "/api/v1/contacts/"+student, `{"attributes": {"stage": "alumni"}}`)             // match
	onlyRun(t, c, graduated, student, "completed")

	bustest.Eventually(t, 20*time.Second, "the contact joined the segment", func() bool {
		return len(members(t, c, memberSeg)) == 1
	})
	if len(runsOf(t, c, lapsed, student)) != 0 {
		t.Fatal("segment.member.removed started a run on an addition")
	}
	if status, _ := c.do("DELETE", "/api/v1/contacts/"+student+"/tags/member", ""); status != 200 {
		t.Fatalf("untag: %d", status)
	}
	onlyRun(t, c, lapsed, student, "completed")
	_, doc = c.do("GET", "/api/v1/contacts/"+student, "")
	if dataOf(doc)["attributes"].(map[string]any)["lapsed"] != true {
		t.Fatalf("lapsed not set: %v", doc)
	}
	// Three updates: one that does not match, one that does, and the
	// lapsed run's own, which does not touch the stage the rule reads.
	// Once the trigger consumer has handled all three, there is one run,
	// whatever order they were handled in.
	bustest.Eventually(t, 20*time.Second, "three contact.updated handled", func() bool {
		return counterValue(t, a, "events_acked_total", "consumer", workflows.TriggerConsumerName, "subject", event.ContactUpdated) >= 3
	})
	if runs := runsOf(t, c, graduated, student); len(runs) != 1 {
		t.Fatalf("contact.updated runs: %v, want 1", runs)
	}
}
