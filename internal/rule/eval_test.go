package rule_test

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/alumoutreach/alumoutreach/internal/rule"
)

func TestMatch(t *testing.T) {
	t.Parallel()
	alum := rule.Contact{
		Email: "ada@example.org", Phone: "+44 20 7946 0000", FirstName: "Ada", LastName: "Lovelace", Locale: "en-GB",
		Attributes: attrs(t, `{"class_year":2000,"score":-1.5,"city":"Boston","address":{"city":"Cambridge","geo":{"lat":42.3}},
			"vip":true,"nick":"","gone":null,"list":["Boston"],"obj":{},"year_text":"2000","last_gift":"2024-06-01",
			"seen":"2024-06-15T11:30:00.5Z","bad_date":"2024-06-01T10:00:00+02:00"}`),
		Tags:      []string{"donor", "Board Member"},
		Consent:   rule.Consent{Email: true},
		CreatedAt: time.Date(2024, 6, 1, 0, 0, 0, 0, time.UTC),
		UpdatedAt: testNow.Add(-time.Hour),
	}
	var empty rule.Contact
	tests := []struct {
		rule string
		c    *rule.Contact
		want bool
	}{
		// Profile fields: "" is unset and matches no comparison, neq included.
		{`{"field":"email","op":"eq","value":"ada@example.org"}`, &alum, true},
		{`{"field":"email","op":"eq","value":"ADA@example.org"}`, &alum, false}, // case-sensitive
		{`{"field":"email","op":"neq","value":"bob@example.org"}`, &alum, true},
		{`{"field":"email","op":"neq","value":"bob@example.org"}`, &empty, false},
		{`{"field":"timeZone","op":"lt","value":"Z"}`, &alum, false}, // unset
		{`{"field":"lastName","op":"gt","value":"L"}`, &alum, true},
		{`{"field":"lastName","op":"gte","value":"Lovelace"}`, &alum, true},
		{`{"field":"lastName","op":"lt","value":"Lovelace"}`, &alum, false},
		{`{"field":"lastName","op":"lte","value":"Lovelace"}`, &alum, true},
		{`{"field":"lastName","op":"lt","value":"lovelace"}`, &alum, true}, // bytes: 'L' < 'l'
		{`{"field":"email","op":"contains","value":"@example."}`, &alum, true},
		{`{"field":"email","op":"contains","value":"%"}`, &alum, false},
		{`{"field":"phone","op":"starts_with","value":"+44"}`, &alum, true},
		{`{"field":"phone","op":"starts_with","value":"44"}`, &alum, false},
		{`{"field":"locale","op":"in","value":["en-GB","fr"]}`, &alum, true},
		{`{"field":"locale","op":"not_in","value":["fr"]}`, &alum, true},
		{`{"field":"locale","op":"not_in","value":["fr"]}`, &empty, false},
		{`{"field":"locale","op":"not_in","value":["a","b","c","d","e","f","g","h","en-GB"]}`, &alum, false}, // set lookup
		{`{"field":"phone","op":"exists"}`, &alum, true},
		{`{"field":"timeZone","op":"exists"}`, &alum, false},
		{`{"field":"timeZone","op":"not_exists"}`, &alum, true},
		// Times: ms since the epoch; a date is UTC midnight.
		{`{"field":"createdAt","op":"before","value":"2024-06-01"}`, &alum, false},
		{`{"field":"createdAt","op":"after","value":"2024-05-31T23:59:59.999Z"}`, &alum, true},
		{`{"field":"createdAt","op":"after","value":"2024-06-01T02:00:00+02:00"}`, &alum, false}, // the same instant
		{`{"field":"updatedAt","op":"within_last","value":"60m"}`, &alum, true},                  // boundary included
		{`{"field":"updatedAt","op":"within_last","value":"59m"}`, &alum, false},
		{`{"field":"createdAt","op":"within_last","value":"3w"}`, &alum, true},
		{`{"field":"createdAt","op":"within_last","value":"2w"}`, &alum, false},
		// Tags and consent.
		{`{"op":"has_tag","value":"donor"}`, &alum, true},
		{`{"op":"has_tag","value":"Donor"}`, &alum, false},
		{`{"op":"has_tag","value":"Board"}`, &alum, false}, // whole tags only
		{`{"op":"has_consent","value":"email"}`, &alum, true},
		{`{"op":"has_consent","value":"sms"}`, &alum, false},
		{`{"op":"has_consent","value":"whatsapp"}`, &alum, false},
		// Attributes: type-strict.
		{`{"field":"attributes.class_year","op":"eq","value":2000}`, &alum, true},
		{`{"field":"attributes.class_year","op":"eq","value":"2000"}`, &alum, false},
		{`{"field":"attributes.year_text","op":"eq","value":2000}`, &alum, false},
		{`{"field":"attributes.year_text","op":"neq","value":2000}`, &alum, false}, // neq: a number of another value
		{`{"field":"attributes.class_year","op":"neq","value":1999}`, &alum, true},
		{`{"field":"attributes.class_year","op":"gte","value":2000}`, &alum, true},
		{`{"field":"attributes.class_year","op":"gt","value":2000}`, &alum, false},
		{`{"field":"attributes.score","op":"lt","value":0}`, &alum, true},
		{`{"field":"attributes.score","op":"lte","value":-1.5}`, &alum, true},
		{`{"field":"attributes.class_year","op":"in","value":[1999,2000]}`, &alum, true},
		{`{"field":"attributes.class_year","op":"not_in","value":[1999,2000]}`, &alum, false},
		{`{"field":"attributes.vip","op":"eq","value":true}`, &alum, true},
		{`{"field":"attributes.vip","op":"neq","value":true}`, &alum, false},
		{`{"field":"attributes.vip","op":"eq","value":1}`, &alum, false},
		{`{"field":"attributes.vip","op":"in","value":[true,false]}`, &alum, true},
		{`{"field":"attributes.vip","op":"not_in","value":[false]}`, &alum, true},
		{`{"field":"attributes.city","op":"eq","value":"Boston"}`, &alum, true},
		{`{"field":"attributes.city","op":"gt","value":"Austin"}`, &alum, true},
		{`{"field":"attributes.city","op":"contains","value":"sto"}`, &alum, true},
		{`{"field":"attributes.city","op":"starts_with","value":"Bos"}`, &alum, true},
		{`{"field":"attributes.list","op":"eq","value":"Boston"}`, &alum, false},    // arrays compare with nothing
		{`{"field":"attributes.list","op":"contains","value":"Bos"}`, &alum, false}, // nor contain
		{`{"field":"attributes.class_year","op":"contains","value":"20"}`, &alum, false},
		// Presence: absent, null and "" are unset; {} and [] are values.
		{`{"field":"attributes.city","op":"exists"}`, &alum, true},
		{`{"field":"attributes.nick","op":"exists"}`, &alum, false},
		{`{"field":"attributes.gone","op":"exists"}`, &alum, false},
		{`{"field":"attributes.nowhere","op":"not_exists"}`, &alum, true},
		{`{"field":"attributes.obj","op":"exists"}`, &alum, true},
		{`{"field":"attributes.list","op":"exists"}`, &alum, true},
		{`{"field":"attributes.nick","op":"neq","value":"x"}`, &alum, false},
		{`{"field":"attributes.gone","op":"neq","value":1}`, &alum, false},
		{`{"field":"attributes.city","op":"exists"}`, &empty, false},
		// Nested paths.
		{`{"field":"attributes.address.city","op":"eq","value":"Cambridge"}`, &alum, true},
		{`{"field":"attributes.address.geo.lat","op":"gt","value":42}`, &alum, true},
		{`{"field":"attributes.city.name","op":"exists"}`, &alum, false}, // through a string
		{`{"field":"attributes.list.0","op":"exists"}`, &alum, false},    // no array indexing
		// Date attributes.
		{`{"field":"attributes.last_gift","op":"after","value":"2024-05-31"}`, &alum, true},
		{`{"field":"attributes.last_gift","op":"after","value":"2024-06-01"}`, &alum, false},
		{`{"field":"attributes.last_gift","op":"before","value":"2024-06-01T00:00:00.001Z"}`, &alum, true},
		{`{"field":"attributes.seen","op":"within_last","value":"30m"}`, &alum, true},
		{`{"field":"attributes.seen","op":"within_last","value":"29m"}`, &alum, false},
		{`{"field":"attributes.seen","op":"after","value":"2024-06-15T11:30:00.499Z"}`, &alum, true},
		{`{"field":"attributes.bad_date","op":"before","value":"2030-01-01"}`, &alum, false}, // offsets are not dates
		{`{"field":"attributes.city","op":"before","value":"2030-01-01"}`, &alum, false},
		{`{"field":"attributes.class_year","op":"before","value":"2030-01-01"}`, &alum, false},
		// Groups.
		{`{"all":[{"op":"has_tag","value":"donor"},{"op":"has_consent","value":"email"}]}`, &alum, true},
		{`{"all":[{"op":"has_tag","value":"donor"},{"op":"has_consent","value":"sms"}]}`, &alum, false},
		{`{"any":[{"op":"has_tag","value":"x"},{"op":"has_consent","value":"email"}]}`, &alum, true},
		{`{"any":[{"op":"has_tag","value":"x"},{"op":"has_consent","value":"sms"}]}`, &alum, false},
		{`{"not":{"field":"attributes.city","op":"eq","value":"Boston"}}`, &alum, false},
		{`{"not":{"field":"attributes.city","op":"eq","value":"Boston"}}`, &empty, true}, // not matches the unset
		{`{"not":{"not":{"field":"email","op":"exists"}}}`, &alum, true},
	}
	for _, tt := range tests {
		r := mustParse(t, tt.rule)
		name := "alum"
		if tt.c == &empty {
			name = "empty"
		}
		if got := r.Match(tt.c, testNow); got != tt.want {
			t.Errorf("%s on %s = %v, want %v", tt.rule, name, got, tt.want)
		}
	}
}

