package rule_test

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	"github.com/alumoutreach/alumoutreach/internal/platform/store"
	"github.com/alumoutreach/alumoutreach/internal/rule"
)

// testNow is the clock of every evaluation in the tests.
var testNow = time.Date(2024, 6, 15, 12, 0, 0, 123_000_000, time.UTC)

// The table the segments module creates, plus tenant_id and id.
var tableFS = fstest.MapFS{"001_contacts.sql": {Data: []byte(`CREATE TABLE contacts (
	tenant_id TEXT NOT NULL,
	id BIGINT NOT NULL,
	email TEXT NOT NULL DEFAULT '',
	phone TEXT NOT NULL DEFAULT '',
	first_name TEXT NOT NULL DEFAULT '',
	last_name TEXT NOT NULL DEFAULT '',
	locale TEXT NOT NULL DEFAULT '',
	time_zone TEXT NOT NULL DEFAULT '',
	attributes {{JSON}} NOT NULL,
	tags {{JSON}} NOT NULL,
	consent_email INTEGER NOT NULL,
	consent_sms INTEGER NOT NULL,
	consent_whatsapp INTEGER NOT NULL,
	created_at BIGINT NOT NULL,
	updated_at BIGINT NOT NULL,
	PRIMARY KEY (tenant_id, id)
)`)}}

func createTable(t testing.TB, db *store.DB) {
	t.Helper()
	if err := db.Migrate(context.Background(), "ruletest", tableFS); err != nil {
		t.Fatalf("create table: %v", err)
	}
}

const insertSQL = `INSERT INTO contacts (tenant_id, id, email, phone, first_name, last_name, locale, time_zone,
	attributes, tags, consent_email, consent_sms, consent_whatsapp, created_at, updated_at)
	VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)`

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

// insertContacts stores contacts under tenant with ids 0, 1, ... With
// sqliteJSONB, SQLite gets the JSON columns in its binary JSONB form.
func insertContacts(t testing.TB, db *store.DB, tenant string, contacts []rule.Contact, sqliteJSONB bool) {
	t.Helper()
	ctx := context.Background()
	insertSQL := insertSQL
	if sqliteJSONB {
		insertSQL = strings.Replace(insertSQL, "$9, $10", "jsonb($9), jsonb($10)", 1)
	}
	tx, err := db.Writer().BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = tx.Rollback() }()
	stmt, err := tx.PrepareContext(ctx, insertSQL)
	if err != nil {
		t.Fatal(err)
	}
	for i := range contacts {
		c := &contacts[i]
		attrs, tags, err := c.JSONColumns()
		if err != nil {
			t.Fatalf("contact %d: %v", i, err)
		}
		if _, err := stmt.ExecContext(ctx, tenant, i, c.Email, c.Phone, c.FirstName, c.LastName, c.Locale, c.TimeZone,
			string(attrs), string(tags), b2i(c.Consent.Email), b2i(c.Consent.SMS), b2i(c.Consent.WhatsApp),
			c.CreatedAt.UnixMilli(), c.UpdatedAt.UnixMilli()); err != nil {
			t.Fatalf("insert contact %d: %v", i, err)
		}
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
}

// sqlMatches runs the rule's SQL for tenant and returns the matching ids.
func sqlMatches(db *store.DB, tenant string, r *rule.Rule, now time.Time) ([]int, string, error) {
	where, args := r.SQL(db.Kind(), "c", now, 2)
	q := `SELECT id FROM contacts c WHERE c.tenant_id = $1 AND ` + where + ` ORDER BY id`
	rows, err := db.Reader().QueryContext(context.Background(), q, append([]any{tenant}, args...)...)
	if err != nil {
		return nil, q, err
	}
	defer rows.Close()
	var ids []int
	for rows.Next() {
		var id int
		if err := rows.Scan(&id); err != nil {
			return nil, q, err
		}
		ids = append(ids, id)
	}
	return ids, q, rows.Err()
}

func goMatches(r *rule.Rule, contacts []rule.Contact, now time.Time) []int {
	var ids []int
	for i := range contacts {
		if r.Match(&contacts[i], now) {
			ids = append(ids, i)
		}
	}
	return ids
}

