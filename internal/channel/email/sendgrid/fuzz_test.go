package sendgrid

import (
	"crypto/elliptic"
	"errors"
	"strings"
	"testing"
	"time"
)

// checkClearError fails unless err is a single-line error from this
// package of bounded length: it is logged and may be answered to the
// caller, so it must not echo a whole body.
func checkClearError(t *testing.T, err error) {
	t.Helper()
	msg := err.Error()
	if !errors.Is(err, ErrInvalidWebhook) {
		t.Fatalf("error %q does not wrap ErrInvalidWebhook", msg)
	}
	if !strings.HasPrefix(msg, "sendgrid: ") || strings.ContainsAny(msg, "\n\r") || len(msg) > 600 {
		t.Fatalf("error is not one short line: %q", msg)
	}
}

func FuzzParseEvents(f *testing.F) {
	for _, name := range []string{"events_reference.json", "events_pipeline.json", "events_single_send.json"} {
		f.Add(readFixture(f, name))
	}
	for _, s := range []string{
		"", "null", "{}", "[]", "[null]", "[1]", `[{}]`, `[[]]`, `["x"]`,
		`[{"event":"open","email":"a@b","timestamp":1,"sg_event_id":"e"}]`,
		`[{"event":"account_status_change","timestamp":"1709142428","sg_event_id":"e","type":"reactivate"}]`,
		`[{"event":"x","email":"a@b","timestamp":1e99,"sg_event_id":"e"}]`,
		`[{"event":"bounce","email":"a@b","timestamp":1591726752372,"sg_event_id":"e","attempt":"9999999999","category":[]}]`,
		`[{"event":"open","email":"a@b","timestamp":1,"sg_event_id":"e","sg_machine_open":"true","k\u0000":"v\u0000"}]`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		events, err := ParseEvents(body)
		if err != nil {
			checkClearError(t, err)
			if events != nil {
				t.Fatalf("events %v came with error %v", events, err)
			}
			return
		}
		for i, e := range events {
			if e.Type == "" || e.SGEventID == "" || e.Timestamp.IsZero() || (e.Email == "" && e.Type != EventAccountStatusChange) {
				t.Fatalf("event %d lacks a required field: %+v", i, e)
			}
			if string(e.Type) != strings.ToLower(string(e.Type)) || e.Attempt < 0 || e.ASMGroupID < 0 {
				t.Fatalf("event %d: %+v", i, e)
			}
			if e.CustomArgs != nil && len(e.CustomArgs) == 0 {
				t.Fatalf("event %d has an empty, non-nil CustomArgs", i)
			}
			for k := range e.CustomArgs {
				if isSendGridField(k) {
					t.Fatalf("event %d: SendGrid's field %q taken as a custom argument", i, k)
				}
			}
		}
	})
}

func FuzzVerifySignature(f *testing.F) {
	k := newTestKey(f, elliptic.P256())
	pub := k.public(f)
	// Seeds signed by SendGrid's key, not by k: no mutation of them
	// can verify under k.
	f.Add([]byte(sendGridTestPayload), sendGridTestSignature, sendGridTestTimestamp)
	f.Add([]byte(nil), "", "")
	f.Add(readFixture(f, "events_reference.json"), "MEUCIQ==", "1764237003")
	f.Add([]byte("[]"), "MAYCAQECAQE=", "0")
	f.Add([]byte("[]"), "MAYCAQACAQA=", "1")
	f.Fuzz(func(t *testing.T, body []byte, signature, timestamp string) {
		if VerifySignature(pub, body, signature, timestamp) {
			t.Fatalf("a random signature verified: body %q, signature %q, timestamp %q", body, signature, timestamp)
		}
		// Whatever the key text or timestamp, these must not panic.
		_, _ = ParsePublicKey(signature)
		_ = TimestampFresh(timestamp, time.Unix(1764237003, 0), time.Hour)
	})
}

func FuzzParseInbound(f *testing.F) {
	f.Add(formBody(f, docsPayload()))
	f.Add(formBody(f, replyPayload()))
	f.Add(formBody(f, append(withField(replyPayload(), "headers", "Message-ID: <x@y>\nIn-Reply-To: <a@b>\nReferences: <a@b> <c@d>\n"),
		file("attachment1", "a.txt", "text/plain", []byte("hello")), field("attachment-info", `{"attachment1":{"filename":"a.txt"}}`))))
	f.Add(formBody(f, []part{field("from", "a@b"), field("to", "c@d")}))
	f.Add(formBody(f, []part{field("from", "x"), field("envelope", `{"to":["c@d"],"from":"a@b"}`), field("charsets", `{"from":"latin1"}`)}))
	f.Add([]byte("--" + testBoundary + "\r\nContent-Disposition: form-data; name=\"from\"\r\n\r\na@b\r\n--" + testBoundary + "--"))
	f.Add([]byte(""))
	f.Fuzz(func(t *testing.T, body []byte) {
		in, err := ParseInbound(inboundRequest(body), 1<<16)
		if err != nil {
			checkClearError(t, err)
			return
		}
		if in.From.Address == "" || len(in.To) == 0 || in.Headers == nil {
			t.Fatalf("accepted without a sender, a recipient or headers: %+v", in)
		}
		for _, a := range in.To {
			if a.Address == "" {
				t.Fatalf("a recipient without an address: %+v", in.To)
			}
		}
		last := 0
		for _, a := range in.Attachments {
			n, ok := attachmentNumber(a.Field)
			if !ok || n <= last || a.Size < 0 {
				t.Fatalf("attachments out of order or malformed: %+v", in.Attachments)
			}
			last = n
		}
		if in.SpamScore != 0 && !in.SpamChecked {
			t.Fatalf("a spam score without a spam check: %+v", in)
		}
		if len(in.Text)+len(in.HTML)+len(in.Subject) > 4*len(body) {
			t.Fatalf("decoded text is far larger than the body")
		}
	})
}
