package pipeline

import (
	"context"
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/alumoutreach/alumoutreach/internal/event"
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

func TestQuietHoursHoldAndRelease(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := newFixture(t, db)
		ctx := context.Background()
		sms := NewSandbox(db, event.ChannelSMS)
		sms.Start(ctx)
		t.Cleanup(sms.Stop)
		f.svc.Providers[event.ChannelSMS] = sms
		f.svc.Contacts.(recipients)[tenantA+"/night"] = Recipient{ContactID: "night", Phone: "+447700900111", FirstName: "Nox",
			TimeZone: "Europe/London", Consent: map[string]bool{"sms": true}}
		f.svc.Rules.Quiet, _ = ParseQuietHours("21:00-08:00")
		f.svc.Rules.QuietChannels = []string{event.ChannelSMS}
		now := time.Date(2026, 11, 27, 23, 0, 0, 0, time.UTC)
		f.svc.now = func() time.Time { return now }

		m := f.message(f.do(tenantA, "POST", "/api/v1/messages", `{"contactId": "night", "channel": "sms", "templateId": "hello"}`), http.StatusAccepted)
		if envs := f.deliver(ctx); len(envs) != 0 {
			t.Fatalf("a held message published %v", envs)
		}
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
		now = time.Date(2026, 11, 28, 8, 0, 30, 0, time.UTC)
		if n, err := f.svc.ReleaseHeld(ctx); err != nil || n != 1 {
			t.Fatalf("released in the morning: %d %v", n, err)
		}
		f.deliver(ctx)
		if got, _ := f.svc.Get(ctx, tenantA, m.ID); got.Status != StatusSent {
			t.Fatalf("after release: %+v", got)
		}
		if list, _ := sms.List(ctx, tenantA, "+447700900111", "", 10); len(list) != 1 || list[0].Text != "Hi Nox" {
			t.Fatalf("sms sandbox %+v", list)
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
