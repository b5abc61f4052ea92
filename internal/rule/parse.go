package rule

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// Parse reads and validates a rule. Every problem it reports is an *Error
// whose Path points at the offending node.
func Parse(data []byte) (*Rule, error) {
	if len(data) > MaxBytes {
		return nil, &Error{Message: fmt.Sprintf("rule is %d bytes; at most %d are allowed", len(data), MaxBytes)}
	}
	if !json.Valid(data) {
		var v any
		msg := "not valid JSON"
		var se *json.SyntaxError
		if err := json.Unmarshal(data, &v); errors.As(err, &se) {
			msg = fmt.Sprintf("not valid JSON at byte %d: %s", se.Offset, se)
		} else if err != nil {
			msg = "not valid JSON: " + strings.TrimPrefix(err.Error(), "json: ")
		}
		return nil, &Error{Message: msg}
	}
	p := parser{fields: map[string]struct{}{}}
	root, err := p.node(bytes.TrimSpace(data), "", 1)
	if err != nil {
		return nil, err
	}
	r := &Rule{root: root, timeDep: p.timeDep, paramValues: p.values}
	for f := range p.fields {
		r.fields = append(r.fields, f)
	}
	slices.Sort(r.fields)
	return r, nil
}

type parser struct {
	nodes   int
	values  int
	fields  map[string]struct{}
	timeDep bool
}

func join(path, part string) string {
	if path == "" {
		return part
	}
	return path + "." + part
}

const nodeShape = `{"all":[...]}, {"any":[...]}, {"not":{...}} or {"field":...,"op":...,"value":...}`

func (p *parser) node(raw []byte, path string, depth int) (*node, error) {
	if depth > MaxDepth {
		return nil, &Error{path, fmt.Sprintf("nested too deeply: a rule has at most %d levels", MaxDepth)}
	}
	p.nodes++
	if p.nodes > MaxNodes {
		return nil, &Error{path, fmt.Sprintf("too many nodes: a rule has at most %d groups and conditions", MaxNodes)}
	}
	if len(raw) == 0 || raw[0] != '{' {
		return nil, &Error{path, "a node must be a JSON object: " + nodeShape}
	}
	members, err := readObject(raw)
	if err != nil {
		return nil, &Error{path, err.Error()}
	}
	var group, leaf []string
	for _, m := range members {
		switch m.key {
		case "all", "any", "not":
			group = append(group, m.key)
		case "field", "op", "value":
			leaf = append(leaf, m.key)
		default:
			return nil, &Error{path, fmt.Sprintf("unknown key %q (a group has one of all, any, not; a condition has field, op, value)", m.key)}
		}
	}
	switch {
	case len(group) > 1:
		return nil, &Error{path, fmt.Sprintf("a group has exactly one of all, any, not; this node has %s", strings.Join(group, " and "))}
	case len(group) == 1 && len(leaf) > 0:
		return nil, &Error{path, fmt.Sprintf("a node is either a group (all, any, not) or a condition (field, op, value), not both; this one has %s and %s", group[0], strings.Join(leaf, ", "))}
	case len(group) == 0 && len(leaf) == 0:
		return nil, &Error{path, "empty node: want " + nodeShape}
	case len(leaf) > 0:
		return p.leaf(members, path)
	}
	raw = members[0].val
	switch key := group[0]; key {
	case "not":
		kid, err := p.node(raw, join(path, "not"), depth+1)
		if err != nil {
			return nil, err
		}
		return &node{kind: kindNot, kids: []*node{kid}, order: []*node{kid}, cost: kid.cost}, nil
	default:
		n := &node{kind: kindAll}
		if key == "any" {
			n.kind = kindAny
		}
		if raw[0] != '[' {
			return nil, &Error{join(path, key), key + " takes a list of nodes, such as [{...}, {...}]"}
		}
		elems := readArray(raw)
		if len(elems) == 0 {
			return nil, &Error{join(path, key), key + " needs at least one node"}
		}
		for i, e := range elems {
			kid, err := p.node(e, join(path, key+"["+strconv.Itoa(i)+"]"), depth+1)
			if err != nil {
				return nil, err
			}
			n.kids = append(n.kids, kid)
			n.cost += kid.cost
		}
		n.order = slices.Clone(n.kids)
		slices.SortStableFunc(n.order, func(a, b *node) int { return a.cost - b.cost })
		return n, nil
	}
}

