package smtp

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"net"
	"net/mail"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	gosmtp "github.com/emersion/go-smtp"

	"github.com/alumoutreach/alumoutreach/internal/channel"
)

// fullMessage has everything BuildMessage writes: both bodies, non-ASCII
// subject and sender name, Reply-To and the RFC 8058 one-click
// unsubscribe headers.
func fullMessage(id string) channel.Message {
	return channel.Message{
		ID:       id,
		To:       "ada@example.net",
		From:     "alumni@example.org",
		FromName: "Bureau des anciens élèves",
		ReplyTo:  "replies@example.org",
		Subject:  "Réunion 2026 : inscrivez-vous ✓",
		Text:     "Chère Ada,\n\nLa réunion a lieu le 14 juin.\n.\nÀ bientôt\n",
		HTML:     `<p>Chère Ada,</p><p><a href="https://example.org/r?id=1&amp;c=2">Inscription</a></p>`,
		Headers: map[string]string{
			"List-Unsubscribe":      "<https://example.org/u/" + id + ">, <mailto:unsubscribe@example.org?subject=" + id + ">",
			"List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
		},
	}
}

// crlf is what the text of a body reads as after transport: every line
// break is CRLF.
func crlf(s string) string {
	s = strings.ReplaceAll(s, "\r\n", "\n")
	s = strings.ReplaceAll(s, "\r", "\n")
	return strings.ReplaceAll(s, "\n", "\r\n")
}

// parsed is a received message, parsed with net/mail and mime/multipart.
type parsed struct {
	header mail.Header
	// parts maps a part's media type to its decoded body.
	parts map[string]string
	// partHeaders maps a part's media type to its header.
	partHeaders map[string]map[string][]string
	order       []string
}

func parseMessage(t testing.TB, data []byte) parsed {
	t.Helper()
	for i, line := range bytes.Split(data, []byte("\r\n")) {
		if len(line) > 998 {
			t.Fatalf("line %d is %d characters long", i+1, len(line))
		}
		if bytes.ContainsAny(line, "\r\n") {
			t.Fatalf("line %d has a bare CR or LF: %q", i+1, line)
		}
	}
	msg, err := mail.ReadMessage(bytes.NewReader(data))
	if err != nil {
		t.Fatalf("net/mail cannot read the message: %v\n%s", err, data)
	}
	p := parsed{header: msg.Header, parts: map[string]string{}, partHeaders: map[string]map[string][]string{}}
	mt, params, err := mime.ParseMediaType(msg.Header.Get("Content-Type"))
	if err != nil {
		t.Fatalf("Content-Type: %v", err)
	}
	if !strings.HasPrefix(mt, "multipart/") {
		body, err := io.ReadAll(decodeQP(msg.Header.Get("Content-Transfer-Encoding"), msg.Body))
		if err != nil {
			t.Fatal(err)
		}
		p.parts[mt] = string(body)
		p.order = []string{mt}
		return p
	}
	mr := multipart.NewReader(msg.Body, params["boundary"])
	for {
		part, err := mr.NextPart()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("multipart: %v", err)
		}
		pt, _, err := mime.ParseMediaType(part.Header.Get("Content-Type"))
		if err != nil {
			t.Fatal(err)
		}
		// multipart.Reader decodes quoted-printable itself and removes
		// the Content-Transfer-Encoding header.
		body, err := io.ReadAll(part)
		if err != nil {
			t.Fatal(err)
		}
		p.parts[pt] = string(body)
		p.partHeaders[pt] = part.Header
		p.order = append(p.order, pt)
	}
	return p
}

