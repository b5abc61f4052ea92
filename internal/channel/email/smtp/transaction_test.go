package smtp

import (
	"bufio"
	"context"
	"errors"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/alumoutreach/alumoutreach/internal/channel"
)

// scriptedServer is an SMTP server on loopback that a test drives line by
// line, for what go-smtp's server cannot be made to do: hold its replies
// until the client sent the whole group, leave PIPELINING out of its EHLO
// reply, take DATA after refusing every recipient.
type scriptedServer struct {
	t     *testing.T
	port  int
	conns chan *scriptedConn
}

type scriptedConn struct {
	t  *testing.T
	c  net.Conn
	r  *bufio.Reader
	ok chan struct{} // closed when the script ended without failing
}

// startScripted listens on loopback; each accepted connection is greeted
// and answers EHLO with the extensions given, then is handed to the test.
func startScripted(t *testing.T, extensions ...string) *scriptedServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	s := &scriptedServer{t: t, port: ln.Addr().(*net.TCPAddr).Port, conns: make(chan *scriptedConn, 4)}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			t.Cleanup(func() { c.Close() })
			c.SetDeadline(time.Now().Add(10 * time.Second))
			sc := &scriptedConn{t: t, c: c, r: bufio.NewReader(c), ok: make(chan struct{})}
			sc.send("220 scripted.test ESMTP")
			if line := sc.line(); !strings.HasPrefix(line, "EHLO ") {
				t.Errorf("first command %q, want EHLO", line)
				return
			}
			reply := "250-scripted.test"
			for _, ext := range extensions {
				reply += "\r\n250-" + ext
			}
			sc.send(reply + "\r\n250 ENHANCEDSTATUSCODES")
			s.conns <- sc
		}
	}()
	return s
}

func (s *scriptedServer) sender() *Sender {
	s.t.Helper()
	return newSender(s.t, Config{Host: "127.0.0.1", Port: s.port, Security: SecurityNone, HeloName: "client.test", Timeout: 5 * time.Second})
}

// next is the next connection the client opened, nil when none came.
func (s *scriptedServer) next() *scriptedConn {
	select {
	case c := <-s.conns:
		return c
	case <-time.After(5 * time.Second):
		s.t.Error("the client did not connect")
		return nil
	}
}

// serve runs script on the next connection, in the background.
func (s *scriptedServer) serve(script func(c *scriptedConn)) {
	go func() {
		if c := s.next(); c != nil {
			c.run(script)
			c.wait()
		}
	}()
}

func (c *scriptedConn) send(lines string) {
	if _, err := c.c.Write([]byte(lines + "\r\n")); err != nil {
		c.t.Errorf("server write: %v", err)
	}
}

func (c *scriptedConn) line() string {
	l, err := c.r.ReadString('\n')
	if err != nil {
		c.t.Errorf("server read: %v", err)
	}
	return strings.TrimSuffix(l, "\r\n")
}

// expect reads one command and checks its start.
func (c *scriptedConn) expect(prefix string) {
	if l := c.line(); !strings.HasPrefix(l, prefix) {
		c.t.Errorf("command %q, want %s...", l, prefix)
	}
}

// message reads DATA's content up to the lone ".".
func (c *scriptedConn) message() string {
	var b strings.Builder
	for {
		l := c.line()
		if l == "." || c.t.Failed() {
			return b.String()
		}
		b.WriteString(l + "\n")
	}
}

// run runs script on the connection in its own goroutine; wait waits for
// it. After the script, the connection answers the Sender's QUIT when it
// closes.
func (c *scriptedConn) run(script func(c *scriptedConn)) {
	go func() {
		script(c)
		close(c.ok)
		if l, err := c.r.ReadString('\n'); err == nil && strings.HasPrefix(l, "QUIT") {
			c.c.Write([]byte("221 bye\r\n"))
		}
		c.c.Close()
	}()
}

func (c *scriptedConn) wait() {
	select {
	case <-c.ok:
	case <-time.After(10 * time.Second):
		c.t.Error("the server script did not end")
	}
}

// envelope reads a pipelined group: MAIL FROM, RCPT TO, DATA.
func (c *scriptedConn) envelope() {
	c.expect("MAIL FROM:")
	c.expect("RCPT TO:")
	c.expect("DATA")
}

// With PIPELINING the envelope is one group: a server that answers only
// once it has MAIL FROM, RCPT TO and DATA still gets the message. A
// client waiting for each reply would wait for ever (its Timeout here).
func TestPipelinesTheEnvelopeWhenOffered(t *testing.T) {
	t.Parallel()
	srv := startScripted(t, "PIPELINING", "SIZE 1000000")
	s := srv.sender()
	srv.serve(func(c *scriptedConn) {
		c.expect("MAIL FROM:<alumni@example.org> SIZE=")
		c.expect("RCPT TO:<ada@example.net>")
		c.expect("DATA")
		c.send("250 2.1.0 ok\r\n250 2.1.5 ok\r\n354 go ahead")
		if body := c.message(); !strings.Contains(body, "Subject:") {
			t.Errorf("message without its headers: %q", body)
		}
		c.send("250 2.0.0 queued")
	})
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	if _, err := s.Send(ctx, fullMessage("m1")); err != nil {
		t.Fatalf("Send: %v", err)
	}
}

