package pipeline

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/alumoutreach/alumoutreach/internal/event"
	"github.com/alumoutreach/alumoutreach/internal/platform/bus"
	"github.com/alumoutreach/alumoutreach/internal/platform/outbox/outboxtest"
	"github.com/alumoutreach/alumoutreach/internal/platform/store"
	"github.com/alumoutreach/alumoutreach/internal/platform/store/storetest"
)

func TestQuietHoursUntil(t *testing.T) {
	london, _ := time.LoadLocation("Europe/London")
	ny, _ := time.LoadLocation("America/New_York")
	night, _ := ParseQuietHours("21:00-08:00")
	lunch, _ := ParseQuietHours("12:00-14:00")
	cases := []struct {
		q     *QuietHours
		now   time.Time
		loc   *time.Location
		until time.Time // zero: not quiet
	}{
		{night, time.Date(2026, 11, 27, 22, 30, 0, 0, time.UTC), london, time.Date(2026, 11, 28, 8, 0, 0, 0, london)},
		{night, time.Date(2026, 11, 27, 7, 0, 0, 0, time.UTC), london, time.Date(2026, 11, 27, 8, 0, 0, 0, london)},
		{night, time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC), london, time.Time{}},
		{night, time.Date(2026, 11, 27, 8, 0, 0, 0, time.UTC), london, time.Time{}}, // the window's end is not quiet
		{night, time.Date(2026, 11, 27, 21, 0, 0, 0, time.UTC), london, time.Date(2026, 11, 28, 8, 0, 0, 0, london)},
		// 03:00 UTC is 22:00 the day before in New York: quiet until 08:00 there.
		{night, time.Date(2026, 11, 27, 3, 0, 0, 0, time.UTC), ny, time.Date(2026, 11, 27, 8, 0, 0, 0, ny)},
		{lunch, time.Date(2026, 11, 27, 13, 0, 0, 0, time.UTC), time.UTC, time.Date(2026, 11, 27, 14, 0, 0, 0, time.UTC)},
		{lunch, time.Date(2026, 11, 27, 15, 0, 0, 0, time.UTC), time.UTC, time.Time{}},
		// The night the clocks go back in London (2026-10-25): 08:00 is still 08:00 local.
		{night, time.Date(2026, 10, 24, 23, 0, 0, 0, time.UTC), london, time.Date(2026, 10, 25, 8, 0, 0, 0, london)},
	}
	for _, c := range cases {
		until, quiet := c.q.Until(c.now, c.loc)
		if quiet != !c.until.IsZero() || (quiet && !until.Equal(c.until)) {
			t.Errorf("%v at %s in %s: %v %v, want %v", *c.q, c.now, c.loc, until, quiet, c.until)
		}
	}
	for _, bad := range []string{"", "21:00", "9pm-8am", "25:00-08:00", "08:00-08:00", "21:00-08:60"} {
		if _, err := ParseQuietHours(bad); err == nil {
			t.Errorf("ParseQuietHours(%q) accepted", bad)
		}
	}
}

// nightFixture is a fixture at 23:00 in London with quiet hours
// 21:00-08:00 on SMS, a contact "night" in London who may get SMS, and an
// SMS sandbox; now moves its clock.
func nightFixture(t *testing.T, db *store.DB) (f *fixture, sms *Sandbox, now *time.Time) {
	t.Helper()
	f = newFixture(t, db)
	sms = NewSandbox(db, event.ChannelSMS)
	if err := sms.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(sms.Stop)
	f.svc.Providers[event.ChannelSMS] = sms
	f.svc.Contacts.(recipients)[tenantA+"/night"] = Recipient{ContactID: "night", Phone: "+447700900111", FirstName: "Nox",
		TimeZone: "Europe/London", Consent: map[string]bool{"sms": true}}
	f.svc.Rules.Quiet, _ = ParseQuietHours("21:00-08:00")
	f.svc.Rules.QuietChannels = []string{event.ChannelSMS}
	now = new(time.Time)
	*now = time.Date(2026, 11, 27, 23, 0, 0, 0, time.UTC)
	f.svc.now = func() time.Time { return *now }
	return f, sms, now
}

// morning is when the night contact's quiet hours of 2026-11-27 end.
var morning = time.Date(2026, 11, 28, 8, 0, 0, 0, time.UTC) // London is on UTC in November

// checkHeld checks that envs is exactly one pipeline.message.held of
// message id, to be sent in the morning.
func checkHeld(t *testing.T, envs []event.Envelope, id string) {
	t.Helper()
	if len(envs) != 1 || envs[0].Type != event.PipelineMessageHeld {
		t.Fatalf("events %v, want one %s", outboxtest.Subjects(envs), event.PipelineMessageHeld)
	}
	d, err := event.DecodeData[event.MessageData](envs[0])
	if err != nil || d.MessageID != id || !d.SendAfter.Equal(morning) || d.Channel != event.ChannelSMS ||
		d.RecipientAddress != "+447700900111" || d.Reason != "" || d.ErrorCode != "" {
		t.Fatalf("held payload %+v (%v)", d, err)
	}
	if !strings.Contains(string(envs[0].Data), `"sendAfter":"2026-11-28T08:00:00.000Z"`) {
		t.Fatalf("held payload %s", envs[0].Data)
	}
}

