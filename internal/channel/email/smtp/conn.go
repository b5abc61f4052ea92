package smtp

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/textproto"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/emersion/go-sasl"
	gosmtp "github.com/emersion/go-smtp"
)

// conn is one pooled SMTP connection.
type conn struct {
	client *gosmtp.Client
	guard  *guardConn
	// used counts the transactions started on the connection.
	used int
	// idleSince is when the connection was last put back in the pool.
	idleSince time.Time
	session
}

// close drops the connection without a word to the server; for
// connections in an unknown state.
func (c *conn) close() { c.client.Close() }

// quit says QUIT, waiting for the reply at most d, and closes.
func (c *conn) quit(d time.Duration) {
	c.guard.arm(context.Background(), time.Now().Add(d))
	if err := c.client.Quit(); err != nil {
		c.client.Close()
	}
}

// guardConn bounds every read and write of a connection by the Send's
// context and by Config.Timeout.
//
// go-smtp sets a deadline around each command of the session and clears
// it afterwards, which would override a deadline we set; the transaction
// (transaction.go) asks for a fresh Timeout at each step. All these
// deadlines pass through SetDeadline here (TLS connections are layered on
// top of this one), which never lets
// a deadline be later than the Send's, turns "no deadline" into
// now+Timeout, and, once the context is cancelled, keeps the deadline in
// the past so that the exchange stops at once.
type guardConn struct {
	net.Conn
	timeout time.Duration
	cancel  func() // g.expire, bound once

	mu      sync.Mutex
	limit   time.Time // the Send's deadline; zero for none
	expired bool      // the Send's context is done
	stop    func() bool
}

func newGuardConn(c net.Conn, timeout time.Duration) *guardConn {
	g := &guardConn{Conn: c, timeout: timeout}
	g.cancel = g.expire
	return g
}

var longAgo = time.Unix(1, 0)

func (g *guardConn) SetDeadline(t time.Time) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	switch {
	case g.expired:
		t = longAgo
	case t.IsZero():
		t = time.Now().Add(g.timeout)
	}
	if !g.limit.IsZero() && t.After(g.limit) {
		t = g.limit
	}
	return g.Conn.SetDeadline(t)
}

// expire runs when the Send's context is done.
func (g *guardConn) expire() {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.expired = true
	g.Conn.SetDeadline(longAgo)
}

// arm binds the connection to ctx (and to limit, when not zero) until
// disarm.
func (g *guardConn) arm(ctx context.Context, limit time.Time) {
	if dl, ok := ctx.Deadline(); ok && (limit.IsZero() || dl.Before(limit)) {
		limit = dl
	}
	g.mu.Lock()
	g.limit = limit
	g.expired = false
	g.mu.Unlock()
	g.stop = nil
	// A context that cannot be cancelled (Done is nil) needs no watcher,
	// which saves its allocation on every Send.
	if ctx.Done() != nil {
		g.stop = context.AfterFunc(ctx, g.cancel)
	}
	// Start the exchange with a deadline: the first write may happen
	// before go-smtp sets one.
	g.SetDeadline(time.Time{})
}

// disarm unbinds the connection from the context. It reports false when
// the context was cancelled meanwhile: the connection's deadline is then
// in the past and it cannot be used again.
func (g *guardConn) disarm() bool {
	if g.stop != nil && !g.stop() {
		return false
	}
	g.stop = nil
	g.mu.Lock()
	g.limit = time.Time{}
	ok := !g.expired
	g.mu.Unlock()
	return ok
}

// greetedConn replays a greeting that was already read: after STARTTLS,
// which we negotiate ourselves (see startTLS), go-smtp is handed the TLS
// connection and expects the server's 220 greeting first.
type greetedConn struct {
	net.Conn
	greeting string
}

func (c *greetedConn) Read(b []byte) (int, error) {
	if c.greeting != "" {
		n := copy(b, c.greeting)
		c.greeting = c.greeting[n:]
		return n, nil
	}
	return c.Conn.Read(b)
}

// dial opens, secures and authenticates a connection.
func (s *Sender) dial(ctx context.Context) (*conn, error) {
	d := net.Dialer{Timeout: s.cfg.Timeout}
	raw, err := d.DialContext(ctx, "tcp", s.addr)
	if err != nil {
		return nil, err
	}
	g := newGuardConn(raw, s.cfg.Timeout)
	g.arm(ctx, time.Time{})
	c, err := s.handshake(ctx, g)
	if !g.disarm() && err == nil {
		c.close()
		err = ctx.Err()
	}
	if err != nil {
		raw.Close()
		return nil, err
	}
	return c, nil
}

