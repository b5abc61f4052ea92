package sendgrid

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// testKey is a key pair made for the tests, standing in for SendGrid's.
type testKey struct {
	priv *ecdsa.PrivateKey
	// b64 is the public key as SendGrid's settings show it.
	b64 string
}

func newTestKey(t testing.TB, curve elliptic.Curve) testKey {
	t.Helper()
	priv, err := ecdsa.GenerateKey(curve, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKIXPublicKey(&priv.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	return testKey{priv: priv, b64: base64.StdEncoding.EncodeToString(der)}
}

func (k testKey) public(t testing.TB) *ecdsa.PublicKey {
	t.Helper()
	pub, err := ParsePublicKey(k.b64)
	if err != nil {
		t.Fatal(err)
	}
	return pub
}

// sign signs as SendGrid documents: ECDSA over SHA-256 of the timestamp
// header value followed by the raw body, ASN.1 DER, base64.
func (k testKey) sign(t testing.TB, timestamp string, body []byte) string {
	t.Helper()
	digest := sha256.Sum256(append([]byte(timestamp), body...))
	sig, err := ecdsa.SignASN1(rand.Reader, k.priv, digest[:])
	if err != nil {
		t.Fatal(err)
	}
	return base64.StdEncoding.EncodeToString(sig)
}

// rawSignature signs the same bytes but encodes r||s as two 32-byte
// big-endian numbers, as JOSE does, instead of DER.
func (k testKey) rawSignature(t testing.TB, timestamp string, body []byte) string {
	t.Helper()
	digest := sha256.Sum256(append([]byte(timestamp), body...))
	r, s, err := ecdsa.Sign(rand.Reader, k.priv, digest[:])
	if err != nil {
		t.Fatal(err)
	}
	out := make([]byte, 64)
	r.FillBytes(out[:32])
	s.FillBytes(out[32:])
	return base64.StdEncoding.EncodeToString(out)
}

func readFixture(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestParsePublicKey(t *testing.T) {
	t.Parallel()
	k := newTestKey(t, elliptic.P256())
	der, _ := base64.StdEncoding.DecodeString(k.b64)
	p384 := newTestKey(t, elliptic.P384())
	edPub, _, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	edDER, err := x509.MarshalPKIXPublicKey(edPub)
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name    string
		in      string
		wantErr string
	}{
		{"as SendGrid shows it", k.b64, ""},
		{"with surrounding space", "  " + k.b64 + "\n", ""},
		{"wrapped over lines", k.b64[:40] + "\n" + k.b64[40:80] + "\r\n" + k.b64[80:], ""},
		{"PEM", string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})), ""},
		{"SendGrid's published test key", sendGridTestPublicKey, ""},
		{"empty", "  ", "empty"},
		{"not base64", "not a key!", "not base64"},
		{"truncated", k.b64[:len(k.b64)-8], "not"},
		{"base64 of garbage", base64.StdEncoding.EncodeToString([]byte("hello world")), "not a PKIX public key"},
		{"PEM of another type", string(pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: der})), "not a PUBLIC KEY block"},
		{"Ed25519 key", base64.StdEncoding.EncodeToString(edDER), "not an ECDSA key"},
		{"P-384 key", p384.b64, "not P-256"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			key, err := ParsePublicKey(c.in)
			if c.wantErr == "" {
				if err != nil || key == nil {
					t.Fatalf("ParsePublicKey = %v, %v; want a key", key, err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), c.wantErr) || key != nil {
				t.Fatalf("ParsePublicKey = %v, %v; want an error saying %q", key, err, c.wantErr)
			}
			if !strings.HasPrefix(err.Error(), "sendgrid: ") {
				t.Errorf("error %q does not say where it comes from", err)
			}
		})
	}
}

