package inbox

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/alumoutreach/alumoutreach/internal/event"
	"github.com/alumoutreach/alumoutreach/internal/platform/outbox"
	"github.com/alumoutreach/alumoutreach/internal/platform/store"
	"github.com/alumoutreach/alumoutreach/internal/platform/store/storetest"
)

// nobody matches no sender to a contact.
type nobody struct{}

func (nobody) ContactByAddress(context.Context, string, string, string) (string, error) {
	return "", nil
}

// outboxCount counts the events of subject written to the outbox.
func outboxCount(t *testing.T, db *store.DB, subject string) int {
	t.Helper()
	var n int
	if err := db.Reader().QueryRow(`SELECT count(*) FROM outbox WHERE subject = $1`, subject).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// The sweep reaches the deadlines whose timers were never armed (here no
// timers at all), each stage once, and a breach found late without its
// warning publishes only the breach.
func TestSweepReachesDeadlinesWithoutTimers(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		if err := db.Migrate(ctx, "outbox", outbox.Migrations()); err != nil {
			t.Fatal(err)
		}
		if err := db.Migrate(ctx, ModuleName, Migrations()); err != nil {
			t.Fatal(err)
		}
		svc := NewService(db, outbox.New(db, 0), slog.New(slog.DiscardHandler), nobody{}, nil, nil,
			SLA{FirstResponse: time.Hour, NextResponse: time.Hour, WarningBefore: 10 * time.Minute}, nil)
		start := time.Date(2026, 11, 27, 9, 0, 0, 0, time.UTC)
		now := start
		svc.now = func() time.Time { return now }
		for i, from := range []string{"ada@example.org", "bob@example.org"} {
			env, err := event.New(ctx, event.WebhookEmailInbound, "pipeline-service", "tenant-a", event.InboundMessageData{Provider: "sendgrid",
				Channel: event.ChannelEmail, ExternalID: from, From: from, To: "replies@example.edu",
				ReceivedAt: event.Time{Time: start.Add(time.Duration(i) * 30 * time.Minute)}})
			if err != nil {
				t.Fatal(err)
			}
			if err := svc.HandleInbound(ctx, env); err != nil {
				t.Fatal(err)
			}
		}
		sweep := func(at time.Time, want int) {
			t.Helper()
			now = at
			if n, err := svc.Sweep(ctx, 100); err != nil || n != want {
				t.Fatalf("sweep at %s: %d, %v; want %d", at.Format("15:04"), n, err, want)
			}
		}
		sweep(start.Add(49*time.Minute), 0) // Ada's warning (09:50) is not 30 s late yet
		sweep(start.Add(55*time.Minute), 1) // Ada's warning
		sweep(start.Add(55*time.Minute), 0) // once
		sweep(start.Add(2*time.Hour), 2)    // both breaches; Bob's warning is skipped
		sweep(start.Add(3*time.Hour), 0)
		if w, b := outboxCount(t, db, event.InboxSLAWarning), outboxCount(t, db, event.InboxSLABreach); w != 1 || b != 2 {
			t.Errorf("%d warnings and %d breaches, want 1 and 2", w, b)
		}
		threads, err := svc.List(ctx, "tenant-a", Filter{}, nil, 10)
		if err != nil {
			t.Fatal(err)
		}
		for _, th := range threads {
			if th.SLA != "breached" || th.responseKind != event.SLAFirstResponse {
				t.Errorf("thread %s: sla %q, kind %q", th.Address, th.SLA, th.responseKind)
			}
		}
	})
}
