package pipeline

import (
	"net/url"
	"regexp"
	"strings"
	"testing"
)

// referenceHref is the regular expression writeHrefs replaced; the
// hand-written scanner must find exactly what it finds.
var referenceHref = regexp.MustCompile(`(?i)(<a\s[^>]*?href\s*=\s*")(https?://[^"]+)(")`)

func referenceRewrite(html string, replace func(string) (string, bool)) string {
	return referenceHref.ReplaceAllStringFunc(html, func(m string) string {
		sub := referenceHref.FindStringSubmatch(m)
		repl, ok := replace(sub[2])
		if !ok {
			return m
		}
		return sub[1] + repl + sub[3]
	})
}

// rewriteHrefs is html with writeHrefs' replacements.
func rewriteHrefs(html string, replace func(string) (string, bool)) string {
	var b strings.Builder
	done := writeHrefs(&b, html, 0, replace)
	if done == 0 {
		return html
	}
	b.WriteString(html[done:])
	return b.String()
}

func FuzzRewriteHrefsMatchesTheRegexp(f *testing.F) {
	for _, seed := range []string{
		`<p>Hi <a href="https://example.org/a?b=1&amp;c=2">x</a> and <A HREF = "HTTP://Example.org">y</A></p>`,
		`<a class="btn" data-href="https://one.example" href="https://two.example">`,
		`<a href="mailto:x@example.org">m</a><a href="https://">empty</a><a\thref="http://tab.example">t</a>`,
		`<abbr href="https://not.an.anchor">`, `<a href='https://single.example'>`, `<a href="https://unterminated`,
		`<a title=">" href="https://after.gt.example">`, `<a href="https://keep.example">`, `<A href="http://0"`, "",
	} {
		f.Add(seed)
	}
	replace := func(target string) (string, bool) {
		if strings.Contains(target, "keep") {
			return "", false
		}
		return "T(" + target + ")", true
	}
	f.Fuzz(func(t *testing.T, html string) {
		if got, want := rewriteHrefs(html, replace), referenceRewrite(html, replace); got != want {
			t.Fatalf("rewriteHrefs(%q)\n got %q\nwant %q", html, got, want)
		}
	})
}

// Track writes links and pixel in one pass; the result must be what
// rewriting the links, then putting the pixel before the last "</body>"
// of the result, gives.
func FuzzTrackMatchesTwoPasses(f *testing.F) {
	for _, seed := range []string{
		`<html><body><a href="https://example.org/a">a</a></body></html>`,
		`<p>no body end <a href="https://example.org/">x</a>`,
		`<a href="https://example.org/</body>">x</a> text`,
		`<body></body><a href="https://after.example">late link</a>`,
		`<a href="https://mail.example.edu/u/tok">unsubscribe</a></BODY>`, "plain", "",
	} {
		f.Add(seed, true, true)
	}
	key := []byte("0123456789abcdef0123456789abcdef")
	f.Fuzz(func(t *testing.T, html string, clicks, opens bool) {
		l := NewLinks("https://mail.example.edu", key, opens, clicks)
		want := html
		if html != "" {
			if clicks {
				want = rewriteHrefs(html, func(target string) (string, bool) {
					target = htmlUnescapeAttr(target)
					if target == "https://mail.example.edu/u/tok" || len(target) > maxLinkURL {
						return "", false
					}
					if _, err := url.Parse(target); err != nil {
						return "", false
					}
					return "https://mail.example.edu/t/c/" + l.token(linkClick, "t", "m", target), true
				})
			}
			if opens {
				want = insertBeforeBodyEnd(want, `<img src="https://mail.example.edu/t/o/`+l.token(linkOpen, "t", "m", "")+`" width="1" height="1" alt="" style="display:none">`)
			}
		}
		if got := l.Track("t", "m", html, "https://mail.example.edu/u/tok"); got != want {
			t.Fatalf("Track(%q)\n got %q\nwant %q", html, got, want)
		}
	})
}

func TestLastIndexFold(t *testing.T) {
	for _, tc := range []struct {
		s    string
		want int
	}{
		{"<html><body>x</body></html>", 13},
		{"<BODY>x</BODY></body>", 14},
		{"x</Body>", 1},
		{"no closing tag", -1},
		{"</body", -1},
	} {
		if got := lastIndexFold(tc.s, "</body>"); got != tc.want {
			t.Errorf("lastIndexFold(%q) = %d, want %d", tc.s, got, tc.want)
		}
	}
}

func BenchmarkTrackNewsletter(b *testing.B) {
	l := NewLinks("https://mail.example.edu", []byte("0123456789abcdef0123456789abcdef"), true, true)
	html := "<html><body><p>Dear Ada,</p>" + strings.Repeat(`<p>Lorem ipsum dolor sit amet, <a href="https://example.edu/news?id=1&amp;x=2">consectetur</a> adipiscing elit.</p>`, 40) +
		`<a href="https://mail.example.edu/u/tok">Unsubscribe</a></body></html>`
	b.SetBytes(int64(len(html)))
	for b.Loop() {
		l.Track("tenant", "message", html, "https://mail.example.edu/u/tok")
	}
}