func TestSendPlainAndParsedMIME(t *testing.T) {
	t.Parallel()
	srv := startServer(t, serverOptions{})
	s := newSender(t, srv.config(t))

	m := fullMessage("0197a3c2-7d4e-7b1a-9c3f-1a2b3c4d5e6f")
	before := time.Now().Add(-time.Second)
	r, err := s.Send(context.Background(), m)
	if err != nil {
		t.Fatalf("Send: %v", err)
	}
	wantID := m.ID + "@example.org"
	if r.Provider != "smtp" || r.ExternalID != wantID {
		t.Errorf("receipt = %+v, want smtp / %s", r, wantID)
	}

	msgs := srv.messages()
	if len(msgs) != 1 {
		t.Fatalf("server got %d messages", len(msgs))
	}
	got := msgs[0]
	if got.from != m.From || got.to != m.To {
		t.Errorf("envelope %s -> %s, want %s -> %s", got.from, got.to, m.From, m.To)
	}
	if got.helo != "client.test" {
		t.Errorf("EHLO name %q, want client.test", got.helo)
	}
	p := parseMessage(t, got.data)
	h := p.header

	from, err := mail.ParseAddress(h.Get("From"))
	if err != nil || from.Name != m.FromName || from.Address != m.From {
		t.Errorf("From %q parsed as %+v (%v)", h.Get("From"), from, err)
	}
	if !strings.Contains(h.Get("From"), "=?utf-8?q?") {
		t.Errorf("From name not encoded: %q", h.Get("From"))
	}
	if to, err := mail.ParseAddress(h.Get("To")); err != nil || to.Address != m.To {
		t.Errorf("To %q (%v)", h.Get("To"), err)
	}
	if rt, err := mail.ParseAddress(h.Get("Reply-To")); err != nil || rt.Address != m.ReplyTo {
		t.Errorf("Reply-To %q (%v)", h.Get("Reply-To"), err)
	}
	var dec mime.WordDecoder
	if subj, err := dec.DecodeHeader(h.Get("Subject")); err != nil || subj != m.Subject {
		t.Errorf("Subject %q decodes to %q (%v)", h.Get("Subject"), subj, err)
	}
	if date, err := h.Date(); err != nil || date.Before(before) || date.After(time.Now().Add(time.Second)) {
		t.Errorf("Date %q (%v)", h.Get("Date"), err)
	}
	if got := h.Get("Message-Id"); got != "<"+wantID+">" {
		t.Errorf("Message-ID %q", got)
	}
	if got := h.Get("Mime-Version"); got != "1.0" {
		t.Errorf("MIME-Version %q", got)
	}
	if got := h.Get("List-Unsubscribe"); got != m.Headers["List-Unsubscribe"] {
		t.Errorf("List-Unsubscribe %q", got)
	}
	if got := h.Get("List-Unsubscribe-Post"); got != "List-Unsubscribe=One-Click" {
		t.Errorf("List-Unsubscribe-Post %q", got)
	}
	wantKeys := []string{"Content-Type", "Date", "From", "List-Unsubscribe", "List-Unsubscribe-Post", "Message-Id", "Mime-Version", "Reply-To", "Subject", "To"}
	if keys := headerKeys(h); strings.Join(keys, ",") != strings.Join(wantKeys, ",") {
		t.Errorf("header fields %v, want %v", keys, wantKeys)
	}
	if mt, _, _ := mime.ParseMediaType(h.Get("Content-Type")); mt != "multipart/alternative" {
		t.Errorf("Content-Type %q", h.Get("Content-Type"))
	}
	if strings.Join(p.order, ",") != "text/plain,text/html" {
		t.Errorf("parts %v, want text/plain then text/html", p.order)
	}
	if p.parts["text/plain"] != crlf(m.Text) {
		t.Errorf("text part %q, want %q", p.parts["text/plain"], crlf(m.Text))
	}
	if p.parts["text/html"] != m.HTML {
		t.Errorf("html part %q, want %q", p.parts["text/html"], m.HTML)
	}
	for typ, ph := range p.partHeaders {
		if _, params, _ := mime.ParseMediaType(ph["Content-Type"][0]); params["charset"] != "utf-8" {
			t.Errorf("%s charset %q", typ, params["charset"])
		}
	}
	// The raw part headers say quoted-printable (multipart.Reader hides it).
	if n := bytes.Count(got.data, []byte("Content-Transfer-Encoding: quoted-printable\r\n")); n != 2 {
		t.Errorf("%d parts say quoted-printable, want 2", n)
	}
}

