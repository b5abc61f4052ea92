package event_test

import (
	"errors"
	"testing"

	"github.com/alumoutreach/alumoutreach/internal/event"
)

// FuzzDecode feeds Decode arbitrary bytes: it must never panic, must refuse
// with one of the permanent errors, and whatever it accepts must be a known
// subject at a readable version.
func FuzzDecode(f *testing.F) {
	for _, ex := range specExamples {
		f.Add([]byte(ex))
	}
	if b, err := event.Encode(validEnvelope(), 0); err == nil {
		f.Add(b)
	}
	for _, s := range []string{
		``, `null`, `{}`, `[]`, `"x"`, `{"data":null}`,
		`{"id":"a","type":"contact.updated","version":"1.0","source":"s","timestamp":"2026-01-27T10:00:00Z","tenantId":"t","correlationId":"c","data":{"contactId":"c1","version":2,"changes":{"email":{"old":null,"new":"x"}}}}`,
		`{"id":"a","type":"webhook.sms.inbound","version":"0.3","source":"s","timestamp":"2026-01-27T10:00:00+14:00","tenantId":"t","correlationId":"c","data":{"provider":"twilio","channel":"sms","externalId":"e","from":"f","to":"t","receivedAt":null}}`,
		`{"id":"a","type":"contact.tagged","version":"9.9","source":"s","timestamp":"9999-12-31T23:59:59-01:00","tenantId":"t","correlationId":"c","data":[]}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		env, err := event.Decode(b)
		if err != nil {
			if !errors.Is(err, event.ErrInvalid) && !errors.Is(err, event.ErrUnsupportedVersion) {
				t.Fatalf("Decode error %v is neither ErrInvalid nor ErrUnsupportedVersion", err)
			}
			return
		}
		if !event.Known(env.Type) {
			t.Fatalf("accepted unknown subject %q", env.Type)
		}
		if err := event.CheckVersion(env.Version); err != nil {
			t.Fatalf("accepted version %q: %v", env.Version, err)
		}
		// Re-encoding must not panic either; it may refuse (e.g. a timestamp
		// whose UTC year leaves RFC 3339's range).
		_, _ = event.Encode(env, 1<<30)
	})
}
