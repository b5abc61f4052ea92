package render

import (
	"errors"
	"strings"
	"testing"
)

func ada() *Data {
	return &Data{
		Contact: Contact{Email: "ada@example.org", FirstName: "ada", LastName: "Lovelace", Tags: []string{"alumni", "donor"},
			Attributes: map[string]any{"classYear": 1835.0, "gpa": 3.95, "vip": true, "city": "London", "big": 1e21}},
		CampaignName: "Spring Appeal", MessageID: "m1", UnsubscribeURL: "https://example.org/u/tok?x=1&y=2",
	}
}

func TestRenderText(t *testing.T) {
	cases := []struct {
		src, want string
	}{
		{"Hello {{contact.firstName}}", "Hello ada"},
		{"Hello {{ contact.firstName | capitalize }}!", "Hello Ada!"},
		{"{{contact.fullName}} <{{contact.email}}>", "ada Lovelace <ada@example.org>"},
		{"{{contact.phone | default: \"no phone\"}}", "no phone"},
		{`{{contact.attributes.nickname | default: "say \"hi\" \\ friend"}}`, `say "hi" \ friend`},
		{"{{contact.attributes.classYear}} {{contact.attributes.gpa}} {{contact.attributes.vip}} {{contact.attributes.big}}", "1835 3.95 true 1000000000000000000000"},
		{"{{campaign.name | upper}} / {{campaign.name|lower}}", "SPRING APPEAL / spring appeal"},
		{"tags: {{contact.tags}}", "tags: alumni, donor"},
		{`literal \{{ braces }} and {{message.id}}`, "literal {{ braces }} and m1"},
		{"<b>{{contact.firstName}}</b>", "<b>ada</b>"}, // text is not escaped
		{"", ""},
	}
	for _, c := range cases {
		tpl, err := Parse(c.src, Text)
		if err != nil {
			t.Errorf("Parse(%q): %v", c.src, err)
			continue
		}
		got, err := tpl.Render(ada(), nil)
		if err != nil || got != c.want {
			t.Errorf("Render(%q) = %q, %v; want %q", c.src, got, err, c.want)
		}
	}
}

func TestRenderHTMLEscapesByContext(t *testing.T) {
	d := ada()
	d.Contact.FirstName = `<script>alert("x")</script>`
	d.Contact.Attributes["site"] = "javascript:alert(1)"
	src := `<p title="{{contact.firstName}}">Hi {{contact.firstName}}</p>
<a href="{{unsubscribeUrl}}">unsubscribe</a> <a href="{{contact.attributes.site}}">site</a>
<a href="https://example.org/?n={{contact.lastName}}">q</a>`
	tpl, err := Parse(src, HTML)
	if err != nil {
		t.Fatal(err)
	}
	got, err := tpl.Render(d, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		`title="&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;"`,
		`Hi &lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;`,
		`href="https://example.org/u/tok?x=1&amp;y=2"`,
		`href="#ZgotmplZ"`, // a javascript: URL never becomes a link
		`?n=Lovelace`,
	} {
		if !strings.Contains(got, want) {
			t.Errorf("rendered HTML lacks %s:\n%s", want, got)
		}
	}
	if strings.Contains(got, "<script>") {
		t.Fatalf("a value came out unescaped:\n%s", got)
	}
}

func TestDefaults(t *testing.T) {
	tpl, err := Parse(`Dear {{contact.firstName}} of {{contact.attributes.city}}, {{contact.attributes.team | default: "friends"}}`, Text)
	if err != nil {
		t.Fatal(err)
	}
	d := &Data{Contact: Contact{Attributes: map[string]any{}}}
	got, _ := tpl.Render(d, map[string]string{"contact.firstName": "alum", "contact.attributes.city": "our city", "contact.attributes.team": "unused"})
	if got != "Dear alum of our city, friends" {
		t.Fatalf("got %q", got)
	}
	if v := tpl.Variables(); strings.Join(v, ",") != "contact.firstName,contact.attributes.city,contact.attributes.team" {
		t.Fatalf("variables %v", v)
	}
}

func TestParseErrorsPointAtTheMistake(t *testing.T) {
	cases := []struct {
		src        string
		kind       Kind
		line, col  int
		msgContain string
	}{
		{"Hello {{contact.frstName}}", Text, 1, 9, `unknown variable "contact.frstName"`},
		{"line one\n  and {{contact.firstName", Text, 2, 7, "never closed"},
		{"a {{contact.firstName\n}}", Text, 1, 3, "same line"},
		{"{{ }}", Text, 1, 4, "needs a variable"},
		{"{{contact.email | shout}}", Text, 1, 19, `unknown filter "shout"`},
		{"{{contact.email | default}}", Text, 1, 26, `default: "text"`},
		{"{{contact.email | default: friend}}", Text, 1, 28, "double-quoted"},
		{`{{contact.email | default: "open}}`, Text, 1, 28, "closing quote"},
		{"{{contact.email extra}}", Text, 1, 17, "expected |"},
		{"{{contact.attributes.class year}}", Text, 1, 28, "expected |"},
		{"é{{nope}}", Text, 1, 4, "unknown variable"},
		{"<p>ok</p>\n<script>var n = {{contact.firstName}}</script>", HTML, 2, 1, ""},
		{"<p>\n<a href=\"{{unsubscribeUrl}}", HTML, 2, 1, "never closed"},
		{"bad \xff utf-8", Text, 1, 1, "UTF-8"},
	}
	for _, c := range cases {
		_, err := Parse(c.src, c.kind)
		var e *Error
		if c.kind == HTML && c.msgContain == "" {
			// html/template escapes JS contexts; a placeholder in a script is allowed.
			if err != nil {
				t.Errorf("Parse(%q): %v", c.src, err)
			}
			continue
		}
		if !errors.As(err, &e) || e.Line != c.line || e.Column != c.col || !strings.Contains(e.Message, c.msgContain) {
			t.Errorf("Parse(%q) = %v; want line %d column %d mentioning %q", c.src, err, c.line, c.col, c.msgContain)
		}
	}
}

func BenchmarkRenderNewsletter(b *testing.B) {
	var src strings.Builder
	src.WriteString("<html><body><p>Dear {{contact.firstName | default: \"friend\"}},</p>\n")
	for range 40 {
		src.WriteString("<p>Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod tempor incididunt ut labore et dolore.</p>\n")
	}
	src.WriteString(`<a href="{{unsubscribeUrl}}">Unsubscribe</a> class of {{contact.attributes.classYear}}</body></html>`)
	tpl, err := Parse(src.String(), HTML)
	if err != nil {
		b.Fatal(err)
	}
	d := ada()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := tpl.Render(d, nil); err != nil {
			b.Fatal(err)
		}
	}
}
