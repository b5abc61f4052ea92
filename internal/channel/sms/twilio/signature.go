package twilio

import (
	"crypto/hmac"
	"crypto/sha1"
	"encoding/base64"
	"net"
	"net/url"
	"sort"
)

// SignatureHeader is the header Twilio signs its webhook requests with.
const SignatureHeader = "X-Twilio-Signature"

// VerifySignature reports whether signature, the X-Twilio-Signature header
// of a webhook request, is Twilio's signature of that request: the base64
// HMAC-SHA1, keyed with the account's auth token, of the full URL Twilio
// requested (scheme, host, path and query, exactly as configured in
// Twilio) followed by every POST parameter's name and value, sorted by
// name (byte order; the values of a repeated name sorted too). For a GET
// webhook form is nil: the parameters are in the URL.
//
// fullURL must be the URL Twilio used, not the one a proxy forwarded to.
// As Twilio's own libraries do, the URL is also tried with its port
// removed and with the scheme's default port added, since Twilio signs
// some requests one way and some the other. The comparison is constant
// time. An empty token or signature never verifies.
func VerifySignature(authToken, fullURL string, form url.Values, signature string) bool {
	if authToken == "" || signature == "" || fullURL == "" {
		return false
	}
	got, err := base64.StdEncoding.DecodeString(signature)
	if err != nil || len(got) != sha1.Size {
		return false
	}
	params := signedParams(form)
	ok := false
	for _, u := range urlVariants(fullURL) {
		if hmac.Equal(got, sign(authToken, u, params)) {
			ok = true
		}
	}
	return ok
}

// signedParams is the parameter part of the signed string.
func signedParams(form url.Values) string {
	keys := make([]string, 0, len(form))
	for k := range form {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b []byte
	for _, k := range keys {
		values := append([]string(nil), form[k]...)
		sort.Strings(values)
		for _, v := range values {
			b = append(b, k...)
			b = append(b, v...)
		}
	}
	return string(b)
}

func sign(authToken, fullURL, params string) []byte {
	mac := hmac.New(sha1.New, []byte(authToken))
	mac.Write([]byte(fullURL))
	mac.Write([]byte(params))
	return mac.Sum(nil)
}

// urlVariants is fullURL as given, without its port, and with the
// scheme's default port.
func urlVariants(fullURL string) []string {
	out := []string{fullURL}
	u, err := url.Parse(fullURL)
	if err != nil || u.Host == "" {
		return out
	}
	host, port := u.Hostname(), u.Port()
	if port != "" {
		v := *u
		v.Host = bracketed(host)
		out = append(out, v.String())
		return out
	}
	switch u.Scheme {
	case "https":
		port = "443"
	case "http":
		port = "80"
	default:
		return out
	}
	v := *u
	v.Host = net.JoinHostPort(host, port)
	return append(out, v.String())
}

// bracketed puts an IPv6 literal back in brackets.
func bracketed(host string) string {
	if ip := net.ParseIP(host); ip != nil && ip.To4() == nil {
		return "[" + host + "]"
	}
	return host
}
