package sendgrid

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// The headers SendGrid signs Event Webhook POSTs with.
const (
	// SignatureHeader carries the base64 of the ASN.1 DER ECDSA signature.
	SignatureHeader = "X-Twilio-Email-Event-Webhook-Signature"
	// TimestampHeader carries the Unix time (seconds) the signature was
	// made at; it is part of the signed bytes.
	TimestampHeader = "X-Twilio-Email-Event-Webhook-Timestamp"
)

// ParsePublicKey reads the verification key SendGrid shows under Mail
// Settings > Signed Event Webhook Requests (and returns as public_key from
// GET /v3/user/webhooks/event/settings/signed): the base64 of a PKIX
// (SubjectPublicKeyInfo) DER public key. Whitespace and line breaks, as
// left by copying the key out of a page, are ignored, and a PEM "PUBLIC
// KEY" block is accepted too. The key must be ECDSA on P-256, the only
// kind SendGrid issues.
func ParsePublicKey(b64 string) (*ecdsa.PublicKey, error) {
	s := strings.TrimSpace(b64)
	if s == "" {
		return nil, errors.New("sendgrid: verification key is empty")
	}
	var der []byte
	if strings.HasPrefix(s, "-----BEGIN") {
		block, _ := pem.Decode([]byte(s))
		if block == nil || block.Type != "PUBLIC KEY" {
			return nil, errors.New("sendgrid: verification key is PEM but not a PUBLIC KEY block")
		}
		der = block.Bytes
	} else {
		var err error
		der, err = base64.StdEncoding.DecodeString(stripSpace(s))
		if err != nil {
			return nil, fmt.Errorf("sendgrid: verification key is not base64 (copy the whole key from SendGrid's Signed Event Webhook settings): %v", err)
		}
	}
	pub, err := x509.ParsePKIXPublicKey(der)
	if err != nil {
		return nil, fmt.Errorf("sendgrid: verification key is not a PKIX public key: %v", err)
	}
	key, ok := pub.(*ecdsa.PublicKey)
	if !ok {
		return nil, fmt.Errorf("sendgrid: verification key is a %T, not an ECDSA key", pub)
	}
	if key.Curve != elliptic.P256() {
		return nil, fmt.Errorf("sendgrid: verification key is on %s, not P-256", key.Curve.Params().Name)
	}
	return key, nil
}

func stripSpace(s string) string {
	return strings.Map(func(r rune) rune {
		switch r {
		case ' ', '\t', '\r', '\n':
			return -1
		}
		return r
	}, s)
}

// VerifySignature reports whether signature, the SignatureHeader of an
// Event Webhook POST, is SendGrid's ECDSA signature (SHA-256, ASN.1 DER,
// base64) of the TimestampHeader value followed by the raw request body.
// body must be the bytes as received, before any JSON decoding. A nil
// key, an empty signature or timestamp, a signature that is not base64 or
// not DER, and a signature made over anything else never verify.
//
// The timestamp is trustworthy once this returns true: check it with
// TimestampFresh to refuse old payloads replayed.
func VerifySignature(key *ecdsa.PublicKey, body []byte, signature, timestamp string) bool {
	// A key without its curve or point (a zero PublicKey) makes
	// ecdsa.VerifyASN1 panic; only reading the coordinates tells.
	if key == nil || key.Curve == nil || key.X == nil || key.Y == nil || signature == "" || timestamp == "" {
		return false
	}
	sig, err := base64.StdEncoding.DecodeString(strings.TrimSpace(signature))
	if err != nil || len(sig) == 0 {
		return false
	}
	h := sha256.New()
	h.Write([]byte(timestamp))
	h.Write(body)
	return ecdsa.VerifyASN1(key, h.Sum(nil), sig)
}

// maxTimestampDigits bounds the timestamp header: Unix seconds have 10
// digits until the year 2286.
const maxTimestampDigits = 12

// TimestampFresh reports whether timestamp, the TimestampHeader value
// (decimal Unix seconds), lies within maxAge of now, either side: a
// payload signed longer ago is refused as a possible replay, and one
// signed further in the future than maxAge allows for clock skew is
// refused too. A timestamp that is not decimal seconds, and a maxAge that
// is not positive, are never fresh.
//
// Use it only after VerifySignature: an unsigned timestamp proves
// nothing. SendGrid retries a POST it could not deliver for up to 24
// hours and does not document whether a retry is signed anew, so a short
// maxAge may refuse genuine retries after an outage of the endpoint;
// deduplicating events by SGEventID is what makes a replay harmless.
func TimestampFresh(timestamp string, now time.Time, maxAge time.Duration) bool {
	if maxAge <= 0 || timestamp == "" || len(timestamp) > maxTimestampDigits || !allDigits(timestamp) {
		return false
	}
	sec, err := strconv.ParseInt(timestamp, 10, 64)
	if err != nil {
		return false
	}
	age := now.Sub(time.Unix(sec, 0))
	return age <= maxAge && age >= -maxAge
}

func allDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return s != ""
}