// checkAgree fails the test when SQL and Go select different contacts of
// tenant.
func checkAgree(t testing.TB, db *store.DB, tenant string, contacts []rule.Contact, r *rule.Rule) {
	t.Helper()
	got, q, err := sqlMatches(db, tenant, r, testNow)
	if err != nil {
		t.Fatalf("rule %s\nSQL %s\nerror: %v", r, q, err)
	}
	want := goMatches(r, contacts, testNow)
	if !slices.Equal(got, want) {
		var diff []string
		for i := range contacts {
			if slices.Contains(got, i) != slices.Contains(want, i) && len(diff) < 5 {
				a, tags, _ := contacts[i].JSONColumns()
				diff = append(diff, fmt.Sprintf("  contact %d (sql %v, go %v): %+v attrs=%s tags=%s", i,
					slices.Contains(got, i), slices.Contains(want, i), contacts[i], a, tags))
			}
		}
		t.Fatalf("%s, tenant %s: SQL and Go disagree\nrule %s\nSQL %s\n%s", db.Kind(), tenant, r, q, strings.Join(diff, "\n"))
	}
}

func mustParse(t testing.TB, s string) *rule.Rule {
	t.Helper()
	r, err := rule.Parse([]byte(s))
	if err != nil {
		t.Fatalf("parse %s: %v", s, err)
	}
	return r
}

func attrs(t testing.TB, s string) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal([]byte(s), &m); err != nil {
		t.Fatalf("attributes %s: %v", s, err)
	}
	return m
}

