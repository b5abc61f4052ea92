package pipeline

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/alumoutreach/alumoutreach/internal/event"
	"github.com/alumoutreach/alumoutreach/internal/platform/bus"
	"github.com/alumoutreach/alumoutreach/internal/platform/outbox/outboxtest"
	"github.com/alumoutreach/alumoutreach/internal/platform/store"
	"github.com/alumoutreach/alumoutreach/internal/platform/store/storetest"
)

type counter struct{ n int }

func (c *counter) Inc() { c.n++ }

func TestProviderReportsBecomeMessageEvents(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := newFixture(t, db)
		unmatched := &counter{}
		f.svc.Unmatched = unmatched
		ctx := context.Background()
		m := f.message(f.do(tenantA, "POST", "/api/v1/messages", `{"contactId": "ada", "channel": "email", "templateId": "hello"}`), http.StatusAccepted)
		f.deliver(ctx)
		sent, _ := f.svc.Get(ctx, tenantA, m.ID)
		report := func(subject string, d event.ProviderEventData) event.Envelope {
			t.Helper()
			d.Provider, d.Channel, d.OccurredAt = "sendgrid", "email", event.Time{Time: time.Now().UTC()}
			env, err := event.New(ctx, subject, event.SourceWebhooks, tenantA, d)
			if err != nil {
				t.Fatal(err)
			}
			return env
		}
		steps := []struct {
			env    event.Envelope
			want   string
			status string
		}{
			{report(event.WebhookEmailDelivered, event.ProviderEventData{ExternalID: sent.ExternalID}), event.PipelineMessageDelivered, StatusDelivered},
			{report(event.WebhookEmailOpened, event.ProviderEventData{ExternalID: sent.ExternalID}), event.PipelineMessageOpened, StatusDelivered},
			{report(event.WebhookEmailClicked, event.ProviderEventData{MessageID: m.ID, ExternalID: "whatever", URL: "https://example.edu"}), event.PipelineMessageClicked, StatusDelivered},
			{report(event.WebhookEmailComplained, event.ProviderEventData{ExternalID: sent.ExternalID}), event.PipelineMessageComplained, StatusComplained},
		}
		for _, s := range steps {
			if err := f.svc.HandleReport(ctx, s.env); err != nil {
				t.Fatal(err)
			}
			envs := f.out.Next(t)
			if len(envs) != 1 || envs[0].Type != s.want {
				t.Fatalf("%s: events %v, want %s", s.env.Type, outboxtest.Subjects(envs), s.want)
			}
			if got, _ := f.svc.Get(ctx, tenantA, m.ID); got.Status != s.status {
				t.Fatalf("%s: status %s, want %s", s.env.Type, got.Status, s.status)
			}
			// Redelivered: nothing more.
			if err := f.svc.HandleReport(ctx, s.env); err != nil || len(f.out.Next(t)) != 0 {
				t.Fatalf("%s redelivered: %v", s.env.Type, err)
			}
		}
		// The complaint suppressed the address.
		if _, ok, _ := suppressed(ctx, db.Reader(), tenantA, "email", "ada@example.org"); !ok {
			t.Fatal("a complaint did not suppress the address")
		}
		// A report about no message of ours is retried (our record of the
		// send may not have committed yet), then counted, not an error.
		stray := report(event.WebhookEmailDelivered, event.ProviderEventData{ExternalID: "nobody@example.org"})
		if err := f.svc.HandleReport(bus.WithAttempt(ctx, 1, 3), stray); err == nil || unmatched.n != 0 {
			t.Fatalf("unmatched on a first attempt: %v, %d", err, unmatched.n)
		}
		if err := f.svc.HandleReport(bus.WithAttempt(ctx, 3, 3), stray); err != nil || unmatched.n != 1 {
			t.Fatalf("unmatched on the last attempt: %v, %d", err, unmatched.n)
		}
		// Another tenant's report cannot reach this tenant's message.
		env, _ := event.New(ctx, event.WebhookEmailBounced, event.SourceWebhooks, tenantB, event.ProviderEventData{Provider: "sendgrid", Channel: "email",
			ExternalID: sent.ExternalID, BounceType: event.BounceHard, OccurredAt: event.Time{Time: time.Now()}})
		if err := f.svc.HandleReport(bus.WithAttempt(ctx, 3, 3), env); err != nil || unmatched.n != 2 || len(f.out.Next(t)) != 0 {
			t.Fatalf("cross-tenant report: %v, %d", err, unmatched.n)
		}
	})
}