func headerKeys(h mail.Header) []string {
	var keys []string
	for k, v := range h {
		for range v {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	return keys
}

func TestSendSinglePart(t *testing.T) {
	t.Parallel()
	srv := startServer(t, serverOptions{})
	s := newSender(t, srv.config(t))
	for _, tc := range []struct {
		name       string
		text, html string
		want       string
	}{
		{"text only", "Hello\nworld", "", "text/plain"},
		{"html only", "", "<p>Hello</p>", "text/html"},
	} {
		m := channel.Message{ID: "id-" + strings.ReplaceAll(tc.name, " ", "-"), To: "a@example.net", From: "b@example.org", Subject: "Hi", Text: tc.text, HTML: tc.html}
		if _, err := s.Send(context.Background(), m); err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		msgs := srv.messages()
		p := parseMessage(t, msgs[len(msgs)-1].data)
		if len(p.order) != 1 || p.order[0] != tc.want {
			t.Errorf("%s: parts %v, want only %s", tc.name, p.order, tc.want)
		}
		if want := crlf(tc.text + tc.html); p.parts[tc.want] != want && p.parts[tc.want] != want+"\r\n" {
			t.Errorf("%s: body %q", tc.name, p.parts[tc.want])
		}
	}
}

func TestSecurityAndAuth(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name  string
		opts  serverOptions
		tweak func(*Config)
	}{
		{name: "starttls with AUTH PLAIN", opts: serverOptions{tls: "starttls", authMechs: []string{sasl.Plain, sasl.Login}}},
		{name: "starttls with AUTH LOGIN only", opts: serverOptions{tls: "starttls", authMechs: []string{sasl.Login}}},
		{name: "implicit TLS with AUTH PLAIN", opts: serverOptions{tls: "implicit", authMechs: []string{sasl.Plain}}},
		{name: "implicit TLS without AUTH", opts: serverOptions{tls: "implicit"}},
		{name: "clear text AUTH when allowed", opts: serverOptions{authMechs: []string{sasl.Plain}, allowInsecureAuth: true},
			tweak: func(c *Config) { c.AllowInsecureAuth = true }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			srv := startServer(t, tc.opts)
			cfg := srv.config(t)
			if tc.tweak != nil {
				tc.tweak(&cfg)
			}
			s := newSender(t, cfg)
			for i := range 3 {
				if _, err := s.Send(context.Background(), fullMessage("m"+itoa(i))); err != nil {
					t.Fatalf("Send %d: %v", i, err)
				}
			}
			msgs := srv.messages()
			if len(msgs) != 3 {
				t.Fatalf("server got %d messages", len(msgs))
			}
			wantTLS := tc.opts.tls != ""
			wantUser := ""
			if len(tc.opts.authMechs) > 0 {
				wantUser = testUser
			}
			for _, m := range msgs {
				if m.tls != wantTLS || m.user != wantUser || m.helo != "client.test" {
					t.Errorf("tls=%v user=%q helo=%q, want tls=%v user=%q helo=client.test", m.tls, m.user, m.helo, wantTLS, wantUser)
				}
			}
			if n := srv.accepted.Load(); n != 1 {
				t.Errorf("%d connections for 3 sends, want 1", n)
			}
		})
	}
}

func TestRefusesInsecureConnections(t *testing.T) {
	t.Parallel()
	t.Run("AUTH without TLS", func(t *testing.T) {
		t.Parallel()
		_, err := New(Config{Host: "127.0.0.1", Security: SecurityNone, Username: "u", Password: "p"})
		if err == nil || !strings.Contains(err.Error(), "AllowInsecureAuth") {
			t.Fatalf("New = %v, want a refusal that names AllowInsecureAuth", err)
		}
	})
	t.Run("starttls against a server without STARTTLS", func(t *testing.T) {
		t.Parallel()
		srv := startServer(t, serverOptions{})
		cfg := srv.config(t)
		cfg.Security = SecurityStartTLS
		s := newSender(t, cfg)
		_, err := s.Send(context.Background(), fullMessage("m1"))
		if err == nil || channel.IsPermanent(err) || !errors.Is(err, ErrConfiguration) || !strings.Contains(err.Error(), "STARTTLS") {
			t.Fatalf("Send = %v, want a transient configuration error about STARTTLS", err)
		}
		if n := len(srv.messages()); n != 0 {
			t.Errorf("server got %d messages", n)
		}
	})
	t.Run("untrusted certificate", func(t *testing.T) {
		t.Parallel()
		for _, mode := range []string{"starttls", "implicit"} {
			srv := startServer(t, serverOptions{tls: mode})
			cfg := srv.config(t)
			cfg.TLSConfig = nil // system roots: the test CA is unknown
			s := newSender(t, cfg)
			_, err := s.Send(context.Background(), fullMessage("m1"))
			if err == nil || channel.IsPermanent(err) || !errors.Is(err, ErrConfiguration) {
				t.Errorf("%s: Send = %v, want a transient configuration error", mode, err)
			}
			if n := len(srv.messages()); n != 0 {
				t.Errorf("%s: server got %d messages", mode, n)
			}
		}
	})
	t.Run("wrong password", func(t *testing.T) {
		t.Parallel()
		srv := startServer(t, serverOptions{tls: "starttls", authMechs: []string{sasl.Plain}})
		cfg := srv.config(t)
		cfg.Password = "wrong"
		s := newSender(t, cfg)
		_, err := s.Send(context.Background(), fullMessage("m1"))
		var ce *channel.Error
		if !errors.As(err, &ce) || ce.Permanent || ce.Code != "535" || !errors.Is(err, ErrConfiguration) {
			t.Fatalf("Send = %v, want transient 535 wrapping ErrConfiguration", err)
		}
	})
}

