package rule_test

import (
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/alumoutreach/alumoutreach/internal/rule"
)

func TestParseValidCanonical(t *testing.T) {
	t.Parallel()
	tests := []struct{ in, want string }{
		// Every operator in the form the author may write, and its canonical form.
		{`{"field":"email","op":"eq","value":"a@b.org"}`, ``},
		{`{"field":"email","op":"neq","value":"a@b.org"}`, ``},
		{`{"field":"lastName","op":"gt","value":"M"}`, ``},
		{`{"field":"lastName","op":"gte","value":"M"}`, ``},
		{`{"field":"lastName","op":"lt","value":"M"}`, ``},
		{`{"field":"lastName","op":"lte","value":"M"}`, ``},
		{`{"field":"email","op":"contains","value":"@example."}`, ``},
		{`{"field":"phone","op":"starts_with","value":"+44"}`, ``},
		{`{"field":"locale","op":"in","value":["en","fr"]}`, ``},
		{`{"field":"locale","op":"not_in","value":["en"]}`, ``},
		{`{"field":"timeZone","op":"exists"}`, ``},
		{`{"field":"timeZone","op":"not_exists","value":null}`, `{"field":"timeZone","op":"not_exists"}`},
		{`{"field":"createdAt","op":"before","value":"2024-01-31"}`, ``},
		{`{"field":"createdAt","op":"after","value":"2024-01-31T09:00:00+02:00"}`, `{"field":"createdAt","op":"after","value":"2024-01-31T07:00:00Z"}`},
		{`{"field":"updatedAt","op":"after","value":"2024-01-31T09:00:00.123456Z"}`, `{"field":"updatedAt","op":"after","value":"2024-01-31T09:00:00.123Z"}`},
		{`{"field":"updatedAt","op":"within_last","value":"30d"}`, ``},
		{`{"field":"updatedAt","op":"within_last","value":"012h"}`, `{"field":"updatedAt","op":"within_last","value":"12h"}`},
		{`{"field":"createdAt","op":"within_last","value":"90m"}`, ``},
		{`{"field":"createdAt","op":"within_last","value":"2w"}`, ``},
		{`{"op":"has_tag","value":"donor"}`, `{"field":"tags","op":"has_tag","value":"donor"}`},
		{`{"field":"tags","op":"has_tag","value":"<b>&"}`, `{"field":"tags","op":"has_tag","value":"\u003cb\u003e\u0026"}`},
		{`{"op":"has_consent","value":"whatsapp"}`, `{"field":"consent","op":"has_consent","value":"whatsapp"}`},
		{`{"field":"consent","op":"has_consent","value":"sms"}`, ``},
		{`{"field":"attributes.class_year","op":"eq","value":2000}`, ``},
		{`{"field":"attributes.class_year","op":"eq","value":2.0e3}`, `{"field":"attributes.class_year","op":"eq","value":2000}`},
		{`{"field":"attributes.score","op":"gt","value":-0.5}`, ``},
		{`{"field":"attributes.big","op":"lt","value":1e21}`, `{"field":"attributes.big","op":"lt","value":1e+21}`},
		{`{"field":"attributes.vip","op":"eq","value":true}`, ``},
		{`{"field":"attributes.vip","op":"neq","value":false}`, ``},
		{`{"field":"attributes.city","op":"gte","value":"B"}`, ``},
		{`{"field":"attributes.city","op":"contains","value":"ost"}`, ``},
		{`{"field":"attributes.city","op":"starts_with","value":"Bo"}`, ``},
		{`{"field":"attributes.class_year","op":"in","value":[2000,2001]}`, ``},
		{`{"field":"attributes.vip","op":"not_in","value":[true]}`, ``},
		{`{"field":"attributes.address.city","op":"exists"}`, ``},
		{`{"field":"attributes.a-b.C_9","op":"not_exists"}`, ``},
		{`{"field":"attributes.last_gift","op":"before","value":"2024-01-01"}`, ``},
		{`{"field":"attributes.last_gift","op":"after","value":"2024-01-01T00:00:00.000Z"}`, `{"field":"attributes.last_gift","op":"after","value":"2024-01-01T00:00:00Z"}`},
		{`{"field":"attributes.last_gift","op":"within_last","value":"1w"}`, ``},
		// Groups, whitespace, key order, escapes.
		{` { "all" : [ {"value":"x","op":"eq","field":"email"} , {"not":{"op":"has_tag","value":"a\"b"}} ] } `,
			`{"all":[{"field":"email","op":"eq","value":"x"},{"not":{"field":"tags","op":"has_tag","value":"a\"b"}}]}`},
		{`{"any":[{"field":"email","op":"exists"}]}`, ``},
		{`{"not":{"not":{"field":"email","op":"exists"}}}`, ``},
		{`{"field":"firstName","op":"eq","value":"Zo\u00eb \ud83c\udf93"}`, `{"field":"firstName","op":"eq","value":"Zoë 🎓"}`},
	}
	for _, tt := range tests {
		r, err := rule.Parse([]byte(tt.in))
		if err != nil {
			t.Errorf("Parse(%s): %v", tt.in, err)
			continue
		}
		want := tt.want
		if want == "" {
			want = tt.in
		}
		got, err := json.Marshal(r)
		if err != nil {
			t.Fatal(err)
		}
		if string(got) != want {
			t.Errorf("Parse(%s)\n got %s\nwant %s", tt.in, got, want)
		}
		again := mustParse(t, string(got))
		if again.String() != string(got) || r.String() != string(got) {
			t.Errorf("canonical form of %s is not stable: %s", got, again)
		}
	}
}

