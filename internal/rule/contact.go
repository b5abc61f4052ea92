package rule

import (
	"encoding/json"
	"fmt"
	"maps"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// Contact is what the Go evaluator reads. Empty profile strings are unset.
type Contact struct {
	Email, Phone, FirstName, LastName, Locale, TimeZone string
	// Attributes is a decoded JSON object with encoding/json's default types
	// (float64, string, bool, nil, map[string]any, []any). json.Number, int
	// and int64 are read as numbers too.
	Attributes map[string]any
	Tags       []string
	Consent    Consent
	CreatedAt  time.Time
	UpdatedAt  time.Time
}

// Consent records which channels the contact agreed to be reached on.
type Consent struct {
	Email, SMS, WhatsApp bool
}

// JSONColumns encodes the attributes and tags columns of the table SQL
// reads. The segments module must store exactly these bytes (or, on
// PostgreSQL, their JSONB): the Go evaluator and SQL agree only on data
// written this way, because encoding/json writes every number in the form
// SQLite parses back to the same float64, and has no duplicate keys. It
// refuses strings that PostgreSQL cannot store or that JSON cannot carry
// unchanged (U+0000, invalid UTF-8), which would otherwise make the engines
// disagree.
func (c *Contact) JSONColumns() (attributes, tags []byte, err error) {
	var attrs any = c.Attributes
	if c.Attributes == nil {
		attrs = map[string]any{}
	}
	attrs, _, err = canonical(attrs, "attributes")
	if err != nil {
		return nil, nil, err
	}
	for i, t := range c.Tags {
		if err := checkText(t); err != nil {
			return nil, nil, fmt.Errorf("tags[%d]: %w", i, err)
		}
	}
	if attributes, err = json.Marshal(attrs); err != nil {
		return nil, nil, fmt.Errorf("encode attributes: %w", err)
	}
	tagList := c.Tags
	if tagList == nil {
		tagList = []string{}
	}
	if tags, err = json.Marshal(tagList); err != nil {
		return nil, nil, fmt.Errorf("encode tags: %w", err)
	}
	return attributes, tags, nil
}

func checkText(s string) error {
	if strings.IndexByte(s, 0) >= 0 {
		return fmt.Errorf("%q contains U+0000", s)
	}
	if !utf8.ValidString(s) {
		return fmt.Errorf("%q is not valid UTF-8", s)
	}
	return nil
}

// canonicalFloat makes sure SQLite reads f back as the same float64.
// encoding/json writes 2^60 as 1152921504606847000, which SQLite keeps as
// that (different) 64-bit integer and compares exactly; in exponent form it
// is parsed as the double it came from. Below 2^53 every integral float64
// prints exactly, and from 1e21 on encoding/json uses exponents itself.
func canonicalFloat(f float64) (any, bool, error) {
	if a := math.Abs(f); a >= 1<<53 && a < 1e21 {
		return json.Number(strconv.FormatFloat(f, 'e', -1, 64)), true, nil
	}
	return f, false, nil
}

// canonical checks v and returns it with every number as the float64 Match
// reads it as, so the JSON holds exactly the values Match compares. It
// copies only the maps and slices that held another number type; changed
// says whether it did.
func canonical(v any, path string) (out any, changed bool, err error) {
	switch x := v.(type) {
	case nil, bool:
		return v, false, nil
	case float64:
		return canonicalFloat(x)
	case string:
		if err := checkText(x); err != nil {
			return nil, false, fmt.Errorf("%s: %w", path, err)
		}
		return v, false, nil
	case int:
		f, _, _ := canonicalFloat(float64(x))
		return f, true, nil
	case int64:
		f, _, _ := canonicalFloat(float64(x))
		return f, true, nil
	case json.Number:
		f, err := x.Float64()
		if err != nil {
			return nil, false, fmt.Errorf("%s: number %s out of range", path, x)
		}
		c, _, _ := canonicalFloat(f)
		return c, true, nil
	case map[string]any:
		var copied map[string]any
		for k, e := range x {
			if err := checkText(k); err != nil {
				return nil, false, fmt.Errorf("%s: key %w", path, err)
			}
			c, ch, err := canonical(e, path+"."+k)
			if err != nil {
				return nil, false, err
			}
			if ch && copied == nil {
				copied = maps.Clone(x)
			}
			if ch {
				copied[k] = c
			}
		}
		if copied != nil {
			return copied, true, nil
		}
		return v, false, nil
	case []any:
		var copied []any
		for i, e := range x {
			c, ch, err := canonical(e, fmt.Sprintf("%s[%d]", path, i))
			if err != nil {
				return nil, false, err
			}
			if ch && copied == nil {
				copied = slices.Clone(x)
			}
			if ch {
				copied[i] = c
			}
		}
		if copied != nil {
			return copied, true, nil
		}
		return v, false, nil
	}
	return nil, false, fmt.Errorf("%s: unsupported type %T (attributes hold decoded JSON)", path, v)
}
