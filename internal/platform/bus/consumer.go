package bus

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/alumoutreach/alumoutreach/internal/event"
)

// Handler processes one event. Returning nil acknowledges it. An error
// marked with Permanent dead-letters the event at once; any other error is
// retried after the configured backoff, and dead-lettered after the last
// attempt.
type Handler func(ctx context.Context, ev event.Envelope) error

type permanentError struct{ err error }

func (p permanentError) Error() string { return p.err.Error() }
func (p permanentError) Unwrap() error { return p.err }

// Permanent marks err as one that no retry can fix.
func Permanent(err error) error {
	if err == nil {
		return nil
	}
	return permanentError{err}
}

// IsPermanent reports whether err was marked Permanent or is an event the
// contract refuses (invalid, or of an unreadable version).
func IsPermanent(err error) bool {
	var p permanentError
	return errors.As(err, &p) || errors.Is(err, event.ErrInvalid) || errors.Is(err, event.ErrUnsupportedVersion)
}

// ConsumerOptions describes one durable consumer.
type ConsumerOptions struct {
	// Name is the durable name (e.g. SEGMENTS_CONTACT_CONSUMER). Every
	// process that starts a consumer with this name shares its work.
	Name string
	// Filters are the subjects it receives; empty means every event.
	Filters []string
	// Concurrency is how many events this process handles at once.
	Concurrency int
	MaxDeliver  int
	AckWait     time.Duration
	// Backoff[i] is the delay before attempt i+2.
	Backoff []time.Duration
	// LagPollInterval is how often consumer_lag is refreshed.
	LagPollInterval time.Duration
	Handler         Handler
}

// checkConsumerName refuses names the server would reject or that would
// break the replay subjects (replay.{consumer}.>) built from them.
func checkConsumerName(name string) error {
	if name == "" || strings.ContainsAny(name, ".*> ") {
		return fmt.Errorf("consumer name %q must be non-empty without '.', '*', '>' or spaces", name)
	}
	return nil
}

func (o *ConsumerOptions) defaults() error {
	if err := checkConsumerName(o.Name); err != nil {
		return err
	}
	if o.Handler == nil {
		return fmt.Errorf("consumer %s has no handler", o.Name)
	}
	if o.Concurrency <= 0 {
		o.Concurrency = 64
	}
	if o.MaxDeliver <= 0 {
		o.MaxDeliver = 3
	}
	if o.AckWait <= 0 {
		o.AckWait = 30 * time.Second
	}
	if o.Backoff == nil {
		o.Backoff = []time.Duration{time.Second, 5 * time.Second, 30 * time.Second}
	}
	if o.LagPollInterval <= 0 {
		o.LagPollInterval = defaultLagPollInterval
	}
	return nil
}

const defaultLagPollInterval = 5 * time.Second

// ReplayName is the durable that receives replays of name's dead letters.
func ReplayName(name string) string { return name + replaySuffix }

const replaySuffix = "_REPLAY"

func replaySubjectPrefix(consumer string) string { return replayPrefix + consumer + "." }

// Consumer is a running durable consumer.
type Consumer struct {
	bus      *Bus
	opts     ConsumerOptions
	log      *slog.Logger
	main     jetstream.Consumer
	work     chan jetstream.Msg
	workers  sync.WaitGroup
	loops    sync.WaitGroup
	inflight atomic.Int64
	freed    chan struct{}
	stopping chan struct{}
	baseCtx  context.Context
	cancel   context.CancelFunc
	stopOnce sync.Once
	series   sync.Map // subject -> *series
}