func TestReplyClassification(t *testing.T) {
	t.Parallel()
	srv := startServer(t, serverOptions{tls: "starttls", authMechs: []string{sasl.Plain}})
	s := newSender(t, srv.config(t))
	type result struct {
		code      string
		permanent bool
	}
	for _, tc := range []struct {
		name  string
		stage string
		err   error
		want  result
	}{
		{"550 unknown user at RCPT", "rcpt", reply(550, gosmtp.EnhancedCode{5, 1, 1}, "no such user"), result{"550", true}},
		{"553 bad address at RCPT", "rcpt", reply(553, gosmtp.EnhancedCode{5, 1, 3}, "bad address"), result{"553", true}},
		{"451 greylisting at RCPT", "rcpt", reply(451, gosmtp.EnhancedCode{4, 7, 1}, "greylisted, try later"), result{"451", false}},
		{"451 local error at MAIL", "mail", reply(451, gosmtp.EnhancedCode{4, 3, 0}, "local error"), result{"451", false}},
		{"452 too many recipients", "rcpt", reply(452, gosmtp.EnhancedCode{4, 5, 3}, "too many"), result{"452", false}},
		{"553 sender refused at MAIL", "mail", reply(553, gosmtp.EnhancedCode{5, 7, 1}, "sender not allowed"), result{"553", true}},
		{"530 auth required at MAIL", "mail", reply(530, gosmtp.EnhancedCode{5, 7, 0}, "authentication required"), result{"530", false}},
		{"554 spam after DATA", "data", reply(554, gosmtp.EnhancedCode{5, 7, 1}, "message rejected as spam"), result{"554", true}},
		{"552 mailbox full after DATA", "data", reply(552, gosmtp.EnhancedCode{5, 2, 2}, "mailbox full"), result{"552", false}},
		{"552 without enhanced code", "data", reply(552, gosmtp.NoEnhancedCode, "exceeded storage allocation"), result{"552", false}},
		{"552 message too big", "data", reply(552, gosmtp.EnhancedCode{5, 3, 4}, "message too big"), result{"552", true}},
		{"552 at RCPT is 452", "rcpt", reply(552, gosmtp.EnhancedCode{5, 3, 4}, "too many recipients"), result{"552", false}},
		{"550 mailbox full by enhanced code", "rcpt", reply(550, gosmtp.EnhancedCode{5, 2, 2}, "over quota"), result{"550", false}},
	} {
		srv.setHook(func(stage, _ string) error {
			if stage == tc.stage {
				return tc.err
			}
			return nil
		})
		_, err := s.Send(context.Background(), fullMessage("m-"+strings.ReplaceAll(tc.name, " ", "-")))
		var ce *channel.Error
		if !errors.As(err, &ce) {
			t.Errorf("%s: Send = %v, want a *channel.Error", tc.name, err)
			continue
		}
		if got := (result{ce.Code, ce.Permanent}); got != tc.want || ce.Provider != "smtp" {
			t.Errorf("%s: got %+v (%v), want %+v", tc.name, got, err, tc.want)
		}
		if se := tc.err.(*gosmtp.SMTPError); !strings.Contains(ce.Message, se.Message) {
			t.Errorf("%s: Message %q lacks the server's text", tc.name, ce.Message)
		}
	}
	// A refusal is an answer: the connection stays in a known state (RSET)
	// and is reused.
	srv.setHook(nil)
	if _, err := s.Send(context.Background(), fullMessage("after")); err != nil {
		t.Fatalf("Send after refusals: %v", err)
	}
	if n := srv.accepted.Load(); n != 1 {
		t.Errorf("%d connections, want 1: a refused transaction must not cost the connection", n)
	}
	for _, m := range srv.messages() {
		if !m.tls || m.user != testUser {
			t.Errorf("after RSET: tls=%v user=%q", m.tls, m.user)
		}
	}
}

func TestRecipientRefusedMessage(t *testing.T) {
	t.Parallel()
	srv := startServer(t, serverOptions{})
	srv.setHook(func(stage, arg string) error {
		if stage == "rcpt" && arg == "gone@example.net" {
			return reply(550, gosmtp.EnhancedCode{5, 1, 1}, "<gone@example.net>: Recipient address rejected: User unknown")
		}
		return nil
	})
	s := newSender(t, srv.config(t))
	m := fullMessage("m1")
	m.To = "gone@example.net"
	_, err := s.Send(context.Background(), m)
	if !channel.IsPermanent(err) {
		t.Fatalf("Send = %v, want permanent", err)
	}
	want := "smtp: permanent failure 550: 5.1.1 <gone@example.net>: Recipient address rejected: User unknown: RCPT TO refused"
	if err.Error() != want {
		t.Errorf("error text\n got %q\nwant %q", err.Error(), want)
	}
}

func Test421ClosesTheConnection(t *testing.T) {
	t.Parallel()
	srv := startServer(t, serverOptions{})
	s := newSender(t, srv.config(t))
	if _, err := s.Send(context.Background(), fullMessage("m0")); err != nil {
		t.Fatal(err)
	}
	srv.setHook(func(stage, _ string) error {
		if stage == "rcpt" {
			return reply(421, gosmtp.EnhancedCode{4, 7, 0}, "too many messages, closing")
		}
		return nil
	})
	_, err := s.Send(context.Background(), fullMessage("m1"))
	var ce *channel.Error
	if !errors.As(err, &ce) || ce.Permanent || ce.Code != "421" {
		t.Fatalf("Send = %v, want transient 421", err)
	}
	srv.setHook(nil)
	if _, err := s.Send(context.Background(), fullMessage("m2")); err != nil {
		t.Fatal(err)
	}
	if n := srv.accepted.Load(); n != 2 {
		t.Errorf("%d connections, want 2: a connection that got 421 is not reused", n)
	}
}

