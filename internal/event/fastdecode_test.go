package event

import (
	"encoding/json"
	"reflect"
	"testing"
)

func encodedSamples(t testing.TB) [][]byte {
	t.Helper()
	var out [][]byte
	for _, s := range []string{
		`{"id":"a","type":"contact.created","version":"1.0","source":"s","timestamp":"2026-01-27T10:00:00.000Z","tenantId":"t","correlationId":"c","data":{"contactId":"c1","attributes":{"note":"a \"quoted\" \u00e9 value","n":[1,2,{"x":null}]}}}`,
		` { "data" : [ ] , "id" : "a" , "causationId" : null , "extra" : {"k":[true,false]} } `,
		`{"id":"a","ID":"b"}`,
		`{"id":"caf\u00e9"}`,
		`{"timestamp":"2026-01-27T10:00:00+14:00","data":"str\\ing"}`,
		`{"timestamp":"not a time"}`,
		`{"data":{"a":1}`,
		`{"data":tru}`,
		`{"data":12.5e3,"version":"1.0"}`,
		`{}`, `[]`, `null`, ``, `{"id":1}`,
	} {
		out = append(out, []byte(s))
	}
	return out
}

// FuzzFastDecodeAgrees checks the fast path against encoding/json: when it
// accepts, it must produce exactly what encoding/json produces.
func FuzzFastDecodeAgrees(f *testing.F) {
	for _, b := range encodedSamples(f) {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var fast Envelope
		if !fastDecode(b, &fast) {
			return
		}
		var slow Envelope
		if err := json.Unmarshal(b, &slow); err != nil {
			t.Fatalf("fast path accepted %q, encoding/json refuses: %v", b, err)
		}
		var fd, sd any
		if len(fast.Data) > 0 || len(slow.Data) > 0 {
			if json.Unmarshal(fast.Data, &fd) != nil || json.Unmarshal(slow.Data, &sd) != nil || !reflect.DeepEqual(fd, sd) {
				t.Fatalf("data differs for %q: fast %s, encoding/json %s", b, fast.Data, slow.Data)
			}
		}
		fast.Data, slow.Data = nil, nil
		if !fast.Timestamp.Equal(slow.Timestamp.Time) {
			t.Fatalf("timestamp differs for %q: %v vs %v", b, fast.Timestamp, slow.Timestamp)
		}
		fast.Timestamp, slow.Timestamp = Time{}, Time{}
		if !reflect.DeepEqual(fast, slow) {
			t.Fatalf("envelopes differ for %q:\n fast %+v\n json %+v", b, fast, slow)
		}
	})
}

func TestFastDecodeTakesWhatEncodeWrites(t *testing.T) {
	t.Parallel()
	env, err := New(t.Context(), ContactCreated, SourceContacts, "tenant", ContactCreatedData{ContactID: "c1", Email: "a@b.c", Version: 1})
	if err != nil {
		t.Fatal(err)
	}
	env.CausationID = "cause"
	b, err := Encode(env, 0)
	if err != nil {
		t.Fatal(err)
	}
	var got Envelope
	if !fastDecode(b, &got) {
		t.Fatalf("fast path refused what Encode wrote: %s", b)
	}
	if got.ID != env.ID || got.CausationID != "cause" || !got.Timestamp.Equal(env.Timestamp.Time) || string(got.Data) != string(env.Data) {
		t.Fatalf("got %+v, want %+v", got, env)
	}
}

func BenchmarkDecode(b *testing.B) {
	env, _ := New(b.Context(), ContactCreated, SourceContacts, "tenant", ContactCreatedData{ContactID: NewID(), Email: "jane.doe@example.edu", Phone: "+15550100200", Source: "import", Version: 1})
	data, _ := Encode(env, 0)
	b.Run("fast", func(b *testing.B) {
		for b.Loop() {
			if _, err := Decode(data); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("encoding/json", func(b *testing.B) {
		for b.Loop() {
			var e Envelope
			if err := json.Unmarshal(data, &e); err != nil {
				b.Fatal(err)
			}
		}
	})
}
