package twilio

import (
	"errors"
	"net/url"
	"os"
	"path/filepath"
	"testing"
)

// addFormSeeds seeds a fuzz test with the testdata webhook bodies and a
// few broken ones.
func addFormSeeds(f *testing.F) {
	f.Helper()
	files, _ := filepath.Glob(filepath.Join("testdata", "*.form"))
	for _, name := range files {
		raw, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(string(raw))
	}
	for _, s := range []string{
		"", "&&&", "%zz", "MessageSid=&MessageStatus=", "NumMedia=999999999999",
		"MessageSid=SM1f0e8ae6ade43cb3c0ce4525424e404f&From=a&To=b&NumMedia=3&MediaUrl0=http://x",
		"MessageSid=SMé&MessageStatus=sent", "SmsSid=SM1f0e8ae6ade43cb3c0ce4525424e404f&SmsStatus=queued&ErrorCode=",
	} {
		f.Add(s)
	}
}

func FuzzParseStatusCallback(f *testing.F) {
	addFormSeeds(f)
	f.Fuzz(func(t *testing.T, body string) {
		form, _ := url.ParseQuery(body)
		cb, err := ParseStatusCallback(form)
		if err != nil {
			if !errors.Is(err, ErrInvalidWebhook) {
				t.Fatalf("error %v does not wrap ErrInvalidWebhook", err)
			}
			return
		}
		if cb.MessageSid == "" || cb.MessageStatus == "" {
			t.Fatalf("accepted %q without a sid or status: %+v", body, cb)
		}
	})
}

func FuzzParseInbound(f *testing.F) {
	addFormSeeds(f)
	f.Fuzz(func(t *testing.T, body string) {
		form, _ := url.ParseQuery(body)
		in, err := ParseInbound(form)
		if err != nil {
			if !errors.Is(err, ErrInvalidWebhook) {
				t.Fatalf("error %v does not wrap ErrInvalidWebhook", err)
			}
			return
		}
		if in.MessageSid == "" || in.From == "" || in.To == "" || in.NumMedia != len(in.Media) || in.NumMedia > MaxMedia {
			t.Fatalf("accepted %q as %+v", body, in)
		}
	})
}

func FuzzVerifySignature(f *testing.F) {
	addFormSeeds(f)
	f.Fuzz(func(t *testing.T, body string) {
		form, _ := url.ParseQuery(body)
		// Must not panic; a random signature never verifies.
		if VerifySignature(testAuthToken, "https://alum.example.org/x?"+body, form, body) {
			t.Fatalf("signature %q verified", body)
		}
	})
}
