package rule_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"math/rand/v2"
	"testing"

	"github.com/alumoutreach/alumoutreach/internal/platform/store"
	"github.com/alumoutreach/alumoutreach/internal/platform/store/storetest"
	"github.com/alumoutreach/alumoutreach/internal/rule"
)

// FuzzParse checks that Parse never panics and reports only *rule.Error,
// that a parsed rule's canonical form parses back to itself, and that its
// SQL runs and selects exactly what Match selects, on every configured
// engine (and on SQLite with JSON text and JSONB columns).
//
//	go test -run '^$' -fuzz FuzzParse -fuzztime 60s ./internal/rule/
func FuzzParse(f *testing.F) {
	for _, src := range handRules {
		f.Add([]byte(src))
	}
	r := rand.New(rand.NewPCG(99, 1))
	for range 20 {
		b, _ := json.Marshal(randomRule(r, 1))
		f.Add(b)
	}
	for _, src := range []string{`{}`, `[]`, `null`, `{"all":[]}`, `{"not":{"not":{}}}`, `{"field":"attributes.a.b","op":"in","value":[1,2,3]}`} {
		f.Add([]byte(src))
	}

	type engine struct {
		db      *store.DB
		tenants []string
	}
	contacts := append(fixtureContacts(f), randomContacts(f, rand.New(rand.NewPCG(5, 5)), 40)...)
	var engines []engine
	for _, kind := range storetest.Kinds() {
		db := storetest.Open(f, kind)
		createTable(f, db)
		insertContacts(f, db, "t1", contacts, false)
		e := engine{db: db, tenants: []string{"t1"}}
		if kind == store.SQLite {
			insertContacts(f, db, "t3", contacts, true)
			e.tenants = append(e.tenants, "t3")
		}
		engines = append(engines, e)
	}

	f.Fuzz(func(t *testing.T, data []byte) {
		rl, err := rule.Parse(data)
		if err != nil {
			var re *rule.Error
			if !errors.As(err, &re) {
				t.Fatalf("Parse error %T %v is not a *rule.Error", err, err)
			}
			return
		}
		canon, err := rl.MarshalJSON()
		if err != nil {
			t.Fatal(err)
		}
		again, err := rule.Parse(canon)
		if err != nil {
			t.Fatalf("canonical form %s does not parse: %v", canon, err)
		}
		if again2, _ := again.MarshalJSON(); !bytes.Equal(again2, canon) {
			t.Fatalf("canonical form not stable:\n%s\n%s", canon, again2)
		}
		_ = rl.Fields()
		for _, e := range engines {
			for _, tenant := range e.tenants {
				checkAgree(t, e.db, tenant, contacts, rl)
			}
		}
	})
}
