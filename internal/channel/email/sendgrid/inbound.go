package sendgrid

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"mime"
	"mime/multipart"
	"net/http"
	"net/mail"
	"net/textproto"
	"sort"
	"strconv"
	"strings"
)

// ErrTooLarge is wrapped, beside ErrInvalidWebhook, by the errors of
// ParseInbound for a form whose text fields exceed maxMemory, that has
// more than MaxParts parts, or whose body hit the request's
// http.MaxBytesReader limit. A handler answers it with 413.
var ErrTooLarge = errors.New("sendgrid: inbound form too large")

// DefaultMaxMemory is the text-field budget of ParseInbound when it is
// given maxMemory <= 0: above the 30 MB SendGrid gives as the most a
// whole message (attachments included) should weigh, so that no message
// SendGrid parses is refused for its text.
const DefaultMaxMemory = 32 << 20

// MaxParts bounds the parts of one form: the two dozen fields SendGrid
// posts and the attachments of a message.
const MaxParts = 1000

// Inbound is one email received through Inbound Parse.
type Inbound struct {
	// From is the sender, from the message's From header; when that is
	// missing or cannot be read as an address, the envelope sender.
	From mail.Address
	// To and Cc are the recipients the message's headers name. When the
	// To header is missing or names no address that can be read (a Bcc,
	// "undisclosed-recipients:;"), To holds the envelope recipients
	// instead, which are the addresses at the parse domain the message
	// was delivered to.
	To []mail.Address
	Cc []mail.Address
	// Subject, Text and HTML are the message's subject and its plain-text
	// and HTML bodies, in UTF-8 where their charset allows (see
	// Charsets); Text or HTML is empty when the message has no such part.
	Subject string
	Text    string
	HTML    string
	// Headers are the message's header fields. Lines that are not header
	// fields are skipped.
	Headers textproto.MIMEHeader
	// MessageID is the Message-ID header, InReplyTo the first message ID
	// of In-Reply-To, and References the message IDs of References, in
	// order, all without angle brackets: a reply names the message it
	// answers in InReplyTo and its thread in References.
	MessageID  string
	InReplyTo  string
	References []string
	// Envelope is the SMTP envelope SendGrid received the message with.
	Envelope Envelope
	// SpamChecked says whether SendGrid scored the message (the parse
	// setting's spam check is on); SpamScore and SpamReport are
	// SpamAssassin's score and report then.
	SpamChecked bool
	SpamScore   float64
	SpamReport  string
	// SPF and DKIM are SendGrid's verification results, as it words them
	// ("pass", "{@example.com : pass}").
	SPF  string
	DKIM string
	// SenderIP is the address of the server that delivered the message.
	SenderIP string
	// Charsets are the charsets SendGrid reports for the fields (to, cc,
	// from, subject, text, html). Fields in UTF-8, US-ASCII, ISO-8859-1 or
	// Windows-1252 have been decoded to UTF-8; fields in any other charset
	// are left as the bytes received, and this map says which charset
	// they are in.
	Charsets map[string]string
	// Attachments describe the attachments, in order. Their contents are
	// not kept.
	Attachments []Attachment
}

// Envelope is the SMTP envelope of an inbound message.
type Envelope struct {
	// To are the RCPT TO addresses.
	To []string
	// From is the MAIL FROM (return path); empty for a bounce.
	From string
}

// Attachment describes one attachment of an inbound message.
type Attachment struct {
	// Field is the form field it was posted as: attachment1, ...
	Field string
	// Filename and ContentType are the attachment's name and media type,
	// as SendGrid's attachment-info gives them (else as the form part
	// does); ContentID is the Content-ID an HTML body refers to an inline
	// image by ("cid:..."), when there is one.
	Filename    string
	ContentType string
	ContentID   string
	// Size is the attachment's size in bytes.
	Size int64
}

// textFields are the form fields ParseInbound reads; other fields and
// file parts are read through and dropped.
var textFields = map[string]bool{
	"from": true, "to": true, "cc": true, "subject": true, "text": true, "html": true,
	"headers": true, "envelope": true, "charsets": true, "spam_score": true, "spam_report": true,
	"SPF": true, "dkim": true, "sender_ip": true, "attachments": true, "attachment-info": true,
	"content-ids": true,
}