var opList = strings.Join(opNames[:], ", ")

func (p *parser) leaf(members []member, path string) (*node, error) {
	var fieldRaw, opRaw, valRaw []byte
	for _, m := range members {
		switch m.key {
		case "field":
			fieldRaw = m.val
		case "op":
			opRaw = m.val
		case "value":
			valRaw = m.val
		}
	}
	opPath, fieldPath, valPath := join(path, "op"), join(path, "field"), join(path, "value")
	if opRaw == nil {
		return nil, &Error{opPath, "missing: a condition needs an operator (one of " + opList + ")"}
	}
	var opName string
	if json.Unmarshal(opRaw, &opName) != nil {
		return nil, &Error{opPath, "must be a string, one of " + opList}
	}
	i := slices.Index(opNames[:], opName)
	if i < 0 {
		return nil, &Error{opPath, fmt.Sprintf("unknown operator %q (one of %s)", opName, opList)}
	}
	o := op(i)
	n := &node{kind: kindLeaf, op: o}

	var name string
	hasField := fieldRaw != nil && string(fieldRaw) != "null"
	if hasField && json.Unmarshal(fieldRaw, &name) != nil {
		return nil, &Error{fieldPath, "must be a string such as \"email\" or \"attributes.class_year\""}
	}
	switch o {
	case opHasTag, opHasConsent:
		want := "tags"
		if o == opHasConsent {
			want = "consent"
		}
		if hasField && name != want {
			return nil, &Error{fieldPath, fmt.Sprintf("%s reads the contact's %s: leave field out or write %q", o, want, want)}
		}
		name = want
	default:
		if !hasField {
			return nil, &Error{fieldPath, "missing: which contact field to test, such as \"email\" or \"attributes.class_year\""}
		}
	}
	f, msg := parseField(name)
	if msg != "" {
		return nil, &Error{fieldPath, msg}
	}
	n.field = f
	if msg := opFits(f, o); msg != "" {
		return nil, &Error{opPath, msg}
	}

	hasValue := valRaw != nil && string(valRaw) != "null"
	if o == opExists || o == opNotExists {
		if hasValue {
			return nil, &Error{valPath, fmt.Sprintf("%s takes no value", o)}
		}
	} else {
		if !hasValue {
			return nil, &Error{valPath, "missing: " + valueHint(o, f)}
		}
		v, err := p.value(valRaw, valPath, o, f)
		if err != nil {
			return nil, err
		}
		n.val = v
	}
	switch f.kind {
	case fieldConsent, fieldTime:
		n.cost = 1
	case fieldText:
		n.cost = 2
	case fieldAttr:
		n.cost = 10
		if o == opBefore || o == opAfter || o == opWithinLast {
			n.cost = 14
		}
	case fieldTags:
		n.cost = 30
	}
	if o == opWithinLast {
		p.timeDep = true
	}
	p.fields[f.name] = struct{}{}
	return n, nil
}

const fieldList = "email, phone, firstName, lastName, locale, timeZone, createdAt, updatedAt, attributes.<key>, tags, consent"

