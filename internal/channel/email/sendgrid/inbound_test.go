package sendgrid

import (
	"bytes"
	"errors"
	"fmt"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"net/mail"
	"net/textproto"
	"reflect"
	"strings"
	"testing"
)

// part is one part of an Inbound Parse form: a text field, or a file
// when filename or contentType is set.
type part struct {
	name        string
	value       string
	filename    string
	contentType string
}

func field(name, value string) part { return part{name: name, value: value} }

func file(name, filename, contentType string, body []byte) part {
	return part{name: name, value: string(body), filename: filename, contentType: contentType}
}

// testBoundary is the boundary of the forms the tests and the fuzz test
// build.
const testBoundary = "xYzZY"

// formBody encodes parts as multipart/form-data, as SendGrid posts them.
func formBody(t testing.TB, parts []part) []byte {
	t.Helper()
	var buf bytes.Buffer
	w := multipart.NewWriter(&buf)
	if err := w.SetBoundary(testBoundary); err != nil {
		t.Fatal(err)
	}
	for _, p := range parts {
		var (
			pw  interface{ Write([]byte) (int, error) }
			err error
		)
		if p.filename == "" && p.contentType == "" {
			pw, err = w.CreateFormField(p.name)
		} else {
			h := textproto.MIMEHeader{}
			h.Set("Content-Disposition", fmt.Sprintf(`form-data; name="%s"; filename="%s"`, p.name, p.filename))
			h.Set("Content-Type", p.contentType)
			pw, err = w.CreatePart(h)
		}
		if err != nil {
			t.Fatal(err)
		}
		if _, err := pw.Write([]byte(p.value)); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func inboundRequest(body []byte) *http.Request {
	r := httptest.NewRequest(http.MethodPost, "/webhooks/sendgrid/inbound", bytes.NewReader(body))
	r.Header.Set("Content-Type", "multipart/form-data; boundary="+testBoundary)
	return r
}

func newInboundRequest(t testing.TB, parts []part) *http.Request {
	t.Helper()
	return inboundRequest(formBody(t, parts))
}

// docsHeaders is the headers field of SendGrid's "Example Default
// Payload" (Inbound Parse reference), with its long DKIM lines cut.
const docsHeaders = `Received: by mx0047p1mdw1.sendgrid.net with SMTP id 6WCVv7KAWn Wed, 27 Jul 2016 20:53:06 +0000 (UTC)
Received: from mail-io0-f169.google.com (mail-io0-f169.google.com [209.85.223.169]) by mx0047p1mdw1.sendgrid.net (Postfix) with ESMTPS id AA9FFA817F2 for <example@example.comom>; Wed, 27 Jul 2016 20:53:06 +0000 (UTC)
Received: by mail-io0-f169.google.com with SMTP id b62so81593819iod.3 for <example@example.comom>; Wed, 27 Jul 2016 13:53:06 -0700 (PDT)
DKIM-Signature: v=1; a=rsa-sha256; c=relaxed/relaxed; d=sendgrid.com; s=ga1; h=mime-version:from:date:message-id:subject:to; bh=DpB1CYYeumytcPF3q0Upvx3Sq/oF4ZblEwnuVzFwqGI=; b=GH5YTxjt6r4HoTa+94w6ZGQszFQSgegF+Jlv69YV76OLycJI4Gxdwfh6Wlqfez5yID 5dsWuqaVJZQyMq/Dy/c2gHSqVo60BKG56YrynYeSrMPy8abE/6/muPilYxDoPoEyIr/c UXH5rhOKjmJ7nICKu1o99Tfl0cXyCskE7ERW0=
X-Gm-Message-State: AEkoousvdxmDoxLlTUYJ1AOmCGJv77xRBBlfKv6YrthH0M2NueMwlOxUD6t8nidE9uonXbdJ/DQy/chmHUnN//a4
X-Received: by 10.107.6.101 with SMTP id 98mr38024553iog.41.1469652785829; Wed, 27 Jul 2016 13:53:05 -0700 (PDT)
MIME-Version: 1.0
Received: by 10.107.48.17 with HTTP; Wed, 27 Jul 2016 13:53:05 -0700 (PDT)
From: Sender Name <example@example.com>
Date: Wed, 27 Jul 2016 14:53:05 -0600
Message-ID: <CAN_P_JMvV7ZpAQhOnDienypLrJmuhN=LQWweu4yScw4jQyXY2w@mail.gmail.com>
Subject: Different File Types
To: example@example.comom
Content-Type: multipart/mixed; boundary=001a113f8ad03e85160538a4343c
`

const docsHTML = `<div dir="ltr">Here&#39;s an email with multiple attachments<div><br></div><div><img src="cid:ii_1562e2169c132d83" alt="Inline image 1" width="455" height="544"><br clear="all"><div><br></div>-- <br><div class="gmail_signature" data-smartmail="gmail_signature"><div dir="ltr"><img src="https://sendgrid.com/brand/sg-logo-email.png" width="96" height="17"><br><div><br></div></div></div>
</div></div>
`

const docsSpamReport = `Spam detection software, running on the system "mx0047p1mdw1.sendgrid.net", has
identified this incoming email as possible spam.

Content analysis details:   (2.6 points, 5.0 required)

 pts rule name              description
---- ---------------------- --------------------------------------------------
 0.8 HTML_IMAGE_RATIO_02    BODY: HTML has a low ratio of text to image area
 1.8 HTML_IMAGE_ONLY_08     BODY: HTML: images with 400-800 bytes of words
`

// docsPayload is SendGrid's "Example Default Payload": a Gmail message
// with an inline JPEG and a Word document.
func docsPayload() []part {
	return []part{
		field("headers", docsHeaders),
		field("dkim", "{@sendgrid.com : pass}"),
		field("content-ids", `{"ii_1562e2169c132d83":"attachment1"}`),
		field("to", "example@example.comom"),
		field("html", docsHTML),
		field("from", "Sender Name <example@example.com>"),
		field("text", "Here's an email with multiple attachments\n"),
		field("sender_ip", "209.85.223.169"),
		field("spam_report", docsSpamReport),
		field("envelope", `{"to":["example@example.comom"],"from":"example@example.com"}`),
		field("attachments", "2"),
		field("subject", "Different File Types"),
		field("spam_score", "2.597"),
		field("attachment-info", `{"attachment2":{"filename":"DockMcWordface.docx","type":"application/vnd.openxmlformats-officedocument.wordprocessingml.document"},"attachment1":{"filename":"MG_2359.jpg","type":"image/jpeg","content-id":"ii_1562e2169c132d83"}}`),
		field("charsets", `{"to":"UTF-8","html":"UTF-8","subject":"UTF-8","from":"UTF-8","text":"UTF-8"}`),
		field("SPF", "pass"),
		file("attachment1", "MG_2359.jpg", "image/jpeg", bytes.Repeat([]byte{0xFF, 0xD8, 0xFF, 0xE0}, 2048)),
		file("attachment2", "DockMcWordface.docx", "application/vnd.openxmlformats-officedocument.wordprocessingml.document", bytes.Repeat([]byte("PK\x03\x04"), 3000)),
	}
}

// replyHeaders are the headers of an alumna's reply to a campaign
// message, from Outlook, in Windows-1252.
const replyHeaders = "Received: from mail-eopbgr80071.outbound.protection.outlook.com (mail-eopbgr80071.outbound.protection.outlook.com [40.107.8.71]) by mx.sendgrid.net with ESMTPS id 3kQ2v9mRTpq for <reply+0193694e5a2b@parse.alum.example.org>; Thu, 27 Nov 2025 10:14:02 +0000 (UTC)\r\n" +
	"From: =?windows-1252?Q?Ren=E9e_Fran=E7ois?= <renee.francois@example.fr>\r\n" +
	"To: Alumni Relations <reply+0193694e5a2b@parse.alum.example.org>\r\n" +
	"Subject: =?windows-1252?Q?RE:_R=E9union_des_anciens_=96_2026?=\r\n" +
	"Thread-Topic: =?windows-1252?Q?R=E9union_des_anciens?=\r\n" +
	"Date: Thu, 27 Nov 2025 10:13:58 +0000\r\n" +
	"Message-ID: <AM9PR07MB7106E1B0C8D6F2A1B9D4C3E2A8F1A@AM9PR07MB7106.eurprd07.prod.outlook.com>\r\n" +
	"In-Reply-To: <0193694e-5a2b-7c41-9d0e-6f1a2b3c4d5e@mail.alum.example.org>\r\n" +
	"References: <0193694e-0001-7000-8000-000000000001@mail.alum.example.org>\r\n" +
	"\t<0193694e-5a2b-7c41-9d0e-6f1a2b3c4d5e@mail.alum.example.org>\r\n" +
	"Content-Language: fr-FR\r\n" +
	"Content-Type: multipart/alternative; boundary=\"_000_AM9PR07MB7106_\"\r\n" +
	"MIME-Version: 1.0\r\n"

// windows1252 text: "Chère équipe, je serai là – “avec plaisir” € 20"
var replyText = "Ch\xe8re \xe9quipe, je serai l\xe0 \x96 \x93avec plaisir\x94 \x80 20\r\n"

func replyPayload() []part {
	return []part{
		field("headers", replyHeaders),
		field("dkim", "{@example.fr : pass}"),
		field("to", "Alumni Relations <reply+0193694e5a2b@parse.alum.example.org>"),
		field("from", "Ren\xe9e Fran\xe7ois <renee.francois@example.fr>"),
		field("cc", `"Okafor, Dana" <dana.okafor@alumni.example.edu>, events@alum.example.org`),
		field("text", replyText),
		field("sender_ip", "40.107.8.71"),
		field("envelope", `{"to":["reply+0193694e5a2b@parse.alum.example.org"],"from":"renee.francois@example.fr"}`),
		field("attachments", "0"),
		field("subject", "RE: R\xe9union des anciens \x96 2026"),
		field("charsets", `{"to":"UTF-8","cc":"UTF-8","text":"windows-1252","subject":"iso-8859-1","from":"iso-8859-1"}`),
		field("SPF", "pass"),
	}
}

func TestParseInbound(t *testing.T) {
	t.Parallel()
	t.Run("SendGrid's example payload", func(t *testing.T) {
		t.Parallel()
		in, err := ParseInbound(newInboundRequest(t, docsPayload()), 0)
		if err != nil {
			t.Fatal(err)
		}
		headers := in.Headers
		in.Headers = nil
		want := Inbound{
			From:       mail.Address{Name: "Sender Name", Address: "example@example.com"},
			To:         []mail.Address{{Address: "example@example.comom"}},
			Subject:    "Different File Types",
			Text:       "Here's an email with multiple attachments\n",
			HTML:       docsHTML,
			MessageID:  "CAN_P_JMvV7ZpAQhOnDienypLrJmuhN=LQWweu4yScw4jQyXY2w@mail.gmail.com",
			Envelope:   Envelope{To: []string{"example@example.comom"}, From: "example@example.com"},
			SpamScore:  2.597,
			SpamReport: docsSpamReport, SpamChecked: true,
			SPF: "pass", DKIM: "{@sendgrid.com : pass}", SenderIP: "209.85.223.169",
			Charsets: map[string]string{"to": "UTF-8", "html": "UTF-8", "subject": "UTF-8", "from": "UTF-8", "text": "UTF-8"},
			Attachments: []Attachment{
				{Field: "attachment1", Filename: "MG_2359.jpg", ContentType: "image/jpeg", ContentID: "ii_1562e2169c132d83", Size: 8192},
				{Field: "attachment2", Filename: "DockMcWordface.docx", ContentType: "application/vnd.openxmlformats-officedocument.wordprocessingml.document", Size: 12000},
			},
		}
		if !reflect.DeepEqual(in, want) {
			t.Errorf("ParseInbound:\n got %+v\nwant %+v", in, want)
		}
		for name, value := range map[string]string{
			"Subject":      "Different File Types",
			"Mime-Version": "1.0",
			"Date":         "Wed, 27 Jul 2016 14:53:05 -0600",
			"Content-Type": "multipart/mixed; boundary=001a113f8ad03e85160538a4343c",
		} {
			if got := headers.Get(name); got != value {
				t.Errorf("header %s = %q, want %q", name, got, value)
			}
		}
		if n := len(headers.Values("Received")); n != 4 {
			t.Errorf("%d Received headers, want 4", n)
		}
	})

	t.Run("a reply in Windows-1252", func(t *testing.T) {
		t.Parallel()
		in, err := ParseInbound(newInboundRequest(t, replyPayload()), 1<<20)
		if err != nil {
			t.Fatal(err)
		}
		checks := []struct {
			what      string
			got, want any
		}{
			{"From", in.From, mail.Address{Name: "Renée François", Address: "renee.francois@example.fr"}},
			{"To", in.To, []mail.Address{{Name: "Alumni Relations", Address: "reply+0193694e5a2b@parse.alum.example.org"}}},
			{"Cc", in.Cc, []mail.Address{{Name: "Okafor, Dana", Address: "dana.okafor@alumni.example.edu"}, {Address: "events@alum.example.org"}}},
			{"Subject", in.Subject, "RE: Réunion des anciens – 2026"},
			{"Text", in.Text, "Chère équipe, je serai là – “avec plaisir” € 20\r\n"},
			{"MessageID", in.MessageID, "AM9PR07MB7106E1B0C8D6F2A1B9D4C3E2A8F1A@AM9PR07MB7106.eurprd07.prod.outlook.com"},
			{"InReplyTo", in.InReplyTo, "0193694e-5a2b-7c41-9d0e-6f1a2b3c4d5e@mail.alum.example.org"},
			{"References", in.References, []string{"0193694e-0001-7000-8000-000000000001@mail.alum.example.org", "0193694e-5a2b-7c41-9d0e-6f1a2b3c4d5e@mail.alum.example.org"}},
			{"Envelope", in.Envelope, Envelope{To: []string{"reply+0193694e5a2b@parse.alum.example.org"}, From: "renee.francois@example.fr"}},
			{"SpamChecked", in.SpamChecked, false},
			{"Attachments", in.Attachments, []Attachment(nil)},
			{"Subject header (raw)", in.Headers.Get("Subject"), "=?windows-1252?Q?RE:_R=E9union_des_anciens_=96_2026?="},
		}
		for _, c := range checks {
			if !reflect.DeepEqual(c.got, c.want) {
				t.Errorf("%s = %#v, want %#v", c.what, c.got, c.want)
			}
		}
	})
}

// withField returns parts with the named field replaced (or, when value
// is "-", removed; when absent, appended).
func withField(parts []part, name, value string) []part {
	out := make([]part, 0, len(parts)+1)
	found := false
	for _, p := range parts {
		if p.name == name {
			found = true
			if value == "-" {
				continue
			}
			p.value = value
		}
		out = append(out, p)
	}
	if !found && value != "-" {
		out = append(out, field(name, value))
	}
	return out
}

func TestParseInboundFields(t *testing.T) {
	t.Parallel()
	base := replyPayload()
	cases := []struct {
		name  string
		parts []part
		check func(t *testing.T, in Inbound)
	}{
		{"From without angle brackets (as SendGrid's docs print it)",
			withField(withField(base, "from", "Sender Name example@example.com"), "charsets", "-"),
			func(t *testing.T, in Inbound) {
				if want := (mail.Address{Name: "Sender Name", Address: "example@example.com"}); in.From != want {
					t.Errorf("From = %+v, want %+v", in.From, want)
				}
			}},
		{"From with an unsupported encoded-word charset",
			withField(base, "from", "=?koi8-r?B?8NLJ18XU?= <ivan@example.ru>"),
			func(t *testing.T, in Inbound) {
				if in.From.Address != "ivan@example.ru" || in.From.Name != "=?koi8-r?B?8NLJ18XU?=" {
					t.Errorf("From = %+v", in.From)
				}
			}},
		{"From unreadable falls back to the envelope sender",
			withField(base, "from", "Renée (at home)"),
			func(t *testing.T, in Inbound) {
				if want := (mail.Address{Address: "renee.francois@example.fr"}); in.From != want {
					t.Errorf("From = %+v, want %+v", in.From, want)
				}
			}},
		{"From missing falls back to the envelope sender",
			withField(base, "from", "-"),
			func(t *testing.T, in Inbound) {
				if in.From.Address != "renee.francois@example.fr" {
					t.Errorf("From = %+v", in.From)
				}
			}},
		{"To a group with no address falls back to the envelope",
			withField(base, "to", "undisclosed-recipients:;"),
			func(t *testing.T, in Inbound) {
				if want := []mail.Address{{Address: "reply+0193694e5a2b@parse.alum.example.org"}}; !reflect.DeepEqual(in.To, want) {
					t.Errorf("To = %+v, want %+v", in.To, want)
				}
			}},
		{"To missing (Bcc) falls back to the envelope",
			withField(base, "to", "-"),
			func(t *testing.T, in Inbound) {
				if len(in.To) != 1 || in.To[0].Address != "reply+0193694e5a2b@parse.alum.example.org" {
					t.Errorf("To = %+v", in.To)
				}
			}},
		{"To list with a broken entry keeps the readable ones",
			withField(base, "to", `Alumni <reply+1@parse.alum.example.org>, "broken <, x@y.z`),
			func(t *testing.T, in Inbound) {
				if len(in.To) == 0 || in.To[0].Address != "reply+1@parse.alum.example.org" {
					t.Errorf("To = %+v", in.To)
				}
			}},
		{"unknown charset is left as received",
			withField(withField(base, "text", "\xf0\xd2\xc9\xd7\xc5\xd4"), "charsets", `{"text":"KOI8-R"}`),
			func(t *testing.T, in Inbound) {
				if in.Text != "\xf0\xd2\xc9\xd7\xc5\xd4" || in.Charsets["text"] != "KOI8-R" {
					t.Errorf("Text = %q, Charsets = %v", in.Text, in.Charsets)
				}
			}},
		{"US-ASCII holding 8-bit bytes",
			withField(withField(base, "text", "caf\xe9"), "charsets", `{"text":"us-ascii"}`),
			func(t *testing.T, in Inbound) {
				if in.Text != "café" {
					t.Errorf("Text = %q", in.Text)
				}
			}},
		{"UTF-8 subject with encoded-words left in it",
			withField(withField(base, "subject", "Re: =?UTF-8?B?UsOpdW5pb24g8J+Ok8Kg?="), "charsets", `{"subject":"UTF-8"}`),
			func(t *testing.T, in Inbound) {
				if in.Subject != "Re: Réunion 🎓\u00a0" {
					t.Errorf("Subject = %q", in.Subject)
				}
			}},
		{"headers with broken lines keep the fields after them",
			withField(base, "headers", "Received: x\n this line continues\nnot a header line\n\tcontinuation of nothing\nX Bad Name: y\nMessage-ID:   <id-1@example.org>  \nIn-Reply-To: <a@x> <b@x>\nReferences: broken-mailer@example.org other@example.org\n\nBody: not a header\n"),
			func(t *testing.T, in Inbound) {
				if in.MessageID != "id-1@example.org" || in.InReplyTo != "a@x" ||
					!reflect.DeepEqual(in.References, []string{"broken-mailer@example.org", "other@example.org"}) {
					t.Errorf("MessageID %q, InReplyTo %q, References %q", in.MessageID, in.InReplyTo, in.References)
				}
				if got := in.Headers.Get("Received"); got != "x this line continues" {
					t.Errorf("Received = %q", got)
				}
				if in.Headers.Get("Body") != "" || len(in.Headers) != 4 {
					t.Errorf("Headers = %v", in.Headers)
				}
			}},
		{"no headers field",
			withField(base, "headers", "-"),
			func(t *testing.T, in Inbound) {
				if in.Headers == nil || len(in.Headers) != 0 || in.MessageID != "" || in.References != nil {
					t.Errorf("Headers %v, MessageID %q, References %q", in.Headers, in.MessageID, in.References)
				}
			}},
		{"negative spam score",
			withField(base, "spam_score", " -0.1 "),
			func(t *testing.T, in Inbound) {
				if !in.SpamChecked || in.SpamScore != -0.1 {
					t.Errorf("SpamChecked %v, SpamScore %v", in.SpamChecked, in.SpamScore)
				}
			}},
		{"empty spam score is no spam check",
			withField(base, "spam_score", ""),
			func(t *testing.T, in Inbound) {
				if in.SpamChecked {
					t.Error("SpamChecked")
				}
			}},
		{"unknown fields and files are dropped",
			append(withField(base, "unknown_field", "x"), file("upload", "x.bin", "application/octet-stream", []byte("zzz"))),
			func(t *testing.T, in Inbound) {
				if in.Attachments != nil {
					t.Errorf("Attachments = %+v", in.Attachments)
				}
			}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			in, err := ParseInbound(newInboundRequest(t, c.parts), 1<<20)
			if err != nil {
				t.Fatal(err)
			}
			c.check(t, in)
		})
	}
}

func TestParseInboundAttachments(t *testing.T) {
	t.Parallel()
	big := bytes.Repeat([]byte("0123456789abcdef"), 1<<16) // 1 MiB
	parts := append(withField(replyPayload(), "attachments", "3"),
		file("attachment10", "tenth.pdf", "application/pdf", []byte("%PDF-1.7")),
		file("attachment2", "=?utf-8?q?caf=C3=A9.png?=", "image/png", big),
		file("attachment1", "", "text/calendar", []byte("BEGIN:VCALENDAR")),
		field("attachment-info", `{"attachment1":{"filename":"invite.ics","type":"text/calendar; method=REQUEST"},"attachment3":{"filename":"never posted.txt"}}`),
		field("content-ids", `{"<logo@alum>":"attachment2"}`),
	)
	// A 64 KiB budget: the 1 MiB attachment is counted, not kept.
	in, err := ParseInbound(newInboundRequest(t, parts), 64<<10)
	if err != nil {
		t.Fatal(err)
	}
	want := []Attachment{
		{Field: "attachment1", Filename: "invite.ics", ContentType: "text/calendar; method=REQUEST", Size: 15},
		{Field: "attachment2", Filename: "café.png", ContentType: "image/png", ContentID: "logo@alum", Size: int64(len(big))},
		{Field: "attachment10", Filename: "tenth.pdf", ContentType: "application/pdf", Size: 8},
	}
	if !reflect.DeepEqual(in.Attachments, want) {
		t.Errorf("Attachments:\n got %+v\nwant %+v", in.Attachments, want)
	}
}

func TestParseInboundErrors(t *testing.T) {
	t.Parallel()
	base := replyPayload()
	noEnvelope := withField(base, "envelope", "-")
	cases := []struct {
		name      string
		request   func(t *testing.T) *http.Request
		maxMemory int64
		want      string
		tooLarge  bool
	}{
		{"not multipart", func(t *testing.T) *http.Request {
			r := httptest.NewRequest(http.MethodPost, "/", strings.NewReader("from=a%40b.c"))
			r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			return r
		}, 0, "not multipart/form-data", false},
		{"no content type", func(t *testing.T) *http.Request {
			return httptest.NewRequest(http.MethodPost, "/", strings.NewReader("x"))
		}, 0, "not multipart/form-data", false},
		{"multipart/mixed", func(t *testing.T) *http.Request {
			r := newInboundRequest(t, base)
			r.Header.Set("Content-Type", "multipart/mixed; boundary="+testBoundary)
			return r
		}, 0, "not multipart/form-data", false},
		{"no boundary", func(t *testing.T) *http.Request {
			r := newInboundRequest(t, base)
			r.Header.Set("Content-Type", "multipart/form-data")
			return r
		}, 0, "has no boundary", false},
		{"wrong boundary", func(t *testing.T) *http.Request {
			r := newInboundRequest(t, base)
			r.Header.Set("Content-Type", "multipart/form-data; boundary=other")
			return r
		}, 0, `holds no form part delimited by the boundary "other"`, false},
		{"empty body", func(t *testing.T) *http.Request {
			return inboundRequest(nil)
		}, 0, "holds no form part", false},
		{"truncated inside a field", func(t *testing.T) *http.Request {
			b := formBody(t, base)
			i := bytes.Index(b, []byte("Ch\xe8re"))
			return inboundRequest(b[:i+4])
		}, 0, "reading the form", false},
		{"truncated inside a part's header", func(t *testing.T) *http.Request {
			b := formBody(t, base)
			i := bytes.LastIndex(b, []byte(`name="`))
			return inboundRequest(b[:i+6])
		}, 0, "cut short", false},
		{"truncated before the closing delimiter", func(t *testing.T) *http.Request {
			b := formBody(t, base)
			return inboundRequest(b[:bytes.LastIndex(b, []byte("--"+testBoundary+"--"))])
		}, 0, "reading the form: unexpected EOF", false},
		{"Send Raw post", func(t *testing.T) *http.Request {
			return newInboundRequest(t, []part{
				field("dkim", "{@example.fr : pass}"), field("to", "a@parse.example.org"), field("from", "b@example.fr"),
				field("email", "From: b@example.fr\r\nTo: a@parse.example.org\r\nSubject: hi\r\n\r\nhello\r\n"),
				field("envelope", `{"to":["a@parse.example.org"],"from":"b@example.fr"}`),
			})
		}, 0, `"Send Raw" post`, false},
		{"from and envelope sender missing", func(t *testing.T) *http.Request {
			return newInboundRequest(t, withField(noEnvelope, "from", "-"))
		}, 0, "from is missing, and the envelope has no sender", false},
		{"from unreadable and envelope sender missing", func(t *testing.T) *http.Request {
			return newInboundRequest(t, withField(noEnvelope, "from", "Renee (at home)"))
		}, 0, `from "Renee (at home)" is not an email address`, false},
		{"bounce: empty envelope sender, no from", func(t *testing.T) *http.Request {
			return newInboundRequest(t, withField(withField(base, "from", ""), "envelope", `{"to":["a@parse.example.org"],"from":""}`))
		}, 0, "from is missing", false},
		{"to and envelope recipients missing", func(t *testing.T) *http.Request {
			return newInboundRequest(t, withField(noEnvelope, "to", "-"))
		}, 0, "to is missing, and the envelope has no recipient", false},
		{"to unreadable and envelope recipients missing", func(t *testing.T) *http.Request {
			return newInboundRequest(t, withField(noEnvelope, "to", "undisclosed-recipients:;"))
		}, 0, `to "undisclosed-recipients:;" names no email address`, false},
		{"envelope not JSON", func(t *testing.T) *http.Request {
			return newInboundRequest(t, withField(base, "envelope", "to=a@b"))
		}, 0, "envelope is not a JSON object", false},
		{"envelope to not an array", func(t *testing.T) *http.Request {
			return newInboundRequest(t, withField(base, "envelope", `{"to":"a@b","from":"c@d"}`))
		}, 0, "envelope is not a JSON object", false},
		{"charsets not an object of strings", func(t *testing.T) *http.Request {
			return newInboundRequest(t, withField(base, "charsets", `{"text":1}`))
		}, 0, "charsets is not a JSON object", false},
		{"attachment-info not JSON", func(t *testing.T) *http.Request {
			return newInboundRequest(t, withField(base, "attachment-info", `{attachment1`))
		}, 0, "attachment-info is not a JSON object", false},
		{"content-ids not JSON", func(t *testing.T) *http.Request {
			return newInboundRequest(t, withField(base, "content-ids", `[]`))
		}, 0, "content-ids is not a JSON object", false},
		{"spam score not a number", func(t *testing.T) *http.Request {
			return newInboundRequest(t, withField(base, "spam_score", "high"))
		}, 0, `spam_score "high" is not a number`, false},
		{"spam score NaN", func(t *testing.T) *http.Request {
			return newInboundRequest(t, withField(base, "spam_score", "NaN"))
		}, 0, `spam_score "NaN" is not a number`, false},
		{"attachments not a count", func(t *testing.T) *http.Request {
			return newInboundRequest(t, withField(base, "attachments", "two"))
		}, 0, `attachments "two" is not a count`, false},
		{"field posted twice", func(t *testing.T) *http.Request {
			return newInboundRequest(t, append(base, field("subject", "again")))
		}, 0, "field subject is posted twice", false},
		{"attachment posted twice", func(t *testing.T) *http.Request {
			return newInboundRequest(t, append(base, file("attachment1", "a", "text/plain", nil), file("attachment1", "b", "text/plain", nil)))
		}, 0, "attachment1 is posted twice", false},
		{"text fields over maxMemory", func(t *testing.T) *http.Request {
			return newInboundRequest(t, withField(base, "html", strings.Repeat("<p>x</p>", 200)))
		}, 1000, "the text fields are larger than 1000 bytes", true},
		{"too many parts", func(t *testing.T) *http.Request {
			parts := append([]part(nil), base...)
			for i := range MaxParts {
				parts = append(parts, field(fmt.Sprintf("x%d", i), ""))
			}
			return newInboundRequest(t, parts)
		}, 0, "more than 1000 parts", true},
		{"body over http.MaxBytesReader", func(t *testing.T) *http.Request {
			r := newInboundRequest(t, append(base, file("attachment1", "big.bin", "application/octet-stream", make([]byte, 64<<10))))
			r.Body = http.MaxBytesReader(httptest.NewRecorder(), r.Body, 32<<10)
			return r
		}, 0, "larger than 32768 bytes", true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			in, err := ParseInbound(c.request(t), c.maxMemory)
			if err == nil {
				t.Fatalf("ParseInbound accepted the request as %+v", in)
			}
			if !errors.Is(err, ErrInvalidWebhook) {
				t.Errorf("error %v does not wrap ErrInvalidWebhook", err)
			}
			if errors.Is(err, ErrTooLarge) != c.tooLarge {
				t.Errorf("error %v: errors.Is(ErrTooLarge) = %v, want %v", err, !c.tooLarge, c.tooLarge)
			}
			if !strings.Contains(err.Error(), c.want) {
				t.Errorf("error %q does not say %q", err, c.want)
			}
			if !reflect.DeepEqual(in, Inbound{}) {
				t.Errorf("an error came with %+v", in)
			}
		})
	}
}
