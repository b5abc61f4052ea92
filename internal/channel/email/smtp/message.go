package smtp

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"net/mail"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/alumoutreach/alumoutreach/internal/channel"
)

// Header lines are folded at 78 characters where a space allows it (RFC
// 5322 §2.1.1 SHOULD) and are never longer than 998 (its MUST).
const (
	foldAt      = 78
	maxLineLen  = 998
	qpLineLen   = 76 // RFC 2045 §6.7 (5)
	maxWordLen  = 75 // RFC 2047 §2: an encoded-word is at most 75 characters
	maxIDLength = 200
)

// reservedHeaders are written by BuildMessage itself; Message.Headers may
// not set them, or the message would carry two (or a forged) of each. Cc
// and Bcc are refused too: the envelope has the one recipient, so a Cc
// header would name people who never get the message and a Bcc header
// would show them to the recipient.
var reservedHeaders = []string{
	"bcc", "cc", "content-transfer-encoding", "content-type", "date", "from",
	"message-id", "mime-version", "reply-to", "subject", "to",
}

// envelope is what the SMTP transaction needs besides the bytes.
type envelope struct {
	// id is the Message's ID, the DSN envelope id.
	id       string
	from, to string
	// utf8 is set when an address has non-ASCII characters, which only a
	// server that offers SMTPUTF8 (RFC 6531) may be given.
	utf8 bool
}

// BuildMessage renders m as an RFC 5322 message with CRLF line ends and
// returns it with its Message-ID, without the angle brackets (the value
// Send puts in Receipt.ExternalID).
//
// The Message-ID is <m.ID@domain>; an empty domain means the domain of
// m.From, which is what Send uses. now is the Date header. A message that
// cannot be rendered safely (no ID, an invalid address, CR or LF in a
// header, a header field the adapter sets itself, no body) is refused with
// a permanent *channel.Error.
func BuildMessage(m channel.Message, now time.Time, domain string) ([]byte, string, error) {
	b, _, id, err := appendMessage(nil, m, now, domain)
	if err != nil {
		return nil, "", err
	}
	return b, id, nil
}

// invalid is the permanent refusal of a message that cannot be sent as it
// is.
func invalid(format string, args ...any) *channel.Error {
	return &channel.Error{Provider: Provider, Permanent: true, Message: fmt.Sprintf(format, args...), Err: ErrInvalidMessage}
}

// ErrInvalidMessage is wrapped by the refusals of messages that cannot be
// rendered safely; they are permanent.
var ErrInvalidMessage = errors.New("message refused before sending")

