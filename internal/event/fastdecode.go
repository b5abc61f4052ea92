package event

import (
	"bytes"
	"encoding/json"
	"time"
)

// decodeEnvelope fills env from b. Consumers decode every event they
// receive, and encoding/json's reflection takes ~5 µs for a typical
// envelope, a tenth of our whole per-event budget; the envelope's shape is
// fixed, so a direct parse does the common case in a fraction of that. It
// handles exactly what Encode writes (and any whitespace and key order):
// anything else — escapes in the envelope's own strings, keys that differ
// only in case, unknown fields' odd values — falls back to encoding/json,
// so both always agree (FuzzFastDecodeAgrees).
func decodeEnvelope(b []byte, env *Envelope) error {
	if fastDecode(b, env) {
		return nil
	}
	// A value of its own for encoding/json, which keeps the pointer it is
	// given: handing it env would move every caller's envelope to the heap,
	// the fast path's too.
	slow := new(Envelope)
	if err := json.Unmarshal(b, slow); err != nil {
		return err
	}
	*env = *slow
	return nil
}

func fastDecode(b []byte, env *Envelope) bool {
	p := parser{b: b}
	return p.object(func(key []byte) bool { return p.envelopeField(key, env) })
}

func (p *parser) envelopeField(key []byte, env *Envelope) bool {
	var field *string
	switch string(key) {
	case "id":
		field = &env.ID
	case "type":
		field = &env.Type
	case "causationId":
		field = &env.CausationID
	case "version":
		field = &env.Version
	case "source":
		field = &env.Source
	case "tenantId":
		field = &env.TenantID
	case "correlationId":
		field = &env.CorrelationID
	case "timestamp":
		s, ok := p.plainString()
		if !ok {
			return false
		}
		t, err := time.Parse(time.RFC3339Nano, string(s))
		if err != nil {
			return false // the fallback reports it as encoding/json would
		}
		env.Timestamp = Time{t.UTC()}
		return true
	case "data":
		raw, ok := p.checkedValue()
		if !ok {
			return false
		}
		if bytes.Equal(raw, []byte("null")) {
			env.Data = json.RawMessage("null")
		} else {
			env.Data = append(json.RawMessage(nil), raw...)
		}
		return true
	default:
		// encoding/json matches keys case-insensitively; leave any key
		// that is not exactly ours to it.
		for _, k := range []string{"id", "type", "causationid", "version", "source", "tenantid", "correlationid", "timestamp", "data"} {
			if string(bytes.ToLower(key)) == k {
				return false
			}
		}
		_, ok := p.checkedValue()
		return ok
	}
	if p.peek() == 'n' { // null leaves a string field as it is
		return p.literal("null")
	}
	s, ok := p.plainString()
	if ok {
		*field = string(s)
	}
	return ok
}

// object reads one JSON object and nothing after it, handing each member's
// key to member, which reads the value; a malformed object or false from
// member stops it.
func (p *parser) object(member func(key []byte) bool) bool {
	p.space()
	if !p.take('{') {
		return false
	}
	p.space()
	if p.take('}') {
		return p.end()
	}
	for {
		p.space()
		key, ok := p.plainString()
		if !ok {
			return false
		}
		p.space()
		if !p.take(':') {
			return false
		}
		p.space()
		if !member(key) {
			return false
		}
		p.space()
		if p.take(',') {
			continue
		}
		if p.take('}') {
			return p.end()
		}
		return false
	}
}

// checkedValue moves past one value, which must be valid JSON, and
// returns its bytes.
func (p *parser) checkedValue() ([]byte, bool) {
	start := p.i
	if !p.skipValue() {
		return nil, false
	}
	raw := p.b[start:p.i]
	valid, _ := scanJSON(raw)
	return raw, valid
}

type parser struct {
	b []byte
	i int
}

func (p *parser) space() {
	for p.i < len(p.b) {
		switch p.b[p.i] {
		case ' ', '\t', '\n', '\r':
			p.i++
		default:
			return
		}
	}
}

func (p *parser) peek() byte {
	if p.i < len(p.b) {
		return p.b[p.i]
	}
	return 0
}

func (p *parser) take(c byte) bool {
	if p.peek() == c {
		p.i++
		return true
	}
	return false
}

func (p *parser) end() bool {
	p.space()
	return p.i == len(p.b)
}

func (p *parser) literal(s string) bool {
	if bytes.HasPrefix(p.b[p.i:], []byte(s)) {
		p.i += len(s)
		return true
	}
	return false
}

// plainString reads a string without escapes or control characters and
// valid UTF-8 (encoding/json would rewrite invalid bytes); anything else
// is left to the fallback.
func (p *parser) plainString() ([]byte, bool) {
	if !p.take('"') {
		return nil, false
	}
	start := p.i
	for p.i < len(p.b) {
		c := p.b[p.i]
		switch {
		case c == '"':
			s := p.b[start:p.i]
			p.i++
			return s, true
		case c == '\\' || c < 0x20 || c >= 0x80:
			return nil, false
		}
		p.i++
	}
	return nil, false
}

// skipValue moves past one JSON value without checking it (callers
// validate the bytes it spans).
func (p *parser) skipValue() bool {
	depth := 0
	for p.i < len(p.b) {
		c := p.b[p.i]
		switch c {
		case '"':
			p.i++
			for p.i < len(p.b) && p.b[p.i] != '"' {
				if p.b[p.i] == '\\' {
					p.i++
				}
				p.i++
			}
			if p.i >= len(p.b) {
				return false
			}
			p.i++
		case '{', '[':
			depth++
			p.i++
		case '}', ']':
			if depth == 0 {
				return false
			}
			depth--
			p.i++
		case ',', ':':
			if depth == 0 {
				return false
			}
			p.i++
		case ' ', '\t', '\n', '\r':
			if depth == 0 {
				return false
			}
			p.i++
		default: // a number or literal
			p.i++
		}
		if depth == 0 {
			// A scalar ends at the next delimiter at this level.
			for p.i < len(p.b) && c != '"' && c != '}' && c != ']' {
				switch p.b[p.i] {
				case ',', '}', ']', ' ', '\t', '\n', '\r':
					return true
				}
				p.i++
			}
			return true
		}
	}
	return false
}
