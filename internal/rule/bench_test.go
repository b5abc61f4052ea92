package rule_test

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/alumoutreach/alumoutreach/internal/platform/store"
	"github.com/alumoutreach/alumoutreach/internal/platform/store/storetest"
	"github.com/alumoutreach/alumoutreach/internal/rule"
)

// benchRows is the size of the table BenchmarkSQLCount scans.
const benchRows = 1_000_000

// benchRule is the brief's three-condition rule.
const benchRule = `{"all":[
	{"field":"attributes.class_year","op":"gte","value":2000},
	{"op":"has_consent","value":"email"},
	{"any":[{"field":"attributes.city","op":"eq","value":"Boston"},{"op":"has_tag","value":"donor"}]}]}`

var (
	benchCities  = []string{"Boston", "Cambridge", "New York", "London", "Zürich", "Paris", "Berlin", "Tokyo", "Chicago", "Seattle"}
	benchMajors  = []string{"History", "Physics", "Economics", "Music", "Biology", "Law"}
	benchTagPool = []string{"donor", "volunteer", "board", "mentor", "parent", "faculty", "newsletter", "reunion-2020"}
)

// benchContact makes a realistic alumni contact: a dozen attributes, one
// nested, a few tags.
func benchContact(r *rand.Rand, i int) rule.Contact {
	c := rule.Contact{
		Email:     fmt.Sprintf("alum%d@example.org", i),
		FirstName: "Alum", LastName: strconv.Itoa(i), Locale: "en-US", TimeZone: "America/New_York",
		Attributes: map[string]any{
			"class_year":   float64(1950 + r.IntN(75)),
			"city":         benchCities[r.IntN(len(benchCities))],
			"major":        benchMajors[r.IntN(len(benchMajors))],
			"degree":       "BA",
			"giving_total": float64(r.IntN(100000)) / 100,
			"last_gift":    time.Date(2015+r.IntN(10), time.Month(1+r.IntN(12)), 1+r.IntN(28), 0, 0, 0, 0, time.UTC).Format(time.DateOnly),
			"employer":     "Acme Corp",
			"address":      map[string]any{"city": benchCities[r.IntN(len(benchCities))], "zip": fmt.Sprintf("%05d", r.IntN(99999))},
			"newsletter":   r.IntN(2) == 0,
		},
		Consent:   rule.Consent{Email: r.IntN(10) < 6, SMS: r.IntN(10) < 3},
		CreatedAt: time.UnixMilli(1_600_000_000_000 + r.Int64N(1e11)),
		UpdatedAt: time.UnixMilli(1_700_000_000_000 + r.Int64N(1e10)),
	}
	for range r.IntN(4) {
		c.Tags = append(c.Tags, benchTagPool[r.IntN(len(benchTagPool))])
	}
	return c
}

