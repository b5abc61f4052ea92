package render

import (
	"errors"
	"fmt"
	htmltemplate "html/template"
	"regexp"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Kind is what a template part is written in.
type Kind int

const (
	// Text parts are filled without escaping: subjects, plain-text bodies, SMS.
	Text Kind = iota
	// HTML parts are escaped for the context each value lands in.
	HTML
)

// Error is a template that does not parse, with where.
type Error struct {
	// Line and Column are 1-based; Column counts characters (runes).
	Line, Column int
	Message      string
}

func (e *Error) Error() string {
	return fmt.Sprintf("line %d, column %d: %s", e.Line, e.Column, e.Message)
}

// Template is a parsed template part. It is immutable and safe for
// concurrent use.
type Template struct {
	kind      Kind
	parts     []part
	html      *htmltemplate.Template
	variables []string
}

// part is literal text or a placeholder.
type part struct {
	text     string
	variable string // "" for literal text
	filters  []filter
}

type filter struct {
	name string
	arg  string
}

// variables the language knows; contact.attributes.* is matched apart.
var knownVariables = map[string]bool{
	"contact.email": true, "contact.phone": true, "contact.firstName": true, "contact.lastName": true,
	"contact.fullName": true, "contact.locale": true, "contact.timeZone": true, "contact.tags": true,
	"campaign.id": true, "campaign.name": true, "message.id": true, "unsubscribeUrl": true,
}

var attributePath = regexp.MustCompile(`^contact\.attributes\.[A-Za-z][A-Za-z0-9_-]{0,63}$`)

// KnownVariable reports whether name is a variable templates may use.
func KnownVariable(name string) bool { return knownVariables[name] || attributePath.MatchString(name) }

var filterArity = map[string]bool{"default": true, "upper": false, "lower": false, "capitalize": false}

// maxSource bounds a template part: a 5 KB newsletter is far below it.
const maxSource = 512 << 10

// Parse checks src and prepares it for rendering.
func Parse(src string, kind Kind) (*Template, error) {
	if len(src) > maxSource {
		return nil, &Error{Line: 1, Column: 1, Message: fmt.Sprintf("the template is longer than %d bytes", maxSource)}
	}
	if !utf8.ValidString(src) {
		return nil, &Error{Line: 1, Column: 1, Message: "the template is not valid UTF-8"}
	}
	p := &parser{src: src}
	parts, err := p.parse()
	if err != nil {
		return nil, err
	}
	t := &Template{kind: kind, parts: parts}
	seen := map[string]bool{}
	for _, pt := range parts {
		if pt.variable != "" && !seen[pt.variable] {
			seen[pt.variable] = true
			t.variables = append(t.variables, pt.variable)
		}
	}
	if kind == HTML {
		if t.html, err = compileHTML(parts); err != nil {
			return nil, err
		}
	}
	return t, nil
}

// Variables lists the variables the template uses, in order of first use.
func (t *Template) Variables() []string { return append([]string(nil), t.variables...) }

type parser struct {
	src  string
	pos  int
	line int
	col  int
}

// errAt returns an Error at byte offset off of the source.
func (p *parser) errAt(off int, format string, args ...any) *Error {
	line, col := 1, 1
	for _, r := range p.src[:off] {
		if r == '\n' {
			line, col = line+1, 1
		} else {
			col++
		}
	}
	return &Error{Line: line, Column: col, Message: fmt.Sprintf(format, args...)}
}

func (p *parser) parse() ([]part, error) {
	var parts []part
	var lit strings.Builder
	s := p.src
	for i := 0; i < len(s); {
		switch {
		case strings.HasPrefix(s[i:], `\{{`):
			lit.WriteString("{{")
			i += 3
		case strings.HasPrefix(s[i:], "{{"):
			end := strings.Index(s[i+2:], "}}")
			if end < 0 {
				return nil, p.errAt(i, "placeholder opened here is never closed with }}")
			}
			if nl := strings.IndexByte(s[i+2:i+2+end], '\n'); nl >= 0 {
				return nil, p.errAt(i, "placeholder opened here is not closed on the same line")
			}
			pt, err := p.placeholder(i+2, s[i+2:i+2+end])
			if err != nil {
				return nil, err
			}
			if lit.Len() > 0 {
				parts = append(parts, part{text: lit.String()})
				lit.Reset()
			}
			parts = append(parts, pt)
			i += 2 + end + 2
		default:
			lit.WriteByte(s[i])
			i++
		}
	}
	if lit.Len() > 0 {
		parts = append(parts, part{text: lit.String()})
	}
	return parts, nil
}

// placeholder parses the inside of {{ }} starting at byte offset off.
func (p *parser) placeholder(off int, in string) (part, error) {
	i := 0
	skip := func() {
		for i < len(in) && (in[i] == ' ' || in[i] == '\t') {
			i++
		}
	}
	word := func() string {
		start := i
		for i < len(in) {
			c := in[i]
			if c == '.' || c == '_' || c == '-' || c < utf8.RuneSelf && (unicode.IsLetter(rune(c)) || unicode.IsDigit(rune(c))) {
				i++
				continue
			}
			break
		}
		return in[start:i]
	}
	skip()
	name := word()
	if name == "" {
		return part{}, p.errAt(off+i, "a placeholder needs a variable such as contact.firstName")
	}
	if !KnownVariable(name) {
		return part{}, p.errAt(off+i-len(name), "unknown variable %q; use %s", name, variableHint(name))
	}
	pt := part{variable: name}
	for {
		skip()
		if i == len(in) {
			return pt, nil
		}
		if in[i] != '|' {
			return part{}, p.errAt(off+i, "expected | and a filter, or }} (found %q)", in[i:i+1])
		}
		i++
		skip()
		fname := word()
		arity, ok := filterArity[fname]
		if !ok {
			return part{}, p.errAt(off+i-len(fname), "unknown filter %q; use default: \"text\", upper, lower or capitalize", fname)
		}
		f := filter{name: fname}
		skip()
		if arity {
			if i == len(in) || in[i] != ':' {
				return part{}, p.errAt(off+i, "%s needs a value: %s: \"text\"", fname, fname)
			}
			i++
			skip()
			arg, n, err := quoted(in[i:])
			if err != "" {
				return part{}, p.errAt(off+i, "%s", err)
			}
			f.arg = arg
			i += n
		}
		pt.filters = append(pt.filters, f)
	}
}

// quoted reads a double-quoted string with \" and \\ escapes at the start
// of s, returning it and the bytes it took.
func quoted(s string) (string, int, string) {
	if s == "" || s[0] != '"' {
		return "", 0, `a filter value is a double-quoted string, e.g. "friend"`
	}
	var b strings.Builder
	for i := 1; i < len(s); i++ {
		switch s[i] {
		case '\\':
			if i+1 < len(s) && (s[i+1] == '"' || s[i+1] == '\\') {
				b.WriteByte(s[i+1])
				i++
				continue
			}
			return "", 0, `in a filter value, \ escapes only " and \`
		case '"':
			return b.String(), i + 1, ""
		default:
			b.WriteByte(s[i])
		}
	}
	return "", 0, "a filter value's closing quote is missing"
}

func variableHint(name string) string {
	if strings.HasPrefix(name, "contact.attributes.") {
		return "contact.attributes.NAME, NAME a letter then up to 63 letters, digits, _ or -"
	}
	return "contact.email, contact.phone, contact.firstName, contact.lastName, contact.fullName, contact.locale, " +
		"contact.timeZone, contact.tags, contact.attributes.NAME, campaign.id, campaign.name, message.id or unsubscribeUrl"
}

// compileHTML turns parts into an html/template in which each placeholder
// is a call of the execution's V method with the placeholder's index (so
// one compiled template serves every message, concurrently), and executes
// it once on empty data: the
// contextual escaper reports then (not at parse) a placeholder it cannot
// escape, such as one inside a <script> or an attribute name.
func compileHTML(parts []part) (*htmltemplate.Template, error) {
	var b strings.Builder
	for i, pt := range parts {
		if pt.variable == "" {
			// Literal text may hold "{{" (written \{{): quote it for html/template.
			b.WriteString(strings.ReplaceAll(pt.text, "{{", `{{"{{"}}`))
			continue
		}
		fmt.Fprintf(&b, "{{.V %d}}", i)
	}
	lines := strings.Count(b.String(), "\n") + 1
	t, err := htmltemplate.New("t").Parse(b.String())
	if err != nil {
		return nil, htmlError(err, lines)
	}
	if err := t.Execute(discard{}, &execution{t: &Template{parts: parts}, data: &Data{}}); err != nil {
		return nil, htmlError(err, lines)
	}
	return t, nil
}

type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }

// htmlError reports an html/template complaint; its line is the template's
// (placeholders never span lines, so lines match the source). A template
// ending inside a tag or attribute has no line of its own: the last one is
// where it should have been closed.
func htmlError(err error, lines int) error {
	var he *htmltemplate.Error
	if !errors.As(err, &he) {
		return &Error{Line: 1, Column: 1, Message: "the HTML does not parse: " + err.Error()}
	}
	if he.ErrorCode == htmltemplate.ErrEndContext {
		return &Error{Line: lines, Column: 1, Message: "the HTML ends inside a tag, an attribute or a comment that is never closed, so placeholders in it cannot be escaped safely"}
	}
	return &Error{Line: max(he.Line, 1), Column: 1, Message: "the HTML around a placeholder cannot be escaped safely: " + he.Description}
}

// Render fills the template with data. defaults supplies a value for a
// variable that is missing (after the placeholder's own default filter).
func (t *Template) Render(data *Data, defaults map[string]string) (string, error) {
	x := &execution{t: t, data: data, defaults: defaults}
	var b strings.Builder
	if t.kind == Text {
		for i, pt := range t.parts {
			if pt.variable == "" {
				b.WriteString(pt.text)
			} else {
				b.WriteString(x.V(i))
			}
		}
		return b.String(), nil
	}
	if err := t.html.Execute(&b, x); err != nil {
		return "", fmt.Errorf("render html: %w", err)
	}
	return b.String(), nil
}

// execution is one rendering: the dot of the HTML template.
type execution struct {
	t        *Template
	data     *Data
	defaults map[string]string
}

// V is placeholder i's value, filters and defaults applied.
func (x *execution) V(i int) string {
	pt := x.t.parts[i]
	v := x.data.lookup(pt.variable)
	for _, f := range pt.filters {
		switch f.name {
		case "default":
			if v == "" {
				v = f.arg
			}
		case "upper":
			v = strings.ToUpper(v)
		case "lower":
			v = strings.ToLower(v)
		case "capitalize":
			if r, n := utf8.DecodeRuneInString(v); n > 0 {
				v = string(unicode.ToTitle(r)) + v[n:]
			}
		}
	}
	if v == "" {
		v = x.defaults[pt.variable]
	}
	return v
}

// Data is what placeholders read.
type Data struct {
	Contact        Contact
	CampaignID     string
	CampaignName   string
	MessageID      string
	UnsubscribeURL string
}

// Contact is the recipient as templates see it.
type Contact struct {
	Email, Phone, FirstName, LastName, Locale, TimeZone string
	Tags                                                []string
	// Attributes hold decoded JSON scalars: string, float64, bool (or nil).
	Attributes map[string]any
}

func (d *Data) lookup(name string) string {
	c := &d.Contact
	switch name {
	case "contact.email":
		return c.Email
	case "contact.phone":
		return c.Phone
	case "contact.firstName":
		return c.FirstName
	case "contact.lastName":
		return c.LastName
	case "contact.fullName":
		return strings.TrimSpace(c.FirstName + " " + c.LastName)
	case "contact.locale":
		return c.Locale
	case "contact.timeZone":
		return c.TimeZone
	case "contact.tags":
		return strings.Join(c.Tags, ", ")
	case "campaign.id":
		return d.CampaignID
	case "campaign.name":
		return d.CampaignName
	case "message.id":
		return d.MessageID
	case "unsubscribeUrl":
		return d.UnsubscribeURL
	}
	if key, ok := strings.CutPrefix(name, "contact.attributes."); ok {
		switch v := c.Attributes[key].(type) {
		case string:
			return v
		case float64:
			return strconv.FormatFloat(v, 'f', -1, 64)
		case bool:
			return strconv.FormatBool(v)
		}
	}
	return ""
}
