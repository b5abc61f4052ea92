package pipeline

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"net/url"
	"regexp"
	"strings"
)

// Links makes and checks the signed links of tracking and unsubscribe.
// A token carries the tenant, the message and, for a click, the target
// URL, with an HMAC over them: nobody can make the click tracker redirect
// to a URL of their choosing (no open redirect), nor unsubscribe someone
// else, without the key.
type Links struct {
	base   string
	key    []byte
	opens  bool
	clicks bool
}

// NewLinks returns links under base (the server's public URL) signed with
// key; opens and clicks turn the open pixel and the click tracker on.
func NewLinks(base string, key []byte, opens, clicks bool) *Links {
	return &Links{base: strings.TrimRight(base, "/"), key: key, opens: opens, clicks: clicks}
}

// Link kinds, the first byte of a token's payload.
const (
	linkOpen        = 'o'
	linkClick       = 'c'
	linkUnsubscribe = 'u'
)

// maxLinkURL bounds a tracked URL: longer links are left as they are.
const maxLinkURL = 2048

var errBadToken = errors.New("link is not valid")

func (l *Links) token(kind byte, tenant, messageID, target string) string {
	payload := string(kind) + tenant + "\x00" + messageID + "\x00" + target
	mac := hmac.New(sha256.New, l.key)
	mac.Write([]byte(payload))
	return base64.RawURLEncoding.EncodeToString([]byte(payload)) + "." + base64.RawURLEncoding.EncodeToString(mac.Sum(nil)[:16])
}

// parse checks a token of kind and returns what it carries.
func (l *Links) parse(kind byte, token string) (tenant, messageID, target string, err error) {
	p, sig, ok := strings.Cut(token, ".")
	if !ok {
		return "", "", "", errBadToken
	}
	payload, err1 := base64.RawURLEncoding.DecodeString(p)
	got, err2 := base64.RawURLEncoding.DecodeString(sig)
	if err1 != nil || err2 != nil || len(payload) == 0 || payload[0] != kind {
		return "", "", "", errBadToken
	}
	mac := hmac.New(sha256.New, l.key)
	mac.Write(payload)
	if !hmac.Equal(got, mac.Sum(nil)[:16]) {
		return "", "", "", errBadToken
	}
	parts := strings.SplitN(string(payload[1:]), "\x00", 3)
	if len(parts) != 3 || parts[0] == "" || parts[1] == "" {
		return "", "", "", errBadToken
	}
	return parts[0], parts[1], parts[2], nil
}

// Unsubscribe is a message's unsubscribe link (a page, and the RFC 8058
// one-click POST target).
func (l *Links) Unsubscribe(tenant, messageID string) string {
	return l.base + "/u/" + l.token(linkUnsubscribe, tenant, messageID, "")
}

var anchorHref = regexp.MustCompile(`(?i)(<a\s[^>]*?href\s*=\s*")(https?://[^"]+)(")`)

// Track rewrites an email's HTML: links through the click tracker (not the
// unsubscribe link), and an open pixel at the end of the body.
func (l *Links) Track(tenant, messageID, html, unsubscribe string) string {
	if html == "" {
		return html
	}
	if l.clicks {
		html = anchorHref.ReplaceAllStringFunc(html, func(m string) string {
			sub := anchorHref.FindStringSubmatch(m)
			target := htmlUnescapeAttr(sub[2])
			if target == unsubscribe || len(target) > maxLinkURL {
				return m
			}
			if _, err := url.Parse(target); err != nil {
				return m
			}
			return sub[1] + l.base + "/t/c/" + l.token(linkClick, tenant, messageID, target) + sub[3]
		})
	}
	if l.opens {
		pixel := `<img src="` + l.base + "/t/o/" + l.token(linkOpen, tenant, messageID, "") + `" width="1" height="1" alt="" style="display:none">`
		if i := strings.LastIndex(strings.ToLower(html), "</body>"); i >= 0 {
			html = html[:i] + pixel + html[i:]
		} else {
			html += pixel
		}
	}
	return html
}

// htmlUnescapeAttr undoes the escaping html/template applies to a URL in an
// attribute, so the redirect goes where the author wrote.
func htmlUnescapeAttr(s string) string {
	return strings.NewReplacer("&amp;", "&", "&#43;", "+", "&#34;", `"`, "&#39;", "'").Replace(s)
}