func parseField(name string) (field, string) {
	for i, tf := range textFields {
		if name == tf.name {
			return field{kind: fieldText, name: name, col: i}, ""
		}
	}
	for i, tf := range timeFields {
		if name == tf.name {
			return field{kind: fieldTime, name: name, col: i}, ""
		}
	}
	switch name {
	case "tags":
		return field{kind: fieldTags, name: name}, ""
	case "consent":
		return field{kind: fieldConsent, name: name}, ""
	case "attributes", "attributes.":
		return field{}, "attributes needs a key, as in \"attributes.class_year\""
	}
	rest, ok := strings.CutPrefix(name, "attributes.")
	if !ok {
		return field{}, fmt.Sprintf("unknown field %q (one of %s)", name, fieldList)
	}
	keys := strings.Split(rest, ".")
	if len(keys) > MaxPathKeys {
		return field{}, fmt.Sprintf("attributes path has %d keys; at most %d", len(keys), MaxPathKeys)
	}
	for _, k := range keys {
		if k == "" {
			return field{}, fmt.Sprintf("attributes path %q has an empty key", rest)
		}
		if len(k) > MaxKeyBytes {
			return field{}, fmt.Sprintf("attributes key %q is longer than %d characters", k, MaxKeyBytes)
		}
		for i := 0; i < len(k); i++ {
			if c := k[i]; !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-') {
				return field{}, fmt.Sprintf("attributes key %q may hold only letters A-Z a-z, digits, _ and -", k)
			}
		}
	}
	return field{kind: fieldAttr, name: name, path: keys}, ""
}

// opFits says why op cannot apply to f, or "" when it can.
func opFits(f field, o op) string {
	switch f.kind {
	case fieldTags:
		if o != opHasTag {
			return fmt.Sprintf("tags supports only has_tag, not %s", o)
		}
	case fieldConsent:
		if o != opHasConsent {
			return fmt.Sprintf("consent supports only has_consent, not %s", o)
		}
	case fieldTime:
		if o != opBefore && o != opAfter && o != opWithinLast {
			return fmt.Sprintf("%s supports before, after and within_last, not %s", f.name, o)
		}
	case fieldText:
		switch o {
		case opBefore, opAfter, opWithinLast:
			return fmt.Sprintf("%s needs a time (createdAt, updatedAt or a date attribute); %s is text", o, f.name)
		case opHasTag, opHasConsent:
			return fmt.Sprintf("%s does not read %s", o, f.name)
		}
	case fieldAttr:
		if o == opHasTag || o == opHasConsent {
			return fmt.Sprintf("%s does not read %s", o, f.name)
		}
	}
	return ""
}

func valueHint(o op, f field) string {
	switch o {
	case opEq, opNeq:
		if f.kind == fieldText {
			return fmt.Sprintf("%s needs a string", o)
		}
		return fmt.Sprintf("%s needs a string, number or boolean", o)
	case opGt, opGte, opLt, opLte:
		if f.kind == fieldText {
			return fmt.Sprintf("%s needs a string", o)
		}
		return fmt.Sprintf("%s needs a string or a number", o)
	case opContains, opStartsWith, opHasTag:
		return fmt.Sprintf("%s needs a string", o)
	case opIn, opNotIn:
		return fmt.Sprintf("%s needs a list of values of one type, such as [\"a\",\"b\"] or [1,2]", o)
	case opBefore, opAfter:
		return fmt.Sprintf("%s needs a date such as \"2024-01-31\" or an RFC 3339 timestamp such as \"2024-01-31T09:00:00Z\"", o)
	case opWithinLast:
		return fmt.Sprintf("%s needs a duration such as \"30d\" (a whole number and m, h, d or w)", o)
	case opHasConsent:
		return fmt.Sprintf("%s needs \"email\", \"sms\" or \"whatsapp\"", o)
	}
	return fmt.Sprintf("%s needs a value", o)
}

func jsonType(raw []byte) string {
	switch raw[0] {
	case '"':
		return "a string"
	case 't', 'f':
		return "a boolean"
	case '[':
		return "a list"
	case '{':
		return "an object"
	case 'n':
		return "null"
	}
	return "a number"
}