// appendMessage appends the rendered message to dst. It is BuildMessage
// without the allocation of the result: Send renders into a pooled buffer.
func appendMessage(dst []byte, m channel.Message, now time.Time, domain string) ([]byte, envelope, string, error) {
	var env envelope
	if err := checkID(m.ID); err != nil {
		return dst, env, "", err
	}
	from, err := parseAddress("From", m.From)
	if err != nil {
		return dst, env, "", err
	}
	to, err := parseAddress("To", m.To)
	if err != nil {
		return dst, env, "", err
	}
	var replyTo address
	if m.ReplyTo != "" {
		if replyTo, err = parseAddress("Reply-To", m.ReplyTo); err != nil {
			return dst, env, "", err
		}
	}
	fromName := m.FromName
	if fromName == "" {
		fromName = from.name
	}
	if hasCRLF(fromName) {
		return dst, env, "", invalid("FromName has a line break")
	}
	if hasCRLF(m.Subject) {
		return dst, env, "", invalid("Subject has a line break")
	}
	if m.HTML == "" && m.Text == "" {
		return dst, env, "", invalid("message has neither an HTML nor a text body")
	}
	if domain == "" {
		domain = from.addr[strings.LastIndexByte(from.addr, '@')+1:]
	} else if !validDomain(domain) {
		return dst, env, "", invalid("Message-ID domain %q is not a domain", domain)
	}
	// The extra headers are checked and sorted (map order is random; the
	// same message must render the same way) before anything is written.
	var keyStore [8]string
	keys := keyStore[:0]
	for k, v := range m.Headers {
		if err := checkExtraHeader(k, v); err != nil {
			return dst, env, "", err
		}
		if v != "" {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)

	start := len(dst)
	dst, id, err := appendHeaders(dst, &m, now, fromName, from, to, replyTo, domain, keys)
	if err != nil {
		return dst[:start], env, "", err
	}

	switch {
	case m.Text != "" && m.HTML != "":
		var bnd [2 + 32]byte
		boundary := newBoundary(&bnd)
		dst = append(dst, "Content-Type: multipart/alternative;\r\n boundary=\""...)
		dst = append(dst, boundary...)
		dst = append(dst, "\"\r\n\r\n"...)
		// Text first, HTML last: RFC 2046 §5.1.4 puts the preferred
		// alternative last.
		dst = appendPart(dst, boundary, "text/plain", m.Text)
		dst = append(dst, "\r\n"...)
		dst = appendPart(dst, boundary, "text/html", m.HTML)
		dst = append(dst, "\r\n--"...)
		dst = append(dst, boundary...)
		dst = append(dst, "--\r\n"...)
	case m.Text != "":
		dst = appendSinglePart(dst, "text/plain", m.Text)
	default:
		dst = appendSinglePart(dst, "text/html", m.HTML)
	}

	env = envelope{id: m.ID, from: from.addr, to: to.addr, utf8: !isASCII(from.addr) || !isASCII(to.addr)}
	return dst, env, id, nil
}

// appendHeaders writes the header section up to, not including, the
// Content-Type.
func appendHeaders(dst []byte, m *channel.Message, now time.Time, fromName string, from, to, replyTo address, domain string, keys []string) ([]byte, string, error) {
	var err error
	if dst, err = appendAddressHeader(dst, "From", fromName, from.addr); err != nil {
		return dst, "", err
	}
	if dst, err = appendAddressHeader(dst, "To", to.name, to.addr); err != nil {
		return dst, "", err
	}
	if replyTo.addr != "" {
		if dst, err = appendAddressHeader(dst, "Reply-To", replyTo.name, replyTo.addr); err != nil {
			return dst, "", err
		}
	}
	if m.Subject != "" {
		if dst, err = appendTextHeader(dst, "Subject", m.Subject); err != nil {
			return dst, "", err
		}
	}
	dst = append(dst, "Date: "...)
	dst = now.AppendFormat(dst, time.RFC1123Z)
	dst = append(dst, "\r\nMessage-ID: <"...)
	idStart := len(dst)
	dst = append(dst, m.ID...)
	dst = append(dst, '@')
	dst = append(dst, domain...)
	id := string(dst[idStart:])
	dst = append(dst, ">\r\nMIME-Version: 1.0\r\n"...)
	for _, k := range keys {
		if dst, err = appendExtraHeader(dst, k, m.Headers[k]); err != nil {
			return dst, "", err
		}
	}
	return dst, id, nil
}

// appendPart writes a boundary line and a part. The CRLF before the next
// boundary belongs to that boundary (RFC 2046 §5.1.1), so the body is
// written as it is, final line break or not, and the caller writes the
// CRLF.
func appendPart(dst []byte, boundary []byte, typ, body string) []byte {
	dst = append(dst, "--"...)
	dst = append(dst, boundary...)
	dst = append(dst, "\r\nContent-Type: "...)
	dst = append(dst, typ...)
	dst = append(dst, "; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n"...)
	return appendQP(dst, body)
}

func appendSinglePart(dst []byte, typ, body string) []byte {
	dst = append(dst, "Content-Type: "...)
	dst = append(dst, typ...)
	dst = append(dst, "; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n"...)
	dst = appendQP(dst, body)
	if dst[len(dst)-1] != '\n' {
		dst = append(dst, "\r\n"...)
	}
	return dst
}

// newBoundary returns a random multipart boundary. It starts with "=_",
// which quoted-printable never leaves unencoded in a body ("=" is always
// written =3D), so no body can contain it.
func newBoundary(b *[34]byte) []byte {
	const hex = "0123456789abcdef"
	b[0], b[1] = '=', '_'
	r1, r2 := rand.Uint64(), rand.Uint64()
	for i := range 16 {
		b[2+i] = hex[r1&15]
		b[18+i] = hex[r2&15]
		r1 >>= 4
		r2 >>= 4
	}
	return b[:]
}

// checkID accepts ids that fit the left side of a Message-ID (RFC 5322
// dot-atom-text) and the DSN ENVID; UUIDs do.
func checkID(id string) error {
	if id == "" {
		return invalid("message has no ID")
	}
	if len(id) > maxIDLength {
		return invalid("message ID is longer than %d characters", maxIDLength)
	}
	if id[0] == '.' || id[len(id)-1] == '.' || strings.Contains(id, "..") {
		return invalid("message ID %q is not a dot-atom", id)
	}
	for i := 0; i < len(id); i++ {
		if c := id[i]; c != '.' && !isAtext(c) {
			return invalid("message ID %q has a character a Message-ID cannot hold", id)
		}
	}
	return nil
}

type address struct{ name, addr string }

// parseAddress accepts "local@domain" (the common case, checked without
// allocating) and anything net/mail parses as one address, such as
// "Name <local@domain>".
func parseAddress(field, s string) (address, error) {
	if s == "" {
		return address{}, invalid("%s address is empty", field)
	}
	if hasCRLF(s) {
		return address{}, invalid("%s address has a line break", field)
	}
	if isSimpleAddr(s) {
		return address{addr: s}, nil
	}
	a, err := mail.ParseAddress(s)
	if err != nil {
		return address{}, invalid("%s address %q: %v", field, s, err)
	}
	// net/mail unquotes the local part; an address whose local part needs
	// quoting is legal and rare, and is refused rather than re-quoted.
	if !validAddrSpec(a.Address) {
		return address{}, invalid("%s address %q is not supported (quoted local part)", field, s)
	}
	return address{name: a.Name, addr: a.Address}, nil
}

// isSimpleAddr reports whether s is an ASCII dot-atom@domain address.
func isSimpleAddr(s string) bool {
	at := strings.IndexByte(s, '@')
	if at <= 0 || at > 64 || len(s) > 254 || at == len(s)-1 {
		return false
	}
	local, domain := s[:at], s[at+1:]
	if !isDotAtom(local) {
		return false
	}
	return isHostname(domain)
}

// validAddrSpec accepts a dot-atom local part (UTF-8 allowed, RFC 6532)
// and a host name or address literal, which can be written in a header
// and in MAIL FROM / RCPT TO without quoting.
func validAddrSpec(s string) bool {
	at := strings.LastIndexByte(s, '@')
	if at <= 0 || at == len(s)-1 || len(s) > 254 {
		return false
	}
	local, domain := s[:at], s[at+1:]
	if local[0] == '.' || local[len(local)-1] == '.' || strings.Contains(local, "..") {
		return false
	}
	for i := 0; i < len(local); i++ {
		if c := local[i]; c != '.' && !isAtext(c) && c < utf8.RuneSelf {
			return false
		}
	}
	return utf8.ValidString(s) && validDomain(domain)
}

// validDomain accepts a host name (UTF-8 labels allowed) or an address
// literal.
func validDomain(domain string) bool {
	if domain == "" || len(domain) > 255 || !utf8.ValidString(domain) {
		return false
	}
	if domain[0] == '[' {
		if domain[len(domain)-1] != ']' {
			return false
		}
		for i := 1; i < len(domain)-1; i++ {
			if c := domain[i]; c <= ' ' || c >= 0x7f || c == '[' || c == ']' || c == '\\' {
				return false
			}
		}
		return true
	}
	for i := 0; i < len(domain); i++ {
		if c := domain[i]; c < utf8.RuneSelf && !isLetDig(c) && c != '-' && c != '.' {
			return false
		}
	}
	return domain[0] != '.' && domain[len(domain)-1] != '.' && !strings.Contains(domain, "..")
}

func isDotAtom(s string) bool {
	if s == "" || s[0] == '.' || s[len(s)-1] == '.' {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c == '.' {
			if s[i-1] == '.' {
				return false
			}
			continue
		}
		if !isAtext(c) {
			return false
		}
	}
	return true
}

func isHostname(s string) bool {
	if s == "" || len(s) > 253 || s[0] == '.' || s[len(s)-1] == '.' || s[0] == '-' {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c == '.' {
			if s[i-1] == '.' {
				return false
			}
			continue
		}
		if !isLetDig(c) && c != '-' {
			return false
		}
	}
	return true
}

func isLetDig(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
}

// isAtext reports whether c is an RFC 5322 atext character (ASCII).
func isAtext(c byte) bool {
	if isLetDig(c) {
		return true
	}
	switch c {
	case '!', '#', '$', '%', '&', '\'', '*', '+', '-', '/', '=', '?', '^', '_', '`', '{', '|', '}', '~':
		return true
	}
	return false
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			return false
		}
	}
	return true
}