func TestQuietHoursHoldAndRelease(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f, sms, now := nightFixture(t, db)
		ctx := context.Background()

		m := f.message(f.do(tenantA, "POST", "/api/v1/messages", `{"contactId": "night", "channel": "sms", "templateId": "hello"}`), http.StatusAccepted)
		checkHeld(t, f.deliver(ctx), m.ID)
		got, _ := f.svc.Get(ctx, tenantA, m.ID)
		london, _ := time.LoadLocation("Europe/London")
		if got.Status != StatusHeld || got.SendAfter == nil || !got.SendAfter.Equal(time.Date(2026, 11, 28, 8, 0, 0, 0, london)) {
			t.Fatalf("held %+v", got)
		}
		// Email is not subject to quiet hours.
		e := f.message(f.do(tenantA, "POST", "/api/v1/messages", `{"contactId": "ada", "channel": "email", "templateId": "hello"}`), http.StatusAccepted)
		f.deliver(ctx)
		if got, _ := f.svc.Get(ctx, tenantA, e.ID); got.Status != StatusSent {
			t.Fatalf("email at night: %+v", got)
		}
		if n, err := f.svc.ReleaseHeld(ctx); err != nil || n != 0 {
			t.Fatalf("released before the morning: %d %v", n, err)
		}
		*now = time.Date(2026, 11, 28, 8, 0, 30, 0, time.UTC)
		if n, err := f.svc.ReleaseHeld(ctx); err != nil || n != 1 {
			t.Fatalf("released in the morning: %d %v", n, err)
		}
		if envs := f.deliver(ctx); len(envs) != 1 || envs[0].Type != event.PipelineMessageSent {
			t.Fatalf("after release: events %v", outboxtest.Subjects(envs))
		} else if d, _ := event.DecodeData[event.MessageData](envs[0]); !d.SendAfter.IsZero() {
			t.Fatalf("sent carries sendAfter: %s", envs[0].Data)
		}
		if got, _ := f.svc.Get(ctx, tenantA, m.ID); got.Status != StatusSent {
			t.Fatalf("after release: %+v", got)
		}
		if list, _ := sms.List(ctx, tenantA, "+447700900111", "", 10); len(list) != 1 || list[0].Text != "Hi Nox" {
			t.Fatalf("sms sandbox %+v", list)
		}
	})
}

// TestHeldOnceOnRedelivery: a queued event delivered again, one after the
// other or several at once, finds the message held and publishes nothing
// more: one pipeline.message.held per hold.
func TestHeldOnceOnRedelivery(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f, sms, _ := nightFixture(t, db)
		ctx := context.Background()
		for i, concurrent := range []bool{false, true} {
			env, err := event.New(ctx, event.PipelineMessageQueued, event.SourceCampaigns, tenantA, event.MessageData{
				MessageID: event.NewID(), Channel: event.ChannelSMS, ContactID: "night", RecipientAddress: "+447700900111",
				SourceType: event.MessageSourceCampaign, SourceID: fmt.Sprintf("spring-%d", i), TemplateID: "hello"})
			if err != nil {
				t.Fatal(err)
			}
			if err := f.svc.Handle(ctx, env); err != nil {
				t.Fatal(err)
			}
			d, _ := event.DecodeData[event.MessageData](env)
			checkHeld(t, f.out.Next(t), d.MessageID)
			// Redeliveries: in turn, or all at once (one batch or several).
			n := map[bool]int{false: 2, true: 8}[concurrent]
			errs := make(chan error, n)
			for range n {
				deliver := func() { errs <- f.svc.Handle(bus.WithAttempt(ctx, 2, 3), env) }
				if concurrent {
					go deliver()
				} else {
					deliver()
				}
			}
			for range n {
				if err := <-errs; err != nil {
					t.Fatal(err)
				}
			}
			if envs := f.out.Next(t); len(envs) != 0 {
				t.Fatalf("concurrent=%v: redeliveries published %v", concurrent, outboxtest.Subjects(envs))
			}
			if got, _ := f.svc.Get(ctx, tenantA, d.MessageID); got.Status != StatusHeld || !got.SendAfter.Equal(morning) {
				t.Fatalf("after redeliveries %+v", got)
			}
		}
		if list, _ := sms.List(ctx, tenantA, "", "", 10); len(list) != 0 {
			t.Fatalf("held messages were sent: %+v", list)
		}
	})
}