// ParseInbound reads an Inbound Parse POST: multipart/form-data with the
// message's from, to, cc, subject, text, html and headers, and SendGrid's
// envelope, charsets, spam_score, spam_report, SPF, dkim, sender_ip,
// attachments, attachment-info and content-ids, and the attachments as
// file parts attachment1..N. It reads the body as a stream: the text
// fields are kept, up to maxMemory bytes in all (DefaultMaxMemory when
// maxMemory <= 0); attachment bodies are counted and dropped, never held
// in memory or written to disk. Bound the whole body with
// http.MaxBytesReader.
//
// The fields SendGrid writes (envelope, charsets, attachment-info,
// content-ids, spam_score, attachments) must be well-formed. The fields
// copied from the sender's message are taken as they come, since a badly
// formed message is still mail someone sent: From falls back to the
// envelope sender and To to the envelope recipients, and the request is
// refused only when neither names a sender, or a recipient. Every error
// wraps ErrInvalidWebhook (and ErrTooLarge for size limits). A post made
// with "Send Raw" (the whole MIME message in one "email" field) is
// refused: configure the parse setting without it.
func ParseInbound(r *http.Request, maxMemory int64) (Inbound, error) {
	if maxMemory <= 0 {
		maxMemory = DefaultMaxMemory
	}
	mediaType, params, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	switch {
	case err != nil || mediaType != "multipart/form-data":
		return Inbound{}, badInbound("the body is not multipart/form-data (Content-Type %.80q)", r.Header.Get("Content-Type"))
	case params["boundary"] == "":
		return Inbound{}, badInbound("the multipart/form-data Content-Type has no boundary")
	case r.Body == nil:
		return Inbound{}, badInbound("the request has no body")
	}
	body := &closingReader{r: r.Body, delimiter: []byte("--" + params["boundary"] + "--")}
	f, err := readForm(multipart.NewReader(body, params["boundary"]), maxMemory)
	if err != nil {
		return Inbound{}, err
	}
	switch {
	case !body.seen && f.parts == 0:
		return Inbound{}, badInbound("the body holds no form part delimited by the boundary %.80q", params["boundary"])
	case !body.seen:
		// multipart.Reader reports a body cut inside a part's header as
		// the end of the form.
		return Inbound{}, badInbound("the body ends before the form's closing boundary: it was cut short")
	}
	return f.inbound()
}

// closingReader reads the request body and notes whether the form's
// closing delimiter ("--boundary--") went past.
type closingReader struct {
	r         io.Reader
	delimiter []byte
	seen      bool
	// tail holds the last len(delimiter)-1 bytes read, for a delimiter
	// split between two reads; scratch is reused to join them.
	tail, scratch []byte
}

func (c *closingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	if n > 0 && !c.seen {
		chunk, keep := p[:n], len(c.delimiter)-1
		c.scratch = append(append(c.scratch[:0], c.tail...), chunk[:min(n, keep)]...)
		c.seen = bytes.Contains(c.scratch, c.delimiter) || bytes.Contains(chunk, c.delimiter)
		c.tail = append(c.tail, chunk[max(0, n-keep):]...)
		c.tail = c.tail[max(0, len(c.tail)-keep):]
	}
	return n, err
}

// form is what readForm keeps of the multipart body.
type form struct {
	parts       int
	values      map[string]string
	attachments map[int]Attachment
	// rawEmail is set when the form has an "email" field: a Send Raw post.
	rawEmail bool
}

func readForm(mr *multipart.Reader, maxMemory int64) (*form, error) {
	budget := maxMemory
	f := &form{values: map[string]string{}, attachments: map[int]Attachment{}}
	for {
		p, err := mr.NextPart()
		if errors.Is(err, io.EOF) {
			// The closing delimiter, or the body ended without one: the
			// caller tells them apart.
			return f, nil
		}
		if err != nil {
			return nil, readError(err)
		}
		if f.parts == MaxParts {
			return nil, tooLarge("the form has more than %d parts", MaxParts)
		}
		f.parts++
		name := p.FormName()
		f.rawEmail = f.rawEmail || name == "email"
		if n, ok := attachmentNumber(name); ok {
			if _, dup := f.attachments[n]; dup {
				return nil, badInbound("%s is posted twice", name)
			}
			size, err := io.Copy(io.Discard, p)
			if err != nil {
				return nil, readError(err)
			}
			f.attachments[n] = Attachment{
				Field: name, Filename: decodeWords(p.FileName()),
				ContentType: p.Header.Get("Content-Type"), Size: size,
			}
			continue
		}
		if !textFields[name] || p.FileName() != "" {
			if _, err := io.Copy(io.Discard, p); err != nil {
				return nil, readError(err)
			}
			continue
		}
		if _, dup := f.values[name]; dup {
			return nil, badInbound("field %s is posted twice", name)
		}
		b, err := io.ReadAll(io.LimitReader(p, budget+1))
		if err != nil {
			return nil, readError(err)
		}
		if int64(len(b)) > budget {
			return nil, tooLarge("the text fields are larger than %d bytes", maxMemory)
		}
		budget -= int64(len(b))
		f.values[name] = string(b)
	}
}

