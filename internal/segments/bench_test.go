package segments

import (
	"context"
	"database/sql"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/alumoutreach/alumoutreach/internal/platform/outbox"
	"github.com/alumoutreach/alumoutreach/internal/platform/store"
	"github.com/alumoutreach/alumoutreach/internal/platform/store/storetest"
	"github.com/alumoutreach/alumoutreach/internal/rule"
)

// benchContact is the i-th contact of the benchmark population: class
// years 1960-2025, a city of eight, about a third tagged donor, 70% with
// email consent.
func benchContact(i int) rule.Contact {
	r := rand.New(rand.NewPCG(uint64(i), 7))
	c := rule.Contact{
		Email:     fmt.Sprintf("person%d@example.org", i),
		FirstName: fmt.Sprintf("First%d", i),
		LastName:  fmt.Sprintf("Last%d", i),
		Attributes: map[string]any{
			"classYear": float64(1960 + r.IntN(66)),
			"city":      []string{"Boston", "Leeds", "Lagos", "Pune", "Lima", "Oslo", "Perth", "Quito"}[r.IntN(8)],
			"major":     []string{"Physics", "History", "Law", "Medicine"}[r.IntN(4)],
		},
		Consent:   rule.Consent{Email: r.IntN(10) < 7, SMS: r.IntN(10) < 3},
		CreatedAt: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).Add(time.Duration(i) * time.Second),
	}
	if r.IntN(3) == 0 {
		c.Tags = []string{"donor"}
	}
	c.UpdatedAt = c.CreatedAt
	return c
}

