package smtp

import (
	"bytes"
	"errors"
	"flag"
	"io"
	"mime"
	"mime/quotedprintable"
	"net/mail"
	"net/textproto"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/alumoutreach/alumoutreach/internal/channel"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

func decodeQP(cte string, r io.Reader) io.Reader {
	if strings.EqualFold(cte, "quoted-printable") {
		return quotedprintable.NewReader(r)
	}
	return r
}

var boundaryRE = regexp.MustCompile(`=_[0-9a-f]{32}`)

// TestBuildMessageGolden pins the exact bytes (boundary aside) of a full
// message: header order, folding, encodings.
func TestBuildMessageGolden(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 6, 1, 9, 30, 0, 0, time.FixedZone("CEST", 2*3600))
	for _, tc := range []struct {
		file string
		m    channel.Message
	}{
		{"full.eml", fullMessage("0197a3c2-7d4e-7b1a-9c3f-1a2b3c4d5e6f")},
		{"text-only.eml", channel.Message{
			ID: "0197a3c2-0000-7000-8000-000000000001", To: "Ada Lovelace <ada@example.net>", From: "news@example.org",
			FromName: `The "Alumni" Office`,
			Subject:  "A long subject line that has to be folded because it is longer than seventy-eight characters",
			Text:     "Line one   \nA line that is long enough to need a soft line break in quoted-printable, which wraps at 76.\r\nTabs\tand = signs.",
		}},
	} {
		got, id, err := BuildMessage(tc.m, now, "")
		if err != nil {
			t.Fatalf("%s: %v", tc.file, err)
		}
		if want := tc.m.ID + "@example.org"; id != want {
			t.Errorf("%s: id %q, want %q", tc.file, id, want)
		}
		got = boundaryRE.ReplaceAll(got, []byte("=_BOUNDARY"))
		path := filepath.Join("testdata", tc.file)
		if *update {
			if err := os.WriteFile(path, got, 0o644); err != nil {
				t.Fatal(err)
			}
		}
		want, err := os.ReadFile(path)
		if err != nil {
			t.Fatalf("%v (run go test -update to write it)", err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%s differs:\n--- got\n%s\n--- want\n%s", tc.file, got, want)
		}
		parseMessage(t, got)
	}
}

func TestBuildMessageDomain(t *testing.T) {
	t.Parallel()
	m := fullMessage("abc")
	_, id, err := BuildMessage(m, time.Now(), "mail.example.com")
	if err != nil || id != "abc@mail.example.com" {
		t.Errorf("id %q (%v)", id, err)
	}
	if _, _, err := BuildMessage(m, time.Now(), "bad domain>"); !channel.IsPermanent(err) {
		t.Errorf("bad domain: %v", err)
	}
}

func TestHeaderEncoding(t *testing.T) {
	t.Parallel()
	long := strings.Repeat("word ", 60)
	for _, tc := range []struct {
		name, subject string
		encoded       bool
	}{
		{"ASCII", "Hello there", false},
		{"non-ASCII", "Grüße aus Zürich", true},
		{"long ASCII", long, false},
		{"long non-ASCII", strings.Repeat("éèê ", 50), true},
		{"one very long word", strings.Repeat("x", 2000), true},
		{"looks encoded", "=?utf-8?q?spoof?=", true},
		{"control character", "bell\x07", true},
		{"emoji split across words", strings.Repeat("🎓", 40), true},
		{"tab", "a\tb", false},
		{"double spaces", "a  b   c", false},
	} {
		m := fullMessage("id")
		m.Subject = tc.subject
		b, _, err := BuildMessage(m, time.Now(), "")
		if err != nil {
			t.Errorf("%s: %v", tc.name, err)
			continue
		}
		p := parseMessage(t, b)
		raw := p.header.Get("Subject")
		if got := strings.Contains(raw, "=?utf-8?q?"); got != tc.encoded {
			t.Errorf("%s: encoded %v, want %v: %q", tc.name, got, tc.encoded, raw)
		}
		var dec mime.WordDecoder
		got, err := dec.DecodeHeader(raw)
		if err != nil {
			t.Errorf("%s: %v", tc.name, err)
		}
		if want := strings.Trim(tc.subject, " \t"); got != want && got != tc.subject {
			t.Errorf("%s: subject round trip\n got %q\nwant %q", tc.name, got, want)
		}
		// Lines are folded to 78 where there is a space to fold at.
		for _, line := range headerLines(b) {
			if len(line) > 78 && tc.name != "one very long word" && strings.Count(line, " ") > 1 {
				t.Errorf("%s: line of %d: %q", tc.name, len(line), line)
			}
			if strings.Trim(line, " \t") == "" {
				t.Errorf("%s: blank header line", tc.name)
			}
		}
	}
}

func headerLines(msg []byte) []string {
	head, _, _ := bytes.Cut(msg, []byte("\r\n\r\n"))
	return strings.Split(string(head), "\r\n")
}

func TestDisplayNames(t *testing.T) {
	t.Parallel()
	for _, name := range []string{
		"Alumni Office",
		`The "Alumni" Office \ Board`,
		"Bureau des anciens élèves",
		"Université (Paris), Département: Lettres",
		"=?utf-8?q?fake?=",
		strings.Repeat("Alumni ", 30),
		"李小龍",
	} {
		m := fullMessage("id")
		m.FromName = name
		b, _, err := BuildMessage(m, time.Now(), "")
		if err != nil {
			t.Errorf("%q: %v", name, err)
			continue
		}
		p := parseMessage(t, b)
		a, err := mail.ParseAddress(p.header.Get("From"))
		if err != nil || a.Name != name || a.Address != m.From {
			t.Errorf("From for %q: %q parsed as %+v (%v)", name, p.header.Get("From"), a, err)
		}
	}
}

func TestAddresses(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		in, addr string
		ok       bool
	}{
		{"ada@example.net", "ada@example.net", true},
		{"first.last+tag@sub.example.net", "first.last+tag@sub.example.net", true},
		{"Ada <ada@example.net>", "ada@example.net", true},
		{"josé@exämple.net", "josé@exämple.net", true},
		{"ada@[192.0.2.1]", "ada@[192.0.2.1]", true},
		{"ada", "", false},
		{"ada@", "", false},
		{"@example.net", "", false},
		{"a..b@example.net", "", false},
		{`"quoted local"@example.net`, "", false},
		{"a@b@c", "", false},
		{"ada@example.net, bob@example.net", "", false},
	} {
		a, err := parseAddress("To", tc.in)
		if (err == nil) != tc.ok || a.addr != tc.addr {
			t.Errorf("parseAddress(%q) = %+v, %v; want %q ok=%v", tc.in, a, err, tc.addr, tc.ok)
		}
	}
}

