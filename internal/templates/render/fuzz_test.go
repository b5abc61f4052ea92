package render

import (
	"errors"
	"strings"
	"testing"
)

// FuzzTemplate: any source either parses, or fails with an Error whose
// position lies inside the source; a parsed template renders without
// error, and in HTML never lets a value's markup through.
func FuzzTemplate(f *testing.F) {
	for _, s := range []string{
		"Hello {{contact.firstName | default: \"friend\"}}",
		`<a href="{{unsubscribeUrl}}">x</a>`,
		`\{{ {{contact.attributes.x|upper|lower}} }}`,
		"{{", "}}", "{{contact.email", `{{contact.email | default: "a\"b"}}`,
		"<script>{{contact.firstName}}</script>", "<style>{{contact.email}}</style>",
	} {
		f.Add(s, false)
		f.Add(s, true)
	}
	evil := &Data{Contact: Contact{FirstName: `"><img src=x onerror=alert(1)>`, Attributes: map[string]any{"x": "<b>"}},
		UnsubscribeURL: "javascript:alert(1)"}
	f.Fuzz(func(t *testing.T, src string, html bool) {
		kind := Text
		if html {
			kind = HTML
		}
		tpl, err := Parse(src, kind)
		if err != nil {
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("Parse error is not an *Error: %v", err)
			}
			lines := strings.Count(src, "\n") + 1
			if e.Line < 1 || e.Line > lines || e.Column < 1 {
				t.Fatalf("error position %d:%d outside the source (%d lines): %v", e.Line, e.Column, lines, err)
			}
			return
		}
		out, err := tpl.Render(evil, nil)
		if err != nil {
			t.Fatalf("a parsed template failed to render: %v", err)
		}
		if html && strings.Contains(src, "{{contact.firstName") && strings.Contains(out, "<img") && !strings.Contains(src, "<img") {
			t.Fatalf("markup from a value came through:\nsrc %q\nout %q", src, out)
		}
	})
}