// fixtureContacts is a hand-made set that hits the edges: unset values,
// types, unicode, odd characters, nested paths, date shapes.
func fixtureContacts(t testing.TB) []rule.Contact {
	t.Helper()
	ms := func(s string) time.Time {
		tm, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			t.Fatal(err)
		}
		return tm
	}
	cs := []rule.Contact{
		{}, // everything unset
		{Email: "ada@example.org", FirstName: "Ada", LastName: "Lovelace", Locale: "en-GB", TimeZone: "Europe/London",
			Attributes: attrs(t, `{"class_year":2000,"city":"Boston","address":{"city":"Boston","zip":"02134"},"vip":true,"score":9.5,"gift":"2024-06-01"}`),
			Tags:       []string{"donor", "board"}, Consent: rule.Consent{Email: true},
			CreatedAt: ms("2024-06-14T12:00:00.123Z"), UpdatedAt: ms("2024-06-15T11:59:59Z")},
		{Email: "Bob@Example.org", FirstName: "bob", LastName: "Ångström", Locale: "sv", TimeZone: "Europe/Stockholm",
			Attributes: attrs(t, `{"class_year":1999.5,"city":"boston","address":{"city":"Cambridge"},"vip":false,"score":-3,"gift":"2024-06-01T10:00:00Z"}`),
			Tags:       []string{"Donor", "a\"b", "50%"}, Consent: rule.Consent{SMS: true},
			CreatedAt: ms("2020-01-01T00:00:00Z"), UpdatedAt: ms("2024-05-16T12:00:00.123Z")},
		{Email: "zoë@例え.jp", FirstName: "Zoë", LastName: "李", Phone: "+81 3 1234 5678", Locale: "ja",
			Attributes: attrs(t, `{"class_year":"2000","city":"Zürich","address":"Boston","vip":null,"score":0,"gift":"2024-06-01T10:00:00.5Z","nick":""}`),
			Tags:       []string{"x_y", "<b>&", "ü", "🎓"}, Consent: rule.Consent{WhatsApp: true, Email: true},
			CreatedAt: ms("1969-12-31T23:59:59.999Z"), UpdatedAt: ms("2024-06-15T12:00:00.123Z")},
		{Email: "percent%_@x.org", FirstName: "%", LastName: "_", Phone: "555-0100",
			Attributes: attrs(t, `{"class_year":-2000,"city":"Bos%ton","address":{"city":null},"vip":"true","score":1e21,"gift":"2024-06-01T10:00:00.123456789Z","tags":["donor"]}`),
			Tags:       []string{"donor "}, Consent: rule.Consent{Email: true, SMS: true, WhatsApp: true},
			CreatedAt: ms("2024-06-15T12:00:00.124Z"), UpdatedAt: ms("2000-02-29T00:00:00Z")},
		{Email: "o'brien@x.org", FirstName: "O'Brien", LastName: "Smith-Jones", Locale: "en",
			Attributes: attrs(t, `{"class_year":2000.0,"city":["Boston"],"address":[{"city":"Boston"}],"vip":1,"score":1.5e-7,"gift":"2024-06-01T10:00:00+02:00","0":{"1":"deep"}}`),
			Tags:       []string{}, CreatedAt: ms("2023-06-15T12:00:00.123Z"), UpdatedAt: ms("2024-06-08T12:00:00.123Z")},
		{Email: "line\nbreak@x.org", FirstName: "Ａｄａ", LastName: "lovelace", TimeZone: "America/New_York",
			Attributes: attrs(t, `{"class_year":2001,"city":{"name":"Boston"},"address":{"city":"Boston","geo":{"lat":42.36,"lng":-71.06}},"score":9007199254740993,"gift":"2024-06-01 10:00:00","a-b":{"c_d":"x"}}`),
			Tags:       []string{"[\"donor\"]", "donor\\"}, Consent: rule.Consent{Email: true},
			CreatedAt: ms("2024-06-15T11:59:59.999Z"), UpdatedAt: ms("2024-06-15T12:00:00.122Z")},
		{Email: "ada@example.org ", FirstName: "Ada", Locale: "EN-gb",
			Attributes: attrs(t, `{"class_year":1e3,"city":"Boston ","address":{"city":"boston"},"vip":true,"score":2.5,"gift":"2024-6-1","big":1.7976931348623157e308,"tiny":5e-324}`),
			Tags:       []string{"donor", "donor"}, Consent: rule.Consent{SMS: true},
			CreatedAt: ms("2024-05-16T12:00:00.123Z"), UpdatedAt: ms("2024-05-16T12:00:00.122Z")},
		{Email: "\u00a0nbsp@x.org", FirstName: "🎓Grad", LastName: "Δ",
			Attributes: attrs(t, `{"class_year":2000,"city":"Boston","gift":"2024-06-01T10:00:00.1234567890Z","note":"[1,2]","obj":"{\"a\":1}","arr":[1,2],"o":{"a":1},"empty_arr":[],"empty_obj":{}}`),
			Tags:       []string{"donor"}, Consent: rule.Consent{Email: true},
			CreatedAt: ms("2024-06-15T12:00:00.123Z"), UpdatedAt: ms("2024-06-15T12:00:00.123Z")},
		{Email: "nums@x.org",
			Attributes: attrs(t, `{"class_year":0,"score":-0,"n":0.1,"m":0.30000000000000004,"gift":"2024-06-15","d2":"2024-06-15T12:00:00Z","d3":"2024-06-15T11:00:00.1Z","d4":"2024-06-14T12:00:00.12Z"}`),
			CreatedAt:  ms("2024-06-15T12:00:00.123Z"), UpdatedAt: ms("0001-01-01T00:00:00Z")},
	}
	// Types that do not come out of encoding/json but a Go caller may use.
	cs = append(cs,
		rule.Contact{Email: "int64@x.org", Attributes: map[string]any{"class_year": int64(2000), "score": int64(9007199254740993), "n": json.Number("0.1")}},
		rule.Contact{Email: "big@x.org", Attributes: map[string]any{"score": float64(1 << 60), "n": json.Number("1152921504606846977"), "class_year": int64(1<<60 + 1)}},
		rule.Contact{Email: "int@x.org", Attributes: map[string]any{"class_year": 2001, "city": "Boston", "address": map[string]any{"city": "Boston"}}},
	)
	return cs
}

