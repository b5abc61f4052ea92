package analytics

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/alumoutreach/alumoutreach/internal/event"
	"github.com/alumoutreach/alumoutreach/internal/platform/fault"
	"github.com/alumoutreach/alumoutreach/internal/platform/store"
	"github.com/alumoutreach/alumoutreach/internal/platform/store/storetest"
)

const (
	tenantA = "tenant-a"
	tenantB = "tenant-b"
)

// base is a fixed hour start, far from any day boundary's surprises.
var base = time.Date(2026, 3, 10, 0, 0, 0, 0, time.UTC)

func newStore(t testing.TB, db *store.DB) *SQLStore {
	t.Helper()
	if err := Migrate(context.Background(), db); err != nil {
		t.Fatalf("migrate analytics: %v", err)
	}
	return NewSQLStore(db)
}

// envelope builds an envelope of subject for tenant at time at. Analytics
// stores events whatever their payload, so the payload is a stand-in; some
// tests deliberately pass subjects or tenants the contract would refuse.
func envelope(t testing.TB, tenant, subject string, at time.Time) event.Envelope {
	t.Helper()
	env := event.Envelope{
		ID: event.NewID(), Type: subject, Version: event.CurrentVersion, Source: "contacts-service",
		Timestamp: event.Time{Time: at.UTC()}, TenantID: tenant, CorrelationID: event.NewID(),
		Data: json.RawMessage(`{"contactId":"` + event.NewID() + `"}`),
	}
	return env
}

func mkEvent(t testing.TB, tenant, subject string, at time.Time) Event {
	t.Helper()
	return FromEnvelope(envelope(t, tenant, subject, at))
}

func insert(t testing.TB, st Store, events ...Event) int {
	t.Helper()
	n, err := st.Insert(context.Background(), events)
	if err != nil {
		t.Fatalf("insert: %v", err)
	}
	return n
}

func counts(t testing.TB, st Store, tenant string, q CountQuery) []Bucket {
	t.Helper()
	got, err := st.Counts(context.Background(), tenant, q)
	if err != nil {
		t.Fatalf("counts %s: %v", q, err)
	}
	return got
}

func rawRows(t testing.TB, db *store.DB) int {
	t.Helper()
	var n int
	if err := db.Reader().QueryRow(`SELECT count(*) FROM analytics_events`).Scan(&n); err != nil {
		t.Fatalf("count raw rows: %v", err)
	}
	return n
}

func total(bs []Bucket) int64 {
	var n int64
	for _, b := range bs {
		n += b.Count
	}
	return n
}

// eachInsertForm runs fn on every engine with each INSERT form the store
// can use, so both forms are known to work on both engines, not only on
// the engine each is chosen for.
func eachInsertForm(t *testing.T, fn func(t *testing.T, db *store.DB, st *SQLStore)) {
	t.Helper()
	forms := []struct {
		name string
		rows int
	}{
		{"one_by_one", 1},
		{"multi_row", 2}, // tiny, so batches span full and partial statements
	}
	for _, kind := range storetest.Kinds() {
		for _, f := range forms {
			t.Run(string(kind)+"/"+f.name, func(t *testing.T) {
				db := storetest.Open(t, kind)
				st := newStore(t, db)
				st.rowsPerInsert = f.rows
				fn(t, db, st)
			})
		}
	}
}