// loadContacts writes n contacts straight into the module's copy, in big
// transactions (the consumer path is measured by BenchmarkApply).
func loadContacts(b *testing.B, db *store.DB, svc *Service, tenant string, n int) {
	b.Helper()
	ctx := context.Background()
	const perTx = 10_000
	for lo := 0; lo < n; lo += perTx {
		err := db.InTx(ctx, func(tx *sql.Tx) error {
			stmt, err := tx.PrepareContext(ctx, `INSERT INTO segment_contacts (tenant_id, contact_id, version, email, first_name, last_name,
				attributes, tags, consent_email, consent_sms, created_at, updated_at) VALUES ($1, $2, 1, $3, $4, $5, `+svc.jsonParam(6)+`, `+svc.jsonParam(7)+`, $8, $9, $10, $10)`)
			if err != nil {
				return err
			}
			defer stmt.Close()
			for i := lo; i < min(lo+perTx, n); i++ {
				c := benchContact(i)
				attrs, tags, err := c.JSONColumns()
				if err != nil {
					return err
				}
				if _, err := stmt.ExecContext(ctx, tenant, fmt.Sprintf("c%08d", i), c.Email, c.FirstName, c.LastName,
					string(attrs), string(tags), b2i(c.Consent.Email), b2i(c.Consent.SMS), c.CreatedAt.UnixMilli()); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			b.Fatal(err)
		}
	}
}

func benchService(b *testing.B, db *store.DB) *Service {
	b.Helper()
	ctx := context.Background()
	if err := db.Migrate(ctx, "outbox", outbox.Migrations()); err != nil {
		b.Fatal(err)
	}
	if err := db.Migrate(ctx, ModuleName, Migrations()); err != nil {
		b.Fatal(err)
	}
	return NewService(db, outbox.New(db, 0), slog.New(slog.DiscardHandler))
}

// threeConditions is the 3-condition segment: recent alumni with
// email consent who live in Boston or give.
const threeConditions = `{"all": [{"field": "attributes.classYear", "op": "gte", "value": 2000},
	{"op": "has_consent", "value": "email"},
	{"any": [{"field": "attributes.city", "op": "eq", "value": "Boston"}, {"op": "has_tag", "value": "donor"}]}]}`

// BenchmarkFullEvaluation1M evaluates a 3-condition segment over 1,000,000
// contacts: "initial" when the segment is new (every member joins, one
// event each), "steady" when membership is already right (the cost of
// checking everyone). BENCH_CONTACTS overrides the size.
func BenchmarkFullEvaluation1M(b *testing.B) {
	n := envInt("BENCH_CONTACTS", 1_000_000)
	for _, kind := range storetest.Kinds() {
		b.Run(string(kind), func(b *testing.B) {
			db := storetest.Open(b, kind)
			svc := benchService(b, db)
			loadContacts(b, db, svc, "t", n)
			ctx := context.Background()
			name := 0
			newSegment := func() string {
				name++
				seg, err := svc.Create(ctx, "t", Input{Name: ptr(fmt.Sprint("s", name)), Rules: []byte(threeConditions)})
				if err != nil {
					b.Fatal(err)
				}
				return seg.ID
			}
			b.Run("initial", func(b *testing.B) {
				for b.Loop() {
					b.StopTimer()
					id := newSegment()
					b.StartTimer()
					ev, err := svc.Evaluate(ctx, "t", id, nil)
					if err != nil {
						b.Fatal(err)
					}
					b.ReportMetric(float64(ev.Added), "members")
				}
			})
			id := newSegment()
			if _, err := svc.Evaluate(ctx, "t", id, nil); err != nil {
				b.Fatal(err)
			}
			b.Run("steady", func(b *testing.B) {
				for b.Loop() {
					if ev, err := svc.Evaluate(ctx, "t", id, nil); err != nil || ev.Added+ev.Removed != 0 {
						b.Fatal(ev, err)
					}
				}
			})
		})
	}
}

func ptr[T any](v T) *T { return &v }

// BenchmarkApply100Segments is SEGMENTS_CONTACT_CONSUMER's work for one
// contact event against a tenant of 100 segments: store the snapshot,
// match every rule, record and publish the changes. It reports p50 and
// p99 of single applications.
func BenchmarkApply100Segments(b *testing.B) {
	for _, kind := range storetest.Kinds() {
		b.Run(string(kind), func(b *testing.B) {
			db := storetest.Open(b, kind)
			svc := benchService(b, db)
			ctx := context.Background()
			for i := range 100 {
				rules := []string{
					fmt.Sprintf(`{"field": "attributes.classYear", "op": "gte", "value": %d}`, 1960+i%60),
					fmt.Sprintf(`{"all": [{"op": "has_consent", "value": "email"}, {"field": "attributes.city", "op": "eq", "value": "%s"}]}`, []string{"Boston", "Leeds", "Lagos", "Pune"}[i%4]),
					fmt.Sprintf(`{"any": [{"op": "has_tag", "value": "donor"}, {"field": "email", "op": "contains", "value": "%d@example.org"}]}`, i),
					`{"not": {"field": "attributes.major", "op": "in", "value": ["Law", "Medicine"]}}`,
				}[i%4]
				if _, err := svc.Create(ctx, "t", Input{Name: ptr(fmt.Sprint("s", i)), Rules: []byte(rules)}); err != nil {
					b.Fatal(err)
				}
			}
			// edit: one contact whose class year moves by a year each
			// time, entering or leaving a segment or two, the common case.
			// churn: a different contact each time, which flips about half
			// of the hundred memberships, the worst case.
			cases := []struct {
				name    string
				contact func(v int) (string, rule.Contact)
			}{
				{"edit", func(v int) (string, rule.Contact) {
					c := benchContact(1)
					c.Attributes["classYear"] = float64(1991 + v%2) // crosses the two "gte 1992" segments
					return "edited", c
				}},
				{"churn", func(v int) (string, rule.Contact) { return "churned", benchContact(v) }},
			}
			// Versions only grow, across cases and across -count runs of
			// them (which share this database): a repeated version would be
			// skipped as already applied.
			version := 0
			for _, bc := range cases {
				b.Run(bc.name, func(b *testing.B) {
					var took []time.Duration
					var flips int
					for b.Loop() {
						version++
						id, c := bc.contact(version)
						t0 := time.Now()
						n, err := svc.Apply(ctx, "t", Snapshot{ID: id, Version: int64(version), Contact: c})
						if err != nil {
							b.Fatal(err)
						}
						took = append(took, time.Since(t0))
						flips += n
					}
					slices.Sort(took)
					b.ReportMetric(float64(flips)/float64(len(took)), "flips/op")
					b.ReportMetric(float64(took[len(took)/2].Microseconds()), "p50-µs")
					b.ReportMetric(float64(took[len(took)*99/100].Microseconds()), "p99-µs")
				})
			}
		})
	}
}

func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}