// Pools the random contacts and rules draw from, so rules often hit.
var (
	poolStrings = []string{"Boston", "boston", "Bos", "ton", "Zürich", "Zoë", "李", "🎓", "a\"b", "50%", "%", "_", "x_y",
		"O'Brien", "ada@example.org", "Ada", "2000", "true", "[1]", "{\"a\":1}", "a", "z", "Ａ", "line\nbreak", " ", "\u00a0",
		"2024-06-01", "2024-06-15", "2024-06-15T11:30:00Z", "2024-06-14T12:00:00.5Z", "2024-06-15T12:00:00.123456Z", "donor", "Donor", "\\"}
	poolNumbers = []float64{0, -0.5, 1, 2, 1999, 1999.5, 2000, 2000.0000000001, 2001, -2000, 9007199254740992, 9007199254740993,
		1e21, 1e-7, 0.1, 0.30000000000000004, 2.5, -3,
		// Neighbours of other pool values, for the bounds of gt and lt.
		2000.0000000000002, 1999.9999999999998, 5e-324, -5e-324, 1.0000000000000002, 0.9999999999999999,
		// Integral floats that encoding/json prints with padding zeros.
		1 << 60, -(1 << 60), 1<<60 + 256, 1.2345678901234567e18, 9007199254740994, 1e20}
	poolKeys  = []string{"class_year", "city", "score", "vip", "gift", "nick", "address", "n", "0", "a-b", "tags"}
	poolTags  = []string{"donor", "Donor", "board", "a\"b", "50%", "x_y", "<b>&", "ü", "🎓", "donor ", "[\"donor\"]", "\\", "d"}
	poolTimes = []string{"2024-06-15T12:00:00.123Z", "2024-06-15T12:00:00.122Z", "2024-06-14T12:00:00.123Z", "2024-05-16T12:00:00Z",
		"2020-01-01T00:00:00Z", "1969-12-31T23:59:59.999Z", "2024-06-15T11:00:00Z"}
)

func pick[T any](r *rand.Rand, xs []T) T { return xs[r.IntN(len(xs))] }

func randomScalar(r *rand.Rand, depth int) any {
	switch r.IntN(10) {
	case 0, 1, 2, 3:
		return pick(r, poolStrings)
	case 4, 5, 6:
		return pick(r, poolNumbers)
	case 7:
		return r.IntN(2) == 0
	case 8:
		if depth < 2 {
			m := map[string]any{}
			for range r.IntN(3) {
				m[pick(r, poolKeys)] = randomScalar(r, depth+1)
			}
			return m
		}
		return nil
	default:
		if r.IntN(2) == 0 {
			return nil
		}
		return []any{pick(r, poolStrings), pick(r, poolNumbers)}
	}
}

// randomContacts makes n contacts from the pools, with JSON-decoded
// attributes as the contacts module would hand them over.
func randomContacts(t testing.TB, r *rand.Rand, n int) []rule.Contact {
	t.Helper()
	field := func() string {
		if r.IntN(3) == 0 {
			return ""
		}
		return pick(r, poolStrings)
	}
	tm := func() time.Time {
		tm, _ := time.Parse(time.RFC3339Nano, pick(r, poolTimes))
		return tm.Add(time.Duration(r.IntN(3)-1) * time.Millisecond)
	}
	var out []rule.Contact
	for range n {
		a := map[string]any{}
		for range r.IntN(6) {
			a[pick(r, poolKeys)] = randomScalar(r, 0)
		}
		raw, _ := json.Marshal(a)
		c := rule.Contact{Email: field(), Phone: field(), FirstName: field(), LastName: field(), Locale: field(), TimeZone: field(),
			Attributes: attrs(t, string(raw)),
			Consent:    rule.Consent{Email: r.IntN(2) == 0, SMS: r.IntN(2) == 0, WhatsApp: r.IntN(2) == 0},
			CreatedAt:  tm(), UpdatedAt: tm()}
		for range r.IntN(4) {
			c.Tags = append(c.Tags, pick(r, poolTags))
		}
		out = append(out, c)
	}
	return out
}

