package event

import (
	"bytes"
	"encoding/json"
	"testing"
	"time"
)

// FuzzFastEncodeAgrees checks the hand-written encoder against json.Marshal:
// the same bytes, or the same refusal.
func FuzzFastEncodeAgrees(f *testing.F) {
	f.Add("id", "contact.created", "", "1.0", "contacts-service", int64(1769508000000), "tenant", "corr", []byte(`{"a":1}`), false)
	f.Add("a\"b\\c\n\x01<>&\u2028\u2029é\xff", "t", "cause", "1.0", "s\t", int64(0), "", "", []byte(" { \"a\" : [ 1 , \"<x>\" ] } "), false)
	f.Add("", "", "", "", "", int64(-62198755200000), "", "", []byte(`nul`), false)
	f.Add("x", "y", "z", "1.0", "s", int64(253402300800000), "t", "c", []byte(`"\u2028 &"`), false)
	f.Add("x", "y", "", "1.0", "s", int64(1), "t", "c", []byte(nil), true)
	f.Add("x", "y", "", "1.0", "s", int64(1), "t", "c", []byte(`{"s":"a\"}b","n":-1.5e3,"t":true,"f":null,"e":{},"l":[]}`), false)
	f.Fuzz(func(t *testing.T, id, typ, causation, version, source string, ms int64, tenant, correlation string, data []byte, nilData bool) {
		env := Envelope{ID: id, Type: typ, CausationID: causation, Version: version, Source: source,
			Timestamp: Time{time.UnixMilli(ms)}, TenantID: tenant, CorrelationID: correlation, Data: data}
		if nilData {
			env.Data = nil
		}
		want, wantErr := json.Marshal(env)
		got, ok := appendEnvelope(nil, &env)
		switch {
		case wantErr != nil && ok:
			t.Fatalf("json.Marshal refuses (%v), the fast encoder wrote %s", wantErr, got)
		case wantErr == nil && !ok:
			t.Fatalf("the fast encoder refused what json.Marshal writes: %s", want)
		case ok && !bytes.Equal(got, want):
			t.Fatalf("encodings differ:\n fast %s\n json %s", got, want)
		}
	})
}

func BenchmarkEncode(b *testing.B) {
	env, _ := New(b.Context(), PipelineMessageSent, SourcePipeline, "tenant", MessageData{MessageID: NewID(), Channel: "email",
		ContactID: NewID(), RecipientAddress: "jane.doe@example.edu", SourceType: MessageSourceCampaign, SourceID: NewID(),
		TemplateID: NewID(), ExternalID: "<" + NewID() + "@alumoutreach>"})
	env.CausationID = NewID()
	b.Run("fast", func(b *testing.B) {
		for b.Loop() {
			if _, err := Encode(env, 0); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("encoding/json", func(b *testing.B) {
		for b.Loop() {
			if _, err := json.Marshal(env); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// FuzzScanJSONAgrees checks scanJSON against encoding/json: valid exactly
// when json.Valid says so, and compact exactly when json.Marshal copies the
// value unchanged.
func FuzzScanJSONAgrees(f *testing.F) {
	for _, s := range []string{`{"a":[1,-0.5e+3,true,false,null,"x\"\\\/\b\f\n\r\t\u00e9"]}`, ` {"a" : 1} `, `"<&>"`,
		"\"\u2028\"", `01`, `1.`, `-`, `1e`, `"\u12"`, `"\x"`, "\"\x01\"", `[1,]`, `{"a":1,}`, `{"a"}`, `tru`, `nulll`,
		`[[[[]]]]`, `{}`, `[]`, `""`, "\"\xff\"", `{"a":{"b":{"c":[{}]}}}`, ``, ` `} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		valid, compact := scanJSON(raw)
		if want := json.Valid(raw); valid != want {
			t.Fatalf("scanJSON(%q) valid = %v, json.Valid = %v", raw, valid, want)
		}
		if !valid {
			return
		}
		out, err := json.Marshal(json.RawMessage(raw))
		if err != nil {
			t.Fatalf("json.Marshal of valid %q: %v", raw, err)
		}
		if want := bytes.Equal(out, raw); compact != want {
			t.Fatalf("scanJSON(%q) compact = %v, json.Marshal writes %q", raw, compact, out)
		}
	})
}

func TestScanJSONDepthLimit(t *testing.T) {
	t.Parallel()
	for _, depth := range []int{maxJSONDepth, maxJSONDepth + 1} {
		raw := append(bytes.Repeat([]byte("["), depth), bytes.Repeat([]byte("]"), depth)...)
		if valid, _ := scanJSON(raw); valid != json.Valid(raw) {
			t.Errorf("depth %d: scanJSON %v, json.Valid %v", depth, valid, json.Valid(raw))
		}
	}
}