// TestHeldOnceOnTheSinglePath: a queued event whose send key belongs to a
// message of another id takes the one-by-one path (send), which holds the
// existing message and publishes its held event in the same transaction,
// once.
func TestHeldOnceOnTheSinglePath(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f, _, _ := nightFixture(t, db)
		ctx := context.Background()
		m := f.message(f.do(tenantA, "POST", "/api/v1/messages", `{"contactId": "night", "channel": "sms", "templateId": "hello", "sourceId": "reminder"}`), http.StatusAccepted)
		queued := f.out.Next(t)
		if len(queued) != 1 || queued[0].Type != event.PipelineMessageQueued {
			t.Fatalf("events %v", outboxtest.Subjects(queued))
		}
		// The same send key under another message id: the row is found
		// queued under m.ID, so the batch hands it to send.
		d, _ := event.DecodeData[event.MessageData](queued[0])
		d.MessageID = event.NewID()
		other, err := event.New(ctx, event.PipelineMessageQueued, event.SourcePipeline, tenantA, d)
		if err != nil {
			t.Fatal(err)
		}
		if err := f.svc.Handle(ctx, other); err != nil {
			t.Fatal(err)
		}
		checkHeld(t, f.out.Next(t), m.ID)
		// Neither event again, nor the original, holds it a second time.
		for _, env := range []event.Envelope{other, queued[0], other} {
			if err := f.svc.Handle(ctx, env); err != nil {
				t.Fatal(err)
			}
		}
		if envs := f.out.Next(t); len(envs) != 0 {
			t.Fatalf("redeliveries published %v", outboxtest.Subjects(envs))
		}
		// send itself, given the row again after it was held, does nothing.
		row, _ := f.svc.Get(ctx, tenantA, m.ID)
		row.Status = StatusQueued
		if err := f.svc.send(ctx, tenantA, row); err != nil {
			t.Fatal(err)
		}
		if envs := f.out.Next(t); len(envs) != 0 {
			t.Fatalf("a second hold published %v", outboxtest.Subjects(envs))
		}
		if got, _ := f.svc.Get(ctx, tenantA, m.ID); got.Status != StatusHeld || !got.SendAfter.Equal(morning) {
			t.Fatalf("stored %+v", got)
		}
	})
}

func TestFrequencyCap(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := newFixture(t, db)
		ctx := context.Background()
		f.svc.Rules.FrequencyCap, f.svc.Rules.FrequencyWindow = 2, 24*time.Hour
		var statuses []string
		for _, campaign := range []string{"c1", "c2", "c3"} {
			env, _ := event.New(ctx, event.PipelineMessageQueued, "campaigns-service", tenantA, event.MessageData{
				MessageID: event.NewID(), Channel: "email", ContactID: "ada", RecipientAddress: "ada@example.org",
				SourceType: event.MessageSourceCampaign, SourceID: campaign, TemplateID: "hello"})
			if err := f.svc.Handle(ctx, env); err != nil {
				t.Fatal(err)
			}
			d, _ := event.DecodeData[event.MessageData](env)
			m, _ := f.svc.Get(ctx, tenantA, d.MessageID)
			statuses = append(statuses, m.Status+":"+m.ErrorCode)
		}
		if statuses[0] != "sent:" || statuses[1] != "sent:" || statuses[2] != "blocked:frequency_cap" {
			t.Fatalf("statuses %v", statuses)
		}
		// A message the contact asked for through the API is not capped.
		m := f.message(f.do(tenantA, "POST", "/api/v1/messages", `{"contactId": "ada", "channel": "email", "templateId": "hello"}`), http.StatusAccepted)
		f.deliver(ctx)
		if got, _ := f.svc.Get(ctx, tenantA, m.ID); got.Status != StatusSent {
			t.Fatalf("API message capped: %+v", got)
		}
	})
}

func TestLimiter(t *testing.T) {
	l := newLimiter(10) // burst 1
	if err := l.wait(context.Background()); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := l.wait(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("an empty bucket with a cancelled context: %v", err)
	}
	var ls limiters
	if ls.get("t:a", 5) != ls.get("t:a", 5) || ls.get("t:a", 5) == ls.get("t:b", 5) {
		t.Fatal("buckets are not kept per key")
	}
}

// The release of held messages and the lookup of a provider's report read
// through their partial indexes, not by scanning every message sent.
func TestLookupsUseTheirPartialIndexes(t *testing.T) {
	t.Parallel()
	db := storetest.Open(t, store.SQLite)
	newFixture(t, db)
	for _, tc := range []struct {
		name, query, index string
		args               []any
	}{
		{"held messages due", heldDueSQL, "messages_held", []any{0}},
		{"message by external id", `SELECT id FROM messages` + byExternalID, "messages_tenant_external", []any{"t", "x"}},
	} {
		rows, err := db.Reader().QueryContext(context.Background(), `EXPLAIN QUERY PLAN `+tc.query, tc.args...)
		if err != nil {
			t.Fatal(err)
		}
		var plan []string
		for rows.Next() {
			var id, parent, unused int
			var detail string
			if err := rows.Scan(&id, &parent, &unused, &detail); err != nil {
				t.Fatal(err)
			}
			plan = append(plan, detail)
		}
		rows.Close()
		if got := strings.Join(plan, "; "); !strings.Contains(got, "USING INDEX "+tc.index) {
			t.Errorf("%s: plan %s, want it to use %s", tc.name, got, tc.index)
		}
	}
}
