package event

import (
	"bytes"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf16"
	"unicode/utf8"
)

// messageDataStrings are MessageData's string fields by JSON key.
var messageDataStrings = map[string]func(*MessageData) *string{
	"messageId":        func(d *MessageData) *string { return &d.MessageID },
	"channel":          func(d *MessageData) *string { return &d.Channel },
	"contactId":        func(d *MessageData) *string { return &d.ContactID },
	"recipientAddress": func(d *MessageData) *string { return &d.RecipientAddress },
	"sourceType":       func(d *MessageData) *string { return &d.SourceType },
	"sourceId":         func(d *MessageData) *string { return &d.SourceID },
	"templateId":       func(d *MessageData) *string { return &d.TemplateID },
	"sourceName":       func(d *MessageData) *string { return &d.SourceName },
	"externalId":       func(d *MessageData) *string { return &d.ExternalID },
	"runId":            func(d *MessageData) *string { return &d.RunID },
	"step":             func(d *MessageData) *string { return &d.Step },
	"subject":          func(d *MessageData) *string { return &d.Subject },
	"from":             func(d *MessageData) *string { return &d.From },
	"fromName":         func(d *MessageData) *string { return &d.FromName },
	"replyTo":          func(d *MessageData) *string { return &d.ReplyTo },
	"reason":           func(d *MessageData) *string { return &d.Reason },
	"errorCode":        func(d *MessageData) *string { return &d.ErrorCode },
	"url":              func(d *MessageData) *string { return &d.URL },
	"bounceType":       func(d *MessageData) *string { return &d.BounceType },
	"text":             func(d *MessageData) *string { return &d.Text },
	"replyToMessageId": func(d *MessageData) *string { return &d.ReplyToMessageID },
}

// messageDataKeysFolded are every MessageData key in lower case: a key that
// matches one only case-insensitively is left to encoding/json, which
// matches keys that way.
var messageDataKeysFolded = func() map[string]bool {
	m := map[string]bool{"templateversion": true, "occurredat": true, "sendafter": true}
	for k := range messageDataStrings {
		m[strings.ToLower(k)] = true
	}
	return m
}()

// decodeMessageData is DecodeData's fast path for MessageData, the payload
// of every pipeline.message.* event, which the send consumer, campaign
// tracking and workflows each decode: it reads what json.Marshal writes
// (strings, integers, timestamps) and reports false for anything else
// (keys in another case, wrong types, invalid JSON), which encoding/json then
// decodes or refuses. A differential fuzz test keeps the two in agreement.
func decodeMessageData(b []byte, d *MessageData) bool {
	p := parser{b: b}
	return p.object(func(key []byte) bool { return p.messageDataField(string(key), d) })
}

func (p *parser) messageDataField(key string, d *MessageData) bool {
	if p.peek() == 'n' && messageDataKeysFolded[key] {
		return p.literal("null") // null leaves a field as it is
	}
	switch key {
	case "templateVersion":
		raw, ok := p.checkedValue()
		if !ok {
			return false
		}
		n, err := strconv.ParseInt(string(raw), 10, 64)
		if err != nil {
			return false
		}
		d.TemplateVersion = n
		return true
	case "occurredAt", "sendAfter":
		s, ok := p.stringValue()
		if !ok {
			return false
		}
		t, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			return false
		}
		if key == "occurredAt" {
			d.OccurredAt = Time{t.UTC()}
		} else {
			d.SendAfter = Time{t.UTC()}
		}
		return true
	}
	if field, ok := messageDataStrings[key]; ok {
		s, ok := p.stringValue()
		if !ok {
			return false
		}
		*field(d) = s
		return true
	}
	if messageDataKeysFolded[string(bytes.ToLower([]byte(key)))] {
		return false
	}
	_, ok := p.checkedValue() // a key MessageData does not have
	return ok
}

// stringValue reads a JSON string as encoding/json decodes it: escapes
// resolved, an unpaired surrogate and invalid UTF-8 replaced by U+FFFD.
func (p *parser) stringValue() (string, bool) {
	start := p.i
	if s, ok := p.plainString(); ok {
		return string(s), true
	}
	p.i = start
	if !p.take('"') {
		return "", false
	}
	var out []byte
	for p.i < len(p.b) {
		c := p.b[p.i]
		switch {
		case c == '"':
			p.i++
			return string(out), true
		case c < 0x20:
			return "", false
		case c == '\\':
			if p.i+1 >= len(p.b) {
				return "", false
			}
			e := p.b[p.i+1]
			p.i += 2
			switch e {
			case '"', '\\', '/':
				out = append(out, e)
			case 'b':
				out = append(out, '\b')
			case 'f':
				out = append(out, '\f')
			case 'n':
				out = append(out, '\n')
			case 'r':
				out = append(out, '\r')
			case 't':
				out = append(out, '\t')
			case 'u':
				r, ok := p.hex4()
				if !ok {
					return "", false
				}
				if utf16.IsSurrogate(r) {
					save := p.i
					if p.literal(`\u`) {
						if r2, ok := p.hex4(); ok {
							if dec := utf16.DecodeRune(r, r2); dec != unicode.ReplacementChar {
								out = utf8.AppendRune(out, dec)
								continue
							}
						}
					}
					p.i = save // the next escape stands on its own
					r = unicode.ReplacementChar
				}
				out = utf8.AppendRune(out, r)
			default:
				return "", false
			}
		case c < utf8.RuneSelf:
			out = append(out, c)
			p.i++
		default:
			r, size := utf8.DecodeRune(p.b[p.i:])
			out = utf8.AppendRune(out, r)
			p.i += size
		}
	}
	return "", false
}

// hex4 reads the four hex digits of a \u escape.
func (p *parser) hex4() (rune, bool) {
	if len(p.b)-p.i < 4 {
		return 0, false
	}
	var r rune
	for _, c := range p.b[p.i : p.i+4] {
		switch {
		case c >= '0' && c <= '9':
			c -= '0'
		case c >= 'a' && c <= 'f':
			c = c - 'a' + 10
		case c >= 'A' && c <= 'F':
			c = c - 'A' + 10
		default:
			return 0, false
		}
		r = r<<4 | rune(c)
	}
	p.i += 4
	return r, true
}
