package smtp

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"strconv"
	"sync"
	"time"

	gosmtp "github.com/emersion/go-smtp"

	"github.com/alumoutreach/alumoutreach/internal/channel"
)

// quitTimeout bounds the polite QUIT when a connection is retired.
const quitTimeout = 2 * time.Second

// Sender sends email through one SMTP server over a pool of connections.
// It is safe for concurrent use.
type Sender struct {
	cfg  Config
	addr string
	tls  *tls.Config

	// slots holds one token per connection that may be open: a Send takes
	// one for as long as it uses a connection, so at most PoolSize are in
	// use, and since a connection is only dialled when none is idle, at
	// most PoolSize are open.
	slots chan struct{}
	done  chan struct{}

	mu     sync.Mutex
	idle   []*conn // most recently used last
	closed bool

	// wg counts the goroutines that retire connections and the janitor.
	wg sync.WaitGroup
}

// New checks cfg and returns a Sender. It does not connect: the first Send
// does.
func New(cfg Config) (*Sender, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	tc := &tls.Config{}
	if cfg.TLSConfig != nil {
		tc = cfg.TLSConfig.Clone()
	}
	if tc.ServerName == "" {
		tc.ServerName = cfg.Host
	}
	if tc.MinVersion == 0 {
		tc.MinVersion = tls.VersionTLS12
	}
	s := &Sender{
		cfg:   cfg,
		addr:  net.JoinHostPort(cfg.Host, strconv.Itoa(cfg.Port)),
		tls:   tc,
		slots: make(chan struct{}, cfg.PoolSize),
		done:  make(chan struct{}),
	}
	s.wg.Add(1)
	go s.janitor()
	return s, nil
}

// msgBuf is a pooled buffer for rendered messages. A Send takes one only
// once it holds a connection slot, so no more than PoolSize are in use
// however many Sends wait: the same few buffers, warm in the cache, carry
// every message, instead of one per waiting Send (thousands, with the
// pipeline's deliveries in flight).
type msgBuf struct{ b []byte }

var bufPool = sync.Pool{New: func() any { return &msgBuf{b: make([]byte, 0, 16<<10)} }}

// maxPooledBuf keeps the odd huge message from pinning its buffer.
const maxPooledBuf = 1 << 20

// Send renders m and sends it in one SMTP transaction to m.To.
//
// The receipt's ExternalID is the Message-ID without angle brackets: SMTP
// has no provider id, and bounces and reports quote the Message-ID. Errors
// are *channel.Error, classified as the package documentation says.
func (s *Sender) Send(ctx context.Context, m channel.Message) (channel.Receipt, error) {
	if err := ctx.Err(); err != nil {
		return channel.Receipt{}, &channel.Error{Provider: Provider, Message: "not sent", Err: err}
	}
	if err := s.acquire(ctx); err != nil {
		return channel.Receipt{}, err
	}
	mb := bufPool.Get().(*msgBuf)
	r, err := s.send(ctx, m, mb)
	if cap(mb.b) <= maxPooledBuf {
		bufPool.Put(mb)
	}
	return r, err
}

// send renders m into mb and sends it, holding a slot that it releases
// (through put, or at once when m does not render or no connection opens).
func (s *Sender) send(ctx context.Context, m channel.Message, mb *msgBuf) (channel.Receipt, error) {
	// Rendered before a connection is taken or opened: a message that
	// cannot be sent fails as itself, never as the server's being down.
	data, env, id, err := appendMessage(mb.b[:0], m, time.Now(), "")
	mb.b = data[:0]
	if err != nil {
		s.release()
		return channel.Receipt{}, err
	}

	c, reused, err := s.get(ctx)
	if err != nil {
		return channel.Receipt{}, err
	}
	st, err := s.transact(ctx, c, &env, data)
	if err != nil && reused && staleConn(st, err) && ctx.Err() == nil {
		// The idle connection had died (server timeout); nothing was
		// sent, so try once on a fresh one.
		c.close()
		if c, err = s.dial(ctx); err != nil {
			s.release()
			return channel.Receipt{}, classify(ctx, stageConnect, err)
		}
		st, err = s.transact(ctx, c, &env, data)
	}
	s.put(c, err)
	if err != nil {
		return channel.Receipt{}, classify(ctx, st, err)
	}
	return channel.Receipt{Provider: Provider, ExternalID: id}, nil
}

// transact runs MAIL FROM, RCPT TO and DATA on c. It reports the stage
// that failed.
func (s *Sender) transact(ctx context.Context, c *conn, env *envelope, data []byte) (stage, error) {
	c.used++
	c.guard.arm(ctx, time.Time{})
	st, err := s.exchange(c, env, data)
	if !c.guard.disarm() {
		// Cancelled during or right after the exchange: the connection's
		// deadline is in the past and it must not be reused.
		c.used = s.cfg.MaxMessagesPerConn
		if err == nil {
			return st, nil
		}
		return st, &cancelledErr{err}
	}
	return st, err
}