func TestInsertStoresEachIDOnce(t *testing.T) {
	eachInsertForm(t, func(t *testing.T, db *store.DB, st *SQLStore) {
		a := mkEvent(t, tenantA, "contact.created", base.Add(10*time.Minute))
		b := mkEvent(t, tenantA, "contact.created", base.Add(20*time.Minute))
		c := mkEvent(t, tenantA, "contact.updated", base.Add(30*time.Minute))

		steps := []struct {
			name  string
			batch []Event
			want  int
		}{
			{"first batch with a duplicate inside", []Event{a, b, a}, 2},
			{"redelivery of a stored event", []Event{b}, 0},
			{"new and old together", []Event{c, a, c, b}, 1},
			{"old ones only, more than one statement", []Event{b, c, a, b, c}, 0},
			{"empty batch", nil, 0},
		}
		for _, s := range steps {
			if got := insert(t, st, s.batch...); got != s.want {
				t.Errorf("%s: inserted %d, want %d", s.name, got, s.want)
			}
		}
		if n := rawRows(t, db); n != 3 {
			t.Errorf("raw rows = %d, want 3", n)
		}
		got := counts(t, st, tenantA, CountQuery{From: base, To: base.Add(time.Hour), Interval: Hour})
		want := []Bucket{
			{Subject: "contact.created", Start: base, Count: 2},
			{Subject: "contact.updated", Start: base, Count: 1},
		}
		if !slices.Equal(got, want) {
			t.Errorf("counts = %v, want %v", got, want)
		}
	})
}

func TestInsertRefusesEventsWithoutKey(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		st := newStore(t, db)
		ok := mkEvent(t, tenantA, "contact.created", base)
		bad := mkEvent(t, "", "contact.created", base)
		if _, err := st.Insert(context.Background(), []Event{ok, bad}); err == nil {
			t.Fatal("insert of an event without tenant succeeded")
		}
		if n := rawRows(t, db); n != 0 {
			t.Errorf("raw rows = %d after a refused batch, want 0", n)
		}
	})
}