// attachmentNumber reads N from a field name "attachmentN" (N >= 1, no
// leading zeros).
func attachmentNumber(name string) (int, bool) {
	digits, ok := strings.CutPrefix(name, "attachment")
	if !ok || digits == "" || len(digits) > 6 || digits[0] == '0' || !allDigits(digits) {
		return 0, false
	}
	n, err := strconv.Atoi(digits)
	return n, err == nil
}

func (f *form) inbound() (Inbound, error) {
	if _, parsed := f.values["headers"]; f.rawEmail && !parsed {
		return Inbound{}, badInbound(`this is a "Send Raw" post (the whole message in the email field); configure the Inbound Parse setting without Send Raw`)
	}
	in := Inbound{
		SpamReport: f.values["spam_report"],
		SPF:        strings.TrimSpace(f.values["SPF"]),
		DKIM:       strings.TrimSpace(f.values["dkim"]),
		SenderIP:   strings.TrimSpace(f.values["sender_ip"]),
	}

	// The fields SendGrid writes.
	if raw := strings.TrimSpace(f.values["charsets"]); raw != "" {
		if err := json.Unmarshal([]byte(raw), &in.Charsets); err != nil {
			return Inbound{}, badInbound("charsets is not a JSON object of charset names: %v", jsonProblem(err))
		}
	}
	if raw := strings.TrimSpace(f.values["envelope"]); raw != "" {
		var env struct {
			To   []string `json:"to"`
			From string   `json:"from"`
		}
		if err := json.Unmarshal([]byte(raw), &env); err != nil {
			return Inbound{}, badInbound(`envelope is not a JSON object {"to":[...],"from":"..."}: %v`, jsonProblem(err))
		}
		in.Envelope.From = stripAngles(env.From)
		for _, a := range env.To {
			if a = stripAngles(a); a != "" {
				in.Envelope.To = append(in.Envelope.To, a)
			}
		}
	}
	if raw := strings.TrimSpace(f.values["spam_score"]); raw != "" {
		score, err := strconv.ParseFloat(raw, 64)
		if err != nil || math.IsNaN(score) || math.IsInf(score, 0) {
			return Inbound{}, badInbound("spam_score %.20q is not a number", raw)
		}
		in.SpamChecked, in.SpamScore = true, score
	}
	if raw := strings.TrimSpace(f.values["attachments"]); raw != "" {
		if n, err := strconv.Atoi(raw); err != nil || n < 0 {
			return Inbound{}, badInbound("attachments %.20q is not a count", raw)
		}
	}
	attachments, err := f.attachmentList()
	if err != nil {
		return Inbound{}, err
	}
	in.Attachments = attachments

	// The fields copied from the message.
	field := func(name string) string {
		s, _ := decodeCharset(in.Charsets[name], f.values[name])
		return s
	}
	in.Subject = decodeWords(strings.TrimSpace(field("subject")))
	in.Text, in.HTML = field("text"), field("html")
	in.Headers = parseHeaders(f.values["headers"])
	in.MessageID = firstOf(msgIDs(in.Headers.Get("Message-Id")))
	in.InReplyTo = firstOf(msgIDs(in.Headers.Get("In-Reply-To")))
	in.References = msgIDs(strings.Join(in.Headers.Values("References"), " "))
	in.Cc = parseAddressList(field("cc"))

	from := strings.TrimSpace(field("from"))
	switch a, ok := parseAddress(from); {
	case ok:
		in.From = a
	case in.Envelope.From != "":
		in.From = mail.Address{Address: in.Envelope.From}
	case from == "":
		return Inbound{}, badInbound("from is missing, and the envelope has no sender")
	default:
		return Inbound{}, badInbound("from %.80q is not an email address, and the envelope has no sender", from)
	}

	to := strings.TrimSpace(field("to"))
	if in.To = parseAddressList(to); len(in.To) == 0 {
		for _, a := range in.Envelope.To {
			in.To = append(in.To, mail.Address{Address: a})
		}
	}
	if len(in.To) == 0 {
		if to == "" {
			return Inbound{}, badInbound("to is missing, and the envelope has no recipient")
		}
		return Inbound{}, badInbound("to %.80q names no email address, and the envelope has no recipient", to)
	}
	return in, nil
}

