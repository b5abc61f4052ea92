package app_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/alumoutreach/alumoutreach/internal/app"
	"github.com/alumoutreach/alumoutreach/internal/event"
	"github.com/alumoutreach/alumoutreach/internal/platform/bus"
	"github.com/alumoutreach/alumoutreach/internal/platform/bus/bustest"
	"github.com/alumoutreach/alumoutreach/internal/platform/store"
	"github.com/alumoutreach/alumoutreach/internal/platform/store/storetest"
	"github.com/alumoutreach/alumoutreach/internal/sequences"
)

// enrollment reads one enrollment.
func enrollment(t *testing.T, c client, id string) map[string]any {
	t.Helper()
	status, doc := c.do("GET", "/api/v1/sequence-enrollments/"+id, "")
	if status != 200 {
		t.Fatalf("enrollment %s: %d %v", id, status, doc)
	}
	return dataOf(doc)
}

// sandboxSubjects lists the subjects of the sandbox's messages to address.
func sandboxSubjects(t *testing.T, c client, address string) []string {
	t.Helper()
	_, doc := c.do("GET", "/api/v1/sandbox/messages?to="+address, "")
	var out []string
	for _, it := range doc["data"].([]any) {
		out = append(out, it.(map[string]any)["subject"].(string))
	}
	return out
}

