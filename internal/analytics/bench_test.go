package analytics

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/alumoutreach/alumoutreach/internal/event"
	"github.com/alumoutreach/alumoutreach/internal/platform/store"
	"github.com/alumoutreach/alumoutreach/internal/platform/store/storetest"
)

// benchSubjects are 40 subjects, eight domains by five verbs.
var benchSubjects = func() []string {
	var out []string
	for _, d := range []string{"contact", "segment", "template", "campaign", "pipeline", "workflow", "sequence", "inbox"} {
		for _, v := range []string{"created", "updated", "deleted", "started", "completed"} {
			out = append(out, d+"."+v)
		}
	}
	return out
}()

// benchEvents returns n events of one tenant spread evenly over span
// ending at end, cycling through the subjects, with a small payload.
func benchEvents(n int, end time.Time, span time.Duration, offset int) []Event {
	out := make([]Event, n)
	step := span / time.Duration(max(n, 1))
	for i := range out {
		k := offset + i
		id := event.NewID()
		data, _ := json.Marshal(map[string]string{"contactId": event.NewID()})
		out[i] = Event{
			ID:            id,
			TenantID:      tenantA,
			Subject:       benchSubjects[k%len(benchSubjects)],
			OccurredAt:    end.Add(-span + time.Duration(i)*step),
			CorrelationID: id,
			Source:        "contacts-service",
			Data:          data,
		}
	}
	return out
}

// openBenchSQLite opens the analytics store as embedded mode does: its own
// SQLite file in the data directory.
func openBenchSQLite(b *testing.B) (*store.DB, *SQLStore) {
	b.Helper()
	db, err := store.Open(context.Background(), store.Options{DataDir: b.TempDir(), FileName: "analytics.db"})
	if err != nil {
		b.Fatalf("open: %v", err)
	}
	b.Cleanup(func() { _ = db.Close() })
	return db, newStore(b, db)
}

// BenchmarkCounts1M queries the rollup of 1,000,000 events (30 days, 40
// subjects, one tenant) on SQLite.
func BenchmarkCounts1M(b *testing.B) {
	const nEvents, batch = 1_000_000, 1000
	db, st := openBenchSQLite(b)
	end := time.Date(2026, 3, 31, 0, 0, 0, 0, time.UTC)
	span := 30 * 24 * time.Hour
	step := span / nEvents
	ctx := context.Background()
	started := time.Now()
	for off := 0; off < nEvents; off += batch {
		evs := benchEvents(batch, end.Add(-span+time.Duration(off+batch)*step), time.Duration(batch)*step, off)
		if _, err := st.Insert(ctx, evs); err != nil {
			b.Fatal(err)
		}
	}
	took := time.Since(started)
	b.Logf("loaded %d events in %s (%.0f events/s, payload generation included), database %s",
		nEvents, took.Round(time.Millisecond), nEvents/took.Seconds(), dbSize(b, db))
	b.ResetTimer()

	cases := []struct {
		name string
		q    CountQuery
	}{
		{"30d_by_day", CountQuery{From: end.Add(-span), To: end, Interval: Day}},
		{"7d_by_hour", CountQuery{From: end.Add(-7 * 24 * time.Hour), To: end, Interval: Hour}},
		{"30d_by_day_prefix", CountQuery{From: end.Add(-span), To: end, Interval: Day, Subject: "contact.>"}},
		{"7d_by_hour_exact", CountQuery{From: end.Add(-7 * 24 * time.Hour), To: end, Interval: Hour, Subject: "contact.created"}},
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			var buckets []Bucket
			for b.Loop() {
				var err error
				if buckets, err = st.Counts(ctx, tenantA, c.q); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(len(buckets)), "buckets")
			if total(buckets) == 0 {
				b.Fatal("no events counted")
			}
		})
	}
}

// BenchmarkInsert measures Store.Insert with 1000-event batches; one op is
// one batch (one transaction).
func BenchmarkInsert(b *testing.B) {
	const batch = 1000
	for _, kind := range storetest.Kinds() {
		b.Run(string(kind), func(b *testing.B) {
			var st *SQLStore
			if kind == store.SQLite {
				_, st = openBenchSQLite(b)
			} else {
				st = newStore(b, storetest.Open(b, kind))
			}
			ctx := context.Background()
			end := time.Now().UTC()
			var elapsed time.Duration
			n := 0
			for b.Loop() {
				b.StopTimer()
				evs := benchEvents(batch, end, time.Hour, n)
				b.StartTimer()
				t0 := time.Now()
				if _, err := st.Insert(ctx, evs); err != nil {
					b.Fatal(err)
				}
				elapsed += time.Since(t0)
				n += batch
			}
			b.ReportMetric(float64(n)/elapsed.Seconds(), "events/s")
		})
	}
}

// BenchmarkIngest measures the consumer path: 256 goroutines, as the bus
// runner would run, calling Handle; one op is 10,000 events.
func BenchmarkIngest(b *testing.B) {
	const perOp, workers = 10_000, 256
	for _, kind := range storetest.Kinds() {
		b.Run(string(kind), func(b *testing.B) {
			var st *SQLStore
			if kind == store.SQLite {
				_, st = openBenchSQLite(b)
			} else {
				st = newStore(b, storetest.Open(b, kind))
			}
			in := NewIngest(st, quietLogger(), IngestOptions{})
			if err := in.Start(context.Background()); err != nil {
				b.Fatal(err)
			}
			defer in.Stop()
			ctx := context.Background()
			var elapsed time.Duration
			n := 0
			for b.Loop() {
				b.StopTimer()
				envs := make([]event.Envelope, perOp)
				for i, e := range benchEvents(perOp, time.Now().UTC(), time.Hour, n) {
					envs[i] = event.Envelope{ID: e.ID, Type: e.Subject, Version: event.CurrentVersion, Source: e.Source,
						Timestamp: event.Time{Time: e.OccurredAt}, TenantID: e.TenantID, CorrelationID: e.CorrelationID, Data: e.Data}
				}
				work := make(chan event.Envelope)
				errs := make(chan error, workers)
				var wg sync.WaitGroup
				for range workers {
					wg.Go(func() {
						for env := range work {
							if err := in.Handle(ctx, env); err != nil {
								errs <- err
								return
							}
						}
					})
				}
				b.StartTimer()
				t0 := time.Now()
				for _, env := range envs {
					work <- env
				}
				close(work)
				wg.Wait()
				elapsed += time.Since(t0)
				n += perOp
				select {
				case err := <-errs:
					b.Fatal(err)
				default:
				}
			}
			b.ReportMetric(float64(n)/elapsed.Seconds(), "events/s")
		})
	}
}

// dbSize reports the SQLite file's size, write-ahead log included.
func dbSize(b *testing.B, db *store.DB) string {
	b.Helper()
	path := strings.TrimPrefix(db.URL(), "sqlite:")
	var total int64
	for _, p := range []string{path, path + "-wal"} {
		if fi, err := os.Stat(p); err == nil {
			total += fi.Size()
		}
	}
	return fmt.Sprintf("%.0f MB", float64(total)/1e6)
}
