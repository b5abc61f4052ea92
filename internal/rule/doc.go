// Package rule is the rule language that segments, workflow conditions and
// goals share: a JSON tree of conditions on a
// contact. It parses and validates rules, evaluates them on one contact in
// Go (Match), and compiles them to SQL for SQLite and PostgreSQL (SQL). The
// Go and SQL evaluators give the same answer for every rule and contact;
// a differential test and a fuzz test hold them to it on both engines.
//
// # Rules
//
// A rule is one node. A node is a group or a condition.
//
//	{"all": [node, ...]}   every node matches (at least one node)
//	{"any": [node, ...]}   at least one node matches (at least one node)
//	{"not": node}          the node does not match
//	{"field": "<field>", "op": "<operator>", "value": <value>}
//
// For example, alumni of 2000 or later who agreed to email and live in
// Boston or gave before:
//
//	{"all": [
//	  {"field": "attributes.class_year", "op": "gte", "value": 2000},
//	  {"op": "has_consent", "value": "email"},
//	  {"any": [
//	    {"field": "attributes.address.city", "op": "eq", "value": "Boston"},
//	    {"op": "has_tag", "value": "donor"}
//	  ]}
//	]}
//
// A node has exactly the keys shown: no others, none twice, and never both
// group and condition keys. Limits: 10 levels of nesting (the root is level
// 1), 200 nodes, 1000 values in one in/not_in list and 10,000 in all, 1024
// bytes per string value, 1 MiB of JSON.
//
// # Fields
//
//	email, phone, firstName,  text; "" (the default) means unset
//	lastName, locale, timeZone
//	createdAt, updatedAt      instants, compared to the millisecond
//	attributes.<key>[.<key>]  a value in the contact's attributes object; each
//	                          key is 1-64 of A-Z a-z 0-9 _ -, up to 8 keys;
//	                          attributes.address.city reads
//	                          attributes["address"]["city"] (keys only: a
//	                          list is never indexed, attributes.list.0 is
//	                          absent)
//	tags                      only with has_tag; field may be left out
//	consent                   only with has_consent; field may be left out
//
// Field names are case-sensitive.
//
// # Operators
//
//	eq, neq             string; for attributes also number or boolean
//	gt, gte, lt, lte    string; for attributes also number
//	contains,           string (a substring, or a prefix)
//	starts_with
//	in, not_in          a list of 1-1000 values of one type: strings; for
//	                    attributes also numbers or booleans
//	exists, not_exists  no value
//	before, after       createdAt, updatedAt, attributes: a date
//	                    "2024-01-31" (midnight UTC) or an RFC 3339
//	                    timestamp "2024-01-31T09:00:00+01:00"
//	within_last         createdAt, updatedAt, attributes: a duration "90m",
//	                    "12h", "30d" or "2w" (a whole number and m, h, d =
//	                    24 h, w = 7 d; at most 100 years)
//	has_tag             a tag (string)
//	has_consent         "email", "sms" or "whatsapp"
//
// Empty strings are refused as values: an empty value counts as unset, so
// they could never match (use exists / not_exists).
//
// # Meaning
//
// Unset values. An empty profile field, an absent attribute, an attribute
// that is JSON null or the empty string "" are unset. exists matches a set
// value (an empty list or object is set) and not_exists the rest. No other
// operator matches an unset value, neq and not_in included: neq means "has
// a value, and it is another one". To include the unset, use not:
// {"not": {"field": "email", "op": "eq", "value": "x"}} matches every
// contact whose email is not x, including those without an email.
//
// Types are strict. A condition with a string value only matches a string,
// one with a number only a number, one with a boolean only a boolean: 2000
// never equals "2000", and {"op": "neq", "value": 2000} does not match
// "2000" either (it is not a number that differs). Lists and objects in
// attributes match only exists / not_exists. Booleans take eq, neq, in and
// not_in.
//
// Strings compare by their UTF-8 bytes, so case matters ("Boston" does not
// equal "boston"; "Z" < "a") and so does every accent and space; no Unicode
// normalisation is applied. contains and starts_with take the value
// literally: % and _ are ordinary characters.
//
// Numbers compare as IEEE-754 doubles (float64), 2000 equals 2000.0.
//
// createdAt and updatedAt: before is strictly earlier, after strictly later.
// A date is the instant of midnight UTC that starts it, so "after
// 2024-01-31" includes 2024-01-31T00:00:00.001Z. Timestamps count to the
// millisecond; finer digits are dropped.
//
// within_last d matches values at or after now - d, future values
// included. Now is a parameter of evaluation, the same for Go and SQL.
//
// Date attributes. before, after and within_last read an attribute as a
// date only if it is a string of one of these shapes (ASCII digits; the
// calendar itself is not checked):
//
//	2024-01-31                     midnight UTC
//	2024-01-31T09:00:00Z
//	2024-01-31T09:00:00.5Z         1 to 9 fraction digits, cut to milliseconds
//
// Anything else (another offset than Z, a space instead of T, a number) is
// not a date and matches none of the three. Such values compare as
// "YYYY-MM-DDTHH:MM:SS.mmm" strings with the rule's instant in UTC in the
// same form.
//
// has_tag matches a tag exactly (bytes, case included); has_consent a
// channel the contact consented to.
//
// # Canonical form
//
// Rule.MarshalJSON writes the canonical form, which Parse reads back to the
// same form: the author's order; every condition as field, op, value
// (has_tag with "field": "tags", has_consent with "consent", exists without
// value); numbers in the shortest form; timestamps in UTC to the
// millisecond; durations without leading zeros; strings escaped as
// encoding/json does.
//
// # Errors
//
// Parse returns an *Error whose Path locates the bad part: group keys and
// list indexes from the root, then field, op or value, and an index within
// a value list. For example:
//
//	all[2].any[0].op: unknown operator "eqq" (one of eq, neq, ...)
//	all[0].field: unknown field "emial" (one of email, phone, ...)
//	all[1].value: within_last needs a duration such as "30d" ...
//	any[0].value[2]: in lists values of one type: value[0] is a string, this is a number ...
//
// Path is empty for problems with the document as a whole (not JSON, too
// large).
//
// # Evaluation in Go and SQL
//
// Match evaluates a parsed rule against a Contact without allocating; a
// parsed Rule is its compiled form, safe for concurrent use. Both
// evaluators try the cheap conditions of a group first (consent, times,
// profile fields, then attributes, then tags).
//
// SQL compiles a rule into a boolean expression that is never NULL, with
// $N placeholders, over a table with these columns:
//
//	email, phone, first_name, last_name, locale, time_zone  TEXT NOT NULL DEFAULT ''
//	attributes        {{JSON}} NOT NULL   a JSON object
//	tags              {{JSON}} NOT NULL   a JSON array of strings
//	consent_email, consent_sms, consent_whatsapp  INTEGER NOT NULL (1 = granted)
//	created_at, updated_at  BIGINT NOT NULL (Unix milliseconds)
//
// The two evaluators agree on rows written from a Contact by
// Contact.JSONColumns (attributes and tags), the profile strings as they
// are, the consents as 0/1 and the times as UnixMilli. JSONColumns writes
// each number so that SQLite reads back the very float64 Match compares,
// and refuses text PostgreSQL cannot store (U+0000, invalid UTF-8).
//
// On SQLite the JSON columns may hold the text or SQLite's binary JSONB
// (insert jsonb($n)); the SQL reads both, and JSONB scans about twice as
// fast. On PostgreSQL they are JSONB.
package rule
