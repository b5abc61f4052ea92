package meta

import (
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"net/url"
	"strings"
)

// SignatureHeader is the header Meta signs its webhook POSTs with.
const SignatureHeader = "X-Hub-Signature-256"

// VerifySignature reports whether header, the X-Hub-Signature-256 of a
// webhook POST, is "sha256=" and the hex HMAC-SHA256 of the raw request
// body keyed with the app secret. body must be the bytes as received,
// before any JSON decoding. The comparison is constant time; an empty
// secret or header never verifies.
func VerifySignature(appSecret string, body []byte, header string) bool {
	const prefix = "sha256="
	if appSecret == "" || !strings.HasPrefix(header, prefix) {
		return false
	}
	got, err := hex.DecodeString(header[len(prefix):])
	if err != nil || len(got) != sha256.Size {
		return false
	}
	mac := hmac.New(sha256.New, []byte(appSecret))
	mac.Write(body)
	return hmac.Equal(got, mac.Sum(nil))
}

// maxChallenge bounds the hub.challenge echoed back.
const maxChallenge = 256

// VerifyChallenge answers the GET Meta sends when a webhook URL is set up:
// hub.mode=subscribe, hub.verify_token (the token chosen in the App
// Dashboard) and hub.challenge. When the mode and token match (token
// compared in constant time) it returns the challenge, which the handler
// writes back as the 200 response's text/plain body; otherwise the handler
// answers 403. The challenge must be up to 256 letters, digits, '-', '_'
// or '.' (Meta's is a number), so nothing else is ever reflected back. An
// empty verifyToken never matches.
func VerifyChallenge(query url.Values, verifyToken string) (challenge string, ok bool) {
	if verifyToken == "" || query.Get("hub.mode") != "subscribe" {
		return "", false
	}
	if subtle.ConstantTimeCompare([]byte(query.Get("hub.verify_token")), []byte(verifyToken)) != 1 {
		return "", false
	}
	challenge = query.Get("hub.challenge")
	if challenge == "" || len(challenge) > maxChallenge {
		return "", false
	}
	for _, c := range challenge {
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || c == '-' || c == '_' || c == '.') {
			return "", false
		}
	}
	return challenge, true
}
