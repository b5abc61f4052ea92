package smtp

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"io"
	"log"
	"math/big"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	gosmtp "github.com/emersion/go-smtp"
)

// This file is the SMTP server the tests send to: go-smtp's server on
// loopback, speaking the real protocol, with a backend that records what
// it receives and can be told to misbehave.

// serverOptions say how a test server behaves.
type serverOptions struct {
	// tls is "" (clear text only), "starttls" (offers STARTTLS) or
	// "implicit" (TLS from the first byte).
	tls string
	// authMechs, when set, are offered (PLAIN and/or LOGIN) and MAIL is
	// refused until the client authenticated as user/password.
	authMechs         []string
	allowInsecureAuth bool
	// discard throws messages away instead of recording them
	// (benchmarks).
	discard  bool
	smtpUTF8 bool
	dsn      bool
	// maxBytes is the SIZE the server announces (default 10 MiB).
	maxBytes int64
}

const (
	testUser     = "mailer"
	testPassword = "s3cret"
)

// received is one message as the server got it.
type received struct {
	from, to string
	opts     gosmtp.MailOptions
	data     []byte
	tls      bool
	user     string
	helo     string
}

type testServer struct {
	t    *testing.T
	opts serverOptions
	host string
	port int

	accepted atomic.Int64 // connections accepted
	open     atomic.Int64 // connections open now
	peak     atomic.Int64 // most connections open at once
	sessions atomic.Int64 // transactions that reached DATA

	mu    sync.Mutex
	msgs  []received
	conns map[*countedConn]bool // open server-side connections
	// hook, when set, is asked at each command; a non-nil error is the
	// server's reply. stage is "mail", "rcpt" or "data"; arg the address.
	hook func(stage, arg string) error
	// dataHook, when set, runs in DATA before the message is read; it
	// can block (to hold a connection) or close the connection.
	dataHook func(c *gosmtp.Conn, r io.Reader) error
}

func (s *testServer) setHook(h func(stage, arg string) error) {
	s.mu.Lock()
	s.hook = h
	s.mu.Unlock()
}

func (s *testServer) setDataHook(h func(c *gosmtp.Conn, r io.Reader) error) {
	s.mu.Lock()
	s.dataHook = h
	s.mu.Unlock()
}

func (s *testServer) messages() []received {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]received(nil), s.msgs...)
}

// startServer runs a test SMTP server until the test ends.
func startServer(t testing.TB, opts serverOptions) *testServer {
	t.Helper()
	ts := &testServer{opts: opts}
	if tt, ok := t.(*testing.T); ok {
		ts.t = tt
	}
	srv := gosmtp.NewServer(gosmtp.BackendFunc(ts.newSession))
	srv.Domain = "mx.test"
	srv.AllowInsecureAuth = opts.allowInsecureAuth
	srv.EnableSMTPUTF8 = opts.smtpUTF8
	srv.EnableDSN = opts.dsn
	srv.ErrorLog = log.New(io.Discard, "", 0)
	srv.MaxMessageBytes = 10 << 20
	if opts.maxBytes > 0 {
		srv.MaxMessageBytes = opts.maxBytes
	}

	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var ln net.Listener = &countingListener{Listener: l, s: ts}
	switch opts.tls {
	case "starttls":
		srv.TLSConfig = serverTLS(t)
	case "implicit":
		ln = tls.NewListener(ln, serverTLS(t))
	}
	addr := l.Addr().(*net.TCPAddr)
	ts.host, ts.port = addr.IP.String(), addr.Port
	done := make(chan struct{})
	go func() {
		defer close(done)
		srv.Serve(ln)
	}()
	t.Cleanup(func() {
		srv.Close()
		// Close only closes the listeners Serve registered; if Serve has
		// not started yet, this makes it return at once.
		ln.Close()
		<-done
	})
	return ts
}

// config is a Config that reaches the server, with the CA of the test
// certificate trusted.
func (s *testServer) config(t testing.TB) Config {
	t.Helper()
	cfg := Config{Host: s.host, Port: s.port, HeloName: "client.test"}
	switch s.opts.tls {
	case "":
		cfg.Security = SecurityNone
	case "starttls":
		cfg.Security = SecurityStartTLS
	case "implicit":
		cfg.Security = SecurityTLS
	}
	cfg.TLSConfig = &tls.Config{RootCAs: testCA(t)}
	if len(s.opts.authMechs) > 0 {
		cfg.Username, cfg.Password = testUser, testPassword
	}
	return cfg
}

type countingListener struct {
	net.Listener
	s *testServer
}

func (l *countingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	l.s.accepted.Add(1)
	n := l.s.open.Add(1)
	for {
		p := l.s.peak.Load()
		if n <= p || l.s.peak.CompareAndSwap(p, n) {
			break
		}
	}
	cc := &countedConn{Conn: c, s: l.s}
	l.s.mu.Lock()
	if l.s.conns == nil {
		l.s.conns = map[*countedConn]bool{}
	}
	l.s.conns[cc] = true
	l.s.mu.Unlock()
	return cc, nil
}

// dropAll closes every connection from the server side, as a server
// does to idle clients, after writing last (say, a 421 reply) when set.
func (s *testServer) dropAll(last string) {
	s.mu.Lock()
	conns := make([]*countedConn, 0, len(s.conns))
	for c := range s.conns {
		conns = append(conns, c)
	}
	s.mu.Unlock()
	for _, c := range conns {
		if last != "" {
			c.Write([]byte(last))
		}
		c.Close()
	}
}