// attachmentList orders the posted attachments and completes them from
// attachment-info and content-ids.
func (f *form) attachmentList() ([]Attachment, error) {
	var info map[string]struct {
		Filename  string `json:"filename"`
		Name      string `json:"name"`
		Type      string `json:"type"`
		ContentID string `json:"content-id"`
	}
	if raw := strings.TrimSpace(f.values["attachment-info"]); raw != "" {
		if err := json.Unmarshal([]byte(raw), &info); err != nil {
			return nil, badInbound(`attachment-info is not a JSON object {"attachment1":{"filename":...,"type":...}}: %v`, jsonProblem(err))
		}
	}
	var cids map[string]string // content-id -> field
	if raw := strings.TrimSpace(f.values["content-ids"]); raw != "" {
		if err := json.Unmarshal([]byte(raw), &cids); err != nil {
			return nil, badInbound(`content-ids is not a JSON object {"<content-id>":"attachment1"}: %v`, jsonProblem(err))
		}
	}
	if len(f.attachments) == 0 {
		return nil, nil
	}
	nums := make([]int, 0, len(f.attachments))
	for n := range f.attachments {
		nums = append(nums, n)
	}
	sort.Ints(nums)
	out := make([]Attachment, 0, len(nums))
	for _, n := range nums {
		a := f.attachments[n]
		if i, ok := info[a.Field]; ok {
			if name := firstNonEmpty(i.Filename, i.Name); name != "" {
				a.Filename = name
			}
			if i.Type != "" {
				a.ContentType = i.Type
			}
			a.ContentID = stripAngles(i.ContentID)
		}
		if a.ContentID == "" {
			for cid, field := range cids {
				if field == a.Field {
					a.ContentID = stripAngles(cid)
					break
				}
			}
		}
		out = append(out, a)
	}
	return out, nil
}

// parseHeaders reads the raw header block of the headers field. Lines
// that are not "Name: value" (with a name net/textproto accepts) or the
// continuation of such a line are skipped, so that one broken line does
// not cost the Message-ID after it.
func parseHeaders(raw string) textproto.MIMEHeader {
	var b strings.Builder
	keep := false
	for line := range strings.SplitSeq(strings.TrimLeft(raw, "\r\n"), "\n") {
		line = strings.TrimRight(line, "\r")
		if line == "" {
			break // the end of the header block
		}
		if line[0] == ' ' || line[0] == '\t' {
			if keep {
				b.WriteString(line)
				b.WriteString("\r\n")
			}
			continue
		}
		i := strings.IndexByte(line, ':')
		keep = i > 0 && isToken(line[:i])
		if keep {
			b.WriteString(line)
			b.WriteString("\r\n")
		}
	}
	b.WriteString("\r\n")
	h, _ := textproto.NewReader(bufio.NewReader(strings.NewReader(b.String()))).ReadMIMEHeader()
	if h == nil {
		h = textproto.MIMEHeader{}
	}
	return h
}

// isToken reports whether s is an HTTP token, the header names
// net/textproto accepts.
func isToken(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c <= ' ' || c >= 0x7f || strings.IndexByte(`"(),/:;<=>?@[\]{}`, c) >= 0 {
			return false
		}
	}
	return s != ""
}

// msgIDs returns the message IDs in a Message-ID, In-Reply-To or
// References value, without angle brackets. A value without any "<...>"
// (a broken mailer's) yields its words that hold an "@".
func msgIDs(s string) []string {
	var ids []string
	for rest := s; ; {
		i := strings.IndexByte(rest, '<')
		if i < 0 {
			break
		}
		j := strings.IndexByte(rest[i+1:], '>')
		if j < 0 {
			break
		}
		if id := strings.TrimSpace(rest[i+1 : i+1+j]); id != "" {
			ids = append(ids, id)
		}
		rest = rest[i+1+j+1:]
	}
	if len(ids) == 0 {
		for _, w := range strings.Fields(s) {
			if strings.Contains(w, "@") && !strings.ContainsAny(w, "<>") {
				ids = append(ids, w)
			}
		}
	}
	return ids
}

func firstOf(ss []string) string {
	if len(ss) == 0 {
		return ""
	}
	return ss[0]
}