func (s *Sender) handshake(ctx context.Context, g *guardConn) (*conn, error) {
	var nc net.Conn = g
	switch s.cfg.Security {
	case SecurityTLS:
		tc := tls.Client(g, s.tls)
		if err := tc.HandshakeContext(ctx); err != nil {
			return nil, fmt.Errorf("TLS handshake: %w", err)
		}
		nc = tc
	case SecurityStartTLS:
		tc, err := s.startTLS(ctx, g)
		if err != nil {
			return nil, err
		}
		nc = &greetedConn{Conn: tc, greeting: "220 TLS established\r\n"}
	}

	client := gosmtp.NewClient(nc)
	client.CommandTimeout = s.cfg.Timeout
	client.SubmissionTimeout = s.cfg.Timeout
	c := &conn{client: client, guard: g}
	if err := client.Hello(s.cfg.HeloName); err != nil {
		client.Close()
		return nil, err
	}
	if s.cfg.Username != "" {
		var mech sasl.Client
		switch {
		case client.SupportsAuth(sasl.Plain):
			mech = sasl.NewPlainClient("", s.cfg.Username, s.cfg.Password)
		case client.SupportsAuth(sasl.Login):
			mech = sasl.NewLoginClient(s.cfg.Username, s.cfg.Password)
		default:
			client.Close()
			return nil, errNoAuthMech
		}
		if err := client.Auth(mech); err != nil {
			client.Close()
			return nil, err
		}
	}
	c.session = newSession(nc, client)
	return c, nil
}

// startTLS reads the greeting, says EHLO and STARTTLS, and returns the
// TLS connection.
//
// go-smtp can do this itself (NewClientStartTLS), but it then says "EHLO
// localhost" before STARTTLS, with no way to give our name; servers log
// and score the EHLO name. So the clear-text part, which is three
// commands, is done here, and go-smtp takes over on the TLS connection
// with the greeting replayed (greetedConn).
func (s *Sender) startTLS(ctx context.Context, g *guardConn) (net.Conn, error) {
	tp := textproto.NewConn(g)
	if _, _, err := readReply(&tp.Reader, 220); err != nil {
		return nil, err
	}
	if err := tp.PrintfLine("EHLO %s", s.cfg.HeloName); err != nil {
		return nil, err
	}
	_, msg, err := readReply(&tp.Reader, 250)
	if err != nil {
		var se *gosmtp.SMTPError
		if errors.As(err, &se) && (se.Code == 500 || se.Code == 502) {
			// No ESMTP at all, so no STARTTLS either.
			return nil, errNoStartTLS
		}
		return nil, err
	}
	offered := false
	for _, line := range strings.Split(msg, "\n")[1:] {
		if strings.EqualFold(strings.TrimSpace(line), "STARTTLS") {
			offered = true
		}
	}
	if !offered {
		return nil, errNoStartTLS
	}
	if err := tp.PrintfLine("STARTTLS"); err != nil {
		return nil, err
	}
	if _, _, err := readReply(&tp.Reader, 220); err != nil {
		return nil, err
	}
	// Bytes already buffered after the 220 came before the handshake, in
	// clear text: a man in the middle injecting commands or replies
	// (CVE-2011-0411 and its kin). Refuse rather than act on them.
	if tp.R.Buffered() > 0 {
		return nil, fmt.Errorf("server sent clear-text data after its STARTTLS reply")
	}
	tc := tls.Client(g, s.tls)
	if err := tc.HandshakeContext(ctx); err != nil {
		return nil, fmt.Errorf("TLS handshake: %w", err)
	}
	return tc, nil
}

// readReply reads a reply, as *gosmtp.SMTPError (with its enhanced
// status code, RFC 2034, parsed as go-smtp does) when the code is not the
// expected one.
func readReply(r *textproto.Reader, expect int) (int, string, error) {
	code, msg, err := r.ReadResponse(expect)
	var pe *textproto.Error
	if !errors.As(err, &pe) {
		return code, msg, err
	}
	se := &gosmtp.SMTPError{Code: pe.Code, Message: pe.Msg}
	if first, rest, ok := strings.Cut(pe.Msg, " "); ok {
		if ec, ok := parseEnhancedCode(first); ok {
			// Each line of a multi-line reply repeats the code.
			se.EnhancedCode, se.Message = ec, strings.ReplaceAll(rest, "\n"+first+" ", "\n")
		}
	}
	return code, msg, se
}

// parseEnhancedCode parses "class.subject.detail".
func parseEnhancedCode(s string) (gosmtp.EnhancedCode, bool) {
	var ec gosmtp.EnhancedCode
	parts := strings.Split(s, ".")
	if len(parts) != 3 {
		return ec, false
	}
	for i, p := range parts {
		n, err := strconv.Atoi(p)
		if err != nil || n < 0 {
			return ec, false
		}
		ec[i] = n
	}
	return ec, true
}
