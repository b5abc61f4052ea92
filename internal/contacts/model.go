package contacts

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/mail"
	"regexp"
	"slices"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/alumoutreach/alumoutreach/internal/event"
	"github.com/alumoutreach/alumoutreach/internal/platform/fault"
)

// ErrNotFound is returned for a contact id the tenant does not have.
var ErrNotFound = errors.New("contact not found")

// Limits on what one contact may hold. They keep a contact row, and the
// events that carry it, far below the event size limit.
const (
	maxNameLen       = 200
	maxAttributes    = 100
	maxAttrValueLen  = 2000
	maxTags          = 200
	maxTagLen        = 64
	maxProofLen      = 2000
	maxSourceLen     = 100
	maxEmailLen      = 254
	minPhoneDigits   = 8
	maxPhoneDigits   = 15
	attributeKeyDesc = "a letter followed by up to 63 letters, digits, '_' or '-'"
)

var (
	attributeKeyPattern = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9_-]{0,63}$`)
	// A BCP 47 language tag in its common shapes: "en", "en-GB", "zh-Hant-TW".
	localePattern = regexp.MustCompile(`^[A-Za-z]{2,3}(-[A-Za-z0-9]{2,8}){0,3}$`)
)

// Contact is one person of a tenant, as the API returns it.
type Contact struct {
	ID         string                     `json:"id"`
	Email      string                     `json:"email,omitempty"`
	Phone      string                     `json:"phone,omitempty"`
	FirstName  string                     `json:"firstName,omitempty"`
	LastName   string                     `json:"lastName,omitempty"`
	Locale     string                     `json:"locale,omitempty"`
	TimeZone   string                     `json:"timeZone,omitempty"`
	Attributes map[string]json.RawMessage `json:"attributes"`
	Tags       []string                   `json:"tags"`
	Consent    map[string]Consent         `json:"consent"`
	// Source says how the contact arrived: "api", "import", "upsert", ...
	Source    string     `json:"source,omitempty"`
	Version   int64      `json:"version"`
	CreatedAt time.Time  `json:"createdAt"`
	UpdatedAt time.Time  `json:"updatedAt"`
	ErasedAt  *time.Time `json:"erasedAt,omitempty"`
}

// Erased reports whether the contact's personal data was erased.
func (c *Contact) Erased() bool { return c.ErasedAt != nil }

// Consent is the latest decision of a contact on one channel.
type Consent struct {
	Granted bool   `json:"granted"`
	Source  string `json:"source"`
	Proof   string `json:"proof,omitempty"`
	// At is when the contact decided (for imports, possibly long ago).
	At time.Time `json:"at"`
}

// ConsentInput is a consent decision as a caller sends it.
type ConsentInput struct {
	Granted bool   `json:"granted"`
	Source  string `json:"source"`
	Proof   string `json:"proof,omitempty"`
	// At defaults to the time of the request.
	At *time.Time `json:"at,omitempty"`
}

// Fields are the profile fields and attributes a create, upsert or patch
// sets. A nil pointer leaves a field alone; a pointer to "" clears it. In
// Attributes a JSON null removes the attribute.
type Fields struct {
	Email      *string
	Phone      *string
	FirstName  *string
	LastName   *string
	Locale     *string
	TimeZone   *string
	Attributes map[string]json.RawMessage
}

// Input is a create or upsert: fields plus the tags and consent a new
// contact starts with.
type Input struct {
	Fields
	Tags    []string
	Consent map[string]ConsentInput
	// Source says how the contact arrived; "api" when empty.
	Source string
}

// profileFields names the settable profile fields, in the order errors and
// change lists use.
var profileFields = []string{"email", "phone", "firstName", "lastName", "locale", "timeZone"}

// field returns the pointer of a profile field by its JSON name.
func (f *Fields) field(name string) **string {
	switch name {
	case "email":
		return &f.Email
	case "phone":
		return &f.Phone
	case "firstName":
		return &f.FirstName
	case "lastName":
		return &f.LastName
	case "locale":
		return &f.Locale
	case "timeZone":
		return &f.TimeZone
	}
	return nil
}

// decodeObject reads body as one JSON object into its members, with errors
// that say what to fix.
func decodeObject(body []byte) (map[string]json.RawMessage, error) {
	var m map[string]json.RawMessage
	dec := json.NewDecoder(bytes.NewReader(body))
	if err := dec.Decode(&m); err != nil || m == nil {
		if err == nil {
			err = errors.New("null")
		}
		return nil, fault.New(fault.Invalid, "invalid_json", "the body must be one JSON object: %v", err)
	}
	if dec.More() {
		return nil, fault.New(fault.Invalid, "invalid_json", "the body holds more than one JSON value; send exactly one object")
	}
	return m, nil
}

// parseFields moves the profile fields and attributes out of m, leaving
// the members it does not know.
func parseFields(m map[string]json.RawMessage) (Fields, error) {
	var f Fields
	for _, name := range profileFields {
		raw, ok := m[name]
		if !ok {
			continue
		}
		delete(m, name)
		var s *string
		if err := json.Unmarshal(raw, &s); err != nil {
			return f, invalidField(name, "%s must be a string or null", name)
		}
		if s == nil {
			s = new(string)
		}
		*f.field(name) = s
	}
	if raw, ok := m["attributes"]; ok {
		delete(m, "attributes")
		if err := json.Unmarshal(raw, &f.Attributes); err != nil {
			return f, invalidField("attributes", "attributes must be a JSON object of strings, numbers and booleans")
		}
		if f.Attributes == nil {
			f.Attributes = map[string]json.RawMessage{}
		}
	}
	return f, nil
}

// ParseInput reads a create or upsert body.
func ParseInput(body []byte) (Input, error) {
	m, err := decodeObject(body)
	if err != nil {
		return Input{}, err
	}
	f, err := parseFields(m)
	if err != nil {
		return Input{}, err
	}
	in := Input{Fields: f}
	if raw, ok := m["tags"]; ok {
		delete(m, "tags")
		if err := json.Unmarshal(raw, &in.Tags); err != nil {
			return in, invalidField("tags", "tags must be an array of strings")
		}
	}
	if raw, ok := m["consent"]; ok {
		delete(m, "consent")
		dec := json.NewDecoder(bytes.NewReader(raw))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&in.Consent); err != nil {
			return in, invalidField("consent", `consent must map channels to decisions, e.g. {"email": {"granted": true, "source": "signup_form"}}: %v`, err)
		}
	}
	if raw, ok := m["source"]; ok {
		delete(m, "source")
		if err := json.Unmarshal(raw, &in.Source); err != nil {
			return in, invalidField("source", "source must be a string")
		}
	}
	return in, unknownMembers(m)
}

// ParsePatch reads a partial update body (JSON merge patch).
func ParsePatch(body []byte) (Fields, error) {
	m, err := decodeObject(body)
	if err != nil {
		return Fields{}, err
	}
	f, err := parseFields(m)
	if err != nil {
		return f, err
	}
	return f, unknownMembers(m)
}

func unknownMembers(m map[string]json.RawMessage) error {
	if len(m) == 0 {
		return nil
	}
	names := make([]string, 0, len(m))
	for k := range m {
		names = append(names, k)
	}
	slices.Sort(names)
	return fault.New(fault.Invalid, "unknown_field",
		"unknown field %q; contacts have email, phone, firstName, lastName, locale, timeZone, attributes, tags, consent, source", names[0])
}

func invalidField(field, format string, args ...any) *fault.Error {
	e := fault.New(fault.Invalid, "invalid_field", format, args...)
	e.Details = map[string]any{"field": field}
	return e
}

// normalize validates every field set in f and puts it in canonical form
// (email lower-cased, phone in E.164, attributes compact).
func (f *Fields) normalize() error {
	if f.Email != nil && *f.Email != "" {
		e, err := NormalizeEmail(*f.Email)
		if err != nil {
			return err
		}
		f.Email = &e
	}
	if f.Phone != nil && *f.Phone != "" {
		p, err := NormalizePhone(*f.Phone)
		if err != nil {
			return err
		}
		f.Phone = &p
	}
	for _, name := range []string{"firstName", "lastName"} {
		if p := *f.field(name); p != nil {
			v := strings.TrimSpace(*p)
			if err := checkText(name, v, maxNameLen); err != nil {
				return err
			}
			*p = v
		}
	}
	if f.Locale != nil && *f.Locale != "" {
		if !localePattern.MatchString(*f.Locale) {
			return invalidField("locale", "locale %q is not a language tag such as \"en\" or \"en-GB\"", *f.Locale)
		}
	}
	if f.TimeZone != nil && *f.TimeZone != "" {
		if _, err := time.LoadLocation(*f.TimeZone); err != nil || *f.TimeZone == "Local" {
			return invalidField("timeZone", "timeZone %q is not an IANA time zone name such as \"Europe/London\" or \"America/New_York\"", *f.TimeZone)
		}
	}
	if len(f.Attributes) > maxAttributes {
		return invalidField("attributes", "a contact holds at most %d attributes (got %d)", maxAttributes, len(f.Attributes))
	}
	for k, v := range f.Attributes {
		canon, err := normalizeAttribute(k, v)
		if err != nil {
			return err
		}
		f.Attributes[k] = canon
	}
	return nil
}

// NormalizeEmail validates an address and lower-cases it. Mailbox names are
// case-sensitive in theory and never in practice; lower-casing makes the
// per-tenant uniqueness match what people mean.
func NormalizeEmail(s string) (string, error) {
	s = strings.TrimSpace(s)
	a, err := mail.ParseAddress(s)
	if err != nil || a.Address != s || a.Name != "" || len(s) > maxEmailLen {
		return "", invalidField("email", "email %q is not a valid address such as name@example.org", s)
	}
	at := strings.LastIndexByte(s, '@')
	if domain := s[at+1:]; !strings.Contains(domain, ".") || strings.HasPrefix(domain, "[") {
		return "", invalidField("email", "email %q needs a domain name such as example.org", s)
	}
	return strings.ToLower(s), nil
}

// NormalizePhone turns a number written in international form ("+44 20
// 7946 0958", "0044-20-7946-0958", "+1 (415) 555-0123") into E.164. A
// national number without its country code is refused: guessing the
// country would send messages to strangers.
func NormalizePhone(s string) (string, error) {
	in := strings.TrimSpace(s)
	rest := in
	switch {
	case strings.HasPrefix(rest, "+"):
		rest = rest[1:]
	case strings.HasPrefix(rest, "00"):
		rest = rest[2:]
	default:
		return "", invalidField("phone", "phone %q must be in international form with its country code, e.g. +14155550123", in)
	}
	digits := make([]byte, 0, len(rest))
	for i := 0; i < len(rest); i++ {
		switch c := rest[i]; {
		case c >= '0' && c <= '9':
			digits = append(digits, c)
		case c == ' ' || c == '-' || c == '.' || c == '(' || c == ')':
		default:
			return "", invalidField("phone", "phone %q may hold only digits, spaces, '-', '.', '(' and ')' after the leading +", in)
		}
	}
	if len(digits) < minPhoneDigits || len(digits) > maxPhoneDigits || digits[0] == '0' {
		return "", invalidField("phone", "phone %q is not a valid international number: E.164 numbers have %d to %d digits and a country code that does not start with 0", in, minPhoneDigits, maxPhoneDigits)
	}
	return "+" + string(digits), nil
}

func checkText(field, v string, maxLen int) error {
	if !utf8.ValidString(v) {
		return invalidField(field, "%s must be valid UTF-8", field)
	}
	if utf8.RuneCountInString(v) > maxLen {
		return invalidField(field, "%s is longer than %d characters", field, maxLen)
	}
	if strings.IndexFunc(v, unicode.IsControl) >= 0 {
		return invalidField(field, "%s must not contain control characters", field)
	}
	return nil
}

// normalizeAttribute checks one custom attribute and returns its compact
// JSON. Values are scalars (dates are strings, ideally ISO 8601) so that
// segment rules and list filters can compare them; JSON null stays null and
// means "remove" in a patch.
func normalizeAttribute(key string, v json.RawMessage) (json.RawMessage, error) {
	field := "attributes." + key
	if !attributeKeyPattern.MatchString(key) {
		return nil, invalidField(field, "attribute name %q must be %s", key, attributeKeyDesc)
	}
	var val any
	dec := json.NewDecoder(bytes.NewReader(v))
	dec.UseNumber()
	if err := dec.Decode(&val); err != nil {
		return nil, invalidField(field, "attribute %q is not valid JSON", key)
	}
	switch x := val.(type) {
	case nil:
		return json.RawMessage("null"), nil
	case bool:
		if x {
			return json.RawMessage("true"), nil
		}
		return json.RawMessage("false"), nil
	case json.Number:
		if _, err := x.Float64(); err != nil {
			return nil, invalidField(field, "attribute %q is a number out of range", key)
		}
		return json.RawMessage(x.String()), nil
	case string:
		if err := checkText(field, x, maxAttrValueLen); err != nil {
			return nil, err
		}
		return marshalString(x), nil
	default:
		return nil, invalidField(field, "attribute %q must be a string, number, boolean or null (objects and arrays are not attributes; use several attributes or tags)", key)
	}
}

// marshalString encodes s as JSON without HTML escaping, so attributes
// read back exactly as written.
func marshalString(s string) json.RawMessage {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(s)
	return bytes.TrimRight(b.Bytes(), "\n")
}

// NormalizeTag trims a tag and checks it.
func NormalizeTag(tag string) (string, error) {
	t := strings.TrimSpace(tag)
	if t == "" {
		return "", invalidField("tags", "a tag must not be empty")
	}
	if err := checkText("tags", t, maxTagLen); err != nil {
		return "", invalidField("tags", "tag %q: %s", t, err.(*fault.Error).Message)
	}
	return t, nil
}

func normalizeTags(tags []string) ([]string, error) {
	out := make([]string, 0, len(tags))
	for _, t := range tags {
		n, err := NormalizeTag(t)
		if err != nil {
			return nil, err
		}
		out = append(out, n)
	}
	slices.Sort(out)
	out = slices.Compact(out)
	if len(out) > maxTags {
		return nil, invalidField("tags", "a contact holds at most %d tags (got %d)", maxTags, len(out))
	}
	return out, nil
}

// normalizeConsent checks a decision on channel and fills its time.
func normalizeConsent(channel string, in ConsentInput, now time.Time) (Consent, error) {
	if !event.ValidChannel(channel) {
		return Consent{}, invalidField("consent", "unknown channel %q; use one of %s", channel, strings.Join(event.Channels, ", "))
	}
	src := strings.TrimSpace(in.Source)
	if src == "" {
		return Consent{}, invalidField("consent."+channel+".source", "consent for %s needs a source saying where it was given, e.g. \"signup_form\"", channel)
	}
	if err := checkText("consent."+channel+".source", src, maxSourceLen); err != nil {
		return Consent{}, err
	}
	if err := checkText("consent."+channel+".proof", in.Proof, maxProofLen); err != nil {
		return Consent{}, err
	}
	at := now
	if in.At != nil {
		if in.At.After(now.Add(5 * time.Minute)) {
			return Consent{}, invalidField("consent."+channel+".at", "consent time %s is in the future", in.At.Format(time.RFC3339))
		}
		at = *in.At
	}
	return Consent{Granted: in.Granted, Source: src, Proof: in.Proof, At: at.UTC().Truncate(time.Millisecond)}, nil
}

// fieldValue is the JSON of profile field name in c, or nil when unset.
func (c *Contact) fieldValue(name string) json.RawMessage {
	var v string
	switch name {
	case "email":
		v = c.Email
	case "phone":
		v = c.Phone
	case "firstName":
		v = c.FirstName
	case "lastName":
		v = c.LastName
	case "locale":
		v = c.Locale
	case "timeZone":
		v = c.TimeZone
	default:
		panic(fmt.Sprintf("contacts: unknown profile field %q", name))
	}
	if v == "" {
		return nil
	}
	return marshalString(v)
}

func (c *Contact) setField(name, v string) {
	switch name {
	case "email":
		c.Email = v
	case "phone":
		c.Phone = v
	case "firstName":
		c.FirstName = v
	case "lastName":
		c.LastName = v
	case "locale":
		c.Locale = v
	case "timeZone":
		c.TimeZone = v
	}
}

// apply sets f on c and returns what changed, keyed as contact.updated
// names them ("email", "attributes.class_year").
func (c *Contact) apply(f Fields) map[string]event.FieldChange {
	changes := map[string]event.FieldChange{}
	for _, name := range profileFields {
		p := *f.field(name)
		if p == nil {
			continue
		}
		old := c.fieldValue(name)
		c.setField(name, *p)
		if now := c.fieldValue(name); !bytes.Equal(old, now) {
			changes[name] = event.FieldChange{Old: old, New: now}
		}
	}
	for k, v := range f.Attributes {
		old, had := c.Attributes[k]
		if string(v) == "null" {
			if had {
				delete(c.Attributes, k)
				changes["attributes."+k] = event.FieldChange{Old: old}
			}
			continue
		}
		if !had || !bytes.Equal(old, v) {
			if c.Attributes == nil {
				c.Attributes = map[string]json.RawMessage{}
			}
			c.Attributes[k] = v
			changes["attributes."+k] = event.FieldChange{Old: old, New: v}
		}
	}
	return changes
}