// The spec's sequence flows through the real bus: a three-step sequence
// (an email, a call for a person, a second email) for two contacts; Ada
// replies by email after the first, and the inbox's inbox.message.received
// ends her enrollment, so she never gets the second email; Bob's call is
// done and he gets the rest. Steps run on durable timers.
func TestSequenceFlow(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		cfg := testConfig(t, db.URL())
		cfg.Email.InboundKey = "inbound-secret"
		a := startApp(t, cfg)
		ca, cb := twoTenants(t, a)
		tenant := mustTenant(t, a, ca.key)
		ada := newContact(t, ca, "ada@example.org", "")
		bob := newContact(t, ca, "bob@example.org", "")
		intro, nudge := emailTemplate(t, ca, "Intro"), emailTemplate(t, ca, "Nudge")
		status, doc := ca.do("POST", "/api/v1/sequences", fmt.Sprintf(`{"name": "Reunion follow-up", "ownerId": "agent-7", "steps": [
			{"id": "intro", "type": "email", "templateId": %q},
			{"id": "call", "type": "call", "task": "Call to invite them", "delay": "1s"},
			{"type": "email", "templateId": %q, "delay": "1s"}]}`, intro, nudge))
		if status != 201 || dataOf(doc)["status"] != "created" || dataOf(doc)["exitOnReply"] != true {
			t.Fatalf("create: %d %v", status, doc)
		}
		seq := dataOf(doc)["id"].(string)
		enroll := func(c client, contact string) (int, map[string]any) {
			return c.do("POST", "/api/v1/sequences/"+seq+"/enrollments", `{"contactId": "`+contact+`", "enrolledBy": "agent-7"}`)
		}
		if status, doc := enroll(ca, ada); status != 409 || doc["error"].(map[string]any)["code"] != "sequence_not_active" {
			t.Fatalf("enroll before activation: %d %v", status, doc)
		}
		if status, doc := ca.do("POST", "/api/v1/sequences/"+seq+"/activate", ""); status != 200 || dataOf(doc)["status"] != "active" {
			t.Fatalf("activate: %d %v", status, doc)
		}
		var ids []string
		for _, c := range []string{ada, bob} {
			status, doc := enroll(ca, c)
			if status != 201 {
				t.Fatalf("enroll: %d %v", status, doc)
			}
			ids = append(ids, dataOf(doc)["id"].(string))
		}
		adaE, bobE := ids[0], ids[1]
		for _, tc := range []struct {
			contact string
			want    int
			code    string
		}{{ada, 409, "already_enrolled"}, {"no-such-contact", 404, "contact_not_found"}, {"", 400, "invalid_field"}} {
			if status, doc := enroll(ca, tc.contact); status != tc.want || doc["error"].(map[string]any)["code"] != tc.code {
				t.Errorf("enroll %q: %d %v, want %d %s", tc.contact, status, doc, tc.want, tc.code)
			}
		}

		// The first email goes at once; then both wait for their call.
		bustest.Eventually(t, 15*time.Second, "both at the call step", func() bool {
			return enrollment(t, ca, adaE)["status"] == "waiting" && enrollment(t, ca, bobE)["status"] == "waiting" &&
				len(sandboxSubjects(t, ca, "ada@example.org")) == 1 && len(sandboxSubjects(t, ca, "bob@example.org")) == 1
		})
		if e := enrollment(t, ca, adaE); e["step"] != float64(1) {
			t.Fatalf("Ada's enrollment: %v", e)
		}

		// Ada replies: her enrollment ends.
		if status := postInboundEmail(t, a, tenant, cfg.Email.InboundKey, "ada@example.org", "ada-reply@example.org", "", "Re: Intro", "Count me in!"); status != 200 {
			t.Fatalf("inbound: %d", status)
		}
		bustest.Eventually(t, 15*time.Second, "Ada's enrollment ended by her reply", func() bool {
			e := enrollment(t, ca, adaE)
			return e["status"] == "exited" && e["exitReason"] == "replied" && total(t, ca, "subject=sequence.enrollment.replied") == 1
		})

		// Bob's call is made; he gets the second email, and is done.
		if status, doc := ca.do("POST", "/api/v1/sequence-enrollments/"+bobE+"/complete-step", `{"completedBy": "agent-7"}`); status != 200 ||
			dataOf(doc)["status"] != "active" || dataOf(doc)["step"] != float64(2) {
			t.Fatalf("complete the call: %d %v", status, doc)
		}
		bustest.Eventually(t, 15*time.Second, "Bob's enrollment completed", func() bool {
			return enrollment(t, ca, bobE)["status"] == "completed" && len(sandboxSubjects(t, ca, "bob@example.org")) == 2
		})
		if got := sandboxSubjects(t, ca, "ada@example.org"); len(got) != 1 {
			t.Errorf("Ada got %v after replying", got)
		}
		bustest.Eventually(t, 10*time.Second, "the sequence events counted", func() bool {
			return total(t, ca, "subject=sequence.enrollment.created") == 2 && total(t, ca, "subject=sequence.step.pending_manual") == 2 &&
				total(t, ca, "subject=sequence.step.executed") == 4 && total(t, ca, "subject=sequence.enrollment.exited") == 1 &&
				total(t, ca, "subject=sequence.enrollment.completed") == 1
		})
		for _, tc := range []struct{ path, code string }{
			{adaE + "/complete-step", "no_manual_step"}, {bobE + "/exit", "enrollment_ended"},
		} {
			if status, doc := ca.do("POST", "/api/v1/sequence-enrollments/"+tc.path, `{}`); status != 409 || doc["error"].(map[string]any)["code"] != tc.code {
				t.Errorf("POST %s: %d %v, want 409 %s", tc.path, status, doc, tc.code)
			}
		}
		// Bob can start over; an enrollment can be stopped by hand.
		status, doc = enroll(ca, bob)
		if status != 201 {
			t.Fatalf("re-enroll: %d %v", status, doc)
		}
		if status, doc := ca.do("POST", "/api/v1/sequence-enrollments/"+dataOf(doc)["id"].(string)+"/exit", ""); status != 200 ||
			dataOf(doc)["exitReason"] != "manual" {
			t.Errorf("exit: %d %v", status, doc)
		}
		_, doc = ca.do("GET", "/api/v1/sequence-enrollments?sequenceId="+seq+"&status=exited", "")
		if n := len(doc["data"].([]any)); n != 2 {
			t.Errorf("%d exited enrollments, want 2", n)
		}

		// Tenant B sees none of it.
		if status, _ := cb.do("GET", "/api/v1/sequences/"+seq, ""); status != 404 {
			t.Errorf("tenant B reads A's sequence: %d", status)
		}
		if status, _ := cb.do("GET", "/api/v1/sequence-enrollments/"+adaE, ""); status != 404 {
			t.Errorf("tenant B reads A's enrollment: %d", status)
		}
		if status, _ := enroll(cb, ada); status != 404 {
			t.Errorf("tenant B enrolls in A's sequence: %d", status)
		}
	})
}