// Without PIPELINING each command waits for the reply to the one before:
// nothing may follow MAIL FROM before the server has answered it.
func TestWaitsForEachReplyWithoutPipelining(t *testing.T) {
	t.Parallel()
	srv := startScripted(t, "SIZE 1000000")
	s := srv.sender()
	srv.serve(func(c *scriptedConn) {
		for _, step := range []struct{ cmd, reply string }{
			{"MAIL FROM:", "250 ok"}, {"RCPT TO:", "250 ok"}, {"DATA", "354 go ahead"},
		} {
			c.expect(step.cmd)
			// The client has had the time to send more; it must not have.
			time.Sleep(20 * time.Millisecond)
			if n := c.r.Buffered(); n > 0 {
				t.Errorf("%d bytes sent after %s before its reply", n, step.cmd)
			}
			c.send(step.reply)
		}
		c.message()
		c.send("250 queued")
	})
	if _, err := s.Send(context.Background(), fullMessage("m1")); err != nil {
		t.Fatalf("Send: %v", err)
	}
}

// A refused recipient in a pipelined group: every reply of the group is
// read, the refusal is the Send's error, and the connection (after RSET)
// carries the next message. A server may even take DATA when it refused
// every recipient (RFC 2920 §3.1): the client then ends an empty message
// at once.
func TestPipelinedRefusal(t *testing.T) {
	t.Parallel()
	for _, dataReply := range []string{"554 5.5.1 no valid recipients", "354 go ahead"} {
		t.Run(dataReply[:3], func(t *testing.T) {
			t.Parallel()
			srv := startScripted(t, "PIPELINING")
			s := srv.sender()
			srv.serve(func(c *scriptedConn) {
				c.envelope()
				c.send("250 2.1.0 ok\r\n550 5.1.1 no such user\r\n" + dataReply)
				if dataReply[0] == '3' {
					if body := c.message(); body != "" {
						t.Errorf("message %q sent to no recipient, want none", body)
					}
					c.send("554 5.5.1 no valid recipients")
				}
				c.expect("RSET")
				c.send("250 2.0.0 ok")
				c.envelope()
				c.send("250 ok\r\n250 ok\r\n354 go ahead")
				c.message()
				c.send("250 queued")
			})
			_, err := s.Send(context.Background(), fullMessage("m1"))
			var ce *channel.Error
			if !errors.As(err, &ce) || !ce.Permanent || ce.Code != "550" || !strings.Contains(err.Error(), "RCPT TO") || ce.Message != "5.1.1 no such user" {
				t.Fatalf("Send = %v, want the permanent 550 refusal at RCPT TO", err)
			}
			if _, err := s.Send(context.Background(), fullMessage("m2")); err != nil {
				t.Fatalf("the next Send on the same connection: %v", err)
			}
		})
	}
}

func TestDotStuff(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ in, want string }{
		{"a\r\nb\r\n", "a\r\nb\r\n.\r\n"},
		{".a\r\n", "..a\r\n.\r\n"},
		{"a\r\n.\r\n..b\r\n", "a\r\n..\r\n...b\r\n.\r\n"},
		{"no line end", "no line end\r\n.\r\n"},
		{"a.b\r\n", "a.b\r\n.\r\n"},
		{"", ".\r\n"},
	} {
		if got := string(dotStuff(nil, []byte(tc.in))); got != tc.want {
			t.Errorf("dotStuff(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestAppendXtext(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"0197a3c2-7d4e": "0197a3c2-7d4e",
		"a+b=c":         "a+2Bb+3Dc",
		"a b\x7f":       "a+20b+7F",
	} {
		if got := string(appendXtext(nil, in)); got != want {
			t.Errorf("appendXtext(%q) = %q, want %q", in, got, want)
		}
	}
}

// The reply parser keeps go-smtp's reading of enhanced status codes.
func TestReadReplyEnhancedCode(t *testing.T) {
	t.Parallel()
	srv := startScripted(t, "PIPELINING")
	s := srv.sender()
	srv.serve(func(c *scriptedConn) {
		c.envelope()
		c.send("452-4.2.2 mailbox full\r\n452 4.2.2 try later\r\n503 5.5.1 no recipients\r\n554 5.5.1 no valid recipients")
		c.expect("RSET")
		c.send("250 ok")
	})
	_, err := s.Send(context.Background(), fullMessage("m1"))
	var ce *channel.Error
	if !errors.As(err, &ce) || ce.Permanent || ce.Code != "452" || ce.Message != "4.2.2 mailbox full try later" {
		t.Fatalf("Send = %v (%+v), want the transient 452 with its text", err, ce)
	}
}
