package twilio

import (
	"crypto/hmac"
	"crypto/sha1"
	"encoding/base64"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sort"
	"strings"
	"testing"
)

// twilioSignature signs a request as Twilio's security documentation
// describes: the full URL, then each POST parameter's name and value in
// name order, HMAC-SHA1 keyed with the auth token, base64.
func twilioSignature(t *testing.T, authToken, fullURL string, params url.Values) string {
	t.Helper()
	names := make([]string, 0, len(params))
	for n := range params {
		names = append(names, n)
	}
	sort.Strings(names)
	data := fullURL
	for _, n := range names {
		values := append([]string(nil), params[n]...)
		sort.Strings(values)
		for _, v := range values {
			data += n + v
		}
	}
	mac := hmac.New(sha1.New, []byte(authToken))
	mac.Write([]byte(data))
	return base64.StdEncoding.EncodeToString(mac.Sum(nil))
}

func TestVerifySignatureDocumentedExample(t *testing.T) {
	t.Parallel()
	// The example of Twilio's webhook security documentation and of its
	// helper libraries' tests.
	params := url.Values{
		"CallSid": {"CA1234567890ABCDE"}, "Caller": {"+14158675309"}, "Digits": {"1234"},
		"From": {"+14158675309"}, "To": {"+18005551212"},
	}
	const u = "https://mycompany.com/myapp.php?foo=1&bar=2"
	const documented = "RSOYDt4T1cUTdK1PDd93/VVr8B8="
	if got := twilioSignature(t, "12345", u, params); got != documented {
		t.Fatalf("the test's signer gives %s for Twilio's example, want %s", got, documented)
	}
	if !VerifySignature("12345", u, params, documented) {
		t.Error("Twilio's documented example does not verify")
	}
}

func TestVerifySignature(t *testing.T) {
	t.Parallel()
	const u = "https://alum.example.org/webhooks/twilio/inbound?tenant=t1"
	form := url.Values{
		"MessageSid": {"SM3b4f1c2a9d8e7f6a5b4c3d2e1f0a9b8c"}, "From": {"+15558675310"}, "To": {"+15017122661"},
		"Body": {"Yes & thanks — 100%"}, "NumMedia": {"0"}, "ToCity": {"SAN FRANCISCO"},
	}
	good := twilioSignature(t, testAuthToken, u, form)
	tamper := func(change func(url.Values)) url.Values {
		f := url.Values{}
		for k, v := range form {
			f[k] = append([]string(nil), v...)
		}
		change(f)
		return f
	}
	multi := url.Values{"Tag": {"b", "a"}, "To": {"+15017122661"}}
	cases := []struct {
		name      string
		token     string
		url       string
		form      url.Values
		signature string
		want      bool
	}{
		{"valid", testAuthToken, u, form, good, true},
		{"valid with default port in URL", testAuthToken, "https://alum.example.org:443/webhooks/twilio/inbound?tenant=t1", form, good, true},
		{"signed with port, verified without", testAuthToken, u, form, twilioSignature(t, testAuthToken, "https://alum.example.org:443/webhooks/twilio/inbound?tenant=t1", form), true},
		{"repeated parameter", testAuthToken, u, multi, twilioSignature(t, testAuthToken, u, multi), true},
		{"tampered body", testAuthToken, u, tamper(func(f url.Values) { f.Set("Body", "No") }), good, false},
		{"added parameter", testAuthToken, u, tamper(func(f url.Values) { f.Set("OptOutType", "STOP") }), good, false},
		{"removed parameter", testAuthToken, u, tamper(func(f url.Values) { f.Del("ToCity") }), good, false},
		{"other URL", testAuthToken, "https://alum.example.org/webhooks/twilio/inbound?tenant=t2", form, good, false},
		{"http instead of https", testAuthToken, strings.Replace(u, "https:", "http:", 1), form, good, false},
		{"wrong token", "0000000000000000000000000000000f", u, form, good, false},
		{"empty token", "", u, form, twilioSignature(t, "", u, form), false},
		{"missing header", testAuthToken, u, form, "", false},
		{"not base64", testAuthToken, u, form, "not a signature!", false},
		{"base64 of the wrong length", testAuthToken, u, form, base64.StdEncoding.EncodeToString([]byte("short")), false},
		{"truncated", testAuthToken, u, form, good[:len(good)-4], false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			if got := VerifySignature(c.token, c.url, c.form, c.signature); got != c.want {
				t.Errorf("VerifySignature = %v, want %v", got, c.want)
			}
		})
	}
}

// TestWebhookRoundTrip posts a signed inbound message over HTTP, as
// Twilio does, to a handler that verifies and parses it the way the
// webhooks module will.
func TestWebhookRoundTrip(t *testing.T) {
	t.Parallel()
	type result struct {
		ok  bool
		msg InboundMessage
		err error
	}
	got := make(chan result, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := r.ParseForm(); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		fullURL := "http://" + r.Host + r.URL.RequestURI()
		ok := VerifySignature(testAuthToken, fullURL, r.PostForm, r.Header.Get(SignatureHeader))
		msg, err := ParseInbound(r.PostForm)
		got <- result{ok, msg, err}
		w.Header().Set("Content-Type", "text/xml")
		_, _ = w.Write([]byte("<Response></Response>"))
	}))
	defer srv.Close()

	form := readForm(t, "inbound_sms.form")
	target := srv.URL + "/webhooks/twilio/inbound?tenant=t1"
	req, _ := http.NewRequest(http.MethodPost, target, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set(SignatureHeader, twilioSignature(t, testAuthToken, target, form))
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	r := <-got
	if !r.ok || r.err != nil || r.msg.Body != "Count me in for the reunion!" {
		t.Errorf("verified %v, parsed %+v, %v", r.ok, r.msg, r.err)
	}
}