func TestCounts(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		st := newStore(t, db)
		day2 := base.Add(24 * time.Hour)
		var fixture []Event
		add := func(tenant, subject string, at time.Time, n int) {
			for range n {
				fixture = append(fixture, mkEvent(t, tenant, subject, at))
			}
		}
		add(tenantA, "contact.created", base.Add(5*time.Minute), 3)            // day 1, hour 0
		add(tenantA, "contact.created", base.Add(time.Hour+59*time.Minute), 2) // day 1, hour 1
		add(tenantA, "contact.consent.granted", base.Add(time.Hour), 1)        // day 1, hour 1, three tokens
		add(tenantA, "contactx.created", base.Add(time.Hour), 4)               // not below "contact."
		add(tenantA, "campaign.started", base.Add(2*time.Hour), 1)             // day 1, hour 2
		add(tenantA, "contact.created", day2.Add(-time.Millisecond), 1)        // day 1, hour 23, last ms
		add(tenantA, "contact.created", day2, 5)                               // day 2, hour 0, first ms
		add(tenantB, "contact.created", base.Add(5*time.Minute), 7)
		insert(t, st, fixture...)

		h := func(subject string, start time.Time, n int64) Bucket { return Bucket{subject, start, n} }
		cases := []struct {
			name   string
			tenant string
			q      CountQuery
			want   []Bucket
		}{
			{"hours, all subjects, ordered by start then subject", tenantA,
				CountQuery{From: base, To: base.Add(3 * time.Hour), Interval: Hour},
				[]Bucket{
					h("contact.created", base, 3),
					h("contact.consent.granted", base.Add(time.Hour), 1),
					h("contact.created", base.Add(time.Hour), 2),
					h("contactx.created", base.Add(time.Hour), 4),
					h("campaign.started", base.Add(2*time.Hour), 1),
				}},
			{"days sum the hours", tenantA,
				CountQuery{From: base, To: day2.Add(24 * time.Hour), Interval: Day},
				[]Bucket{
					h("campaign.started", base, 1),
					h("contact.consent.granted", base, 1),
					h("contact.created", base, 6),
					h("contactx.created", base, 4),
					h("contact.created", day2, 5),
				}},
			{"exact subject", tenantA,
				CountQuery{From: base, To: day2.Add(24 * time.Hour), Interval: Day, Subject: "contact.created"},
				[]Bucket{h("contact.created", base, 6), h("contact.created", day2, 5)}},
			{"prefix matches every depth below it and nothing beside it", tenantA,
				CountQuery{From: base, To: base.Add(3 * time.Hour), Interval: Hour, Subject: "contact.>"},
				[]Bucket{
					h("contact.created", base, 3),
					h("contact.consent.granted", base.Add(time.Hour), 1),
					h("contact.created", base.Add(time.Hour), 2),
				}},
			{"deeper prefix", tenantA,
				CountQuery{From: base, To: day2, Interval: Day, Subject: "contact.consent.>"},
				[]Bucket{h("contact.consent.granted", base, 1)}},
			{"> is all subjects", tenantA,
				CountQuery{From: base, To: base.Add(time.Hour), Interval: Hour, Subject: ">"},
				[]Bucket{h("contact.created", base, 3)}},
			{"subject without events", tenantA,
				CountQuery{From: base, To: day2, Interval: Day, Subject: "inbox.message.received"},
				[]Bucket{}},
			{"to is exclusive", tenantA,
				CountQuery{From: base.Add(23 * time.Hour), To: day2, Interval: Hour, Subject: "contact.created"},
				[]Bucket{h("contact.created", base.Add(23*time.Hour), 1)}},
			{"from is inclusive", tenantA,
				CountQuery{From: day2, To: day2.Add(time.Hour), Interval: Hour},
				[]Bucket{h("contact.created", day2, 5)}},
			{"from inside an hour includes that hour", tenantA,
				CountQuery{From: base.Add(30 * time.Minute), To: base.Add(time.Hour), Interval: Hour, Subject: "contact.created"},
				[]Bucket{h("contact.created", base, 3)}},
			{"to inside an hour includes that hour", tenantA,
				CountQuery{From: base.Add(time.Hour), To: base.Add(time.Hour + time.Minute), Interval: Hour, Subject: "contact.created"},
				[]Bucket{h("contact.created", base.Add(time.Hour), 2)}},
			{"to inside a day includes that day", tenantA,
				CountQuery{From: base.Add(12 * time.Hour), To: day2.Add(time.Millisecond), Interval: Day, Subject: "contact.created"},
				[]Bucket{h("contact.created", base, 6), h("contact.created", day2, 5)}},
			{"range before any event", tenantA,
				CountQuery{From: base.Add(-48 * time.Hour), To: base, Interval: Day},
				[]Bucket{}},
			{"tenant B sees only its own", tenantB,
				CountQuery{From: base, To: day2.Add(24 * time.Hour), Interval: Day},
				[]Bucket{h("contact.created", base, 7)}},
			{"unknown tenant sees nothing", "tenant-c",
				CountQuery{From: base, To: day2.Add(24 * time.Hour), Interval: Day},
				[]Bucket{}},
			{"empty range", tenantA,
				CountQuery{From: base, To: base, Interval: Hour},
				[]Bucket{}},
		}
		for _, c := range cases {
			t.Run(c.name, func(t *testing.T) {
				got := counts(t, st, c.tenant, c.q)
				if got == nil {
					t.Fatal("counts returned nil; want an empty slice so JSON shows []")
				}
				if !slices.Equal(got, c.want) {
					t.Errorf("got  %v\nwant %v", got, c.want)
				}
			})
		}
	})
}

func TestCountsRefusesBadQueries(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		st := newStore(t, db)
		cases := []struct {
			name string
			q    CountQuery
			code string
		}{
			{"unknown interval", CountQuery{From: base, To: base.Add(time.Hour), Interval: "week"}, "invalid_interval"},
			{"empty interval", CountQuery{From: base, To: base.Add(time.Hour)}, "invalid_interval"},
			{"star wildcard", CountQuery{From: base, To: base.Add(time.Hour), Interval: Hour, Subject: "contact.*"}, "invalid_subject"},
		}
		for _, c := range cases {
			_, err := st.Counts(context.Background(), tenantA, c.q)
			fe, ok := fault.As(err)
			if !ok || fe.Kind != fault.Invalid || fe.Code != c.code {
				t.Errorf("%s: err = %v, want fault.Invalid %s", c.name, err, c.code)
			}
		}
	})
}