func TestVerifySignature(t *testing.T) {
	t.Parallel()
	k := newTestKey(t, elliptic.P256())
	other := newTestKey(t, elliptic.P256())
	pub := k.public(t)
	body := readFixture(t, "events_reference.json")
	const ts = "1764237003"
	good := k.sign(t, ts, body)
	der, _ := base64.StdEncoding.DecodeString(good)
	tampered := []byte(strings.Replace(string(body), `"event": "bounce"`, `"event": "delivered"`, 1))
	if string(tampered) == string(body) {
		t.Fatal("fixture does not hold the string the test tampers with")
	}
	cases := []struct {
		name      string
		key       *ecdsa.PublicKey
		body      []byte
		signature string
		timestamp string
		want      bool
	}{
		{"valid", pub, body, good, ts, true},
		{"valid, signature header with spaces around", pub, body, " " + good + " ", ts, true},
		{"empty body signed", pub, nil, k.sign(t, ts, nil), ts, true},
		{"tampered body", pub, tampered, good, ts, false},
		{"re-encoded body", pub, []byte(strings.ReplaceAll(string(body), "\n", "")), good, ts, false},
		{"tampered timestamp", pub, body, good, "1764237004", false},
		{"timestamp moved into the body", pub, append([]byte(ts), body...), good, "", false},
		{"body signed without the timestamp", pub, body, k.sign(t, "", body), ts, false},
		{"wrong key", other.public(t), body, good, ts, false},
		{"signed by another key", pub, body, other.sign(t, ts, body), ts, false},
		{"missing signature", pub, body, "", ts, false},
		{"missing timestamp", pub, body, good, "", false},
		{"signature not base64", pub, body, "%%%not-base64%%%", ts, false},
		{"signature URL-safe base64", pub, body, base64.URLEncoding.EncodeToString(der), ts, strings.IndexAny(good, "+/") < 0},
		{"non-DER signature (r||s)", pub, body, k.rawSignature(t, ts, body), ts, false},
		{"DER with a trailing byte", pub, body, base64.StdEncoding.EncodeToString(append(append([]byte(nil), der...), 0)), ts, false},
		{"truncated DER", pub, body, base64.StdEncoding.EncodeToString(der[:len(der)-1]), ts, false},
		{"DER of zero r and s", pub, body, base64.StdEncoding.EncodeToString([]byte{0x30, 0x06, 0x02, 0x01, 0x00, 0x02, 0x01, 0x00}), ts, false},
		{"nil key", nil, body, good, ts, false},
		{"zero key", &ecdsa.PublicKey{}, body, good, ts, false},
		{"key without a point", &ecdsa.PublicKey{Curve: elliptic.P256()}, body, good, ts, false},
		{"key not on the curve", &ecdsa.PublicKey{Curve: elliptic.P256(), X: big.NewInt(1), Y: big.NewInt(1)}, body, good, ts, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			if got := VerifySignature(c.key, c.body, c.signature, c.timestamp); got != c.want {
				t.Errorf("VerifySignature = %v, want %v", got, c.want)
			}
		})
	}
}

// The test vector of SendGrid's own Go helper (sendgrid-go,
// helpers/eventwebhook): a key, a timestamp, a payload and SendGrid's
// signature of them. It shows the signed bytes are what SendGrid signs,
// not merely what this package's tests sign.
const (
	sendGridTestPublicKey = "MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEEDr2LjtURuePQzplybdC+u4CwrqDqBaWjcMMsTbhdbcwHBcepxo7yAQGhHPTnlvFYPAZFceEu/1FwCM/QmGUhA=="
	sendGridTestSignature = "MEUCIQCtIHJeH93Y+qpYeWrySphQgpNGNr/U+UyUlBkU6n7RAwIgJTz2C+8a8xonZGi6BpSzoQsbVRamr2nlxFDWYNH2j/0="
	sendGridTestTimestamp = "1588788367"
	sendGridTestPayload   = `{"category":"example_payload","event":"test_event","message_id":"message_id"}`
)

func TestVerifySignatureSendGridVector(t *testing.T) {
	t.Parallel()
	key, err := ParsePublicKey(sendGridTestPublicKey)
	if err != nil {
		t.Fatal(err)
	}
	if !VerifySignature(key, []byte(sendGridTestPayload), sendGridTestSignature, sendGridTestTimestamp) {
		t.Fatal("SendGrid's own test vector does not verify")
	}
	if VerifySignature(key, []byte(sendGridTestPayload+"\n"), sendGridTestSignature, sendGridTestTimestamp) {
		t.Error("a payload with a newline added verifies")
	}
	if VerifySignature(key, []byte(sendGridTestPayload), sendGridTestSignature, "1588788368") {
		t.Error("another timestamp verifies")
	}
}

func TestTimestampFresh(t *testing.T) {
	t.Parallel()
	now := time.Unix(1764237003, 0)
	const maxAge = 5 * time.Minute
	cases := []struct {
		name      string
		timestamp string
		maxAge    time.Duration
		want      bool
	}{
		{"now", "1764237003", maxAge, true},
		{"a minute ago", "1764236943", maxAge, true},
		{"exactly max age", "1764236703", maxAge, true},
		{"one second too old", "1764236702", maxAge, false},
		{"a day old, one-day window", "1764150603", 24 * time.Hour, true},
		{"slightly in the future", "1764237063", maxAge, true},
		{"far in the future", "1764247003", maxAge, false},
		{"empty", "", maxAge, false},
		{"not a number", "yesterday", maxAge, false},
		{"signed", "+1764237003", maxAge, false},
		{"fraction", "1764237003.5", maxAge, false},
		{"milliseconds", "1764237003000", maxAge, false},
		{"too many digits", "9999999999999999999999", maxAge, false},
		{"zero max age", "1764237003", 0, false},
		{"negative max age", "1764237003", -time.Minute, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			if got := TimestampFresh(c.timestamp, now, c.maxAge); got != c.want {
				t.Errorf("TimestampFresh(%q) = %v, want %v", c.timestamp, got, c.want)
			}
		})
	}
}
