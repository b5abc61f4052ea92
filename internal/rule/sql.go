package rule

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/alumoutreach/alumoutreach/internal/platform/store"
)

// SQL compiles the rule into a boolean expression over one row of the
// segment table (columns in the package doc) that is never NULL, so it can
// be negated and combined freely. Placeholders are $firstParam,
// $firstParam+1, ...; args holds their values in that order. alias
// qualifies the columns ("c" gives c.email); empty means unqualified. now
// fixes the clock for within_last, as Match's now does.
//
// It panics when alias is not a plain identifier: that is a programming
// error, and the alias is pasted into the SQL text.
func (r *Rule) SQL(kind store.Kind, alias string, now time.Time, firstParam int) (where string, args []any) {
	if alias != "" && !isIdent(alias) {
		panic(fmt.Sprintf("rule: SQL alias %q is not an identifier", alias))
	}
	b := sqlBuilder{pg: kind == store.Postgres, next: firstParam, nowMs: now.UnixMilli()}
	if alias != "" {
		b.prefix = alias + "."
	}
	b.args = make([]any, 0, r.paramValues+8)
	b.node(r.root)
	return b.sb.String(), b.args
}

func isIdent(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || i > 0 && c >= '0' && c <= '9') {
			return false
		}
	}
	return s != ""
}

type sqlBuilder struct {
	pg     bool
	prefix string
	nowMs  int64
	next   int
	args   []any
	sb     strings.Builder
}

func (b *sqlBuilder) w(parts ...string) {
	for _, p := range parts {
		b.sb.WriteString(p)
	}
}

// param adds a placeholder. On PostgreSQL it carries a cast, so the server
// never has to infer its type from the context.
func (b *sqlBuilder) param(v any) string {
	b.args = append(b.args, v)
	p := "$" + strconv.Itoa(b.next)
	b.next++
	if b.pg {
		switch v.(type) {
		case string:
			p += "::text"
		case float64:
			p += "::float8"
		case int64:
			p += "::bigint"
		}
	}
	return p
}

func (b *sqlBuilder) node(n *node) {
	switch n.kind {
	case kindAll, kindAny:
		sep := " AND "
		if n.kind == kindAny {
			sep = " OR "
		}
		b.w("(")
		for i, k := range n.order {
			if i > 0 {
				b.w(sep)
			}
			b.node(k)
		}
		b.w(")")
	case kindNot:
		b.w("(NOT ")
		b.node(n.kids[0])
		b.w(")")
	case kindLeaf:
		switch n.field.kind {
		case fieldText:
			b.text(n, b.prefix+textFields[n.field.col].column)
		case fieldTime:
			b.time(n, b.prefix+timeFields[n.field.col].column)
		case fieldConsent:
			b.w("(", b.prefix, "consent_", channelNames[n.val.channel], " = 1)")
		case fieldTags:
			b.tag(n)
		case fieldAttr:
			if b.pg {
				b.attrPG(n)
			} else {
				b.attrSQLite(n)
			}
		}
	}
}

// list writes "(p1, p2, ...)" with one placeholder per value.
func (b *sqlBuilder) list(v *value) string {
	var s strings.Builder
	s.WriteString("(")
	add := func(i int, x any) {
		if i > 0 {
			s.WriteString(", ")
		}
		s.WriteString(b.param(x))
	}
	for i, x := range v.ss {
		add(i, x)
	}
	for i, x := range v.fs {
		add(i, x)
	}
	s.WriteString(")")
	return s.String()
}

var cmpSQL = map[op]string{opEq: " = ", opNeq: " <> ", opGt: " > ", opGte: " >= ", opLt: " < ", opLte: " <= "}

// collate makes PostgreSQL order text by bytes, as Go and SQLite's BINARY
// collation do, whatever the database's default collation is. Equality
// needs no COLLATE: deterministic collations compare equal only identical
// bytes.
func (b *sqlBuilder) collate() string {
	if b.pg {
		return ` COLLATE "C"`
	}
	return ""
}

