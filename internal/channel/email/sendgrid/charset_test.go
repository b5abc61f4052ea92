package sendgrid

import (
	"testing"
	"unicode/utf8"
)

func TestDecodeCharset(t *testing.T) {
	t.Parallel()
	cases := []struct {
		charset, in, want string
		known             bool
	}{
		{"UTF-8", "Réunion – 2026", "Réunion – 2026", true},
		{"", "plain", "plain", true},
		{"utf8", "\xff broken stays", "\xff broken stays", true},
		{"ISO-8859-1", "Ren\xe9e Fran\xe7ois", "Renée François", true},
		{"iso-8859-1", "\x93quoted\x94 \x96 dash", "“quoted” – dash", true},
		{"latin1", "\xa0\xbf\xff", "\u00a0¿ÿ", true},
		{"Windows-1252", "\x80 \x85 \x99 \x9f", "€ … ™ Ÿ", true},
		{"cp1252", "\x81\x8d\x8f\x90\x9d", "\u0081\u008d\u008f\u0090\u009d", true},
		{`"windows-1252"`, "caf\xe9", "café", true},
		{"US-ASCII", "plain", "plain", true},
		{"us-ascii", "caf\xe9", "café", true},
		{"us-ascii", "café", "café", true},
		{"KOI8-R", "\xf0\xd2\xc9", "\xf0\xd2\xc9", false},
		{"ISO-2022-JP", "\x1b$B$3$s\x1b(B", "\x1b$B$3$s\x1b(B", false},
		{"iso-8859-15", "\xa4", "\xa4", false},
	}
	for _, c := range cases {
		got, known := decodeCharset(c.charset, c.in)
		if got != c.want || known != c.known {
			t.Errorf("decodeCharset(%q, %q) = %q, %v; want %q, %v", c.charset, c.in, got, known, c.want, c.known)
		}
	}
}

func TestDecodeWindows1252AllBytes(t *testing.T) {
	t.Parallel()
	all := make([]byte, 256)
	for i := range all {
		all[i] = byte(i)
	}
	got := decodeWindows1252(string(all))
	if !utf8.ValidString(got) || utf8.RuneCountInString(got) != 256 {
		t.Fatalf("256 bytes decoded to %d runes (valid UTF-8: %v)", utf8.RuneCountInString(got), utf8.ValidString(got))
	}
	i := 0
	for _, r := range got {
		want := rune(i)
		if i >= 0x80 && i < 0xa0 {
			want = windows1252[i-0x80]
		}
		if r != want {
			t.Errorf("byte %#x decoded to %U, want %U", i, r, want)
		}
		i++
	}
}