func (p *parser) value(raw []byte, path string, o op, f field) (value, error) {
	bad := func() (value, error) {
		return value{}, &Error{path, fmt.Sprintf("%s, not %s", valueHint(o, f), jsonType(raw))}
	}
	switch o {
	case opEq, opNeq, opGt, opGte, opLt, opLte:
		switch raw[0] {
		case '"':
			s, err := str(raw, path)
			return value{kind: valString, s: s}, err
		case 't', 'f':
			if f.kind == fieldText || o != opEq && o != opNeq {
				return bad()
			}
			return value{kind: valBool, b: raw[0] == 't'}, nil
		case '[', '{':
			return bad()
		default:
			if f.kind == fieldText {
				return bad()
			}
			x, err := num(raw, path)
			return value{kind: valNumber, f: x}, err
		}
	case opContains, opStartsWith, opHasTag:
		if raw[0] != '"' {
			return bad()
		}
		s, err := str(raw, path)
		return value{kind: valString, s: s}, err
	case opIn, opNotIn:
		if raw[0] != '[' {
			return bad()
		}
		elems := readArray(raw)
		if len(elems) == 0 {
			return value{}, &Error{path, fmt.Sprintf("%s needs at least one value", o)}
		}
		if len(elems) > MaxListValues {
			return value{}, &Error{path, fmt.Sprintf("%s lists %d values; at most %d", o, len(elems), MaxListValues)}
		}
		p.values += len(elems)
		if p.values > MaxTotalValues {
			return value{}, &Error{path, fmt.Sprintf("the rule lists more than %d values in all", MaxTotalValues)}
		}
		var v value
		first := jsonType(elems[0])
		for i, e := range elems {
			ep := path + "[" + strconv.Itoa(i) + "]"
			if t := jsonType(e); t != first {
				return value{}, &Error{ep, fmt.Sprintf("%s lists values of one type: value[0] is %s, this is %s (use any to mix types)", o, first, t)}
			}
			switch e[0] {
			case '"':
				s, err := str(e, ep)
				if err != nil {
					return value{}, err
				}
				v.kind = valStrings
				v.ss = append(v.ss, s)
			case 't', 'f':
				if f.kind == fieldText {
					return value{}, &Error{ep, fmt.Sprintf("%s is text: list strings, not %s", f.name, first)}
				}
				v.kind = valBools
				v.bs = append(v.bs, e[0] == 't')
			case '[', '{', 'n':
				return value{}, &Error{ep, fmt.Sprintf("%s lists strings, numbers or booleans, not %s", o, first)}
			default:
				if f.kind == fieldText {
					return value{}, &Error{ep, fmt.Sprintf("%s is text: list strings, not %s", f.name, first)}
				}
				x, err := num(e, ep)
				if err != nil {
					return value{}, err
				}
				v.kind = valNumbers
				v.fs = append(v.fs, x)
			}
		}
		if len(v.ss) > 8 {
			v.set = make(map[string]struct{}, len(v.ss))
			for _, s := range v.ss {
				v.set[s] = struct{}{}
			}
		}
		return v, nil
	case opBefore, opAfter:
		if raw[0] != '"' {
			return bad()
		}
		var s string
		_ = json.Unmarshal(raw, &s)
		v := value{kind: valTime}
		var t time.Time
		var err error
		if len(s) == len(time.DateOnly) {
			t, err = time.Parse(time.DateOnly, s)
			v.isDate = true
		} else {
			t, err = time.Parse(time.RFC3339Nano, s)
		}
		if err != nil {
			return value{}, &Error{path, fmt.Sprintf("%s, not %q", valueHint(o, f), s)}
		}
		v.ms = t.UnixMilli()
		v.key = keyFromMillis(v.ms)
		return v, nil
	case opWithinLast:
		if raw[0] != '"' {
			return bad()
		}
		var s string
		_ = json.Unmarshal(raw, &s)
		d, canon, msg := parseDuration(s)
		if msg != "" {
			return value{}, &Error{path, fmt.Sprintf("%s; %q %s", valueHint(o, f), s, msg)}
		}
		return value{kind: valDuration, dur: d, s: canon}, nil
	case opHasConsent:
		if raw[0] != '"' {
			return bad()
		}
		var s string
		_ = json.Unmarshal(raw, &s)
		i := slices.Index(channelNames, s)
		if i < 0 {
			return value{}, &Error{path, fmt.Sprintf("%s, not %q", valueHint(o, f), s)}
		}
		return value{kind: valChannel, channel: channel(i), s: s}, nil
	}
	return bad()
}