// stringOp writes a string operator applied to x, a text expression (a
// column, or an attribute already known to be a JSON string). "" is unset,
// so operators that "" could satisfy also test x <> ”.
func (b *sqlBuilder) stringOp(n *node, x string) {
	v := &n.val
	switch n.op {
	case opEq:
		b.w(x, " = ", b.param(v.s))
	case opNeq:
		b.w(x, " <> '' AND ", x, " <> ", b.param(v.s))
	case opGt, opGte:
		// v.s is not empty, so x > v.s (or >=) already means x is set.
		b.w(x, b.collate(), cmpSQL[n.op], b.param(v.s))
	case opLt, opLte:
		b.w(x, " <> '' AND ", x, b.collate(), cmpSQL[n.op], b.param(v.s))
	case opContains:
		if b.pg {
			b.w("strpos(", x, ", ", b.param(v.s), ") > 0")
		} else {
			b.w("instr(", x, ", ", b.param(v.s), ") > 0")
		}
	case opStartsWith:
		// Both engines count characters in substr/left, and so does
		// RuneCountInString; all text is valid UTF-8.
		count := strconv.Itoa(utf8.RuneCountInString(v.s))
		if b.pg {
			b.w("left(", x, ", ", count, ") = ", b.param(v.s))
		} else {
			b.w("substr(", x, ", 1, ", count, ") = ", b.param(v.s))
		}
	case opIn:
		b.w(x, " IN ", b.list(v))
	case opNotIn:
		b.w(x, " <> '' AND ", x, " NOT IN ", b.list(v))
	}
}

func (b *sqlBuilder) text(n *node, col string) {
	b.w("(")
	switch n.op {
	case opExists:
		b.w(col, " <> ''")
	case opNotExists:
		b.w(col, " = ''")
	default:
		b.stringOp(n, col)
	}
	b.w(")")
}

func (b *sqlBuilder) time(n *node, col string) {
	switch n.op {
	case opBefore:
		b.w("(", col, " < ", b.param(n.val.ms), ")")
	case opAfter:
		b.w("(", col, " > ", b.param(n.val.ms), ")")
	case opWithinLast:
		b.w("(", col, " >= ", b.param(b.nowMs-n.val.dur), ")")
	}
}

func (b *sqlBuilder) tag(n *node) {
	col := b.prefix + "tags"
	if b.pg {
		// jsonb ? text: a top-level string element equal to the tag.
		b.w("(", col, " ? ", b.param(n.val.s), ")")
		return
	}
	b.w("EXISTS (SELECT 1 FROM json_each(", col, ") WHERE type = 'text' AND value = ", b.param(n.val.s), ")")
}

// attrKeyCutoff returns the key that a date attribute is compared with.
func (b *sqlBuilder) attrKeyCutoff(n *node) timeKey {
	if n.op == opWithinLast {
		return keyFromMillis(b.nowMs - n.val.dur)
	}
	return n.val.key
}

var dateCmp = map[op]string{opBefore: " < ", opAfter: " > ", opWithinLast: " >= "}

// startsJSONContainer reports whether s could equal the JSON text SQLite's
// json_extract returns for an object or array; only then must a string
// comparison also check the JSON type.
func startsJSONContainer(s string) bool { return s[0] == '[' || s[0] == '{' }

