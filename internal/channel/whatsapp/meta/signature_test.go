package meta

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const testAppSecret = "6c8d1f4a9b2e7c3d5f0a1b2c3d4e5f60"

// metaSignature signs a body as Meta documents for X-Hub-Signature-256.
func metaSignature(t *testing.T, secret string, body []byte) string {
	t.Helper()
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write(body)
	return "sha256=" + hex.EncodeToString(mac.Sum(nil))
}

func TestVerifySignature(t *testing.T) {
	t.Parallel()
	body, err := os.ReadFile(filepath.Join("testdata", "statuses.json"))
	if err != nil {
		t.Fatal(err)
	}
	good := metaSignature(t, testAppSecret, body)
	tampered := []byte(strings.Replace(string(body), `"status": "failed"`, `"status": "read"`, 1))
	cases := []struct {
		name   string
		secret string
		body   []byte
		header string
		want   bool
	}{
		{"valid", testAppSecret, body, good, true},
		{"valid, upper-case hex", testAppSecret, body, "sha256=" + strings.ToUpper(strings.TrimPrefix(good, "sha256=")), true},
		{"empty body signed", testAppSecret, nil, metaSignature(t, testAppSecret, nil), true},
		{"tampered body", testAppSecret, tampered, good, false},
		{"re-encoded body", testAppSecret, []byte(strings.ReplaceAll(string(body), "\n", "")), good, false},
		{"wrong secret", "0000000000000000000000000000000f", body, good, false},
		{"empty secret", "", body, metaSignature(t, "", body), false},
		{"missing header", testAppSecret, body, "", false},
		{"prefix only", testAppSecret, body, "sha256=", false},
		{"no prefix", testAppSecret, body, strings.TrimPrefix(good, "sha256="), false},
		{"sha1 scheme", testAppSecret, body, "sha1=" + strings.TrimPrefix(good, "sha256="), false},
		{"not hex", testAppSecret, body, "sha256=" + strings.Repeat("zz", 32), false},
		{"truncated", testAppSecret, body, good[:len(good)-2], false},
		{"too long", testAppSecret, body, good + "00", false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			if got := VerifySignature(c.secret, c.body, c.header); got != c.want {
				t.Errorf("VerifySignature = %v, want %v", got, c.want)
			}
		})
	}
}

func TestVerifyChallenge(t *testing.T) {
	t.Parallel()
	const token = "alum-verify-7f3a"
	q := func(mode, tok, challenge string) url.Values {
		v := url.Values{}
		if mode != "" {
			v.Set("hub.mode", mode)
		}
		if tok != "" {
			v.Set("hub.verify_token", tok)
		}
		if challenge != "" {
			v.Set("hub.challenge", challenge)
		}
		return v
	}
	cases := []struct {
		name   string
		query  url.Values
		token  string
		want   string
		wantOK bool
	}{
		{"valid", q("subscribe", token, "1158201444"), token, "1158201444", true},
		{"parsed from a real query string", mustQuery(t, "hub.mode=subscribe&hub.challenge=1158201444&hub.verify_token="+token), token, "1158201444", true},
		{"wrong token", q("subscribe", "guess", "1158201444"), token, "", false},
		{"token prefix", q("subscribe", token[:5], "1158201444"), token, "", false},
		{"wrong mode", q("unsubscribe", token, "1158201444"), token, "", false},
		{"no mode", q("", token, "1158201444"), token, "", false},
		{"no challenge", q("subscribe", token, ""), token, "", false},
		{"markup in challenge", q("subscribe", token, "<script>alert(1)</script>"), token, "", false},
		{"huge challenge", q("subscribe", token, strings.Repeat("9", 257)), token, "", false},
		{"no token configured", q("subscribe", "", "1158201444"), "", "", false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			got, ok := VerifyChallenge(c.query, c.token)
			if got != c.want || ok != c.wantOK {
				t.Errorf("VerifyChallenge = %q, %v; want %q, %v", got, ok, c.want, c.wantOK)
			}
		})
	}
}

func mustQuery(t *testing.T, s string) url.Values {
	t.Helper()
	v, err := url.ParseQuery(s)
	if err != nil {
		t.Fatal(err)
	}
	return v
}