func hasCRLF(s string) bool { return strings.ContainsAny(s, "\r\n") }

// checkExtraHeader validates one of Message.Headers.
func checkExtraHeader(name, value string) error {
	if name == "" {
		return invalid("header with an empty name")
	}
	if len(name) > 76 {
		return invalid("header name %.40q... is too long", name)
	}
	for i := 0; i < len(name); i++ {
		// RFC 5322 §3.6.8: printable ASCII except ':'.
		if c := name[i]; c <= ' ' || c >= 0x7f || c == ':' {
			return invalid("header name %q is not a valid field name", name)
		}
	}
	if isReserved(name) {
		return invalid("header %s is set by the adapter and cannot be given in Message.Headers", name)
	}
	if hasCRLF(value) {
		return invalid("header %s has a line break in its value", name)
	}
	return nil
}

// isReserved reports whether name is a field BuildMessage writes itself
// (any case), or a Content- field.
func isReserved(name string) bool {
	for _, r := range reservedHeaders {
		if strings.EqualFold(name, r) {
			return true
		}
	}
	return len(name) >= len("content-") && strings.EqualFold(name[:len("content-")], "content-")
}

// appendAddressHeader writes "Field: name <addr>" or "Field: addr". The
// display name is a quoted string when it is printable ASCII, RFC 2047
// encoded-words otherwise.
func appendAddressHeader(dst []byte, field, name, addr string) ([]byte, error) {
	start := len(dst)
	dst = append(dst, field...)
	dst = append(dst, ": "...)
	if name == "" {
		dst = append(dst, addr...)
		dst = append(dst, "\r\n"...)
		return dst, nil
	}
	var scratch [256]byte
	v := scratch[:0]
	if needsEncoding(name) || strings.Contains(name, "=?") || !fitsLine(field, name) {
		v = appendEncodedWords(v, name)
	} else {
		v = append(v, '"')
		for i := 0; i < len(name); i++ {
			if c := name[i]; c == '"' || c == '\\' {
				v = append(v, '\\')
			}
			v = append(v, name[i])
		}
		v = append(v, '"')
	}
	v = append(v, " <"...)
	v = append(v, addr...)
	v = append(v, '>')
	dst, ok := appendFolded(dst, len(field)+2, v)
	if !ok {
		return dst[:start], invalid("%s header cannot be folded to %d characters a line", field, maxLineLen)
	}
	return dst, nil
}