func (b *sqlBuilder) attrSQLite(n *node) {
	a := b.prefix + "attributes"
	var p strings.Builder
	p.WriteString("'$")
	for _, k := range n.field.path {
		p.WriteString(`."` + k + `"`) // keys are [A-Za-z0-9_-]: nothing to escape
	}
	p.WriteString("'")
	path := p.String()
	x := "json_extract(" + a + ", " + path + ")"
	typ := "json_type(" + a + ", " + path + ")"
	v := &n.val
	// An attribute that is absent reads as NULL; IS TRUE turns the unknown
	// into false (it costs SQLite next to nothing, where COALESCE would
	// keep it from short-circuiting), and IS NOT TRUE negates exists.
	b.w("(")
	switch {
	case n.op == opExists || n.op == opNotExists:
		// -> gives the value's JSON text: null and "" are the only unset
		// forms, and a missing key gives NULL.
		b.w("(", a, " -> ", path, ") NOT IN ('null', '\"\"')")
	case n.op == opBefore || n.op == opAfter || n.op == opWithinLast:
		k := b.attrKeyCutoff(n)
		b.w(sqliteTimeKey(x), dateCmp[n.op], b.param(string(k[:])))
	case v.kind == valString || v.kind == valStrings:
		// json_extract gives a JSON string as text, a number as integer or
		// real (never equal to text), true/false as 1/0, and an object or
		// array as its JSON text. So plain equality needs no type check
		// unless the value could be such JSON text.
		guard := true
		if n.op == opEq || n.op == opIn {
			guard = false
			for _, s := range append([]string{v.s}, v.ss...) {
				if s != "" && startsJSONContainer(s) {
					guard = true
				}
			}
		}
		if guard {
			b.w(typ, " = 'text' AND ")
		}
		b.stringOp(n, x)
	case v.kind == valNumber || v.kind == valNumbers:
		b.sqliteNumber(n, x, typ)
	case v.kind == valBool || v.kind == valBools:
		if list := boolTypes(n, "'true'", "'false'"); list != "" {
			b.w(typ, " IN (", list, ")")
		} else {
			b.w("FALSE")
		}
	}
	if n.op == opNotExists {
		b.w(") IS NOT TRUE")
	} else {
		b.w(") IS TRUE")
	}
}

// sqliteNumber writes a number comparison with x read once where it can:
// each read of an attribute costs a JSON lookup per row. It relies on
// SQLite's order of values (NULL < numbers < text < blob, objects and arrays
// coming back as text) and on stored numbers being exact float64 values
// (Contact.JSONColumns writes them so), which makes SQLite's exact
// integer/real comparison the same as Go's float64 comparison.
func (b *sqlBuilder) sqliteNumber(n *node, x, typ string) {
	v := &n.val
	guard := false // check the JSON type: x may be text, or a boolean read as 0/1
	switch n.op {
	case opEq:
		b.w(x, " = ", b.param(v.f))
	case opGt, opGte:
		// BETWEEN reads x once, and its upper bound +Inf keeps text out.
		lo := v.f
		if n.op == opGt {
			lo = math.Nextafter(lo, math.Inf(1))
		}
		b.w(x, " BETWEEN ", b.param(lo), " AND 9e999")
	case opLt, opLte:
		// Text sorts above every number, so it fails x <= hi by itself.
		hi := v.f
		if n.op == opLt {
			hi = math.Nextafter(hi, math.Inf(-1))
		}
		b.w(x, " BETWEEN -9e999 AND ", b.param(hi))
	case opIn:
		b.w(x, " IN ", b.list(v))
	case opNeq:
		guard = true
		b.w(x, " <> ", b.param(v.f))
	case opNotIn:
		guard = true
		b.w(x, " NOT IN ", b.list(v))
	}
	// json_extract reads true and false as 1 and 0; only when 0 or 1 would
	// pass must the type be checked.
	if guard || n.matchNumber(0) || n.matchNumber(1) {
		b.w(" AND ", typ, " IN ('integer', 'real')")
	}
}