func TestConnectionReuse(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		max, sends int
		wantConns  int64
	}{
		{max: 0, sends: 50, wantConns: 1},  // default 100 per connection
		{max: 10, sends: 50, wantConns: 5}, // MaxMessagesPerConn
		{max: 1, sends: 3, wantConns: 3},
	} {
		t.Run(fmt.Sprintf("max %d", tc.max), func(t *testing.T) {
			t.Parallel()
			srv := startServer(t, serverOptions{tls: "starttls", authMechs: []string{sasl.Plain}})
			cfg := srv.config(t)
			cfg.MaxMessagesPerConn = tc.max
			s := newSender(t, cfg)
			for i := range tc.sends {
				if _, err := s.Send(context.Background(), fullMessage("m"+itoa(i))); err != nil {
					t.Fatalf("Send %d: %v", i, err)
				}
			}
			if n := len(srv.messages()); n != tc.sends {
				t.Errorf("server got %d messages, want %d", n, tc.sends)
			}
			if n := srv.accepted.Load(); n != tc.wantConns {
				t.Errorf("%d connections for %d sends, want %d", n, tc.sends, tc.wantConns)
			}
			// Retired connections said QUIT and were closed.
			waitFor(t, "retired connections to close", func() bool { return srv.open.Load() <= 1 })
		})
	}
}

func TestDroppedConnectionIsNotReused(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		drop int64
	}{
		{"mid-DATA", 100},
		{"after the whole message", 1 << 20},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			srv := startServer(t, serverOptions{})
			s := newSender(t, srv.config(t))
			if _, err := s.Send(context.Background(), fullMessage("m0")); err != nil {
				t.Fatal(err)
			}
			srv.setDataHook(dropAfter(tc.drop))
			_, err := s.Send(context.Background(), fullMessage("m1"))
			if err == nil || channel.IsPermanent(err) {
				t.Fatalf("Send = %v, want a transient error", err)
			}
			srv.setDataHook(nil)
			if _, err := s.Send(context.Background(), fullMessage("m2")); err != nil {
				t.Fatalf("Send after the drop: %v", err)
			}
			if n := srv.accepted.Load(); n != 2 {
				t.Errorf("%d connections, want 2", n)
			}
			if n := len(srv.messages()); n != 2 {
				t.Errorf("server kept %d messages, want 2", n)
			}
		})
	}
}

// A server that dropped an idle connection (its own idle timeout) costs
// the next Send nothing: the dead connection fails at MAIL FROM before
// anything was sent, and the Send goes through on a new one. Servers
// close silently or say 421 first (go-smtp's server says "421 4.4.2 Idle
// timeout").
func TestServerDroppedIdleConnection(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ name, last string }{
		{"silently", ""},
		{"with 421", "421 4.4.2 Idle timeout, bye bye\r\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			srv := startServer(t, serverOptions{})
			s := newSender(t, srv.config(t))
			if _, err := s.Send(context.Background(), fullMessage("m0")); err != nil {
				t.Fatal(err)
			}
			srv.dropAll(tc.last)
			if _, err := s.Send(context.Background(), fullMessage("m1")); err != nil {
				t.Fatalf("Send on a dropped connection: %v", err)
			}
			if n := srv.accepted.Load(); n != 2 {
				t.Errorf("%d connections, want 2", n)
			}
			if n := len(srv.messages()); n != 2 {
				t.Errorf("server got %d messages, want 2", n)
			}
		})
	}
}

func TestIdleConnectionsAreClosed(t *testing.T) {
	t.Parallel()
	srv := startServer(t, serverOptions{})
	cfg := srv.config(t)
	cfg.IdleTimeout = 50 * time.Millisecond
	s := newSender(t, cfg)
	if _, err := s.Send(context.Background(), fullMessage("m0")); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the idle connection to close", func() bool { return srv.open.Load() == 0 })
	if _, err := s.Send(context.Background(), fullMessage("m1")); err != nil {
		t.Fatal(err)
	}
	if n := srv.accepted.Load(); n != 2 {
		t.Errorf("%d connections, want 2", n)
	}
}

