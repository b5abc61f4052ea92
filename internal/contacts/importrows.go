package contacts

import (
	"bufio"
	"bytes"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"
)

// Import formats.
const (
	FormatCSV    = "csv"
	FormatNDJSON = "ndjson"
)

// maxNDJSONLine bounds one NDJSON record, as maxContactBody bounds one
// contact sent to the API.
const maxNDJSONLine = maxContactBody

// rowReader yields an import's records one at a time. next returns the
// record's row number (CSV: the header is row 1; NDJSON: the line number)
// and either its contact or a reason the row is refused (rowErr); err ends
// the import (io.EOF at the end).
type rowReader interface {
	next() (row int64, in Input, rowErr error, err error)
}

// newRowReader starts reading r in format. A CSV header that maps to no
// known field fails here, before any row is read.
func newRowReader(format string, r io.Reader, importID string, now time.Time) (rowReader, error) {
	switch format {
	case FormatCSV:
		return newCSVRows(r, importID, now)
	case FormatNDJSON:
		return &ndjsonRows{r: bufio.NewReaderSize(r, 64<<10)}, nil
	}
	return nil, fmt.Errorf("unknown import format %q", format)
}

type csvColumnKind int

const (
	colField csvColumnKind = iota
	colAttribute
	colTags
	colConsent
	colSource
)

type csvColumn struct {
	kind csvColumnKind
	name string // field name, attribute name or channel
	typ  string // attributes: "", "string", "number" or "boolean"
}

// csvHeaderNames maps header cells (lower-cased, without '_', '-' and
// spaces) to profile fields, so "First Name", "first_name" and "firstName"
// all work.
var csvHeaderNames = map[string]string{
	"email": "email", "emailaddress": "email", "phone": "phone", "phonenumber": "phone", "mobile": "phone",
	"firstname": "firstName", "givenname": "firstName", "lastname": "lastName", "familyname": "lastName", "surname": "lastName",
	"locale": "locale", "language": "locale", "timezone": "timeZone", "tz": "timeZone",
}

type csvRows struct {
	r        *csv.Reader
	cols     []csvColumn
	row      int64
	importID string
	now      time.Time
}

func newCSVRows(r io.Reader, importID string, now time.Time) (*csvRows, error) {
	cr := csv.NewReader(r)
	cr.FieldsPerRecord = -1 // short and long rows are reported per row
	cr.ReuseRecord = true
	header, err := cr.Read()
	if errors.Is(err, io.EOF) {
		return nil, importInvalid("the CSV file is empty; its first row must name the columns, e.g. email,firstName,attributes.classYear")
	}
	if err != nil {
		return nil, importInvalid("the CSV header row does not parse: %v", err)
	}
	c := &csvRows{r: cr, row: 1, importID: importID, now: now}
	seen := map[string]bool{}
	for i, h := range header {
		col, err := parseCSVColumn(strings.TrimSpace(strings.TrimPrefix(h, "\ufeff")))
		if err != nil {
			return nil, importInvalid("CSV column %d (%q): %v", i+1, h, err)
		}
		key := fmt.Sprint(col.kind, col.name)
		if seen[key] {
			return nil, importInvalid("CSV column %d (%q) repeats an earlier column", i+1, h)
		}
		seen[key] = true
		c.cols = append(c.cols, col)
	}
	if !seen[fmt.Sprint(colField, "email")] && !seen[fmt.Sprint(colField, "phone")] {
		return nil, importInvalid("the CSV needs an email or a phone column to identify contacts")
	}
	return c, nil
}

func parseCSVColumn(h string) (csvColumn, error) {
	lower := strings.ToLower(h)
	switch {
	case strings.HasPrefix(lower, "attributes."):
		name, typ, _ := strings.Cut(h[len("attributes."):], ":")
		if !attributeKeyPattern.MatchString(name) {
			return csvColumn{}, fmt.Errorf("attribute name %q must be %s", name, attributeKeyDesc)
		}
		switch typ {
		case "", "string", "number", "boolean":
		default:
			return csvColumn{}, fmt.Errorf("attribute type %q is not string, number or boolean", typ)
		}
		return csvColumn{kind: colAttribute, name: name, typ: typ}, nil
	case strings.HasPrefix(lower, "consent."):
		ch := lower[len("consent."):]
		if !validChannel(ch) {
			return csvColumn{}, fmt.Errorf("consent column for unknown channel %q; use consent.email, consent.sms or consent.whatsapp", ch)
		}
		return csvColumn{kind: colConsent, name: ch}, nil
	case lower == "tags":
		return csvColumn{kind: colTags}, nil
	case lower == "source":
		return csvColumn{kind: colSource}, nil
	}
	if f, ok := csvHeaderNames[strings.NewReplacer("_", "", "-", "", " ", "").Replace(lower)]; ok {
		return csvColumn{kind: colField, name: f}, nil
	}
	return csvColumn{}, fmt.Errorf("unknown column; use email, phone, firstName, lastName, locale, timeZone, tags, source, attributes.NAME or consent.CHANNEL")
}