// Every malformed sequence is a 400 naming the field to fix, and nothing
// is stored.
func TestSequenceRefusesBadDefinitions(t *testing.T) {
	t.Parallel()
	a := startApp(t, testConfig(t, ""))
	c, _ := twoTenants(t, a)
	email := emailTemplate(t, c, "Hello")
	_, doc := c.do("POST", "/api/v1/templates", `{"name": "Text", "channel": "sms", "content": {"body": "Hi {{contact.firstName}}"}}`)
	sms := dataOf(doc)["id"].(string)
	for _, tc := range []struct{ body, path string }{
		{`{"name": "", "steps": [{"type": "task", "task": "x"}]}`, "name"},
		{`{"name": "a", "steps": []}`, "steps"},
		{`{"name": "a", "steps": [{"type": "fax", "templateId": "` + email + `"}]}`, "steps[0].type"},
		{`{"name": "a", "steps": [{"type": "email"}]}`, "steps[0].templateId"},
		{`{"name": "a", "steps": [{"type": "email", "templateId": "` + sms + `"}]}`, "steps[0].templateId"},
		{`{"name": "a", "steps": [{"type": "email", "templateId": "no-such-template"}]}`, "steps[0].templateId"},
		{`{"name": "a", "steps": [{"type": "task", "task": "x"}, {"type": "call"}]}`, "steps[1].task"},
		{`{"name": "a", "steps": [{"type": "task", "task": "x", "delay": "2 days"}]}`, "steps[0].delay"},
		{`{"name": "a", "steps": [{"id": "x", "type": "task", "task": "x"}, {"id": "x", "type": "task", "task": "y"}]}`, "steps[1].id"},
		{`{"name": "a", "ownerId": " agent", "steps": [{"type": "task", "task": "x"}]}`, "ownerId"},
	} {
		status, doc := c.do("POST", "/api/v1/sequences", tc.body)
		e, _ := doc["error"].(map[string]any)
		details, _ := e["details"].(map[string]any)
		if status != 400 || e["code"] != "invalid_sequence" || details["path"] != tc.path {
			t.Errorf("%s: %d %v, want 400 invalid_sequence at %s", tc.body, status, doc, tc.path)
		}
	}
	if _, doc := c.do("GET", "/api/v1/sequences", ""); len(doc["data"].([]any)) != 0 {
		t.Errorf("refused sequences were stored: %v", doc)
	}
}

// An opt-out on a channel the sequence sends on, and a hard bounce of one
// of its messages, end the enrollment; a soft bounce or an opt-out on
// another channel do not.
func TestSequenceStopsOnOptOutAndHardBounce(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		a := startApp(t, testConfig(t, db.URL()))
		c, _ := twoTenants(t, a)
		tenant := mustTenant(t, a, c.key)
		tpl := emailTemplate(t, c, "Intro")
		_, doc := c.do("POST", "/api/v1/sequences", fmt.Sprintf(`{"name": "Stops", "steps": [
			{"type": "email", "templateId": %q}, {"type": "task", "task": "Write a card", "delay": "30d"}]}`, tpl))
		seq := dataOf(doc)["id"].(string)
		c.do("POST", "/api/v1/sequences/"+seq+"/activate", "")
		enrolled := map[string]string{}
		for i, who := range []string{"ada", "bob", "cy", "dee"} {
			contact := newContact(t, c, who+"@example.org", fmt.Sprintf(`, "phone": "+44770090012%d"`, i))
			_, doc := c.do("POST", "/api/v1/sequences/"+seq+"/enrollments", `{"contactId": "`+contact+`"}`)
			enrolled[who] = dataOf(doc)["id"].(string)
			enrolled[who+"Contact"] = contact
		}
		// Ada unsubscribes from email; Dee from SMS, which this sequence
		// does not send on.
		for who, ch := range map[string]string{"ada": "email", "dee": "sms"} {
			if status, doc := c.do("PUT", "/api/v1/contacts/"+enrolled[who+"Contact"]+"/consent/"+ch,
				`{"granted": false, "source": "unsubscribe_link"}`); status != 200 {
				t.Fatalf("revoke: %d %v", status, doc)
			}
		}
		// Bob's message bounces hard, Cy's softly.
		for who, kind := range map[string]string{"bob": "hard", "cy": "soft"} {
			emit(t, a, event.PipelineMessageBounced, tenant, event.MessageData{MessageID: event.NewID(), Channel: "email",
				ContactID: enrolled[who+"Contact"], RecipientAddress: who + "@example.org", SourceType: event.MessageSourceSequence,
				SourceID: seq, RunID: enrolled[who], BounceType: kind})
		}
		bustest.Eventually(t, 15*time.Second, "Ada and Bob stopped", func() bool {
			return enrollment(t, c, enrolled["ada"])["exitReason"] == "unsubscribed" && enrollment(t, c, enrolled["bob"])["exitReason"] == "bounced"
		})
		// All four events handled (acknowledged) by the consumer, so the
		// two that must change nothing had their chance to.
		bustest.Eventually(t, 10*time.Second, "the four events handled", func() bool {
			return counterValue(t, a, "events_acked_total", "consumer", "SEQUENCES_STOP_CONSUMER") == 4
		})
		bustest.Eventually(t, 10*time.Second, "two exits counted", func() bool {
			return total(t, c, "subject=sequence.enrollment.exited") == 2
		})
		for _, who := range []string{"cy", "dee"} {
			if e := enrollment(t, c, enrolled[who]); e["status"] == "exited" {
				t.Errorf("%s's enrollment ended: %v", who, e)
			}
		}
	})
}