func TestConcurrentSends(t *testing.T) {
	t.Parallel()
	srv := startServer(t, serverOptions{tls: "starttls", authMechs: []string{sasl.Plain}})
	cfg := srv.config(t)
	cfg.PoolSize = 4
	cfg.MaxMessagesPerConn = 1000
	s := newSender(t, cfg)

	const senders, each = 32, 8
	var wg sync.WaitGroup
	errs := make(chan error, senders*each)
	for g := range senders {
		wg.Go(func() {
			for i := range each {
				m := fullMessage(fmt.Sprintf("g%d-m%d", g, i))
				m.To = fmt.Sprintf("user%d.%d@example.net", g, i)
				r, err := s.Send(context.Background(), m)
				if err == nil && r.ExternalID != m.ID+"@example.org" {
					err = fmt.Errorf("receipt %+v for %s", r, m.ID)
				}
				if err != nil {
					errs <- err
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	msgs := srv.messages()
	if len(msgs) != senders*each {
		t.Fatalf("server got %d messages, want %d", len(msgs), senders*each)
	}
	seen := map[string]bool{}
	for _, m := range msgs {
		p := parseMessage(t, m.data)
		id := p.header.Get("Message-Id")
		if seen[id] {
			t.Errorf("message %s received twice", id)
		}
		seen[id] = true
		if to, _ := mail.ParseAddress(p.header.Get("To")); to == nil || to.Address != m.to {
			t.Errorf("To header %q on the envelope to %s", p.header.Get("To"), m.to)
		}
	}
	if n := srv.accepted.Load(); n > 4 {
		t.Errorf("%d connections, want at most PoolSize 4", n)
	}
	if n := srv.peak.Load(); n > 4 {
		t.Errorf("%d connections open at once, want at most 4", n)
	}
}

func TestHeaderInjectionRefused(t *testing.T) {
	t.Parallel()
	srv := startServer(t, serverOptions{})
	s := newSender(t, srv.config(t))
	for _, tc := range []struct {
		name  string
		tweak func(*channel.Message)
	}{
		{"CRLF in Subject", func(m *channel.Message) { m.Subject = "Hello\r\nBcc: victim@example.com" }},
		{"LF in Subject", func(m *channel.Message) { m.Subject = "Hello\nBcc: victim@example.com" }},
		{"CR in FromName", func(m *channel.Message) { m.FromName = "Alumni\rBcc: victim@example.com" }},
		{"LF in To", func(m *channel.Message) { m.To = "ada@example.net\nBcc: victim@example.com" }},
		{"CRLF in From", func(m *channel.Message) { m.From = "alumni@example.org\r\nBcc: victim@example.com" }},
		{"CRLF in Reply-To", func(m *channel.Message) { m.ReplyTo = "r@example.org\r\nX: y" }},
		{"CRLF in a header value", func(m *channel.Message) { m.Headers["List-Unsubscribe"] = "<https://x>\r\nBcc: victim@example.com" }},
		{"colon in a header name", func(m *channel.Message) { m.Headers["X-A: b\r\nBcc"] = "x" }},
		{"space in a header name", func(m *channel.Message) { m.Headers["X A"] = "x" }},
		{"Bcc in headers", func(m *channel.Message) { m.Headers["bcc"] = "victim@example.com" }},
		{"Content-Type in headers", func(m *channel.Message) { m.Headers["Content-Type"] = "text/plain" }},
		{"a second From", func(m *channel.Message) { m.Headers["FROM"] = "ceo@example.org" }},
		{"angle bracket in the ID", func(m *channel.Message) { m.ID = "x>\r\nBcc: y" }},
		{"empty ID", func(m *channel.Message) { m.ID = "" }},
		{"invalid To", func(m *channel.Message) { m.To = "not an address" }},
		{"empty To", func(m *channel.Message) { m.To = "" }},
		{"no body", func(m *channel.Message) { m.Text, m.HTML = "", "" }},
		{"word too long for a header line", func(m *channel.Message) {
			m.Headers["List-Unsubscribe"] = "<https://x/" + strings.Repeat("a", 1000) + ">"
		}},
	} {
		m := fullMessage("m1")
		tc.tweak(&m)
		_, err := s.Send(context.Background(), m)
		var ce *channel.Error
		if !errors.As(err, &ce) || !ce.Permanent || ce.Provider != "smtp" || !errors.Is(err, ErrInvalidMessage) {
			t.Errorf("%s: Send = %v, want a permanent refusal", tc.name, err)
		}
		if _, _, err := BuildMessage(m, time.Now(), ""); err == nil {
			t.Errorf("%s: BuildMessage accepted it", tc.name)
		}
	}
	if n := srv.accepted.Load(); n != 0 {
		t.Errorf("%d connections: refused messages must not reach the server", n)
	}
}

// A message that does not render holds a connection slot only while it is
// rendered: it fails as itself, not as the server's being down, and leaves
// the slot to the next message.
func TestInvalidMessageFailsAsItselfAndFreesItsSlot(t *testing.T) {
	t.Parallel()
	invalid := fullMessage("bad")
	invalid.To = "not an address"
	down := newSender(t, Config{Host: "127.0.0.1", Port: freePort(t), Security: SecurityNone, PoolSize: 1, Timeout: 2 * time.Second})
	srv := startServer(t, serverOptions{})
	cfg := srv.config(t)
	cfg.PoolSize = 1
	up := newSender(t, cfg)
	for name, s := range map[string]*Sender{"server down": down, "server up": up} {
		for range 3 { // one slot: a slot kept by a refusal would block the second
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			_, err := s.Send(ctx, invalid)
			cancel()
			if !errors.Is(err, ErrInvalidMessage) || !channel.IsPermanent(err) {
				t.Fatalf("%s: Send = %v, want a permanent ErrInvalidMessage", name, err)
			}
		}
	}
	if _, err := up.Send(context.Background(), fullMessage("good")); err != nil {
		t.Fatalf("a valid message after the refusals: %v", err)
	}
}

func TestContextCancelledWhileWaitingForAConnection(t *testing.T) {
	t.Parallel()
	srv := startServer(t, serverOptions{})
	hold, release := make(chan struct{}), make(chan struct{})
	srv.setDataHook(func(*gosmtp.Conn, io.Reader) error {
		close(hold)
		<-release
		return nil
	})
	cfg := srv.config(t)
	cfg.PoolSize = 1
	s := newSender(t, cfg)

	first := make(chan error, 1)
	go func() {
		_, err := s.Send(context.Background(), fullMessage("holder"))
		first <- err
	}()
	<-hold // the only connection is busy

	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	_, err := s.Send(ctx, fullMessage("waiter"))
	if !errors.Is(err, context.DeadlineExceeded) || channel.IsPermanent(err) {
		t.Fatalf("Send = %v, want a transient error wrapping context.DeadlineExceeded", err)
	}
	var ce *channel.Error
	if !errors.As(err, &ce) {
		t.Fatalf("Send = %T, want *channel.Error", err)
	}

	srv.setDataHook(nil)
	close(release)
	if err := <-first; err != nil {
		t.Fatalf("the holder's Send: %v", err)
	}
	if _, err := s.Send(context.Background(), fullMessage("after")); err != nil {
		t.Fatal(err)
	}
	if n := srv.accepted.Load(); n != 1 {
		t.Errorf("%d connections, want 1", n)
	}
}

func TestContextCancelledDuringTheExchange(t *testing.T) {
	t.Parallel()
	srv := startServer(t, serverOptions{})
	hold, release := make(chan struct{}), make(chan struct{})
	srv.setDataHook(func(_ *gosmtp.Conn, r io.Reader) error {
		// Take the whole message, then keep the client waiting for the
		// reply.
		io.Copy(io.Discard, r)
		close(hold)
		<-release
		return nil
	})
	s := newSender(t, srv.config(t))

	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		<-hold
		cancel()
	}()
	start := time.Now()
	_, err := s.Send(ctx, fullMessage("m1"))
	if !errors.Is(err, context.Canceled) || channel.IsPermanent(err) {
		t.Fatalf("Send = %v, want a transient error wrapping context.Canceled", err)
	}
	if !errors.Is(err, ErrUnknownOutcome) {
		t.Errorf("Send = %v, want ErrUnknownOutcome: the whole message had been written", err)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("Send returned after %v; the Timeout, not the cancellation, stopped it", d)
	}
	close(release)
	srv.setDataHook(nil)
	if _, err := s.Send(context.Background(), fullMessage("m2")); err != nil {
		t.Fatal(err)
	}
	if n := srv.accepted.Load(); n != 2 {
		t.Errorf("%d connections, want 2: the cut connection is not reused", n)
	}
}

func TestTimeoutBoundsEachCommand(t *testing.T) {
	t.Parallel()
	srv := startServer(t, serverOptions{})
	release := make(chan struct{})
	t.Cleanup(func() { close(release) })
	srv.setDataHook(func(*gosmtp.Conn, io.Reader) error {
		<-release
		return nil
	})
	cfg := srv.config(t)
	cfg.Timeout = time.Second
	s := newSender(t, cfg)
	_, err := s.Send(context.Background(), fullMessage("m1"))
	if err == nil || channel.IsPermanent(err) || !errors.Is(err, ErrUnknownOutcome) {
		t.Fatalf("Send = %v, want a transient timeout with an unknown outcome", err)
	}
}

func TestSMTPUTF8(t *testing.T) {
	t.Parallel()
	m := fullMessage("m1")
	m.To = "josé@example.net"
	t.Run("server without SMTPUTF8", func(t *testing.T) {
		t.Parallel()
		srv := startServer(t, serverOptions{})
		s := newSender(t, srv.config(t))
		_, err := s.Send(context.Background(), m)
		var ce *channel.Error
		if !errors.As(err, &ce) || !ce.Permanent || ce.Code != "553" {
			t.Fatalf("Send = %v, want permanent 553", err)
		}
		if _, err := s.Send(context.Background(), fullMessage("m2")); err != nil {
			t.Fatal(err)
		}
		if n := srv.accepted.Load(); n != 1 {
			t.Errorf("%d connections, want 1", n)
		}
	})
	t.Run("server with SMTPUTF8", func(t *testing.T) {
		t.Parallel()
		srv := startServer(t, serverOptions{smtpUTF8: true})
		s := newSender(t, srv.config(t))
		if _, err := s.Send(context.Background(), m); err != nil {
			t.Fatal(err)
		}
		got := srv.messages()[0]
		if got.to != m.To || !got.opts.UTF8 {
			t.Errorf("envelope to %q, SMTPUTF8 %v", got.to, got.opts.UTF8)
		}
		p := parseMessage(t, got.data)
		if to, err := mail.ParseAddress(p.header.Get("To")); err != nil || to.Address != m.To {
			t.Errorf("To %q (%v)", p.header.Get("To"), err)
		}
	})
}

// The message's size is declared in MAIL FROM (RFC 1870), so a server
// refuses an oversized message before it is transferred, permanently.
func TestMessageTooLarge(t *testing.T) {
	t.Parallel()
	srv := startServer(t, serverOptions{maxBytes: 300})
	s := newSender(t, srv.config(t))
	_, err := s.Send(context.Background(), fullMessage("m1"))
	var ce *channel.Error
	if !errors.As(err, &ce) || !ce.Permanent || ce.Code != "552" || !strings.Contains(err.Error(), "MAIL FROM") {
		t.Fatalf("Send = %v, want permanent 552 at MAIL FROM", err)
	}
	if n := srv.sessions.Load(); n != 0 {
		t.Errorf("%d messages transferred", n)
	}
}

func TestDSNEnvelopeID(t *testing.T) {
	t.Parallel()
	srv := startServer(t, serverOptions{dsn: true})
	s := newSender(t, srv.config(t))
	m := fullMessage("0197a3c2-7d4e-7b1a-9c3f-1a2b3c4d5e6f")
	if _, err := s.Send(context.Background(), m); err != nil {
		t.Fatal(err)
	}
	got := srv.messages()[0].opts
	if got.EnvelopeID != m.ID || got.Return != gosmtp.DSNReturnHeaders {
		t.Errorf("MAIL options ENVID=%q RET=%q, want %q HDRS", got.EnvelopeID, got.Return, m.ID)
	}
}

func TestClose(t *testing.T) {
	t.Parallel()
	srv := startServer(t, serverOptions{})
	s, err := New(srv.config(t))
	if err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		if _, err := s.Send(context.Background(), fullMessage("m"+itoa(i))); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the pooled connection to close", func() bool { return srv.open.Load() == 0 })
	_, err = s.Send(context.Background(), fullMessage("late"))
	if !errors.Is(err, ErrClosed) || channel.IsPermanent(err) {
		t.Fatalf("Send after Close = %v, want transient ErrClosed", err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
}

func TestConnectFailureIsTransient(t *testing.T) {
	t.Parallel()
	s := newSender(t, Config{Host: "127.0.0.1", Port: freePort(t), Security: SecurityNone, Timeout: 2 * time.Second})
	_, err := s.Send(context.Background(), fullMessage("m1"))
	var ce *channel.Error
	if !errors.As(err, &ce) || ce.Permanent || ce.Code != "" {
		t.Fatalf("Send = %v, want a transient connection failure", err)
	}
}

func TestNewValidatesConfig(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		cfg  Config
		want string
	}{
		{"no host", Config{}, "Host is required"},
		{"host with port", Config{Host: "mail.example.org:587"}, "give the port in Port"},
		{"bad security", Config{Host: "h", Security: "ssl"}, "not one of starttls, tls, none"},
		{"bad port", Config{Host: "h", Port: 70000}, "out of range"},
		{"user without password", Config{Host: "h", Username: "u"}, "Password is required"},
		{"negative pool", Config{Host: "h", PoolSize: -1}, "PoolSize"},
		{"helo with space", Config{Host: "h", HeloName: "a b"}, "HeloName"},
		{"negative timeout", Config{Host: "h", Timeout: -time.Second}, "Timeout"},
	} {
		if _, err := New(tc.cfg); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: New = %v, want an error containing %q", tc.name, err, tc.want)
		}
	}
	s, err := New(Config{Host: "mail.example.org"})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if s.cfg.Port != 587 || s.cfg.Security != SecurityStartTLS || s.cfg.PoolSize != 4 || s.cfg.MaxMessagesPerConn != 100 || s.cfg.Timeout != 30*time.Second || s.cfg.HeloName == "" {
		t.Errorf("defaults: %+v", s.cfg)
	}
	if s.addr != "mail.example.org:587" || s.tls.ServerName != "mail.example.org" {
		t.Errorf("addr %q, TLS server name %q", s.addr, s.tls.ServerName)
	}
}

// freePort returns a loopback port nothing listens on.
func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	return port
}