// appendTextHeader writes an unstructured header (Subject), encoding it
// as RFC 2047 encoded-words when it has non-ASCII or control characters,
// when it has a word too long for a line, or when it has "=?", which a
// reader would otherwise try to decode.
func appendTextHeader(dst []byte, field, value string) ([]byte, error) {
	start := len(dst)
	dst = append(dst, field...)
	dst = append(dst, ": "...)
	var ok bool
	if needsEncoding(value) || strings.Contains(value, "=?") || !fitsLine(field, value) {
		var scratch [512]byte
		dst, ok = appendFolded(dst, len(field)+2, appendEncodedWords(scratch[:0], value))
	} else {
		dst, ok = appendFolded(dst, len(field)+2, value)
	}
	if !ok {
		return dst[:start], invalid("%s header cannot be folded to %d characters a line", field, maxLineLen)
	}
	return dst, nil
}

// appendExtraHeader writes one of Message.Headers. Their values are often
// structured (List-Unsubscribe is a list of URLs), so they are written as
// given; only a value with non-ASCII or control characters is encoded.
// A value with a word too long for a line is refused.
func appendExtraHeader(dst []byte, name, value string) ([]byte, error) {
	start := len(dst)
	dst = append(dst, name...)
	dst = append(dst, ": "...)
	var ok bool
	if needsEncoding(value) {
		var scratch [512]byte
		dst, ok = appendFolded(dst, len(name)+2, appendEncodedWords(scratch[:0], value))
	} else {
		dst, ok = appendFolded(dst, len(name)+2, value)
	}
	if !ok {
		return dst[:start], invalid("header %s has a word longer than a %d-character line", name, maxLineLen)
	}
	return dst, nil
}

