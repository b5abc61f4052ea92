package rule_test

import (
	"context"
	"encoding/json"
	"math"
	"math/rand/v2"
	"os"
	"strconv"
	"testing"

	"github.com/alumoutreach/alumoutreach/internal/platform/store"
	"github.com/alumoutreach/alumoutreach/internal/platform/store/storetest"
	"github.com/alumoutreach/alumoutreach/internal/rule"
)

// handRules exercise every operator on every kind of field, with values
// chosen to land on the edges of the fixture contacts.
var handRules = []string{
	`{"field":"email","op":"eq","value":"ada@example.org"}`,
	`{"field":"email","op":"neq","value":"ada@example.org"}`,
	`{"field":"firstName","op":"gt","value":"Ada"}`,
	`{"field":"firstName","op":"gte","value":"Ada"}`,
	`{"field":"firstName","op":"lt","value":"Zoë"}`,
	`{"field":"firstName","op":"lte","value":"bob"}`,
	`{"field":"lastName","op":"lt","value":"Ω"}`,
	`{"field":"email","op":"contains","value":"%"}`,
	`{"field":"email","op":"contains","value":"_"}`,
	`{"field":"email","op":"contains","value":"例"}`,
	`{"field":"email","op":"contains","value":"\n"}`,
	`{"field":"email","op":"starts_with","value":"zoë"}`,
	`{"field":"email","op":"starts_with","value":"Z"}`,
	`{"field":"firstName","op":"starts_with","value":"%"}`,
	`{"field":"firstName","op":"starts_with","value":"🎓"}`,
	`{"field":"email","op":"in","value":["ada@example.org","Bob@Example.org"]}`,
	`{"field":"locale","op":"not_in","value":["en","sv"]}`,
	`{"field":"phone","op":"exists"}`,
	`{"field":"timeZone","op":"not_exists"}`,
	`{"field":"createdAt","op":"before","value":"2024-01-01"}`,
	`{"field":"createdAt","op":"after","value":"2024-06-15T12:00:00.123Z"}`,
	`{"field":"createdAt","op":"before","value":"1970-01-01"}`,
	`{"field":"createdAt","op":"within_last","value":"1d"}`,
	`{"field":"updatedAt","op":"within_last","value":"30d"}`,
	`{"field":"updatedAt","op":"within_last","value":"1m"}`,
	`{"field":"updatedAt","op":"after","value":"2024-06-15T14:00:00+02:00"}`,
	`{"op":"has_tag","value":"donor"}`,
	`{"field":"tags","op":"has_tag","value":"a\"b"}`,
	`{"op":"has_tag","value":"50%"}`,
	`{"op":"has_tag","value":"[\"donor\"]"}`,
	`{"op":"has_tag","value":"\\"}`,
	`{"op":"has_tag","value":"<b>&"}`,
	`{"op":"has_consent","value":"email"}`,
	`{"field":"consent","op":"has_consent","value":"sms"}`,
	`{"op":"has_consent","value":"whatsapp"}`,
	`{"field":"attributes.class_year","op":"eq","value":2000}`,
	`{"field":"attributes.class_year","op":"eq","value":"2000"}`,
	`{"field":"attributes.class_year","op":"neq","value":2000}`,
	`{"field":"attributes.class_year","op":"gte","value":2000}`,
	`{"field":"attributes.class_year","op":"lt","value":0}`,
	`{"field":"attributes.class_year","op":"in","value":[2000,2001]}`,
	`{"field":"attributes.class_year","op":"not_in","value":[2000,-2000]}`,
	`{"field":"attributes.score","op":"eq","value":9007199254740992}`,
	`{"field":"attributes.score","op":"gt","value":1e20}`,
	`{"field":"attributes.score","op":"lte","value":0}`,
	`{"field":"attributes.score","op":"eq","value":-0}`,
	`{"field":"attributes.n","op":"eq","value":0.1}`,
	`{"field":"attributes.m","op":"gt","value":0.3}`,
	`{"field":"attributes.big","op":"gte","value":1.7976931348623157e308}`,
	`{"field":"attributes.tiny","op":"gt","value":0}`,
	`{"field":"attributes.city","op":"eq","value":"Boston"}`,
	`{"field":"attributes.city","op":"neq","value":"Boston"}`,
	`{"field":"attributes.city","op":"gt","value":"Boston"}`,
	`{"field":"attributes.city","op":"lt","value":"Boston"}`,
	`{"field":"attributes.city","op":"contains","value":"%"}`,
	`{"field":"attributes.city","op":"contains","value":"ost"}`,
	`{"field":"attributes.city","op":"starts_with","value":"Bos"}`,
	`{"field":"attributes.city","op":"starts_with","value":"Zü"}`,
	`{"field":"attributes.city","op":"in","value":["Boston","Zürich"]}`,
	`{"field":"attributes.city","op":"not_in","value":["Boston"]}`,
	`{"field":"attributes.city","op":"eq","value":"[\"Boston\"]"}`,
	`{"field":"attributes.city","op":"in","value":["{\"name\":\"Boston\"}","x"]}`,
	`{"field":"attributes.note","op":"eq","value":"[1,2]"}`,
	`{"field":"attributes.arr","op":"eq","value":"[1,2]"}`,
	`{"field":"attributes.obj","op":"eq","value":"{\"a\":1}"}`,
	`{"field":"attributes.o","op":"eq","value":"{\"a\":1}"}`,
	`{"field":"attributes.city","op":"exists"}`,
	`{"field":"attributes.city","op":"not_exists"}`,
	`{"field":"attributes.nick","op":"exists"}`,
	`{"field":"attributes.nick","op":"not_exists"}`,
	`{"field":"attributes.vip","op":"exists"}`,
	`{"field":"attributes.empty_arr","op":"exists"}`,
	`{"field":"attributes.empty_obj","op":"exists"}`,
	`{"field":"attributes.vip","op":"eq","value":true}`,
	`{"field":"attributes.vip","op":"eq","value":false}`,
	`{"field":"attributes.vip","op":"neq","value":true}`,
	`{"field":"attributes.vip","op":"in","value":[true,false]}`,
	`{"field":"attributes.vip","op":"not_in","value":[true]}`,
	`{"field":"attributes.vip","op":"not_in","value":[true,false]}`,
	`{"field":"attributes.vip","op":"eq","value":"true"}`,
	`{"field":"attributes.vip","op":"eq","value":1}`,
	`{"field":"attributes.address.city","op":"eq","value":"Boston"}`,
	`{"field":"attributes.address.city","op":"exists"}`,
	`{"field":"attributes.address.city","op":"not_exists"}`,
	`{"field":"attributes.address.0.city","op":"exists"}`,
	`{"field":"attributes.address.geo.lat","op":"gt","value":42}`,
	`{"field":"attributes.0.1","op":"eq","value":"deep"}`,
	`{"field":"attributes.a-b.c_d","op":"eq","value":"x"}`,
	`{"field":"attributes.tags","op":"exists"}`,
	`{"field":"attributes.gift","op":"before","value":"2024-06-01T10:00:00.5Z"}`,
	`{"field":"attributes.gift","op":"after","value":"2024-06-01"}`,
	`{"field":"attributes.gift","op":"after","value":"2024-06-01T10:00:00Z"}`,
	`{"field":"attributes.gift","op":"before","value":"2024-06-02"}`,
	`{"field":"attributes.gift","op":"within_last","value":"2w"}`,
	`{"field":"attributes.gift","op":"within_last","value":"1h"}`,
	`{"field":"attributes.d2","op":"within_last","value":"1m"}`,
	`{"field":"attributes.d3","op":"within_last","value":"1h"}`,
	`{"field":"attributes.d4","op":"within_last","value":"1d"}`,
	`{"field":"attributes.gift","op":"before","value":"2024-06-01T12:00:00+02:00"}`,
	`{"not":{"field":"attributes.city","op":"eq","value":"Boston"}}`,
	`{"not":{"field":"email","op":"exists"}}`,
	`{"not":{"not":{"op":"has_tag","value":"donor"}}}`,
	`{"all":[{"field":"attributes.class_year","op":"gte","value":2000},{"op":"has_consent","value":"email"},{"any":[{"field":"attributes.city","op":"eq","value":"Boston"},{"op":"has_tag","value":"donor"}]}]}`,
	`{"any":[{"field":"attributes.vip","op":"eq","value":true},{"not":{"field":"attributes.score","op":"gt","value":0}}]}`,
	`{"all":[{"not":{"field":"attributes.class_year","op":"eq","value":2000}},{"field":"attributes.class_year","op":"exists"}]}`,
	`{"any":[{"all":[{"field":"firstName","op":"eq","value":"Ada"},{"not":{"op":"has_consent","value":"sms"}}]},{"field":"lastName","op":"starts_with","value":"Å"}]}`,
}

