package pipeline

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"hash"
	"net/url"
	"strings"
	"sync"
)

// Links makes and checks the signed links of tracking and unsubscribe.
// A token carries the tenant, the message and, for a click, the target
// URL, with an HMAC over them: nobody can make the click tracker redirect
// to a URL of their choosing (no open redirect), nor unsubscribe someone
// else, without the key.
type Links struct {
	base   string
	opens  bool
	clicks bool
	macs   sync.Pool // keyed HMACs: keying one hashes the key twice
}

// NewLinks returns links under base (the server's public URL) signed with
// key; opens and clicks turn the open pixel and the click tracker on.
func NewLinks(base string, key []byte, opens, clicks bool) *Links {
	l := &Links{base: strings.TrimRight(base, "/"), opens: opens, clicks: clicks}
	l.macs.New = func() any { return hmac.New(sha256.New, key) }
	return l
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
	return base64.RawURLEncoding.EncodeToString([]byte(payload)) + "." + base64.RawURLEncoding.EncodeToString(l.sign([]byte(payload)))
}

// sign is the token's signature over payload: a truncated HMAC-SHA256.
func (l *Links) sign(payload []byte) []byte {
	mac := l.macs.Get().(hash.Hash)
	defer l.macs.Put(mac)
	mac.Reset()
	mac.Write(payload)
	return mac.Sum(make([]byte, 0, sha256.Size))[:16]
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
	if !hmac.Equal(got, l.sign(payload)) {
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

// Track rewrites an email's HTML: links through the click tracker (not the
// unsubscribe link), and an open pixel at the end of the body. It scans
// the HTML once by hand, into one buffer: a regular expression and a
// lower-cased copy of every body cost a tenth of the pipeline's CPU, and a
// copy of the body per change a few percent more.
func (l *Links) Track(tenant, messageID, html, unsubscribe string) string {
	if html == "" {
		return html
	}
	pixel := ""
	if l.opens {
		pixel = `<img src="` + l.base + "/t/o/" + l.token(linkOpen, tenant, messageID, "") + `" width="1" height="1" alt="" style="display:none">`
	}
	var b strings.Builder
	done := 0 // html[:done] is in b, rewritten; nothing is when done is 0
	if l.clicks {
		done = writeHrefs(&b, html, len(pixel), func(target string) (string, bool) {
			target = htmlUnescapeAttr(target)
			if target == unsubscribe || len(target) > maxLinkURL {
				return "", false
			}
			if _, err := url.Parse(target); err != nil {
				return "", false
			}
			return l.base + "/t/c/" + l.token(linkClick, tenant, messageID, target), true
		})
	}
	if pixel == "" {
		if done == 0 {
			return html
		}
		b.WriteString(html[done:])
		return b.String()
	}
	at := lastIndexFold(html, "</body>")
	if at >= 0 && at < done {
		// The last "</body>" was part of a link rewritten: look for it
		// in the result, as if the pixel came after the rewriting.
		b.WriteString(html[done:])
		return insertBeforeBodyEnd(b.String(), pixel)
	}
	if at < 0 {
		at = len(html)
	}
	if done == 0 {
		b.Grow(len(html) + len(pixel))
	}
	b.WriteString(html[done:at])
	b.WriteString(pixel)
	b.WriteString(html[at:])
	return b.String()
}

// insertBeforeBodyEnd puts pixel before the last "</body>" of html, or at
// its end.
func insertBeforeBodyEnd(html, pixel string) string {
	if i := lastIndexFold(html, "</body>"); i >= 0 {
		return html[:i] + pixel + html[i:]
	}
	return html + pixel
}

// writeHrefs writes html into b with the http(s) URL of each anchor's
// double-quoted href (<a ... href="https://...">) replaced by what replace
// returns, when it returns true, up to the end of the last URL replaced;
// it returns where it stopped (0, and b untouched, when it replaced
// nothing). Tag and attribute names match in any case. reserve is room to
// keep for what the caller writes after.
func writeHrefs(b *strings.Builder, html string, reserve int, replace func(target string) (string, bool)) (done int) {
	for i := 0; i < len(html); {
		start, end := nextAnchorHref(html, i)
		if start < 0 {
			break
		}
		if repl, ok := replace(html[start:end]); ok {
			if done == 0 {
				b.Grow(len(html) + 256 + reserve)
			}
			b.WriteString(html[done:start])
			b.WriteString(repl)
			done = end
		}
		i = end
	}
	return done
}

// nextAnchorHref finds, from i on, the next anchor tag with an
// href="http(s)://..." attribute and returns the bounds of the URL, or -1.
func nextAnchorHref(html string, i int) (start, end int) {
	for {
		lt := strings.IndexByte(html[i:], '<')
		if lt < 0 {
			return -1, -1
		}
		tag := i + lt
		i = tag + 1
		if tag+2 >= len(html) || html[tag+1]|0x20 != 'a' || !isHTMLSpace(html[tag+2]) {
			continue
		}
		gt := strings.IndexByte(html[tag:], '>')
		if gt < 0 {
			gt = len(html) - tag // an unclosed tag runs to the end
		}
		attrs := html[tag+2 : tag+gt]
		for j := 0; ; {
			h := indexFold(attrs[j:], "href")
			if h < 0 {
				break
			}
			j += h + len("href")
			k := skipHTMLSpace(attrs, j)
			if k >= len(attrs) || attrs[k] != '=' {
				continue
			}
			k = skipHTMLSpace(attrs, k+1)
			if k >= len(attrs) || attrs[k] != '"' {
				continue
			}
			valueAt := tag + 2 + k + 1
			scheme := len("https://")
			if !hasPrefixFold(html[valueAt:], "https://") {
				if scheme = len("http://"); !hasPrefixFold(html[valueAt:], "http://") {
					continue
				}
			}
			q := strings.IndexByte(html[valueAt+scheme:], '"')
			if q < 0 {
				return -1, -1
			}
			if q == 0 {
				continue // nothing after the scheme
			}
			return valueAt, valueAt + scheme + q
		}
	}
}

func isHTMLSpace(c byte) bool {
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f'
}

func skipHTMLSpace(s string, i int) int {
	for i < len(s) && isHTMLSpace(s[i]) {
		i++
	}
	return i
}

func hasPrefixFold(s, lowerPrefix string) bool {
	return len(s) >= len(lowerPrefix) && strings.EqualFold(s[:len(lowerPrefix)], lowerPrefix)
}

// indexFold is strings.Index ignoring ASCII case; lowerNeedle is lower case.
func indexFold(s, lowerNeedle string) int {
	for i := 0; i+len(lowerNeedle) <= len(s); i++ {
		if s[i]|0x20 == lowerNeedle[0] && hasPrefixFold(s[i:], lowerNeedle) {
			return i
		}
	}
	return -1
}

// lastIndexFold is strings.LastIndex ignoring ASCII case, scanning from
// the end, where a closing tag is.
func lastIndexFold(s, lowerNeedle string) int {
	for i := len(s) - len(lowerNeedle); i >= 0; i-- {
		if s[i] == lowerNeedle[0] && hasPrefixFold(s[i:], lowerNeedle) {
			return i
		}
	}
	return -1
}

// htmlUnescapeAttr undoes the escaping html/template applies to a URL in an
// attribute, so the redirect goes where the author wrote.
func htmlUnescapeAttr(s string) string {
	if !strings.Contains(s, "&") {
		return s
	}
	return attrUnescaper.Replace(s)
}

var attrUnescaper = strings.NewReplacer("&amp;", "&", "&#43;", "+", "&#34;", `"`, "&#39;", "'")