// str reads a string value. Empty strings are refused because an empty
// value counts as unset and so could never match; U+0000 because PostgreSQL
// cannot hold it in text.
func str(raw []byte, path string) (string, error) {
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return "", &Error{path, "not a valid string"}
	}
	switch {
	case s == "":
		return "", &Error{path, "empty string: an empty value counts as unset and never matches; use exists / not_exists"}
	case len(s) > MaxStringBytes:
		return "", &Error{path, fmt.Sprintf("string is %d bytes; at most %d", len(s), MaxStringBytes)}
	case strings.IndexByte(s, 0) >= 0:
		return "", &Error{path, "string must not contain U+0000"}
	case !utf8.ValidString(s):
		return "", &Error{path, "string is not valid UTF-8"}
	}
	return s, nil
}

func num(raw []byte, path string) (float64, error) {
	f, err := strconv.ParseFloat(string(raw), 64)
	if err != nil {
		return 0, &Error{path, fmt.Sprintf("number %s is out of range", raw)}
	}
	return f, nil
}

// parseDuration reads "<n><unit>" with unit m, h, d (24 h) or w (7 d). It
// returns the length in ms, the canonical text, or why it cannot.
func parseDuration(s string) (int64, string, string) {
	if len(s) < 2 {
		return 0, "", "is too short"
	}
	var unit time.Duration
	switch s[len(s)-1] {
	case 'm':
		unit = time.Minute
	case 'h':
		unit = time.Hour
	case 'd':
		unit = 24 * time.Hour
	case 'w':
		unit = 7 * 24 * time.Hour
	default:
		return 0, "", "has no unit m, h, d or w at the end"
	}
	digits := s[:len(s)-1]
	if len(digits) > 9 || strings.TrimLeft(digits, "0123456789") != "" {
		return 0, "", "does not start with a whole number"
	}
	n, _ := strconv.ParseInt(digits, 10, 64)
	if n == 0 {
		return 0, "", "is zero"
	}
	d := time.Duration(n) * unit
	if d > maxDuration || d/unit != time.Duration(n) {
		return 0, "", "is longer than 100 years"
	}
	return d.Milliseconds(), strconv.FormatInt(n, 10) + s[len(s)-1:], ""
}

type member struct {
	key string
	val []byte
}

var errDupKey = errors.New("duplicate key")

// maxMembers bounds the keys of one object (a node has at most three) so the
// duplicate check stays cheap on hostile input.
const maxMembers = 8

// readObject lists an object's members in order. Duplicate keys are refused:
// encoding/json would keep the last silently and SQLite's JSON functions the
// first, so the rule would mean different things to different readers.
func readObject(raw []byte) ([]member, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	if _, err := dec.Token(); err != nil {
		return nil, err
	}
	var out []member
	for dec.More() {
		t, err := dec.Token()
		if err != nil {
			return nil, err
		}
		key, _ := t.(string)
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			return nil, err
		}
		if len(out) == maxMembers {
			return nil, fmt.Errorf("too many keys: a node has at most %d", maxMembers)
		}
		for _, m := range out {
			if m.key == key {
				return nil, fmt.Errorf("%w %q", errDupKey, key)
			}
		}
		out = append(out, member{key: key, val: bytes.TrimSpace(v)})
	}
	return out, nil
}

// readArray lists the elements of a JSON array already known to be valid.
func readArray(raw []byte) [][]byte {
	dec := json.NewDecoder(bytes.NewReader(raw))
	if _, err := dec.Token(); err != nil {
		return nil
	}
	var out [][]byte
	for dec.More() {
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			return out
		}
		out = append(out, bytes.TrimSpace(v))
	}
	return out
}