// Go callers may hand over numbers that did not come from encoding/json;
// JSONColumns stores them as the float64 Match compares.
func TestMatchOtherNumberTypes(t *testing.T) {
	t.Parallel()
	c := rule.Contact{Attributes: map[string]any{"a": 2000, "b": int64(1 << 60), "c": json.Number("0.5"),
		"d": map[string]any{"e": int64(3)}, "f": []any{1, "x"}}}
	for _, tt := range []struct {
		rule string
		want bool
	}{
		{`{"field":"attributes.a","op":"eq","value":2000}`, true},
		{`{"field":"attributes.b","op":"eq","value":1152921504606846976}`, true},
		{`{"field":"attributes.c","op":"lt","value":1}`, true},
		{`{"field":"attributes.d.e","op":"in","value":[3]}`, true},
	} {
		if got := mustParse(t, tt.rule).Match(&c, testNow); got != tt.want {
			t.Errorf("%s = %v, want %v", tt.rule, got, tt.want)
		}
	}
	a, tags, err := c.JSONColumns()
	if err != nil {
		t.Fatal(err)
	}
	if want := `{"a":2000,"b":1.152921504606847e+18,"c":0.5,"d":{"e":3},"f":[1,"x"]}`; string(a) != want {
		t.Errorf("attributes column %s, want %s", a, want)
	}
	if string(tags) != "[]" {
		t.Errorf("tags column %s, want []", tags)
	}
	if _, ok := c.Attributes["a"].(int); !ok {
		t.Error("JSONColumns changed the caller's map")
	}
}