// An opt-out ends the enrollments made before it, even when its event is
// handled late, but not one a person made after it: SEQUENCES_STOP_CONSUMER
// is held here until the contact, who opted out of email, has been enrolled
// again.
func TestSequenceOptOutEndsOnlyEarlierEnrollments(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	held := app.WithHandlerWrapper(func(consumer string, h bus.Handler) bus.Handler {
		if consumer != sequences.StopConsumerName {
			return h
		}
		return func(ctx context.Context, env event.Envelope) error {
			select {
			case <-release:
			case <-ctx.Done():
				return ctx.Err()
			}
			return h(ctx, env)
		}
	})
	a := startApp(t, testConfig(t, ""), held)
	c, _ := twoTenants(t, a)
	tpl := emailTemplate(t, c, "Intro")
	_, doc := c.do("POST", "/api/v1/sequences", fmt.Sprintf(`{"name": "Late opt-out", "steps": [
		{"type": "task", "task": "Call"}, {"type": "email", "templateId": %q, "delay": "30d"}]}`, tpl))
	seq := dataOf(doc)["id"].(string)
	c.do("POST", "/api/v1/sequences/"+seq+"/activate", "")
	enroll := func(contact string) string {
		t.Helper()
		status, doc := c.do("POST", "/api/v1/sequences/"+seq+"/enrollments", `{"contactId": "`+contact+`"}`)
		if status != 201 {
			t.Fatalf("enroll: %d %v", status, doc)
		}
		return dataOf(doc)["id"].(string)
	}
	revoke := func(contact string) {
		t.Helper()
		if status, doc := c.do("PUT", "/api/v1/contacts/"+contact+"/consent/email", `{"granted": false, "source": "unsubscribe_link"}`); status != 200 {
			t.Fatalf("revoke: %d %v", status, doc)
		}
	}
	// Enrollments and events are timed to the millisecond, and one in the
	// same millisecond as an opt-out counts as before it: the pauses keep
	// the order unambiguous.
	before := newContact(t, c, "before@example.org", "")
	earlier := enroll(before)
	time.Sleep(5 * time.Millisecond)
	revoke(before) // after her enrollment: it ends
	after := newContact(t, c, "after@example.org", "")
	revoke(after)
	time.Sleep(5 * time.Millisecond)
	later := enroll(after) // made knowing of the opt-out: it stays
	close(release)
	bustest.Eventually(t, 15*time.Second, "the earlier enrollment ended", func() bool {
		return enrollment(t, c, earlier)["exitReason"] == "unsubscribed"
	})
	bustest.Eventually(t, 10*time.Second, "both opt-outs handled", func() bool {
		return counterValue(t, a, "events_acked_total", "consumer", sequences.StopConsumerName) == 2
	})
	if e := enrollment(t, c, later); e["status"] == "exited" {
		t.Fatalf("the enrollment made after the opt-out ended: %v", e)
	}
}