// fitsLine reports whether every space-separated word of value fits on a
// header line of its own.
func fitsLine(field, value string) bool {
	limit := maxLineLen - len(field) - 2
	for len(value) > limit {
		i := strings.IndexByte(value[:limit+1], ' ')
		if i < 0 {
			return false
		}
		value = value[i+1:]
	}
	return true
}

// appendFolded appends value and CRLF, folding before spaces that have a
// non-blank character on both sides, so that lines stay under 78
// characters where possible. Folding only there is lossless: unfolding
// (RFC 5322 §2.2.3) removes the CRLF, and readers that also collapse the
// white space around a fold (net/textproto does) find exactly one space
// to collapse. It reports false when a word cannot fit in 998 characters.
func appendFolded[T string | []byte](dst []byte, used int, value T) ([]byte, bool) {
	lineLen := used
	wordStart := 0
	for i := 0; i <= len(value); i++ {
		if i < len(value) && (value[i] != ' ' || i == 0 || isWSP(value[i-1]) || i+1 == len(value) || isWSP(value[i+1])) {
			continue
		}
		// value[wordStart:i] is a word; value[i] is a fold point or the end.
		word := value[wordStart:i]
		if wordStart > 0 && lineLen+len(word) > foldAt {
			dst = append(dst, "\r\n"...)
			lineLen = 0
		}
		if lineLen+len(word) > maxLineLen {
			return dst, false
		}
		dst = append(dst, word...)
		lineLen += len(word)
		wordStart = i // the next word starts with the space
	}
	return append(dst, "\r\n"...), true
}

func isWSP(c byte) bool { return c == ' ' || c == '\t' }

// needsEncoding reports whether s has bytes a header cannot carry as they
// are: controls other than tab, DEL and non-ASCII.
func needsEncoding(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < ' ' && c != '\t' || c >= 0x7f {
			return true
		}
	}
	return false
}

