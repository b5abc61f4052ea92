package smtp

import (
	"bufio"
	"bytes"
	"errors"
	"net"
	"net/textproto"
	"strconv"
	"time"

	gosmtp "github.com/emersion/go-smtp"
)

// The mail transaction (MAIL FROM, RCPT TO, DATA, the message, RSET) is
// written here on the session that go-smtp opened (greeting, EHLO,
// STARTTLS, AUTH), because go-smtp's Client sends each command and waits
// for its reply: four round trips per message, each a write and a read on
// both sides. A server that offers PIPELINING (RFC 2920; Postfix, Exim,
// Exchange and the big providers do) takes MAIL FROM, RCPT TO and DATA in
// one write and answers them together, which halves the round trips.
// Without PIPELINING the commands go one at a time, as go-smtp sends them.
//
// Both go-smtp's reader and ours read the same connection, one after the
// other: a server only speaks when spoken to, and each side reads every
// reply to what it sent, so neither leaves bytes in its buffer for the
// other.

// session is what the transaction needs of the connection: a writer, a
// buffered reader and the server's extensions.
type session struct {
	// w takes whole commands and messages, each built in line first, so
	// that each is one write.
	w net.Conn
	r *textproto.Reader

	pipelining   bool
	eightBitMIME bool
	size         bool
	dsn          bool
	smtpUTF8     bool

	// line is the commands' buffer, reused from one message to the next.
	line []byte
}

func newSession(nc net.Conn, client *gosmtp.Client) session {
	has := func(ext string) bool { ok, _ := client.Extension(ext); return ok }
	return session{
		w:            nc,
		r:            textproto.NewReader(bufio.NewReaderSize(nc, 4<<10)),
		pipelining:   has("PIPELINING"),
		eightBitMIME: has("8BITMIME"),
		size:         has("SIZE"),
		dsn:          has("DSN"),
		smtpUTF8:     has("SMTPUTF8"),
	}
}

// command is one command of the transaction's first group.
type command struct {
	st     stage
	expect int // the reply code wanted, as textproto.Reader.ReadResponse takes it
	end    int // where its line ends in session.line
}

// exchange runs one transaction on c: the envelope, then data, the whole
// message. It reports the stage that failed.
func (s *Sender) exchange(c *conn, env *envelope, data []byte) (stage, error) {
	if env.utf8 && !c.smtpUTF8 {
		return stageMail, errNeedsSMTPUTF8
	}
	cmds := c.envelopeCommands(env, len(data))
	var failed error // the first refusal: the transaction fails, but the group's replies must all be read
	var failedAt stage
	dataTaken := false
	sent := 0
	for i, cmd := range cmds {
		if i == sent {
			// Send the next command, or with PIPELINING all of them.
			sent = i + 1
			if c.pipelining {
				sent = len(cmds)
			}
			from := 0
			if i > 0 {
				from = cmds[i-1].end
			}
			if err := c.write(c.line[from:cmds[sent-1].end]); err != nil {
				return cmd.st, err
			}
		}
		_, _, err := readReply(c.r, cmd.expect)
		var refused *gosmtp.SMTPError
		switch {
		case err == nil:
			dataTaken = cmd.st == stageData
		case !errors.As(err, &refused):
			// The connection failed; a refusal read before says more.
			if failed != nil {
				return failedAt, failed
			}
			return cmd.st, err
		case failed == nil:
			failed, failedAt = err, cmd.st
		}
		if failed != nil && !c.pipelining {
			return failedAt, failed
		}
	}
	if failed != nil {
		if dataTaken {
			// DATA was taken although MAIL FROM or RCPT TO was refused,
			// which RFC 2920 lets a server do: end the message at once,
			// empty, to get back to a state RSET can leave.
			if err := c.write([]byte(".\r\n")); err == nil {
				readReply(c.r, 250)
			}
		}
		return failedAt, failed
	}
	c.line = dotStuff(c.line[:0], data)
	err := c.write(c.line)
	if cap(c.line) > maxPooledBuf {
		c.line = nil // the odd huge message does not stay with the connection
	}
	if err != nil {
		return stageBody, err
	}
	c.extend()
	if _, _, err := readReply(c.r, 250); err != nil {
		return stageEnd, err
	}
	return stageEnd, nil
}

// envelopeCommands writes MAIL FROM, RCPT TO and DATA into c.line and
// returns where each ends.
//
// When the server offers DSN (RFC 3461), bounces carry our id as ENVID
// and only the headers of the message. SIZE (RFC 1870) lets a server
// refuse an oversized message before it is transferred.
func (c *session) envelopeCommands(env *envelope, size int) [3]command {
	b := append(c.line[:0], "MAIL FROM:<"...)
	b = append(b, env.from...)
	b = append(b, '>')
	if c.eightBitMIME {
		b = append(b, " BODY=8BITMIME"...)
	}
	if c.size {
		b = strconv.AppendInt(append(b, " SIZE="...), int64(size), 10)
	}
	if env.utf8 {
		b = append(b, " SMTPUTF8"...)
	}
	if c.dsn {
		b = appendXtext(append(b, " RET=HDRS ENVID="...), env.id)
	}
	b = append(b, "\r\n"...)
	mail := len(b)
	b = append(b, "RCPT TO:<"...)
	b = append(b, env.to...)
	b = append(b, ">\r\n"...)
	rcpt := len(b)
	b = append(b, "DATA\r\n"...)
	c.line = b
	return [3]command{
		{stageMail, 250, mail},
		{stageRcpt, 25, rcpt}, // 250, or 251 "will forward"
		{stageData, 354, len(b)},
	}
}

// reset says RSET, after a refused transaction.
func (c *conn) reset() error {
	if err := c.write([]byte("RSET\r\n")); err != nil {
		return err
	}
	_, _, err := readReply(c.r, 250)
	return err
}

// write sends p, with a fresh Timeout.
func (c *conn) write(p []byte) error {
	c.extend()
	_, err := c.w.Write(p)
	return err
}

// extend gives the next step of the exchange its own Timeout, within the
// Send's deadline (see guardConn).
func (c *conn) extend() { c.guard.SetDeadline(time.Time{}) }

// dotStuff appends data to dst as DATA carries it (RFC 5321 §4.5.2): a
// line that starts with "." gets another in front, and the message ends
// with CRLF "." CRLF. data's line ends are CRLF (BuildMessage makes them
// so).
func dotStuff(dst, data []byte) []byte {
	atLineStart := true
	for len(data) > 0 {
		if atLineStart && data[0] == '.' {
			dst = append(dst, '.')
		}
		i := bytes.IndexByte(data, '\n')
		if i < 0 {
			dst = append(dst, data...)
			atLineStart = false
			break
		}
		dst = append(dst, data[:i+1]...)
		data = data[i+1:]
		atLineStart = true
	}
	if !atLineStart {
		dst = append(dst, "\r\n"...)
	}
	return append(dst, ".\r\n"...)
}

// appendXtext appends s as xtext (RFC 3461 §4): "+" and "=", and anything
// outside printable ASCII, as "+" and two hex digits.
func appendXtext(dst []byte, s string) []byte {
	const hex = "0123456789ABCDEF"
	for i := 0; i < len(s); i++ {
		ch := s[i]
		if ch >= '!' && ch <= '~' && ch != '+' && ch != '=' {
			dst = append(dst, ch)
			continue
		}
		dst = append(dst, '+', hex[ch>>4], hex[ch&0xF])
	}
	return dst
}
