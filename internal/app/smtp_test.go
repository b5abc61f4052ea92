package app_test

import (
	"bytes"
	"io"
	"log"
	"net"
	"net/mail"
	"strings"
	"sync"
	"testing"
	"time"

	gosmtp "github.com/emersion/go-smtp"

	"github.com/alumoutreach/alumoutreach/internal/config"
	"github.com/alumoutreach/alumoutreach/internal/platform/bus/bustest"
)

// sink is an SMTP server on loopback that keeps what it is sent.
type sink struct {
	mu   sync.Mutex
	msgs [][]byte
	rcpt []string
}

type sinkSession struct {
	s  *sink
	to []string
}

func (ss *sinkSession) AuthPlain(string, string) error         { return nil }
func (ss *sinkSession) Mail(string, *gosmtp.MailOptions) error { return nil }
func (ss *sinkSession) Rcpt(to string, _ *gosmtp.RcptOptions) error {
	ss.to = append(ss.to, to)
	return nil
}
func (ss *sinkSession) Reset()        { ss.to = nil }
func (ss *sinkSession) Logout() error { return nil }
func (ss *sinkSession) Data(r io.Reader) error {
	ss.s.mu.Lock()
	full := len(ss.s.msgs) >= 100
	ss.s.mu.Unlock()
	if full {
		// Read and drop, without a copy of each message: benchmarks
		// measure the sender, and a real server would not keep 5 KB a
		// message on the heap either.
		_, err := io.Copy(io.Discard, r)
		return err
	}
	b, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	ss.s.mu.Lock()
	if len(ss.s.msgs) < 100 { // benchmarks send thousands: keep the first ones only
		ss.s.msgs = append(ss.s.msgs, b)
		ss.s.rcpt = append(ss.s.rcpt, ss.to...)
	}
	ss.s.mu.Unlock()
	return nil
}

// startDiscardSMTP runs an SMTP server on loopback that reads and drops
// every message, for benchmarks.
func startDiscardSMTP(t testing.TB) int {
	t.Helper()
	_, port := startSink(t)
	return port
}

func startSink(t testing.TB) (*sink, int) {
	t.Helper()
	s := &sink{}
	srv := gosmtp.NewServer(gosmtp.BackendFunc(func(*gosmtp.Conn) (gosmtp.Session, error) { return &sinkSession{s: s}, nil }))
	srv.Domain = "mx.test"
	srv.ErrorLog = log.New(io.Discard, "", 0)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return s, ln.Addr().(*net.TCPAddr).Port
}

// TestEmailThroughSMTP: with email.provider smtp, a message goes through
// the real SMTP adapter to a server on loopback, rendered, tracked, with
// the one-click unsubscribe headers, and recorded as sent under its
// Message-ID.
func TestEmailThroughSMTP(t *testing.T) {
	t.Parallel()
	s, port := startSink(t)
	cfg := testConfig(t, "")
	cfg.PublicURL = "https://alumni.example.edu"
	cfg.Email.Provider = config.ProviderSMTP
	cfg.Email.SMTP = config.SMTPConfig{Host: "127.0.0.1", Port: port, Security: "none", PoolSize: 2}
	a := startApp(t, cfg)
	ca, _ := twoTenants(t, a)
	id := func(doc map[string]any) string { return doc["data"].(map[string]any)["id"].(string) }
	_, doc := ca.do("POST", "/api/v1/contacts", `{"email": "ada@example.org", "firstName": "Ada",
		"consent": {"email": {"granted": true, "source": "signup_form"}}}`)
	contact := id(doc)
	_, doc = ca.do("POST", "/api/v1/templates", `{"name": "Welcome", "channel": "email", "content": {
		"subject": "Welcome, {{contact.firstName}}", "html": "<p>Hello {{contact.firstName}}</p><a href=\"https://example.edu/events\">Events</a>",
		"text": "Hello {{contact.firstName}}"}}`)
	tpl := id(doc)
	ca.do("POST", "/api/v1/templates/"+tpl+"/activate", "")
	_, doc = ca.do("POST", "/api/v1/messages", `{"contactId": "`+contact+`", "channel": "email", "templateId": "`+tpl+`"}`)
	msg := id(doc)

	var ext string
	bustest.Eventually(t, 10*time.Second, "the message sent over SMTP", func() bool {
		_, m := ca.do("GET", "/api/v1/messages/"+msg, "")
		d := m["data"].(map[string]any)
		ext, _ = d["externalId"].(string)
		return d["status"] == "sent" && d["provider"] == "smtp"
	})
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.msgs) != 1 || len(s.rcpt) != 1 || s.rcpt[0] != "ada@example.org" {
		t.Fatalf("the sink got %d messages for %v", len(s.msgs), s.rcpt)
	}
	m, err := mail.ReadMessage(bytes.NewReader(s.msgs[0]))
	if err != nil {
		t.Fatal(err)
	}
	h := m.Header
	if h.Get("Subject") != "Welcome, Ada" || !strings.Contains(h.Get("From"), "alumni@example.org") ||
		strings.Trim(h.Get("Message-Id"), "<>") != ext || !strings.HasPrefix(ext, msg+"@") ||
		!strings.HasPrefix(h.Get("List-Unsubscribe"), "<https://alumni.example.edu/u/") || h.Get("List-Unsubscribe-Post") != "List-Unsubscribe=One-Click" {
		t.Fatalf("headers %v (externalId %q)", h, ext)
	}
	body, _ := io.ReadAll(m.Body)
	for _, want := range []string{"Hello Ada", "alumni.example.edu/t/c/", "alumni.example.edu/t/o/"} {
		if !strings.Contains(strings.ReplaceAll(string(body), "=\r\n", ""), want) {
			t.Errorf("body lacks %q", want)
		}
	}
}