type countedConn struct {
	net.Conn
	s    *testServer
	once sync.Once
}

func (c *countedConn) Close() error {
	c.once.Do(func() {
		c.s.open.Add(-1)
		c.s.mu.Lock()
		delete(c.s.conns, c)
		c.s.mu.Unlock()
	})
	return c.Conn.Close()
}

func (s *testServer) newSession(c *gosmtp.Conn) (gosmtp.Session, error) {
	return &serverSession{s: s, c: c}, nil
}

type serverSession struct {
	s    *testServer
	c    *gosmtp.Conn
	user string
	msg  received
}

func (ss *serverSession) AuthMechanisms() []string { return ss.s.opts.authMechs }

func (ss *serverSession) Auth(mech string) (sasl.Server, error) {
	check := func(user, pass string) error {
		if user != testUser || pass != testPassword {
			return gosmtp.ErrAuthFailed
		}
		ss.user = user
		return nil
	}
	switch mech {
	case sasl.Plain:
		return sasl.NewPlainServer(func(_, user, pass string) error { return check(user, pass) }), nil
	case sasl.Login:
		return &loginServer{check: check}, nil
	}
	return nil, gosmtp.ErrAuthUnknownMechanism
}

// loginServer is the server side of AUTH LOGIN, which go-sasl does not
// have: the username (here the client's initial response), then
// "Password:" and the password.
type loginServer struct {
	check func(user, pass string) error
	user  string
	state int
}

func (l *loginServer) Next(resp []byte) ([]byte, bool, error) {
	switch l.state {
	case 0:
		l.state = 1
		if resp == nil {
			return []byte("Username:"), false, nil
		}
		l.user = string(resp)
		l.state = 2
		return []byte("Password:"), false, nil
	case 1:
		l.user = string(resp)
		l.state = 2
		return []byte("Password:"), false, nil
	default:
		return nil, true, l.check(l.user, string(resp))
	}
}

func (ss *serverSession) hook(stage, arg string) error {
	ss.s.mu.Lock()
	h := ss.s.hook
	ss.s.mu.Unlock()
	if h == nil {
		return nil
	}
	return h(stage, arg)
}

func (ss *serverSession) Mail(from string, opts *gosmtp.MailOptions) error {
	if len(ss.s.opts.authMechs) > 0 && ss.user == "" {
		return gosmtp.ErrAuthRequired
	}
	if err := ss.hook("mail", from); err != nil {
		return err
	}
	ss.msg = received{from: from, user: ss.user, helo: ss.c.Hostname()}
	if opts != nil {
		ss.msg.opts = *opts
	}
	_, ss.msg.tls = ss.c.TLSConnectionState()
	return nil
}

func (ss *serverSession) Rcpt(to string, _ *gosmtp.RcptOptions) error {
	if err := ss.hook("rcpt", to); err != nil {
		return err
	}
	ss.msg.to = to
	return nil
}

func (ss *serverSession) Data(r io.Reader) error {
	ss.s.sessions.Add(1)
	ss.s.mu.Lock()
	dh := ss.s.dataHook
	ss.s.mu.Unlock()
	if dh != nil {
		if err := dh(ss.c, r); err != nil {
			return err
		}
	}
	if ss.s.opts.discard {
		_, err := io.Copy(io.Discard, r)
		return err
	}
	var b bytes.Buffer
	if _, err := b.ReadFrom(r); err != nil {
		return err
	}
	if err := ss.hook("data", ss.msg.to); err != nil {
		return err
	}
	ss.msg.data = b.Bytes()
	ss.s.mu.Lock()
	ss.s.msgs = append(ss.s.msgs, ss.msg)
	ss.s.mu.Unlock()
	return nil
}

func (ss *serverSession) Reset()        { ss.msg = received{} }
func (ss *serverSession) Logout() error { return nil }

// reply is a server reply for hooks.
func reply(code int, enhanced gosmtp.EnhancedCode, msg string) error {
	return &gosmtp.SMTPError{Code: code, EnhancedCode: enhanced, Message: msg}
}

// The test certificate: a self-signed ECDSA certificate for 127.0.0.1
// and localhost, made once per test binary.
var testCert = sync.OnceValues(func() (tls.Certificate, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "mx.test"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1)},
		DNSNames:              []string{"localhost"},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return tls.Certificate{}, err
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		return tls.Certificate{}, err
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}, nil
})

func serverTLS(t testing.TB) *tls.Config {
	t.Helper()
	cert, err := testCert()
	if err != nil {
		t.Fatal(err)
	}
	return &tls.Config{Certificates: []tls.Certificate{cert}}
}

func testCA(t testing.TB) *x509.CertPool {
	t.Helper()
	cert, err := testCert()
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(cert.Leaf)
	return pool
}

// newSender is New that fails the test on error and closes the sender at
// its end.
func newSender(t testing.TB, cfg Config) *Sender {
	t.Helper()
	s, err := New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// waitFor polls cond until it holds or a few seconds passed.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

var errDropped = errors.New("connection dropped by the test")

// dropAfter is a data hook that reads n bytes of the message and drops
// the connection.
func dropAfter(n int64) func(c *gosmtp.Conn, r io.Reader) error {
	return func(c *gosmtp.Conn, r io.Reader) error {
		io.CopyN(io.Discard, r, n)
		c.Conn().Close()
		return errDropped
	}
}

func itoa(i int) string { return strconv.Itoa(i) }
