package templates

import (
	"context"
	"errors"
	"reflect"
	"strings"
	"sync"
	"testing"

	"github.com/alumoutreach/alumoutreach/internal/event"
	"github.com/alumoutreach/alumoutreach/internal/platform/bus"
	"github.com/alumoutreach/alumoutreach/internal/platform/outbox/outboxtest"
	"github.com/alumoutreach/alumoutreach/internal/platform/store"
	"github.com/alumoutreach/alumoutreach/internal/platform/store/storetest"
)

// scriptedReviewer answers submissions in turn from its script and keeps
// what it was given. The provider's own protocol is tested against a
// Meta-shaped server in package meta and in the app; this one drives the
// consumer's bookkeeping through every kind of answer.
type scriptedReviewer struct {
	mu       sync.Mutex
	script   []func(ReviewRequest) (ReviewResult, error)
	requests []ReviewRequest
}

func (r *scriptedReviewer) SubmitForReview(_ context.Context, _ string, req ReviewRequest) (ReviewResult, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.requests = append(r.requests, req)
	if len(r.script) == 0 {
		return ReviewResult{}, errors.New("scriptedReviewer: no more answers")
	}
	next := r.script[0]
	r.script = r.script[1:]
	return next(req)
}

func (r *scriptedReviewer) calls() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.requests)
}

func answer(res ReviewResult, err error) func(ReviewRequest) (ReviewResult, error) {
	return func(ReviewRequest) (ReviewResult, error) { return res, err }
}

const waTemplate = `{"name": "Reunion", "channel": "whatsapp", "content": {"body": "Hi {{contact.firstName}}!",
	"whatsapp": {"name": "reunion_invite", "language": "en_US", "category": "MARKETING", "body": "Hi {{1}}, join us for {{2}} with the class of {{3}}",
	"params": ["{{contact.firstName | default: \"there\"}}", "{{campaign.name}}", "{{contact.attributes.classYear}}"]}}}`

// submit submits tpl and returns its template.hsm.submitted event.
func (f *fixture) submit(id string) event.Envelope {
	f.t.Helper()
	f.template(f.do(tenantA, "POST", "/api/v1/templates/"+id+"/review", ""), 200)
	envs := f.out.Next(f.t)
	if len(envs) != 1 || envs[0].Type != event.TemplateHSMSubmitted {
		f.t.Fatalf("submit published %v", outboxtest.Subjects(envs))
	}
	return envs[0]
}

// deliver hands env to the handler as the bus would.
func deliver(h bus.Handler, env event.Envelope) error {
	return h(event.WithCause(context.Background(), env), env)
}