// TestSQLMatchesGo is the differential test: on each engine, the SQL of
// every rule selects exactly the contacts Match accepts.
func TestSQLMatchesGo(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		createTable(t, db)
		r := rand.New(rand.NewPCG(20240615, 1))
		contacts := append(fixtureContacts(t), randomContacts(t, r, 250)...)
		insertContacts(t, db, "t1", contacts, false)
		// The same contacts under another tenant: a leak across tenants
		// would show as extra ids.
		insertContacts(t, db, "t2", contacts, false)
		tenants := []string{"t1"}
		if db.Kind() == store.SQLite {
			// SQLite may also hold the JSON columns as JSONB (faster).
			insertContacts(t, db, "t3", contacts, true)
			tenants = append(tenants, "t3")
		}
		check := func(rl *rule.Rule) {
			t.Helper()
			for _, tenant := range tenants {
				checkAgree(t, db, tenant, contacts, rl)
			}
		}

		hits := 0
		for _, src := range handRules {
			rl := mustParse(t, src)
			check(rl)
			if len(goMatches(rl, contacts, testNow)) > 0 {
				hits++
			}
		}
		if hits < len(handRules)*3/4 {
			t.Errorf("only %d of %d hand rules select anything: the fixtures drifted", hits, len(handRules))
		}
		n := 3000
		if testing.Short() {
			n = 300
		}
		// ALUM_RULE_DIFF_RULES=100000 for a longer hunt.
		if v, err := strconv.Atoi(os.Getenv("ALUM_RULE_DIFF_RULES")); err == nil && v > 0 {
			n = v
		}
		selective := 0
		for range n {
			src, _ := json.Marshal(randomRule(r, 1))
			rl, err := rule.Parse(src)
			if err != nil {
				t.Fatalf("generated rule %s does not parse: %v", src, err)
			}
			check(rl)
			if m := len(goMatches(rl, contacts, testNow)); m > 0 && m < len(contacts) {
				selective++
			}
		}
		// Guard against a generator that only makes trivial rules.
		if selective < n/4 {
			t.Errorf("only %d of %d random rules select some but not all contacts", selective, n)
		}
	})
}