// bigDB returns a database holding benchRows contacts of tenant t1, with
// the JSON columns as SQLite JSONB when sqliteJSONB is set.
// ALUM_RULE_BENCH_DIR=/some/dir keeps the SQLite files between runs (each
// is filled once), since filling one takes far longer than the query.
func bigDB(b *testing.B, kind store.Kind, sqliteJSONB bool) *store.DB {
	b.Helper()
	ctx := context.Background()
	var db *store.DB
	if dir := os.Getenv("ALUM_RULE_BENCH_DIR"); dir != "" && kind == store.SQLite {
		name := "contacts-text.db"
		if sqliteJSONB {
			name = "contacts-jsonb.db"
		}
		db = storetest.OpenURL(b, "sqlite:"+filepath.Join(dir, name))
	} else {
		db = storetest.Open(b, kind)
	}
	createTable(b, db)
	var n int
	if err := db.Reader().QueryRowContext(ctx, `SELECT count(*) FROM contacts`).Scan(&n); err != nil {
		b.Fatal(err)
	}
	if n == benchRows {
		return db
	}
	start := time.Now()
	r := rand.New(rand.NewPCG(1, 1))
	const perStmt = 200
	cols := 15
	var sb strings.Builder
	sb.WriteString(`INSERT INTO contacts (tenant_id, id, email, phone, first_name, last_name, locale, time_zone,
		attributes, tags, consent_email, consent_sms, consent_whatsapp, created_at, updated_at) VALUES `)
	for i := range perStmt {
		if i > 0 {
			sb.WriteString(", ")
		}
		sb.WriteString("(")
		for j := range cols {
			if j > 0 {
				sb.WriteString(", ")
			}
			if sqliteJSONB && (j == 8 || j == 9) { // attributes, tags
				fmt.Fprintf(&sb, "jsonb($%d)", i*cols+j+1)
			} else {
				fmt.Fprintf(&sb, "$%d", i*cols+j+1)
			}
		}
		sb.WriteString(")")
	}
	insert := sb.String()
	for done := 0; done < benchRows; {
		tx, err := db.Writer().BeginTx(ctx, nil)
		if err != nil {
			b.Fatal(err)
		}
		stmt, err := tx.PrepareContext(ctx, insert)
		if err != nil {
			b.Fatal(err)
		}
		for k := 0; k < 250 && done < benchRows; k++ {
			args := make([]any, 0, perStmt*cols)
			for range perStmt {
				c := benchContact(r, done)
				a, tags, err := c.JSONColumns()
				if err != nil {
					b.Fatal(err)
				}
				args = append(args, "t1", done, c.Email, c.Phone, c.FirstName, c.LastName, c.Locale, c.TimeZone,
					string(a), string(tags), b2i(c.Consent.Email), b2i(c.Consent.SMS), b2i(c.Consent.WhatsApp),
					c.CreatedAt.UnixMilli(), c.UpdatedAt.UnixMilli())
				done++
			}
			if _, err := stmt.ExecContext(ctx, args...); err != nil {
				b.Fatal(err)
			}
		}
		if err := tx.Commit(); err != nil {
			b.Fatal(err)
		}
	}
	if _, err := db.Writer().ExecContext(ctx, `ANALYZE`); err != nil {
		b.Fatal(err)
	}
	b.Logf("%s (jsonb %v): filled %d rows in %v", kind, sqliteJSONB, benchRows, time.Since(start).Round(time.Millisecond))
	return db
}

// BenchmarkSQLCount counts the members of a three-condition segment over
// one million contacts, on SQLite with the JSON columns as text and as
// JSONB, and on PostgreSQL when it is configured:
//
//	go test -run '^$' -bench SQLCount -benchtime 5x ./internal/rule/
func BenchmarkSQLCount(b *testing.B) {
	type variant struct {
		name  string
		kind  store.Kind
		jsonb bool
	}
	variants := []variant{{"sqlite-text", store.SQLite, false}, {"sqlite-jsonb", store.SQLite, true}}
	if slices.Contains(storetest.Kinds(), store.Postgres) {
		variants = append(variants, variant{"postgres", store.Postgres, false})
	}
	for _, v := range variants {
		kind := v.kind
		b.Run(v.name, func(b *testing.B) {
			db := bigDB(b, kind, v.jsonb)
			r := mustParse(b, benchRule)
			where, args := r.SQL(kind, "c", testNow, 2)
			q := `SELECT count(*) FROM contacts c WHERE c.tenant_id = $1 AND ` + where
			args = append([]any{"t1"}, args...)
			var n int
			b.ResetTimer()
			for b.Loop() {
				if err := db.Reader().QueryRowContext(context.Background(), q, args...).Scan(&n); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(n), "members")
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/benchRows, "ns/row")
		})
	}
}

// BenchmarkMatch100 evaluates one contact against 100 varied compiled rules,
// the work of re-segmenting a contact after it changed.
func BenchmarkMatch100(b *testing.B) {
	r := rand.New(rand.NewPCG(7, 7))
	rules := make([]*rule.Rule, 100)
	for i := range rules {
		src, _ := json.Marshal(randomRule(r, 1))
		if i%4 == 0 {
			src = []byte(benchRule)
		}
		rules[i] = mustParse(b, string(src))
	}
	c := benchContact(r, 1)
	// Attributes as the contacts module hands them over: decoded JSON.
	a, _, _ := c.JSONColumns()
	c.Attributes = attrs(b, string(a))
	matched := 0
	b.ReportAllocs()
	for b.Loop() {
		matched = 0
		for _, rl := range rules {
			if rl.Match(&c, testNow) {
				matched++
			}
		}
	}
	b.ReportMetric(float64(matched), "matched")
}
