package event

import (
	"encoding/json"
	"reflect"
	"testing"
	"time"
)

// FuzzDecodeMessageDataAgrees checks MessageData's fast decoder against
// encoding/json: when it accepts, the result is what json.Unmarshal gives.
func FuzzDecodeMessageDataAgrees(f *testing.F) {
	full, _ := json.Marshal(MessageData{MessageID: "m", Channel: "email", ContactID: "c", RecipientAddress: "a@b.c",
		SourceType: "campaign", SourceID: "s", TemplateID: "t", TemplateVersion: 3, SourceName: "Spring <appeal>",
		ExternalID: "x", RunID: "r", Step: "st", Subject: "Hi", From: "f@b.c", FromName: "F", ReplyTo: "r@b.c",
		OccurredAt: Time{time.UnixMilli(1769508000123).UTC()}, Reason: "why", ErrorCode: "e", URL: "https://x.org/?a=1&b=2",
		BounceType: "hard", Text: "line\nline", ReplyToMessageID: "id@x", SendAfter: Time{time.UnixMilli(1769509000000).UTC()}})
	for _, s := range []string{string(full), `{}`, ` { "messageId" : "a" , "extra" : [1, {"k": null}] } `,
		`{"MessageId":"a"}`, `{"messageId":null,"templateVersion":null,"occurredAt":null}`, `{"templateVersion":1.5}`,
		`{"templateVersion":"1"}`, `{"templateVersion":01}`, `{"templateVersion":-0}`, `{"templateVersion":99999999999999999999}`,
		`{"occurredAt":"2026-01-27T10:00:00+02:00"}`, `{"occurredAt":"yesterday"}`, `{"messageId":"a","messageId":"b"}`,
		`{"messageId":"\u0041"}`, `{"externalId":"\u003cid@x\u003e","text":"a\"b\\c\/d\b\f\n\r\t"}`,
		`{"text":"\ud83d\ude00 \ud83d \ude00 \ud83d\u0041 \uDFFF"}`, "{\"text\":\"\xff\xfe caf\xc3\xa9\"}", `{"text":"\u12"}`, `{"messageId":1}`, `{"a":1,}`, `[]`, `null`, ``} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var fast MessageData
		if !decodeMessageData(b, &fast) {
			return
		}
		var slow MessageData
		if err := json.Unmarshal(b, &slow); err != nil {
			t.Fatalf("fast path accepted %q, encoding/json refuses: %v", b, err)
		}
		if !fast.OccurredAt.Equal(slow.OccurredAt.Time) || !fast.SendAfter.Equal(slow.SendAfter.Time) {
			t.Fatalf("timestamps differ for %q: %+v vs %+v", b, fast, slow)
		}
		fast.OccurredAt, slow.OccurredAt, fast.SendAfter, slow.SendAfter = Time{}, Time{}, Time{}, Time{}
		if !reflect.DeepEqual(fast, slow) {
			t.Fatalf("decodes differ for %q:\n fast %+v\n json %+v", b, fast, slow)
		}
	})
}

func TestDecodeDataTakesMessageDataFastOrSlow(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name, data string
		want       MessageData
		fails      bool
	}{
		{"plain", `{"messageId":"m","channel":"sms","contactId":"c","sourceType":"campaign","sourceId":"s","templateVersion":2}`,
			MessageData{MessageID: "m", Channel: "sms", ContactID: "c", SourceType: "campaign", SourceID: "s", TemplateVersion: 2}, false},
		{"escaped, left to encoding/json", `{"messageId":"\u006d","channel":"sms","contactId":"c","sourceType":"campaign","sourceId":"s"}`,
			MessageData{MessageID: "m", Channel: "sms", ContactID: "c", SourceType: "campaign", SourceID: "s"}, false},
		{"other case, left to encoding/json", `{"MESSAGEID":"m","channel":"sms","contactId":"c","sourceType":"campaign","sourceId":"s"}`,
			MessageData{MessageID: "m", Channel: "sms", ContactID: "c", SourceType: "campaign", SourceID: "s"}, false},
		{"wrong type", `{"messageId":"m","channel":"sms","contactId":"c","sourceType":"campaign","sourceId":"s","templateVersion":"2"}`,
			MessageData{}, true},
		{"missing field", `{"messageId":"m","channel":"sms","sourceType":"campaign","sourceId":"s"}`, MessageData{}, true},
	}
	for _, c := range cases {
		got, err := DecodeData[MessageData](Envelope{Type: PipelineMessageSent, Data: json.RawMessage(c.data)})
		if (err != nil) != c.fails || !c.fails && !reflect.DeepEqual(got, c.want) {
			t.Errorf("%s: got %+v, %v", c.name, got, err)
		}
	}
}

func BenchmarkDecodeMessageData(b *testing.B) {
	env, _ := New(b.Context(), PipelineMessageSent, SourcePipeline, "tenant", MessageData{MessageID: NewID(), Channel: "email",
		ContactID: NewID(), RecipientAddress: "jane.doe@example.edu", SourceType: MessageSourceCampaign, SourceID: NewID(),
		TemplateID: NewID(), TemplateVersion: 3, SourceName: "Spring appeal", ExternalID: "<" + NewID() + "@alumoutreach>"})
	b.Run("fast", func(b *testing.B) {
		for b.Loop() {
			if _, err := DecodeData[MessageData](env); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("encoding/json", func(b *testing.B) {
		for b.Loop() {
			var d MessageData
			if err := json.Unmarshal(env.Data, &d); err != nil {
				b.Fatal(err)
			}
		}
	})
}