// TestEnginesReadNumbersAsGo checks what the agreement on numbers rests
// on: every float64, written by Contact.JSONColumns, is read back by SQLite
// as exactly that value (an integer only when it equals the float64), and
// by PostgreSQL's float8 cast as that value.
func TestEnginesReadNumbersAsGo(t *testing.T) {
	t.Parallel()
	r := rand.New(rand.NewPCG(53, 53))
	nums := make([]any, 0, 100_000)
	for len(nums) < cap(nums) {
		var f float64
		switch r.IntN(4) {
		case 0:
			f = math.Float64frombits(r.Uint64())
		case 1:
			f = float64(r.Int64()) // integral, beyond 2^53 mostly
		case 2:
			f = float64(r.IntN(1<<20) - 1<<19)
		default:
			f = r.NormFloat64() * math.Pow(10, float64(r.IntN(40)-20))
		}
		if !math.IsNaN(f) && !math.IsInf(f, 0) {
			nums = append(nums, f)
		}
	}
	c := rule.Contact{Attributes: map[string]any{"a": nums}}
	col, _, err := c.JSONColumns()
	if err != nil {
		t.Fatal(err)
	}
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		q := `SELECT value FROM json_each($1, '$.a') ORDER BY key`
		if db.Kind() == store.Postgres {
			q = `SELECT e::float8 FROM jsonb_array_elements(($1::jsonb) -> 'a') WITH ORDINALITY AS x(e, i) ORDER BY i`
		}
		rows, err := db.Reader().QueryContext(context.Background(), q, string(col))
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		i, bad := 0, 0
		for ; rows.Next(); i++ {
			var v any
			if err := rows.Scan(&v); err != nil {
				t.Fatal(err)
			}
			want := nums[i].(float64)
			ok := false
			switch v := v.(type) {
			case float64:
				ok = v == want
			case int64:
				ok = float64(v) == want && want < 1<<63 && int64(want) == v
			}
			if !ok && bad < 5 {
				bad++
				t.Errorf("%v read back as %T %v", want, v, v)
			}
		}
		if i != len(nums) {
			t.Fatalf("read %d numbers, want %d", i, len(nums))
		}
	})
}