func TestJSONColumnsRefusesWhatSQLCannotHold(t *testing.T) {
	t.Parallel()
	for _, c := range []rule.Contact{
		{Attributes: map[string]any{"a": "x\x00y"}},
		{Attributes: map[string]any{"a": []any{"\xff"}}},
		{Attributes: map[string]any{"a\x00": 1}},
		{Attributes: map[string]any{"a": int32(1)}},
		{Attributes: map[string]any{"a": json.Number("1e999")}},
		{Tags: []string{"\xfe"}},
	} {
		if _, _, err := c.JSONColumns(); err == nil {
			t.Errorf("JSONColumns(%+v) = nil error", c)
		}
	}
}

func TestMatchDoesNotAllocate(t *testing.T) {
	r := mustParse(t, `{"all":[{"field":"attributes.address.city","op":"in","value":["a","b","c","d","e","f","g","h","Boston"]},
		{"field":"attributes.seen","op":"within_last","value":"1d"},{"not":{"op":"has_tag","value":"x"}}]}`)
	c := rule.Contact{Attributes: attrs(t, `{"address":{"city":"Boston"},"seen":"2024-06-15T00:00:00Z"}`)}
	allocs := testing.AllocsPerRun(100, func() {
		if !r.Match(&c, testNow) {
			t.Fatal("no match")
		}
	})
	if allocs != 0 {
		t.Errorf("Match allocates %v times", allocs)
	}
}