func TestReviewHandlerSubmitsOnceAndKeepsVerdicts(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := newFixture(t, db)
		tpl := f.template(f.do(tenantA, "POST", "/api/v1/templates", waTemplate), 201)
		f.out.Next(t)
		submitted := f.submit(tpl.ID)
		// The content changes after the submission: the submitted version
		// is what goes to the provider.
		f.template(f.do(tenantA, "PATCH", "/api/v1/templates/"+tpl.ID, `{"content": {"whatsapp": {"name": "reunion_invite", "language": "en_US",
			"category": "MARKETING", "body": "Changed {{1}}", "params": ["x"]}}}`), 200)
		f.out.Next(t)

		reviewer := &scriptedReviewer{script: []func(ReviewRequest) (ReviewResult, error){
			answer(ReviewResult{}, errors.New("meta: transient failure 131000: something went wrong")),
			answer(ReviewResult{ProviderID: "572279198452421", Status: ReviewSubmitted}, nil),
		}}
		h := f.svc.ReviewHandler(reviewer)
		err := deliver(h, submitted)
		if err == nil || bus.IsPermanent(err) || !strings.Contains(err.Error(), "131000") {
			t.Fatalf("a provider's transient failure: %v, want a transient error for the bus to retry", err)
		}
		if envs := f.out.Next(t); len(envs) != 0 {
			t.Fatalf("a failed submission published %v", outboxtest.Subjects(envs))
		}
		if err := deliver(h, submitted); err != nil {
			t.Fatalf("retry: %v", err)
		}
		want := ReviewRequest{TemplateID: tpl.ID, Name: "reunion_invite", Language: "en_US", Category: "MARKETING",
			Body: "Hi {{1}}, join us for {{2}} with the class of {{3}}", Examples: []string{"Ada", "Spring Reunion", "classYear"}}
		if got := reviewer.requests[1]; !reflect.DeepEqual(got, want) {
			t.Fatalf("request\n got %+v\nwant %+v", got, want)
		}
		got := f.template(f.do(tenantA, "GET", "/api/v1/templates/"+tpl.ID, ""), 200)
		if got.Review.Status != ReviewSubmitted || got.Review.ProviderID != "572279198452421" {
			t.Fatalf("review after the provider took it: %+v", got.Review)
		}
		if envs := f.out.Next(t); len(envs) != 0 {
			t.Fatalf("a pending review published %v", outboxtest.Subjects(envs))
		}

		// Redelivered: the provider has it already.
		if err := deliver(h, submitted); err != nil || reviewer.calls() != 2 {
			t.Fatalf("redelivery: %v, %d calls to the provider, want 2", err, reviewer.calls())
		}
		// The verdict arrives by webhook; a later redelivery changes nothing.
		if n, err := f.svc.ApplyReview(context.Background(), tenantA, "reunion_invite", "en_US", true, "", "572279198452421"); n != 1 || err != nil {
			t.Fatalf("approve: %d %v", n, err)
		}
		envs := f.out.Next(t)
		if len(envs) != 1 || envs[0].Type != event.TemplateHSMApproved {
			t.Fatalf("approval published %v", outboxtest.Subjects(envs))
		}
		if d, _ := event.DecodeData[event.TemplateHSMApprovedData](envs[0]); d.ProviderTemplateID != "572279198452421" || d.TemplateID != tpl.ID {
			t.Fatalf("approval %+v", d)
		}
		if err := deliver(h, submitted); err != nil || reviewer.calls() != 2 || len(f.out.Next(t)) != 0 {
			t.Fatalf("redelivery after the verdict: %v, %d calls", err, reviewer.calls())
		}
		if got := f.template(f.do(tenantA, "GET", "/api/v1/templates/"+tpl.ID, ""), 200); got.Review.Status != ReviewApproved {
			t.Fatalf("review %+v", got.Review)
		}
	})
}

func TestReviewHandlerRefusalRejects(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := newFixture(t, db)
		tpl := f.template(f.do(tenantA, "POST", "/api/v1/templates", waTemplate), 201)
		f.out.Next(t)
		reason := "Meta error 100: Invalid parameter: Variables can't be at the start or end of the template."
		reviewer := &scriptedReviewer{script: []func(ReviewRequest) (ReviewResult, error){
			answer(ReviewResult{Status: ReviewRejected, Reason: reason}, nil),
			answer(ReviewResult{Status: ReviewApproved}, nil),
		}}
		h := f.svc.ReviewHandler(reviewer)
		first := f.submit(tpl.ID)
		if err := deliver(h, first); err != nil {
			t.Fatal(err)
		}
		envs := f.out.Next(t)
		if len(envs) != 1 || envs[0].Type != event.TemplateHSMRejected {
			t.Fatalf("refusal published %v", outboxtest.Subjects(envs))
		}
		if d, _ := event.DecodeData[event.TemplateHSMRejectedData](envs[0]); d.Reason != reason || envs[0].CausationID != first.ID {
			t.Fatalf("rejection %+v caused by %s", d, envs[0].CausationID)
		}
		got := f.template(f.do(tenantA, "GET", "/api/v1/templates/"+tpl.ID, ""), 200)
		if got.Review.Status != ReviewRejected || got.Review.Reason != reason {
			t.Fatalf("review %+v", got.Review)
		}
		if err := deliver(h, first); err != nil || reviewer.calls() != 1 || len(f.out.Next(t)) != 0 {
			t.Fatalf("redelivered refusal: %v, %d calls", err, reviewer.calls())
		}

		// Submitted twice before the consumer ran: only the newer counts.
		stale := f.submit(tpl.ID)
		current := f.submit(tpl.ID)
		if err := deliver(h, stale); err != nil || reviewer.calls() != 1 {
			t.Fatalf("superseded submission: %v, %d calls", err, reviewer.calls())
		}
		if err := deliver(h, current); err != nil || reviewer.calls() != 2 {
			t.Fatalf("current submission: %v, %d calls", err, reviewer.calls())
		}
		if envs := f.out.Next(t); len(envs) != 1 || envs[0].Type != event.TemplateHSMApproved {
			t.Fatalf("approval published %v", outboxtest.Subjects(envs))
		}
		if err := deliver(h, stale); err != nil || len(f.out.Next(t)) != 0 {
			t.Fatalf("a late superseded submission: %v", err)
		}

		// A deleted template has nothing to review.
		other := f.template(f.do(tenantA, "POST", "/api/v1/templates", strings.Replace(waTemplate, `"Reunion"`, `"Other"`, 1)), 201)
		f.out.Next(t)
		gone := f.submit(other.ID)
		if r := f.do(tenantA, "DELETE", "/api/v1/templates/"+other.ID, ""); r.Status != 204 {
			t.Fatalf("delete: %d", r.Status)
		}
		f.out.Next(t)
		if err := deliver(h, gone); err != nil || reviewer.calls() != 2 {
			t.Fatalf("a deleted template's submission: %v, %d calls", err, reviewer.calls())
		}
	})
}