// cancelledErr marks a failure on a connection the context cut, which is
// never kept.
type cancelledErr struct{ error }

func (e *cancelledErr) Unwrap() error { return e.error }

// errNeedsSMTPUTF8 refuses an address with non-ASCII characters for a
// server that cannot take one. It is a reply in all but name: the server
// would refuse the address, so it is classified as a 553.
var errNeedsSMTPUTF8 = &gosmtp.SMTPError{
	Code:         553,
	EnhancedCode: gosmtp.EnhancedCode{5, 6, 7},
	Message:      "the address has non-ASCII characters and the server does not offer SMTPUTF8",
}

// acquire takes a slot: the right to hold one of PoolSize connections.
func (s *Sender) acquire(ctx context.Context) error {
	select {
	case s.slots <- struct{}{}:
		return nil
	case <-ctx.Done():
		return &channel.Error{Provider: Provider, Message: "no free connection", Err: fmt.Errorf("waiting for a connection: %w", ctx.Err())}
	case <-s.done:
		return &channel.Error{Provider: Provider, Err: ErrClosed}
	}
}

// get returns an idle connection, or a new one, for the slot the caller
// holds; it releases the slot when it returns an error. reused says the
// connection carried a transaction before.
func (s *Sender) get(ctx context.Context) (c *conn, reused bool, err error) {
	var stale []*conn
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		s.release()
		return nil, false, &channel.Error{Provider: Provider, Err: ErrClosed}
	}
	now := time.Now()
	for len(s.idle) > 0 {
		c = s.idle[len(s.idle)-1]
		s.idle = s.idle[:len(s.idle)-1]
		if now.Sub(c.idleSince) < s.cfg.IdleTimeout {
			break
		}
		stale = append(stale, c)
		c = nil
	}
	s.mu.Unlock()
	for _, sc := range stale {
		sc.close()
	}
	if c != nil {
		return c, true, nil
	}
	if c, err = s.dial(ctx); err != nil {
		s.release()
		return nil, false, classify(ctx, stageConnect, err)
	}
	return c, false, nil
}

// release gives back a slot.
func (s *Sender) release() { <-s.slots }

// put returns c to the pool after a transaction that ended with err, or
// retires it.
func (s *Sender) put(c *conn, err error) {
	healthy := err == nil
	if !healthy && keepAfter(err) {
		// The server refused the transaction but the connection is fine:
		// a bad recipient must not cost a new connection and TLS
		// handshake. RSET puts it back to a known state.
		c.guard.arm(context.Background(), time.Time{})
		healthy = c.reset() == nil && c.guard.disarm()
	}
	if !healthy {
		c.close()
		s.release()
		return
	}
	if c.used < s.cfg.MaxMessagesPerConn {
		s.mu.Lock()
		if !s.closed {
			c.idleSince = time.Now()
			s.idle = append(s.idle, c)
			s.mu.Unlock()
			s.release()
			return
		}
		s.mu.Unlock()
	}
	// Retire: QUIT in the background, keeping the slot until it is done
	// so that no more than PoolSize connections are ever open.
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		c.quit(quitTimeout)
		s.release()
	}()
}

// janitor closes connections idle for longer than IdleTimeout.
func (s *Sender) janitor() {
	defer s.wg.Done()
	every := max(s.cfg.IdleTimeout/2, 10*time.Millisecond)
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-s.done:
			return
		case now := <-t.C:
			s.mu.Lock()
			n := 0
			for n < len(s.idle) && now.Sub(s.idle[n].idleSince) >= s.cfg.IdleTimeout {
				n++
			}
			stale := make([]*conn, n)
			copy(stale, s.idle[:n])
			s.idle = append(s.idle[:0], s.idle[n:]...)
			s.mu.Unlock()
			for _, c := range stale {
				c.quit(quitTimeout)
			}
		}
	}
}

// Close closes the idle connections (with QUIT), waits for the Sends in
// flight to finish and closes theirs. Sends after Close fail with
// ErrClosed.
func (s *Sender) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	idle := s.idle
	s.idle = nil
	close(s.done)
	s.mu.Unlock()

	var wg sync.WaitGroup
	for _, c := range idle {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c.quit(quitTimeout)
		}()
	}
	wg.Wait()
	// Taking every slot waits for the Sends in flight and the retiring
	// connections.
	for range cap(s.slots) {
		s.slots <- struct{}{}
	}
	s.wg.Wait()
	return nil
}
