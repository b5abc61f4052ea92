package event

import (
	"encoding/json"
	"unicode/utf8"
)

// appendEnvelope appends env's encoding, byte for byte what json.Marshal
// writes, without reflection: every event the outbox stores is encoded
// here, and json.Marshal of the envelope was the largest part of that. The
// payload is copied as it is when it is valid JSON without whitespace (as
// json.Marshal writes it, the usual case) and compacted otherwise; ok is
// false for a payload that is not JSON, which the caller reports through
// json.Marshal's error, as for a timestamp outside years 0-9999. A differential fuzz test keeps the two in agreement.
func appendEnvelope(b []byte, env *Envelope) (_ []byte, ok bool) {
	ts := env.Timestamp.UTC()
	if y := ts.Year(); y < 0 || y > 9999 {
		return b, false // Time.MarshalJSON's error
	}
	b = append(b, `{"id":`...)
	b = appendString(b, env.ID)
	b = append(b, `,"type":`...)
	b = appendString(b, env.Type)
	if env.CausationID != "" {
		b = append(b, `,"causationId":`...)
		b = appendString(b, env.CausationID)
	}
	b = append(b, `,"version":`...)
	b = appendString(b, env.Version)
	b = append(b, `,"source":`...)
	b = appendString(b, env.Source)
	b = append(b, `,"timestamp":"`...)
	b = ts.AppendFormat(b, TimestampLayout)
	b = append(b, `","tenantId":`...)
	b = appendString(b, env.TenantID)
	b = append(b, `,"correlationId":`...)
	b = appendString(b, env.CorrelationID)
	b = append(b, `,"data":`...)
	if env.Data == nil {
		return append(b, `null}`...), true
	}
	switch valid, compact := scanJSON(env.Data); {
	case !valid:
		return b, false
	case compact:
		b = append(b, env.Data...)
	default:
		var err error
		if b, err = appendCompact(b, env.Data); err != nil {
			return b, false
		}
	}
	return append(b, '}'), true
}

func appendCompact(b, raw []byte) ([]byte, error) {
	// json.Marshal of a json.RawMessage compacts it and escapes HTML
	// characters in its strings; a marshal of the value alone gives exactly
	// the bytes it would embed.
	out, err := json.Marshal(json.RawMessage(raw))
	if err != nil {
		return b, err
	}
	return append(b, out...), nil
}

const hexDigits = "0123456789abcdef"

// appendString appends s as a JSON string, escaped as encoding/json escapes
// it (HTML characters, U+2028 and U+2029 as \u escapes, invalid UTF-8 as
// U+FFFD).
func appendString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' && c != '<' && c != '>' && c != '&' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			case '\b':
				b = append(b, '\\', 'b')
			case '\f':
				b = append(b, '\\', 'f')
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xF])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hexDigits[r&0xF])
			i += size
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}