// StartConsumer creates or updates the durable consumer and its replay
// twin, and starts handling events until Stop.
func (b *Bus) StartConsumer(ctx context.Context, o ConsumerOptions) (*Consumer, error) {
	if err := o.defaults(); err != nil {
		return nil, err
	}
	cfg := jetstream.ConsumerConfig{
		Durable:       o.Name,
		AckPolicy:     jetstream.AckExplicitPolicy,
		DeliverPolicy: jetstream.DeliverAllPolicy,
		MaxDeliver:    o.MaxDeliver,
		AckWait:       o.AckWait,
		MaxAckPending: maxAckPending(o.Concurrency),
		Replicas:      b.cfg.Replicas,
	}
	switch len(o.Filters) {
	case 0:
	case 1:
		cfg.FilterSubject = o.Filters[0]
	default:
		cfg.FilterSubjects = o.Filters
	}
	main, err := b.js.CreateOrUpdateConsumer(ctx, EventsStream, cfg)
	if err != nil {
		return nil, fmt.Errorf("create consumer %s: %w", o.Name, err)
	}
	rcfg := cfg
	rcfg.Durable = ReplayName(o.Name)
	rcfg.FilterSubject = replaySubjectPrefix(o.Name) + ">"
	rcfg.FilterSubjects = nil
	replay, err := b.js.CreateOrUpdateConsumer(ctx, DLQStream, rcfg)
	if err != nil {
		return nil, fmt.Errorf("create consumer %s: %w", rcfg.Durable, err)
	}
	c := b.run(ctx, o, []jetstream.Consumer{main, replay}, (*Consumer).handle)
	c.main = main
	go c.pollLag()
	return c, nil
}

// run starts the workers and one fetch loop per durable; every message
// goes through handle.
func (b *Bus) run(ctx context.Context, o ConsumerOptions, durables []jetstream.Consumer, handle func(*Consumer, jetstream.Msg)) *Consumer {
	base, cancel := context.WithCancel(context.WithoutCancel(ctx))
	c := &Consumer{
		bus: b, opts: o,
		// Room for every message the server may have outstanding on all
		// durables, so handing a message to the workers never blocks.
		work: make(chan jetstream.Msg, len(durables)*maxAckPending(o.Concurrency)),
		log:  b.log.With("consumer", o.Name), baseCtx: base, cancel: cancel,
		freed: make(chan struct{}, 1), stopping: make(chan struct{}),
	}
	for range o.Concurrency {
		c.workers.Add(1)
		go func() {
			defer c.workers.Done()
			for msg := range c.work {
				handle(c, msg)
				if c.inflight.Add(-1) < int64(maxAckPending(c.opts.Concurrency))/2 {
					select {
					case c.freed <- struct{}{}:
					default:
					}
				}
			}
		}()
	}
	for _, jc := range durables {
		c.loops.Add(1)
		go c.fetchLoop(jc)
	}
	return c
}

// maxAckPending bounds the messages the server hands out before acks come
// back: enough to keep every worker busy, few enough that a queued message
// waits far less than AckWait.
func maxAckPending(concurrency int) int { return max(256, 2*concurrency) }

// fetchWait bounds one pull request. A pull the server no longer holds
// (measured under load with the client library's Consume: the client then
// waits for a missed heartbeat) costs at most this long.
const fetchWait = time.Second

// fetchLoop pulls as many messages as there is room for in this process
// (at most MaxAckPending in flight) and hands each to the workers as it
// arrives. One request at a time keeps the accounting on our side.
func (c *Consumer) fetchLoop(jc jetstream.Consumer) {
	defer c.loops.Done()
	limit := int64(maxAckPending(c.opts.Concurrency))
	for {
		select {
		case <-c.stopping:
			return
		default:
		}
		free := limit - c.inflight.Load()
		if free < limit/4 {
			select {
			case <-c.stopping:
				return
			case <-c.freed:
			case <-time.After(fetchWait):
			}
			continue
		}
		batch, err := jc.Fetch(int(free), jetstream.FetchMaxWait(fetchWait))
		if err != nil {
			c.log.Debug("fetch failed; retrying", "err", err)
			select {
			case <-c.stopping:
				return
			case <-time.After(100 * time.Millisecond):
			}
			continue
		}
		for msg := range batch.Messages() {
			c.inflight.Add(1)
			c.work <- msg
		}
	}
}

type progressKey struct{}

type attemptKey struct{}