func TestParseErrors(t *testing.T) {
	t.Parallel()
	deep := `{"field":"email","op":"exists"}`
	for range 10 {
		deep = `{"not":` + deep + `}`
	}
	wide := `{"any":[` + strings.Repeat(`{"field":"email","op":"exists"},`, 200) + `{"field":"email","op":"exists"}]}`
	long := `{"field":"attributes.x","op":"in","value":[` + strings.Repeat(`1,`, 1000) + `1]}`
	tests := []struct{ in, path, msg string }{
		{`nope`, "", "not valid JSON"},
		{`{"field":"email","op":"eq","value":"x"} {}`, "", "not valid JSON"},
		{`[]`, "", "a node must be a JSON object"},
		{`{}`, "", "empty node"},
		{`{"all":[]}`, "all", "all needs at least one node"},
		{`{"any":{}}`, "any", "any takes a list of nodes"},
		{`{"not":[{"field":"email","op":"exists"}]}`, "not", "a node must be a JSON object"},
		{`{"all":[{"field":"email","op":"exists"}],"any":[{"field":"email","op":"exists"}]}`, "", "exactly one of all, any, not"},
		{`{"all":[{"field":"email","op":"exists"}],"field":"email"}`, "", "either a group"},
		{`{"field":"email","op":"exists","valu":1}`, "", `unknown key "valu"`},
		{`{"field":"email","op":"exists","op":"exists"}`, "", `duplicate key "op"`},
		{`{"all":[{"field":"email","op":"exists"},{"field":"email","op":"exists"},{"any":[{"field":"email","op":"eqq","value":"x"}]}]}`,
			"all[2].any[0].op", `unknown operator "eqq" (one of eq, neq,`},
		{`{"all":[{"field":"emial","op":"eq","value":"x"}]}`, "all[0].field", `unknown field "emial"`},
		{`{"all":[{"field":"email","op":"exists"},{"field":"createdAt","op":"within_last","value":"30"}]}`, "all[1].value", `within_last needs a duration such as "30d"`},
		{`{"field":"createdAt","op":"within_last","value":"30y"}`, "value", `within_last needs a duration`},
		{`{"field":"createdAt","op":"within_last","value":"0d"}`, "value", `is zero`},
		{`{"field":"createdAt","op":"within_last","value":"99999w"}`, "value", `longer than 100 years`},
		{`{"field":"createdAt","op":"within_last","value":30}`, "value", `not a number`},
		{`{"field":"email","op":"eq"}`, "value", "missing: eq needs a string"},
		{`{"field":"email","op":"eq","value":null}`, "value", "missing"},
		{`{"op":"eq","value":"x"}`, "field", "missing"},
		{`{"field":"email","value":"x"}`, "op", "missing"},
		{`{"field":"email","op":7,"value":"x"}`, "op", "must be a string"},
		{`{"field":["email"],"op":"eq","value":"x"}`, "field", "must be a string"},
		{`{"field":"email","op":"eq","value":""}`, "value", "empty string"},
		{`{"field":"email","op":"eq","value":"a\u0000b"}`, "value", "U+0000"},
		{`{"field":"email","op":"eq","value":"` + strings.Repeat("x", 1025) + `"}`, "value", "at most 1024"},
		{`{"field":"email","op":"eq","value":2}`, "value", "eq needs a string, not a number"},
		{`{"field":"email","op":"eq","value":true}`, "value", "not a boolean"},
		{`{"field":"attributes.x","op":"eq","value":{"a":1}}`, "value", "eq needs a string, number or boolean, not an object"},
		{`{"field":"attributes.x","op":"gt","value":true}`, "value", "gt needs a string or a number, not a boolean"},
		{`{"field":"attributes.x","op":"gt","value":1e999}`, "value", "out of range"},
		{`{"field":"attributes.x","op":"contains","value":1}`, "value", "contains needs a string"},
		{`{"field":"attributes.x","op":"in","value":"a"}`, "value", "in needs a list"},
		{`{"field":"attributes.x","op":"in","value":[]}`, "value", "at least one value"},
		{`{"field":"attributes.x","op":"in","value":["a",1]}`, "value[1]", "values of one type"},
		{`{"field":"attributes.x","op":"in","value":[null]}`, "value[0]", "not null"},
		{`{"field":"attributes.x","op":"in","value":[[1]]}`, "value[0]", "not a list"},
		{`{"field":"attributes.x","op":"not_in","value":["a",""]}`, "value[1]", "empty string"},
		{`{"field":"email","op":"in","value":[1]}`, "value[0]", "email is text"},
		{long, "value", "at most 1000"},
		{`{"field":"email","op":"exists","value":true}`, "value", "exists takes no value"},
		{`{"field":"firstName","op":"before","value":"2024-01-01"}`, "op", "before needs a time"},
		{`{"field":"createdAt","op":"eq","value":"2024-01-01"}`, "op", "createdAt supports before, after and within_last"},
		{`{"field":"createdAt","op":"before","value":"yesterday"}`, "value", `before needs a date such as "2024-01-31"`},
		{`{"field":"createdAt","op":"before","value":"2024-02-30"}`, "value", `not "2024-02-30"`},
		{`{"field":"createdAt","op":"after","value":"2024-01-01 10:00:00"}`, "value", "after needs a date"},
		{`{"field":"email","op":"has_tag","value":"x"}`, "field", `has_tag reads the contact's tags`},
		{`{"op":"has_tag","value":""}`, "value", "empty string"},
		{`{"op":"has_tag","value":["a"]}`, "value", "has_tag needs a string"},
		{`{"op":"has_consent","value":"post"}`, "value", `has_consent needs "email", "sms" or "whatsapp"`},
		{`{"field":"tags","op":"eq","value":"x"}`, "op", "tags supports only has_tag"},
		{`{"field":"consent","op":"exists"}`, "op", "consent supports only has_consent"},
		{`{"field":"attributes","op":"exists"}`, "field", "attributes needs a key"},
		{`{"field":"attributes.a..b","op":"exists"}`, "field", "empty key"},
		{`{"field":"attributes.a b","op":"exists"}`, "field", "may hold only letters"},
		{`{"field":"attributes.a.b.c.d.e.f.g.h.i","op":"exists"}`, "field", "at most 8"},
		{`{"field":"attributes.` + strings.Repeat("k", 65) + `","op":"exists"}`, "field", "longer than 64"},
		{`{"field":"Email","op":"exists"}`, "field", `unknown field "Email"`},
		{deep, "not.not.not.not.not.not.not.not.not.not", "at most 10 levels"},
		{wide, "any[199]", "at most 200"},
		{`{"field":"email","op":"exists","a":1,"b":2,"c":3,"d":4,"e":5,"f":6,"g":7,"h":8}`, "", "too many keys"},
	}
	for _, tt := range tests {
		_, err := rule.Parse([]byte(tt.in))
		var re *rule.Error
		if !errors.As(err, &re) {
			t.Errorf("Parse(%.80s) = %v, want *rule.Error", tt.in, err)
			continue
		}
		if re.Path != tt.path || !strings.Contains(re.Message, tt.msg) {
			t.Errorf("Parse(%.80s)\n got path %q message %q\nwant path %q message containing %q", tt.in, re.Path, re.Message, tt.path, tt.msg)
		}
		if tt.path != "" && !strings.HasPrefix(err.Error(), tt.path+": ") {
			t.Errorf("Error() = %q does not start with the path", err.Error())
		}
	}
}