// TestQPMatchesStdlib checks appendQP against mime/quotedprintable's
// Writer, which it replaces on the hot path.
func TestQPMatchesStdlib(t *testing.T) {
	t.Parallel()
	for _, s := range qpSamples() {
		checkQP(t, s, true)
	}
}

func qpSamples() []string {
	return []string{
		"", "a", "=", " ", "a ", "a \n", "a\t\r\nb", "\r", "\n", "\r\r\n", "\n\r",
		strings.Repeat("x", 75), strings.Repeat("x", 76), strings.Repeat("x", 77), strings.Repeat("x", 200),
		strings.Repeat("x", 74) + " ", strings.Repeat("x", 74) + "é", strings.Repeat("x", 73) + "==",
		strings.Repeat("x", 75) + " \n", strings.Repeat("é", 100), ".\n..\n.",
		"<p>Chère Ada,</p>\n<a href=\"https://example.org/?a=1&b=2\">lien</a>\n",
		strings.Repeat("word ", 40) + "\n" + strings.Repeat("\t", 80),
	}
}

// checkQP checks that appendQP's output decodes to s with CRLF line
// breaks, in lines of at most 76 characters, and, when sameAsStdlib, that
// it is byte for byte what quotedprintable.Writer writes. (The fuzz test
// does not compare: the Writer drops the LF of "\r<byte it encodes>\n",
// as its CR flag survives the encoded byte.)
func checkQP(t *testing.T, s string, sameAsStdlib bool) {
	t.Helper()
	got := appendQP(nil, s)
	if sameAsStdlib {
		var want bytes.Buffer
		w := quotedprintable.NewWriter(&want)
		w.Write([]byte(s))
		w.Close()
		if !bytes.Equal(got, want.Bytes()) {
			t.Fatalf("appendQP(%q)\n got %q\nwant %q", s, got, want.Bytes())
		}
	}
	for _, line := range bytes.Split(got, []byte("\r\n")) {
		if len(line) > 76 || bytes.ContainsAny(line, "\r\n") {
			t.Fatalf("appendQP(%q) has the line %q", s, line)
		}
		if n := len(line); n > 0 && (line[n-1] == ' ' || line[n-1] == '\t') {
			t.Fatalf("appendQP(%q) has trailing white space: %q", s, line)
		}
	}
	dec, err := io.ReadAll(quotedprintable.NewReader(bytes.NewReader(got)))
	if err != nil {
		t.Fatalf("decoding appendQP(%q): %v", s, err)
	}
	if string(dec) != crlf(s) {
		t.Fatalf("appendQP(%q) decodes to %q", s, dec)
	}
}