// WithAttempt returns ctx as a handler sees it on delivery attempt of
// maxAttempts: for tests of handlers that act on their last chance.
func WithAttempt(ctx context.Context, attempt, maxAttempts int) context.Context {
	return context.WithValue(ctx, attemptKey{}, [2]int{attempt, maxAttempts})
}

// Attempt returns which delivery of the event being handled under ctx this
// is (1 for the first) and how many the consumer makes at most, so a
// handler can tell its last chance (0, 0 outside a consumer handler).
func Attempt(ctx context.Context) (attempt, maxAttempts int) {
	a, _ := ctx.Value(attemptKey{}).([2]int)
	return a[0], a[1]
}

// Progress tells the server that the event being handled under ctx is still
// being worked on, resetting its AckWait. Long handlers call it periodically.
func Progress(ctx context.Context) error {
	msg, ok := ctx.Value(progressKey{}).(jetstream.Msg)
	if !ok {
		return errors.New("bus.Progress called outside a consumer handler")
	}
	return msg.InProgress()
}

func (c *Consumer) handle(msg jetstream.Msg) {
	md, ok := parseAckReply(msg.Reply())
	if !ok {
		_, err := msg.Metadata() // says what is wrong with the reply subject
		c.log.Error("message without JetStream metadata", "subject", msg.Subject(), "reply", msg.Reply(), "err", err)
		_ = msg.Term()
		return
	}
	attempt := int(md.attempt)
	subject := msg.Subject()
	if md.stream == DLQStream {
		subject = strings.TrimPrefix(subject, replaySubjectPrefix(c.opts.Name))
	}
	m := c.seriesOf(subject)
	m.consumed.Inc()

	env, err := event.Decode(msg.Data())
	if err != nil {
		c.log.Error("undecodable event dead-lettered", "subject", subject, "streamSeq", md.streamSeq, "err", err)
		c.deadLetter(msg, md, subject, attempt, codeInvalidEvent, err)
		return
	}
	ctx := event.WithCause(c.baseCtx, env)
	ctx = context.WithValue(ctx, progressKey{}, msg)
	ctx = WithAttempt(ctx, attempt, c.opts.MaxDeliver)
	// Attributes are built only for records that are written: at tens of
	// thousands of events a second, a logger.With per event is measurable.
	log := func(level slog.Level, msg string, args ...any) {
		if !c.log.Enabled(ctx, level) {
			return
		}
		args = append(args, "subject", subject, "eventId", env.ID, "attempt", attempt,
			"correlationId", env.CorrelationID, "tenantId", env.TenantID)
		c.log.Log(ctx, level, msg, args...)
	}
	debug := c.log.Enabled(ctx, slog.LevelDebug)
	if debug {
		log(slog.LevelDebug, "handling event")
	}
	start := time.Now()
	err = c.opts.Handler(ctx, env)
	elapsed := time.Since(start)
	m.duration.Observe(elapsed.Seconds())
	switch {
	case err == nil:
		if aerr := msg.Ack(); aerr != nil {
			// The effect is committed; a redelivery will find it already applied.
			log(slog.LevelWarn, "ack failed; the event will be redelivered", "err", aerr)
		}
		m.acked.Inc()
		if debug { // boxing elapsed for a record not written costs an allocation per event
			log(slog.LevelDebug, "handled event", "duration", elapsed)
		}
	case IsPermanent(err):
		log(slog.LevelError, "permanent failure; dead-lettered", "duration", elapsed, "err", err)
		c.deadLetter(msg, md, subject, attempt, codePermanent, err)
	case attempt >= c.opts.MaxDeliver:
		log(slog.LevelError, "last attempt failed; dead-lettered", "duration", elapsed, "err", err)
		c.deadLetter(msg, md, subject, attempt, codeProcessing, err)
	default:
		delay := c.backoff(attempt)
		log(slog.LevelWarn, "handler failed; will retry", "duration", elapsed, "retryIn", delay, "err", err)
		m.nacked.Inc()
		if nerr := msg.NakWithDelay(delay); nerr != nil {
			log(slog.LevelWarn, "nak failed; the event will be redelivered after AckWait", "err", nerr)
		}
	}
}

