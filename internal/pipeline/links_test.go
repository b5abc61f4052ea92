package pipeline

import (
	"regexp"
	"strings"
	"testing"
)

// referenceHref is the regular expression rewriteHrefs replaced; the
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