// boolTypes lists, as the SQL literals t and f, the JSON booleans that a
// boolean condition accepts; "" when none does (not_in [true, false]).
func boolTypes(n *node, t, f string) string {
	v := &n.val
	accept := [2]bool{} // [false, true]
	switch n.op {
	case opEq:
		accept[b2i(v.b)] = true
	case opNeq:
		accept[b2i(!v.b)] = true
	case opIn, opNotIn:
		for _, x := range v.bs {
			accept[b2i(x)] = true
		}
		if n.op == opNotIn {
			accept[0], accept[1] = !accept[0], !accept[1]
		}
	}
	var out []string
	if accept[1] {
		out = append(out, t)
	}
	if accept[0] {
		out = append(out, f)
	}
	return strings.Join(out, ", ")
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

const (
	globDate  = "[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]"
	globClock = "T[0-9][0-9]:[0-9][0-9]:[0-9][0-9]"
	reDate    = "[0-9]{4}-[0-9]{2}-[0-9]{2}"
	reClock   = "T[0-9]{2}:[0-9]{2}:[0-9]{2}"
)

// sqliteTimeKey is attrTimeKey in SQLite: the key of x, or NULL. GLOB
// patterns are ASCII, so for the text they accept characters are bytes.
func sqliteTimeKey(x string) string {
	frac := "substr(" + x + ", 21, length(" + x + ") - 21)"
	return "(CASE WHEN " + x + " GLOB '" + globDate + "' THEN " + x + " || 'T00:00:00.000'" +
		" WHEN " + x + " GLOB '" + globDate + globClock + "Z' THEN substr(" + x + ", 1, 19) || '.000'" +
		" WHEN " + x + " GLOB '" + globDate + globClock + ".*Z' AND length(" + x + ") BETWEEN 22 AND 30 AND " +
		frac + " NOT GLOB '*[^0-9]*' THEN substr(" + x + ", 1, 20) || substr(" + frac + " || '00', 1, 3) END)"
}

// pgTimeKey is attrTimeKey in PostgreSQL. In its regular expressions ^ and
// $ anchor at the ends of the whole string (not at newlines).
func pgTimeKey(x string) string {
	return "(CASE WHEN " + x + " ~ '^" + reDate + "$' THEN " + x + " || 'T00:00:00.000'" +
		" WHEN " + x + " ~ '^" + reDate + reClock + "Z$' THEN substr(" + x + ", 1, 19) || '.000'" +
		" WHEN " + x + " ~ '^" + reDate + reClock + "[.][0-9]{1,9}Z$' THEN substr(" + x + ", 1, 20) || substr(substr(" +
		x + ", 21, length(" + x + ") - 21) || '00', 1, 3) END)"
}

func (b *sqlBuilder) attrPG(n *node) {
	// A chain of -> with text keys, not #> with a path: #> would read a
	// key "0" as an index into an array, where Go and SQLite find nothing.
	j := b.prefix + "attributes"
	for _, k := range n.field.path[:len(n.field.path)-1] {
		j += " -> '" + k + "'"
	}
	last := "'" + n.field.path[len(n.field.path)-1] + "'"
	x := "(" + j + " ->> " + last + ")"
	j = "(" + j + " -> " + last + ")"
	typ := "jsonb_typeof(" + j + ")"
	v := &n.val
	// As on SQLite, IS TRUE turns the NULL of an absent attribute into false.
	b.w("(")
	switch {
	case n.op == opExists || n.op == opNotExists:
		b.w(j, ` NOT IN ('null'::jsonb, '""'::jsonb)`)
	case n.op == opBefore || n.op == opAfter || n.op == opWithinLast:
		k := b.attrKeyCutoff(n)
		b.w(pgTimeKey(x), ` COLLATE "C"`, dateCmp[n.op], b.param(string(k[:])))
	case v.kind == valString || v.kind == valStrings:
		b.w(typ, " = 'string' AND ")
		b.stringOp(n, x)
	case v.kind == valNumber || v.kind == valNumbers:
		// CASE, not AND: PostgreSQL may evaluate AND's operands in any
		// order, and the cast fails on anything but a number.
		nx := j + "::float8"
		b.w("CASE WHEN ", typ, " = 'number' THEN ", nx)
		switch n.op {
		case opIn:
			b.w(" IN ", b.list(v))
		case opNotIn:
			b.w(" NOT IN ", b.list(v))
		default:
			b.w(cmpSQL[n.op], b.param(v.f))
		}
		b.w(" END")
	case v.kind == valBool || v.kind == valBools:
		if list := boolTypes(n, "'true'::jsonb", "'false'::jsonb"); list != "" {
			b.w(j, " IN (", list, ")")
		} else {
			b.w("FALSE")
		}
	}
	if n.op == opNotExists {
		b.w(") IS NOT TRUE")
	} else {
		b.w(") IS TRUE")
	}
}