func firstNonEmpty(ss ...string) string {
	for _, s := range ss {
		if s != "" {
			return s
		}
	}
	return ""
}

var wordDecoder = &mime.WordDecoder{CharsetReader: charsetReader}

var addressParser = &mail.AddressParser{WordDecoder: wordDecoder}

// decodeWords decodes RFC 2047 encoded-words ("=?utf-8?q?...?="), leaving
// s as it is when they cannot be decoded.
func decodeWords(s string) string {
	if !strings.Contains(s, "=?") {
		return s
	}
	if d, err := wordDecoder.DecodeHeader(s); err == nil {
		return d
	}
	return s
}

// parseAddress reads one address. Beyond RFC 5322 it accepts what
// broken mailers write: an address in angle brackets after a display
// name net/mail refuses, or a bare address after words.
func parseAddress(s string) (mail.Address, bool) {
	s = strings.TrimSpace(s)
	if s == "" {
		return mail.Address{}, false
	}
	if a, err := addressParser.Parse(s); err == nil {
		return *a, true
	}
	if i := strings.LastIndexByte(s, '<'); i >= 0 {
		if j := strings.IndexByte(s[i:], '>'); j > 0 {
			if addr := strings.TrimSpace(s[i+1 : i+j]); looseAddress(addr) {
				return mail.Address{Name: displayName(s[:i]), Address: addr}, true
			}
		}
		return mail.Address{}, false
	}
	if words := strings.Fields(s); len(words) > 0 {
		if addr := strings.Trim(words[len(words)-1], `"'(),;`); looseAddress(addr) {
			return mail.Address{Name: displayName(strings.Join(words[:len(words)-1], " ")), Address: addr}, true
		}
	}
	return mail.Address{}, false
}

func displayName(s string) string {
	return decodeWords(strings.TrimSpace(strings.Trim(strings.TrimSpace(s), `"'`)))
}

// looseAddress reports whether s looks like local@domain: one "@", both
// sides non-empty, no spaces, controls, brackets or quotes.
func looseAddress(s string) bool {
	at := strings.IndexByte(s, '@')
	if at <= 0 || at == len(s)-1 || strings.Count(s, "@") != 1 || len(s) > 320 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; c <= ' ' || c == 0x7f || strings.IndexByte(`<>"(),;:[]\`, c) >= 0 {
			return false
		}
	}
	return true
}

// parseAddressList reads a list of addresses; entries that cannot be
// read as addresses are skipped.
func parseAddressList(s string) []mail.Address {
	s = strings.TrimSpace(s)
	if s == "" {
		return nil
	}
	if list, err := addressParser.ParseList(s); err == nil {
		out := make([]mail.Address, 0, len(list))
		for _, a := range list {
			out = append(out, *a)
		}
		return out
	}
	var out []mail.Address
	for _, part := range splitAddresses(s) {
		if a, ok := parseAddress(part); ok {
			out = append(out, a)
		}
	}
	return out
}

// splitAddresses splits a list at the commas that are outside quotes and
// angle brackets.
func splitAddresses(s string) []string {
	var parts []string
	quoted, angle, start := false, false, 0
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '\\' && quoted:
			i++
		case c == '"':
			quoted = !quoted
		case c == '<' && !quoted:
			angle = true
		case c == '>' && !quoted:
			angle = false
		case (c == ',' || c == ';') && !quoted && !angle:
			parts = append(parts, s[start:i])
			start = i + 1
		}
	}
	return append(parts, s[start:])
}

// readError classes an error reading the body.
func readError(err error) error {
	var maxBytes *http.MaxBytesError
	if errors.As(err, &maxBytes) {
		return fmt.Errorf("%w: %w: inbound: the body is larger than %d bytes: %w", ErrInvalidWebhook, ErrTooLarge, maxBytes.Limit, err)
	}
	if errors.Is(err, multipart.ErrMessageTooLarge) {
		return fmt.Errorf("%w: %w: inbound: %w", ErrInvalidWebhook, ErrTooLarge, err)
	}
	return fmt.Errorf("%w: inbound: reading the form: %w", ErrInvalidWebhook, err)
}

func badInbound(format string, args ...any) error {
	return fmt.Errorf("%w: inbound: %s", ErrInvalidWebhook, fmt.Sprintf(format, args...))
}

func tooLarge(format string, args ...any) error {
	return fmt.Errorf("%w: %w: inbound: %s", ErrInvalidWebhook, ErrTooLarge, fmt.Sprintf(format, args...))
}
