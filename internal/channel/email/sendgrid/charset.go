package sendgrid

import (
	"fmt"
	"io"
	"strings"
	"unicode/utf8"
)

// charsetKind is how a declared charset is decoded.
type charsetKind int

const (
	charsetUnknown charsetKind = iota
	charsetUTF8
	charsetASCII
	charsetWindows1252
)

// charsetOf classes a charset label. ISO-8859-1 and its aliases are
// decoded as Windows-1252, as the WHATWG Encoding Standard (and every
// browser and most mail readers) does: the two differ only in 0x80-0x9F,
// which are unused C1 controls in ISO-8859-1 but curly quotes, dashes and
// the euro sign in Windows-1252, and mail labelled ISO-8859-1 that uses
// those bytes means the latter.
func charsetOf(label string) charsetKind {
	switch strings.ToLower(strings.Trim(label, " \t\"'")) {
	case "", "utf-8", "utf8", "unicode-1-1-utf-8":
		return charsetUTF8
	case "us-ascii", "ascii", "us_ascii", "ansi_x3.4-1968", "iso646-us", "csascii":
		return charsetASCII
	case "windows-1252", "cp1252", "x-cp1252", "iso-8859-1", "iso8859-1", "iso_8859-1", "iso88591",
		"iso_8859-1:1987", "iso-ir-100", "latin1", "latin-1", "l1", "cp819", "ibm819", "csisolatin1":
		return charsetWindows1252
	}
	return charsetUnknown
}

// decodeCharset returns s, which is in the named charset, as UTF-8, and
// whether the charset is one this package decodes. UTF-8 and unknown
// charsets are returned as they are; US-ASCII too, unless it holds bytes
// that are not UTF-8, which are then read as Windows-1252 (8-bit text
// mislabelled as ASCII is common, and this is lossless on real ASCII).
func decodeCharset(label, s string) (string, bool) {
	switch charsetOf(label) {
	case charsetUTF8:
		return s, true
	case charsetASCII:
		if utf8.ValidString(s) {
			return s, true
		}
		return decodeWindows1252(s), true
	case charsetWindows1252:
		return decodeWindows1252(s), true
	}
	return s, false
}

// windows1252 maps the bytes 0x80-0x9F. The five bytes Windows-1252
// leaves undefined map to the C1 control of the same value, as WHATWG
// specifies; 0xA0-0xFF are the same code points as the bytes.
var windows1252 = [32]rune{
	0x20AC, 0x0081, 0x201A, 0x0192, 0x201E, 0x2026, 0x2020, 0x2021,
	0x02C6, 0x2030, 0x0160, 0x2039, 0x0152, 0x008D, 0x017D, 0x008F,
	0x0090, 0x2018, 0x2019, 0x201C, 0x201D, 0x2022, 0x2013, 0x2014,
	0x02DC, 0x2122, 0x0161, 0x203A, 0x0153, 0x009D, 0x017E, 0x0178,
}

func decodeWindows1252(s string) string {
	ascii := true
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			ascii = false
			break
		}
	}
	if ascii {
		return s
	}
	var b strings.Builder
	b.Grow(len(s) + len(s)/2)
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c < 0x80:
			b.WriteByte(c)
		case c < 0xA0:
			b.WriteRune(windows1252[c-0x80])
		default:
			b.WriteRune(rune(c))
		}
	}
	return b.String()
}

// charsetReader lets mime.WordDecoder decode encoded-words in the
// charsets this package knows (it knows UTF-8, ISO-8859-1 and US-ASCII
// itself).
func charsetReader(label string, input io.Reader) (io.Reader, error) {
	if charsetOf(label) != charsetWindows1252 {
		return nil, fmt.Errorf("charset %q is not supported", label)
	}
	b, err := io.ReadAll(input)
	if err != nil {
		return nil, err
	}
	return strings.NewReader(decodeWindows1252(string(b))), nil
}