func TestParseSubject(t *testing.T) {
	t.Parallel()
	cases := []struct {
		in      string
		want    subjectFilter
		invalid bool
	}{
		{in: "", want: subjectFilter{}},
		{in: ">", want: subjectFilter{}},
		{in: "contact.created", want: subjectFilter{exact: "contact.created"}},
		{in: "contact", want: subjectFilter{exact: "contact"}},
		{in: "contact.>", want: subjectFilter{prefix: "contact."}},
		{in: "webhook.twilio.>", want: subjectFilter{prefix: "webhook.twilio."}},
		{in: "contact.*", invalid: true},
		{in: "*.created", invalid: true},
		{in: "contact>", invalid: true},
		{in: "contact.>.x", invalid: true},
		{in: ".>", invalid: true},
		{in: "contact..created", invalid: true},
		{in: "contact.", invalid: true},
		{in: "contact created", invalid: true},
		{in: "contact.>>", invalid: true},
	}
	for _, c := range cases {
		got, err := parseSubject(c.in)
		if c.invalid {
			var fe *fault.Error
			if !errors.As(err, &fe) || fe.Code != "invalid_subject" {
				t.Errorf("parseSubject(%q) err = %v, want invalid_subject", c.in, err)
			}
			continue
		}
		if err != nil || got != c.want {
			t.Errorf("parseSubject(%q) = %+v, %v; want %+v", c.in, got, err, c.want)
		}
	}
}

func TestFloorTo(t *testing.T) {
	t.Parallel()
	cases := []struct{ ms, width, want int64 }{
		{0, hourMs, 0},
		{hourMs - 1, hourMs, 0},
		{hourMs, hourMs, hourMs},
		{-1, hourMs, -hourMs},
		{dayMs + 5, dayMs, dayMs},
	}
	for _, c := range cases {
		if got := floorTo(c.ms, c.width); got != c.want {
			t.Errorf("floorTo(%d, %d) = %d, want %d", c.ms, c.width, got, c.want)
		}
	}
}

func TestEraseBlanksAContactsEvents(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		st := newStore(t, db)
		ctx := context.Background()
		at := time.Date(2026, 11, 27, 9, 0, 0, 0, time.UTC)
		events := []Event{
			{ID: "e1", TenantID: "t1", Subject: "contact.created", OccurredAt: at, Data: json.RawMessage(`{"contactId": "c1", "email": "ada@example.org"}`)},
			{ID: "e2", TenantID: "t1", Subject: "pipeline.message.sent", OccurredAt: at, Data: json.RawMessage(`{"contactId": "c1", "recipientAddress": "ada@example.org"}`)},
			{ID: "e3", TenantID: "t1", Subject: "contact.created", OccurredAt: at, Data: json.RawMessage(`{"contactId": "c2", "email": "bob@example.org"}`)},
			{ID: "e4", TenantID: "t2", Subject: "contact.created", OccurredAt: at, Data: json.RawMessage(`{"contactId": "c1", "email": "other@example.org"}`)},
		}
		if _, err := st.Insert(ctx, events); err != nil {
			t.Fatal(err)
		}
		if n, err := st.Erase(ctx, "t1", "c1"); err != nil || n != 2 {
			t.Fatalf("erased %d events (%v), want 2", n, err)
		}
		rows, err := db.Reader().Query(`SELECT id, data FROM analytics_events ORDER BY id`)
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		got := map[string]string{}
		for rows.Next() {
			var id, data string
			rows.Scan(&id, &data)
			got[id] = data
		}
		if strings.Contains(got["e1"]+got["e2"], "ada@") || !strings.Contains(got["e3"], "bob@") || !strings.Contains(got["e4"], "other@") {
			t.Fatalf("after erasing t1/c1: %v", got)
		}
		buckets, err := st.Counts(ctx, "t1", CountQuery{From: at.Add(-time.Hour), To: at.Add(time.Hour), Interval: Hour})
		if err != nil || len(buckets) != 2 || buckets[0].Count+buckets[1].Count != 3 {
			t.Fatalf("counts after erasure: %+v %v", buckets, err)
		}
	})
}