func (c *csvRows) next() (int64, Input, error, error) {
	rec, err := c.r.Read()
	c.row++
	switch {
	case errors.Is(err, io.EOF):
		return c.row, Input{}, nil, io.EOF
	case err != nil:
		return c.row, Input{}, nil, importInvalid("the CSV is malformed at row %d: %v", c.row, err)
	}
	if len(rec) != len(c.cols) {
		return c.row, Input{}, fmt.Errorf("row has %d cells, the header %d", len(rec), len(c.cols)), nil
	}
	in := Input{Source: "import"}
	for i, cell := range rec {
		col := c.cols[i]
		cell = strings.TrimSpace(cell)
		if cell == "" {
			continue // an empty cell sets nothing, so an upsert keeps what is there
		}
		switch col.kind {
		case colField:
			v := cell
			*in.field(col.name) = &v
		case colAttribute:
			raw, err := csvAttribute(cell, col.typ)
			if err != nil {
				return c.row, Input{}, fmt.Errorf("attributes.%s: %v", col.name, err), nil
			}
			if in.Attributes == nil {
				in.Attributes = map[string]json.RawMessage{}
			}
			in.Attributes[col.name] = raw
		case colTags:
			for t := range strings.SplitSeq(cell, ";") {
				if t = strings.TrimSpace(t); t != "" {
					in.Tags = append(in.Tags, t)
				}
			}
		case colConsent:
			granted, ok := consentWords[strings.ToLower(cell)]
			if !ok {
				return c.row, Input{}, fmt.Errorf("consent.%s %q is neither granted (yes, true, 1) nor revoked (no, false, 0)", col.name, cell), nil
			}
			if in.Consent == nil {
				in.Consent = map[string]ConsentInput{}
			}
			in.Consent[col.name] = ConsentInput{Granted: granted, Source: "import", Proof: fmt.Sprintf("import %s row %d", c.importID, c.row)}
		case colSource:
			in.Source = cell
		}
	}
	return c.row, in, nil, nil
}

var consentWords = map[string]bool{
	"granted": true, "yes": true, "y": true, "true": true, "1": true, "opt-in": true, "optin": true,
	"revoked": false, "no": false, "n": false, "false": false, "0": false, "opt-out": false, "optout": false,
}

// csvAttribute types a CSV cell. Without a declared type a cell that is a
// JSON number or true/false becomes one; "02139" (a leading zero is not a
// JSON number) and everything else stays text.
func csvAttribute(cell, typ string) (json.RawMessage, error) {
	switch typ {
	case "string":
		return marshalString(cell), nil
	case "number":
		if !json.Valid([]byte(cell)) || cell == "true" || cell == "false" || cell[0] == '"' {
			return nil, fmt.Errorf("%q is not a number", cell)
		}
		return json.RawMessage(cell), nil
	case "boolean":
		b, err := strconv.ParseBool(cell)
		if err != nil {
			return nil, fmt.Errorf("%q is not true or false", cell)
		}
		return json.RawMessage(strconv.FormatBool(b)), nil
	}
	if cell == "true" || cell == "false" {
		return json.RawMessage(cell), nil
	}
	if c := cell[0]; (c == '-' || (c >= '0' && c <= '9')) && json.Valid([]byte(cell)) {
		return json.RawMessage(cell), nil
	}
	return marshalString(cell), nil
}

type ndjsonRows struct {
	r    *bufio.Reader
	line int64
}

func (n *ndjsonRows) next() (int64, Input, error, error) {
	for {
		line, err := n.readLine()
		if err != nil {
			return n.line, Input{}, nil, err
		}
		n.line++
		if line == nil {
			return n.line, Input{}, fmt.Errorf("line is longer than %d bytes", maxNDJSONLine), nil
		}
		if len(bytes.TrimSpace(line)) == 0 {
			continue
		}
		in, err := ParseInput(line)
		if err != nil {
			return n.line, Input{}, err, nil
		}
		if in.Source == "" {
			in.Source = "import"
		}
		return n.line, in, nil, nil
	}
}

// readLine returns the next line without its newline; nil (and no error)
// for a line over the limit, whose rest is skipped.
func (n *ndjsonRows) readLine() ([]byte, error) {
	var buf []byte
	tooLong := false
	for {
		chunk, err := n.r.ReadSlice('\n')
		if !tooLong {
			if len(buf)+len(chunk) > maxNDJSONLine+1 {
				tooLong, buf = true, nil
			} else {
				buf = append(buf, chunk...)
			}
		}
		switch {
		case errors.Is(err, bufio.ErrBufferFull):
			continue
		case errors.Is(err, io.EOF):
			if len(buf) == 0 && !tooLong {
				return nil, io.EOF
			}
		case err != nil:
			return nil, fmt.Errorf("read NDJSON: %w", err)
		}
		if tooLong {
			return nil, nil
		}
		return bytes.TrimRight(buf, "\r\n"), nil
	}
}

// countRows counts the records of an import file for its progress total.
func countRows(format string, r io.Reader) (int64, error) {
	var n int64
	switch format {
	case FormatCSV:
		cr := csv.NewReader(r)
		cr.FieldsPerRecord = -1
		cr.ReuseRecord = true
		for {
			_, err := cr.Read()
			if errors.Is(err, io.EOF) {
				return max(n-1, 0), nil // the header is no contact
			}
			if err != nil {
				return max(n-1, 0), nil // the import itself reports where
			}
			n++
		}
	default:
		br := bufio.NewReaderSize(r, 64<<10)
		blank := true
		for {
			b, err := br.ReadByte()
			if err != nil {
				if !blank {
					n++
				}
				return n, nil
			}
			switch b {
			case '\n':
				if !blank {
					n++
				}
				blank = true
			case ' ', '\t', '\r':
			default:
				blank = false
			}
		}
	}
}