func TestParseTooLarge(t *testing.T) {
	t.Parallel()
	big := `{"field":"email","op":"eq","value":"` + strings.Repeat("x", rule.MaxBytes) + `"}`
	_, err := rule.Parse([]byte(big))
	var re *rule.Error
	if !errors.As(err, &re) || !strings.Contains(re.Message, "at most") {
		t.Fatalf("Parse(huge) = %v", err)
	}
}

func TestParseTotalValues(t *testing.T) {
	t.Parallel()
	list := `{"field":"attributes.x","op":"in","value":[` + strings.Repeat(`1,`, 999) + `1]}`
	kids := strings.Repeat(list+",", 10) + list
	_, err := rule.Parse([]byte(`{"any":[` + kids + `]}`))
	var re *rule.Error
	if !errors.As(err, &re) || re.Path != "any[10].value" || !strings.Contains(re.Message, "10000 values in all") {
		t.Fatalf("Parse(11 lists of 1000) = %v", err)
	}
}

func TestFieldsAndTimeDependent(t *testing.T) {
	t.Parallel()
	r := mustParse(t, `{"all":[{"field":"attributes.address.city","op":"eq","value":"Boston"},{"op":"has_tag","value":"x"},
		{"not":{"op":"has_consent","value":"sms"}},{"field":"email","op":"exists"},{"field":"email","op":"contains","value":"@"}]}`)
	if got, want := r.Fields(), []string{"attributes.address.city", "consent", "email", "tags"}; !slices.Equal(got, want) {
		t.Errorf("Fields() = %v, want %v", got, want)
	}
	if r.TimeDependent() {
		t.Error("TimeDependent() = true without within_last")
	}
	for _, src := range []string{
		`{"not":{"field":"updatedAt","op":"within_last","value":"1d"}}`,
		`{"field":"attributes.last_gift","op":"within_last","value":"1d"}`,
	} {
		if !mustParse(t, src).TimeDependent() {
			t.Errorf("TimeDependent() = false for %s", src)
		}
	}
	if mustParse(t, `{"field":"createdAt","op":"after","value":"2024-01-01"}`).TimeDependent() {
		t.Error("TimeDependent() = true for a fixed date")
	}
}

func TestUnmarshalJSONInStruct(t *testing.T) {
	t.Parallel()
	var req struct {
		Name string     `json:"name"`
		Rule *rule.Rule `json:"rule"`
	}
	if err := json.Unmarshal([]byte(`{"name":"a","rule":{"op":"has_tag","value":"x"}}`), &req); err != nil {
		t.Fatal(err)
	}
	if got := req.Rule.String(); got != `{"field":"tags","op":"has_tag","value":"x"}` {
		t.Errorf("rule = %s", got)
	}
	err := json.Unmarshal([]byte(`{"name":"a","rule":{"any":[{"op":"has_tag","value":1}]}}`), &req)
	var re *rule.Error
	if !errors.As(err, &re) || re.Path != "any[0].value" {
		t.Errorf("Unmarshal of a bad rule = %v, want *rule.Error at any[0].value", err)
	}
	out, err := json.Marshal(req)
	if err != nil || !strings.Contains(string(out), `"rule":{"field":"tags"`) {
		t.Errorf("Marshal = %s, %v", out, err)
	}
}