// series are one subject's metrics of one consumer.
type series struct {
	consumed, acked, nacked prometheus.Counter
	duration                prometheus.Observer
}

// seriesOf returns subject's series, looked up in the vectors (hashing the
// labels each time) only on the subject's first delivery.
func (c *Consumer) seriesOf(subject string) *series {
	if s, ok := c.series.Load(subject); ok {
		return s.(*series)
	}
	m := c.bus.metrics
	s, _ := c.series.LoadOrStore(subject, &series{
		consumed: m.Consumed.WithLabelValues(subject, c.opts.Name),
		acked:    m.Acked.WithLabelValues(subject, c.opts.Name),
		nacked:   m.Nacked.WithLabelValues(subject, c.opts.Name),
		duration: m.Duration.WithLabelValues(subject, c.opts.Name),
	})
	return s.(*series)
}

func (c *Consumer) backoff(attempt int) time.Duration {
	if len(c.opts.Backoff) == 0 {
		return 0
	}
	i := min(attempt-1, len(c.opts.Backoff)-1)
	return c.opts.Backoff[max(i, 0)]
}

// deadLetter writes the DLQ entry and waits for its acknowledgement before
// terminating the original, so a crash in between leaves the original to be
// redelivered (and the entry deduplicated), never lost.
func (c *Consumer) deadLetter(msg jetstream.Msg, md delivery, subject string, attempts int, code string, cause error) {
	entry := DeadLetter{
		OriginalEvent: originalJSON(msg.Data()),
		Error: DeadLetterError{
			Message: cause.Error(), Code: code, Attempts: attempts,
			LastAttempt: event.Time{Time: time.Now().UTC().Truncate(time.Millisecond)},
		},
		Consumer:  c.opts.Name,
		Subject:   subject,
		Stream:    md.stream,
		StreamSeq: md.streamSeq,
	}
	ctx, cancel := context.WithTimeout(c.baseCtx, 10*time.Second)
	defer cancel()
	if err := c.bus.writeDeadLetter(ctx, entry); err != nil {
		c.log.Error("could not write dead letter; leaving the event for redelivery", "subject", subject, "err", err)
		_ = msg.NakWithDelay(c.backoff(attempts))
		return
	}
	if err := msg.Term(); err != nil {
		c.log.Warn("term failed after dead-lettering", "subject", subject, "err", err)
	}
}

func (c *Consumer) pollLag() {
	t := time.NewTicker(c.opts.LagPollInterval)
	defer t.Stop()
	c.refreshLag()
	for {
		select {
		case <-c.baseCtx.Done():
			return
		case <-t.C:
			c.refreshLag()
		}
	}
}

func (c *Consumer) refreshLag() {
	ctx, cancel := context.WithTimeout(c.baseCtx, 2*time.Second)
	defer cancel()
	info, err := c.main.Info(ctx)
	if err != nil {
		return
	}
	c.bus.metrics.Lag.WithLabelValues(c.opts.Name).Set(float64(info.NumPending) + float64(info.NumAckPending))
}

// Name returns the durable name.
func (c *Consumer) Name() string { return c.opts.Name }

// Stop stops fetching, lets the events already delivered finish, and
// returns when they have or when ctx ends (handlers still running are then
// abandoned: their events are redelivered after AckWait).
func (c *Consumer) Stop(ctx context.Context) error {
	var err error
	c.stopOnce.Do(func() {
		close(c.stopping)
		c.loops.Wait()
		close(c.work)
		done := make(chan struct{})
		go func() { c.workers.Wait(); close(done) }()
		select {
		case <-done:
		case <-ctx.Done():
			err = fmt.Errorf("consumer %s: handlers still running at shutdown: %w", c.opts.Name, ctx.Err())
		}
		c.cancel()
	})
	return err
}