// appendEncodedWords appends s as RFC 2047 "Q" encoded-words of UTF-8,
// each at most 75 characters and separated by a space, never splitting a
// character between words (§5, rule 3). It writes literally only letters,
// digits and "!*+-/", the characters allowed in an encoded-word in every
// place one may appear (a phrase is the strictest, §5 (3)), so the same
// encoding serves Subject and display names. mime.QEncoding would leave an
// ASCII string unencoded, but a subject that holds "=?" or a word too long
// for a line has to be encoded as well.
func appendEncodedWords(dst []byte, s string) []byte {
	const (
		prefix = "=?utf-8?q?"
		suffix = "?="
		room   = maxWordLen - len(prefix) - len(suffix)
	)
	n := 0
	for i := 0; i < len(s); {
		_, size := utf8.DecodeRuneInString(s[i:])
		need := 0
		for j := i; j < i+size; j++ {
			if qLiteral(s[j]) {
				need++
			} else {
				need += 3
			}
		}
		if n == 0 || n+need > room {
			if n > 0 {
				dst = append(dst, suffix+" "...)
			}
			dst = append(dst, prefix...)
			n = 0
		}
		for j := i; j < i+size; j++ {
			c := s[j]
			switch {
			case c == ' ':
				dst = append(dst, '_')
			case qLiteral(c):
				dst = append(dst, c)
			default:
				dst = append(dst, '=', upperHex[c>>4], upperHex[c&15])
			}
		}
		n += need
		i += size
	}
	if n > 0 {
		dst = append(dst, suffix...)
	}
	return dst
}

const upperHex = "0123456789ABCDEF"

// qLiteral reports whether c is written as itself in a Q encoded-word
// (space becomes "_").
func qLiteral(c byte) bool {
	return isLetDig(c) || c == ' ' || c == '!' || c == '*' || c == '+' || c == '-' || c == '/'
}

// qpClass says how appendQP writes each byte.
var qpClass = func() (t [256]uint8) {
	for c := range t {
		switch {
		case c == '\r', c == '\n':
			t[c] = qpBreak
		case c == ' ', c == '\t':
			t[c] = qpSpace
		case c >= '!' && c <= '~' && c != '=':
			t[c] = qpLiteral
		default:
			t[c] = qpEncode
		}
	}
	return t
}()

const (
	qpLiteral = iota
	qpSpace
	qpBreak
	qpEncode
)

// appendQP appends s in quoted-printable (RFC 2045 §6.7) as text: lines
// end in CRLF whatever s used (CRLF, bare LF or bare CR), encoded lines
// are at most 76 characters with soft breaks, and a space or tab before a
// line end is encoded. It does what mime/quotedprintable.Writer does but
// reads the string directly, so Send does not copy each body into a
// []byte nor allocate a writer per part.
func appendQP(dst []byte, s string) []byte {
	n := 0 // length of the current encoded line
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch qpClass[c] {
		case qpLiteral:
			if n == qpLineLen-1 {
				dst = append(dst, "=\r\n"...)
				n = 0
			}
			// Copy the run of literal bytes that fits on this line at once.
			j, end := i+1, i+qpLineLen-1-n
			for j < len(s) && j < end && qpClass[s[j]] == qpLiteral {
				j++
			}
			dst = append(dst, s[i:j]...)
			n += j - i
			i = j - 1
		case qpSpace:
			if i+1 == len(s) || qpClass[s[i+1]] == qpBreak {
				// Trailing white space would be stripped in transport.
				if n > qpLineLen-1-3 {
					dst = append(dst, "=\r\n"...)
					n = 0
				}
				dst = append(dst, '=', upperHex[c>>4], upperHex[c&15])
				n += 3
				continue
			}
			if n == qpLineLen-1 {
				dst = append(dst, "=\r\n"...)
				n = 0
			}
			dst = append(dst, c)
			n++
		case qpBreak:
			if c == '\r' && i+1 < len(s) && s[i+1] == '\n' {
				i++
			}
			dst = append(dst, "\r\n"...)
			n = 0
		default:
			if n > qpLineLen-1-3 {
				dst = append(dst, "=\r\n"...)
				n = 0
			}
			dst = append(dst, '=', upperHex[c>>4], upperHex[c&15])
			n += 3
		}
	}
	return dst
}