func TestSandboxReviewerApprovesAtOnce(t *testing.T) {
	f := newFixture(t, storetest.Open(t, store.SQLite))
	tpl := f.template(f.do(tenantA, "POST", "/api/v1/templates", waTemplate), 201)
	f.out.Next(t)
	env := f.submit(tpl.ID)
	h := f.svc.ReviewHandler(SandboxReviewer{})
	for range 2 { // redelivered: approved once
		if err := deliver(h, env); err != nil {
			t.Fatal(err)
		}
	}
	envs := f.out.Next(t)
	if len(envs) != 1 || envs[0].Type != event.TemplateHSMApproved {
		t.Fatalf("sandbox published %v", outboxtest.Subjects(envs))
	}
	got := f.template(f.do(tenantA, "GET", "/api/v1/templates/"+tpl.ID, ""), 200)
	if got.Review.Status != ReviewApproved || got.Review.ProviderID != "sandbox:reunion_invite:en_US" {
		t.Fatalf("review %+v", got.Review)
	}
}

func TestReviewExamples(t *testing.T) {
	t.Parallel()
	c, err := Compile(event.ChannelWhatsApp, Content{WhatsApp: &WhatsAppTemplate{Name: "x", Language: "en", Category: "UTILITY",
		Body: "{{1}} {{2}} {{3}} {{4}}", Params: []string{"{{contact.fullName | upper}}", "{{contact.attributes.city | default: \"Leeds\"}}",
			"{{message.id}}{{contact.attributes.nickname}}", "{{contact.locale}}"}},
		Defaults: map[string]string{"contact.locale": "ignored: the sample has one"}})
	if err != nil {
		t.Fatal(err)
	}
	got, err := c.Examples()
	if want := []string{"ADA LOVELACE", "city", "sample-messagenickname", "en_GB"}; err != nil || !reflect.DeepEqual(got, want) {
		t.Fatalf("examples %q, %v; want %q", got, err, want)
	}
	c, _ = Compile(event.ChannelWhatsApp, Content{WhatsApp: &WhatsAppTemplate{Name: "x", Language: "en", Category: "UTILITY",
		Body: "Code {{1}} {{2}}", Params: []string{"{{contact.lastName}}{{unsubscribeUrl}}", " "}}})
	if got, _ := c.Examples(); len(got) != 2 || got[0] != "Lovelacehttps://example.org/unsubscribe" || got[1] != "example 2" {
		t.Fatalf("examples %q", got)
	}
}