func FuzzQP(f *testing.F) {
	for _, s := range qpSamples() {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) { checkQP(t, s, false) })
}

// FuzzBuildMessage: whatever the strings, BuildMessage either refuses the
// message with a permanent error or writes one that net/mail reads, with
// exactly the header fields it means to write (no injected field), every
// value reading back as given, lines of at most 998 characters ending in
// CRLF, and both bodies decoding to what was given.
func FuzzBuildMessage(f *testing.F) {
	f.Add("Réunion 2026", "Bureau des élèves", "Hello\nworld", "<p>hi</p>", "List-Unsubscribe", "<https://x/u>", "ada@example.net")
	f.Add("a\r\nBcc: x@y", "n", "t", "", "X-A", "v", "ada@example.net")
	f.Add("=?utf-8?q?x?=", "\"q\"", "", "h", "X-Tag", "é", "Ada <ada@example.net>")
	f.Add(strings.Repeat("long ", 300), strings.Repeat("n", 300), ".\r\n.", "\r", "X", "a  b", "a@b")
	f.Fuzz(func(t *testing.T, subject, name, text, html, hname, hvalue, to string) {
		m := channel.Message{ID: "id.1", From: "from@example.org", To: to, FromName: name, Subject: subject,
			Text: text, HTML: html, Headers: map[string]string{hname: hvalue}}
		b, id, err := BuildMessage(m, time.Unix(1_800_000_000, 0), "")
		if err != nil {
			var ce *channel.Error
			if !errors.As(err, &ce) || !ce.Permanent || ce.Message == "" {
				t.Fatalf("refusal %v is not a permanent *channel.Error with a message", err)
			}
			return
		}
		if id != "id.1@example.org" {
			t.Fatalf("id %q", id)
		}
		p := parseMessage(t, b)
		want := []string{"Content-Type", "Date", "From", "Message-Id", "Mime-Version", "To"}
		if subject != "" {
			want = append(want, "Subject")
		}
		if hvalue != "" {
			want = append(want, textproto.CanonicalMIMEHeaderKey(hname))
		}
		if text == "" || html == "" {
			want = append(want, "Content-Transfer-Encoding")
		}
		got := headerKeys(p.header)
		if slices.Sort(want); strings.Join(got, "\n") != strings.Join(want, "\n") {
			t.Fatalf("header fields %q, want %q\n%s", got, want, b)
		}
		var dec mime.WordDecoder
		if subject != "" {
			s, err := dec.DecodeHeader(p.header.Get("Subject"))
			if err != nil || (s != subject && s != strings.Trim(subject, " \t")) {
				t.Fatalf("Subject %q reads back as %q (%v)", subject, s, err)
			}
		}
		if hvalue != "" {
			v, err := dec.DecodeHeader(p.header.Get(hname))
			if err != nil || (v != hvalue && v != strings.Trim(hvalue, " \t")) {
				t.Fatalf("header %s: %q reads back as %q (%v)", hname, hvalue, v, err)
			}
		}
		from, err := mail.ParseAddress(p.header.Get("From"))
		if err != nil || from.Address != m.From {
			t.Fatalf("From %q: %+v %v", p.header.Get("From"), from, err)
		}
		if utf8.ValidString(name) && from.Name != name {
			t.Fatalf("From name %q reads back as %q (%q)", name, from.Name, p.header.Get("From"))
		}
		if text != "" && p.parts["text/plain"] != crlf(text) && p.parts["text/plain"] != crlf(text)+"\r\n" {
			t.Fatalf("text %q reads back as %q", text, p.parts["text/plain"])
		}
		if html != "" && p.parts["text/html"] != crlf(html) && p.parts["text/html"] != crlf(html)+"\r\n" {
			t.Fatalf("html %q reads back as %q", html, p.parts["text/html"])
		}
	})
}