var (
	textFieldNames = []string{"email", "phone", "firstName", "lastName", "locale", "timeZone"}
	textOps        = []string{"eq", "neq", "gt", "gte", "lt", "lte", "contains", "starts_with", "in", "not_in", "exists", "not_exists"}
	attrOps        = []string{"eq", "neq", "gt", "gte", "lt", "lte", "contains", "starts_with", "in", "not_in", "exists", "not_exists", "before", "after", "within_last"}
	durations      = []string{"1m", "90m", "1h", "12h", "1d", "30d", "1w", "2w", "5200w"}
	dateValues     = []string{"2024-06-01", "2024-06-15", "2024-06-14T12:00:00Z", "2024-06-01T10:00:00.5Z", "2024-06-01T12:00:00+02:00",
		"2024-06-15T12:00:00.123Z", "1970-01-01", "2020-01-01T00:00:00.000999Z", "2024-05-16T12:00:00.122Z"}
)

// randomRule builds a valid rule as a JSON-able value.
func randomRule(r *rand.Rand, depth int) any {
	if depth < 4 && r.IntN(3) == 0 {
		switch r.IntN(3) {
		case 0:
			return map[string]any{"not": randomRule(r, depth+1)}
		default:
			kids := make([]any, 1+r.IntN(3))
			for i := range kids {
				kids[i] = randomRule(r, depth+1)
			}
			return map[string]any{pick(r, []string{"all", "any"}): kids}
		}
	}
	return randomLeaf(r)
}

func randomLeaf(r *rand.Rand) map[string]any {
	nonEmpty := func() string { return pick(r, poolStrings) }
	switch r.IntN(12) {
	case 0:
		return map[string]any{"op": "has_tag", "value": pick(r, poolTags)}
	case 1:
		return map[string]any{"field": "consent", "op": "has_consent", "value": pick(r, []string{"email", "sms", "whatsapp"})}
	case 2:
		f := pick(r, []string{"createdAt", "updatedAt"})
		switch o := pick(r, []string{"before", "after", "within_last"}); o {
		case "within_last":
			return map[string]any{"field": f, "op": o, "value": pick(r, durations)}
		default:
			return map[string]any{"field": f, "op": o, "value": pick(r, append(dateValues, poolTimes...))}
		}
	case 3, 4, 5:
		f, o := pick(r, textFieldNames), pick(r, textOps)
		switch o {
		case "exists", "not_exists":
			return map[string]any{"field": f, "op": o}
		case "in", "not_in":
			vs := make([]string, 1+r.IntN(4))
			for i := range vs {
				vs[i] = nonEmpty()
			}
			return map[string]any{"field": f, "op": o, "value": vs}
		}
		return map[string]any{"field": f, "op": o, "value": nonEmpty()}
	}
	path := pick(r, poolKeys)
	if r.IntN(3) == 0 {
		path += "." + pick(r, poolKeys)
	}
	f, o := "attributes."+path, pick(r, attrOps)
	switch o {
	case "exists", "not_exists":
		return map[string]any{"field": f, "op": o}
	case "before", "after":
		return map[string]any{"field": f, "op": o, "value": pick(r, append(dateValues, poolTimes...))}
	case "within_last":
		return map[string]any{"field": f, "op": o, "value": pick(r, durations)}
	case "contains", "starts_with":
		return map[string]any{"field": f, "op": o, "value": nonEmpty()}
	case "in", "not_in":
		n := 1 + r.IntN(4)
		switch r.IntN(3) {
		case 0:
			vs := make([]string, n)
			for i := range vs {
				vs[i] = nonEmpty()
			}
			return map[string]any{"field": f, "op": o, "value": vs}
		case 1:
			vs := make([]float64, n)
			for i := range vs {
				vs[i] = pick(r, poolNumbers)
			}
			return map[string]any{"field": f, "op": o, "value": vs}
		default:
			vs := make([]bool, min(n, 2))
			for i := range vs {
				vs[i] = r.IntN(2) == 0
			}
			return map[string]any{"field": f, "op": o, "value": vs}
		}
	}
	switch r.IntN(3) {
	case 0:
		return map[string]any{"field": f, "op": o, "value": nonEmpty()}
	case 1:
		return map[string]any{"field": f, "op": o, "value": pick(r, poolNumbers)}
	}
	if o == "eq" || o == "neq" {
		return map[string]any{"field": f, "op": o, "value": r.IntN(2) == 0}
	}
	return map[string]any{"field": f, "op": o, "value": pick(r, poolNumbers)}
}
