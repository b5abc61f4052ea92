package bus

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// TimerHandler handles one fired timer: key is the timer's key (TimerKey of
// the subject), data what ScheduleTimer was given. Returning nil
// acknowledges the timer; an error marked with Permanent drops it at once;
// any other error retries it after the configured backoff.
type TimerHandler func(ctx context.Context, key string, data []byte) error

// timerSubjectLabel is the subject label of timer metrics. Keys carry ids
// (campaign.start.<id>), so labelling by key would grow a series per timer.
const timerSubjectLabel = "timer.fired"

// TimerConsumerOptions describes one durable consumer of fired timers.
type TimerConsumerOptions struct {
	// Name is the durable name (e.g. CAMPAIGNS_TIMER_CONSUMER). Every
	// process that starts a timer consumer with this name shares its work,
	// so each fired timer is handled by one of them. All of them must use
	// the same KeyPrefix: the last to start sets the durable's filter.
	Name string
	// KeyPrefix selects the timers by key, e.g. "campaign.start.": the
	// consumer receives timer.fired.<KeyPrefix>>. It ends with '.'; empty
	// means every timer.
	KeyPrefix string
	// Concurrency is how many timers this process handles at once (default 4).
	Concurrency int
	// MaxDeliver is the most deliveries of one timer (default 5).
	MaxDeliver int
	// AckWait is how long a delivery may go unanswered before the server
	// delivers it again (default 30s); long handlers call Progress.
	AckWait time.Duration
	// Backoff[i] is the delay before attempt i+2; the last value repeats
	// (default 1s, 5s, 30s).
	Backoff []time.Duration
	Handler TimerHandler
}

func (o *TimerConsumerOptions) defaults() error {
	if err := checkConsumerName(o.Name); err != nil {
		return err
	}
	if o.Handler == nil {
		return fmt.Errorf("timer consumer %s has no handler", o.Name)
	}
	if o.KeyPrefix != "" {
		if !strings.HasSuffix(o.KeyPrefix, ".") || checkTimerKey(strings.TrimSuffix(o.KeyPrefix, ".")) != nil {
			return fmt.Errorf("timer consumer %s: key prefix %q must be dot-separated key tokens ending with '.': %w", o.Name, o.KeyPrefix, ErrBadTimerKey)
		}
	}
	if o.Concurrency <= 0 {
		o.Concurrency = 4
	}
	if o.MaxDeliver <= 0 {
		o.MaxDeliver = 5
	}
	if o.AckWait <= 0 {
		o.AckWait = 30 * time.Second
	}
	if o.Backoff == nil {
		o.Backoff = []time.Duration{time.Second, 5 * time.Second, 30 * time.Second}
	}
	return nil
}

// TimerConsumer is a running durable consumer of fired timers.
type TimerConsumer struct {
	c *Consumer
}

// StartTimerConsumer creates or updates a durable pull consumer on
// ALUM_TIMERS filtered on timer.fired.<KeyPrefix>> and handles fired timers
// until Stop, with the event consumers' runner: explicit ack, retries
// delayed with NakWithDelay, Progress and Attempt available to the handler,
// and the event metrics (consumer_lag included) labelled
// subject="timer.fired" and consumer=Name.
//
// Timers have no dead-letter queue: a timer whose handler returns a
// Permanent error, or fails on its last delivery, is logged at error level
// and terminated, and is not retried again. A timer that fails MaxDeliver
// times is a bug to fix, not a condition to recover from. Nor is a timer
// whose handler hangs past AckWait on its last delivery redelivered (the
// MAX_DELIVERIES advisory worker covers event streams only).
//
// The consumer delivers every fired timer still in the stream (fired timers
// are kept for a week), so a timer that fired while no process ran the
// consumer, or before it was first created, is handled when it starts.
// Delivery is at least once: handlers must be idempotent.
func (b *Bus) StartTimerConsumer(ctx context.Context, o TimerConsumerOptions) (*TimerConsumer, error) {
	if err := o.defaults(); err != nil {
		return nil, err
	}
	cfg := jetstream.ConsumerConfig{
		Durable:       o.Name,
		AckPolicy:     jetstream.AckExplicitPolicy,
		DeliverPolicy: jetstream.DeliverAllPolicy,
		FilterSubject: TimerFiredPrefix + o.KeyPrefix + ">",
		MaxDeliver:    o.MaxDeliver,
		AckWait:       o.AckWait,
		MaxAckPending: maxAckPending(o.Concurrency),
		Replicas:      b.cfg.Replicas,
	}
	jc, err := b.js.CreateOrUpdateConsumer(ctx, TimersStream, cfg)
	if err != nil {
		return nil, fmt.Errorf("create timer consumer %s: %w", o.Name, err)
	}
	// The event runner's options, minus Handler: every message goes to
	// handleTimer instead.
	run := ConsumerOptions{
		Name: o.Name, Concurrency: o.Concurrency, MaxDeliver: o.MaxDeliver,
		AckWait: o.AckWait, Backoff: o.Backoff, LagPollInterval: defaultLagPollInterval,
	}
	h := o.Handler
	c := b.run(ctx, run, []jetstream.Consumer{jc}, func(c *Consumer, msg jetstream.Msg) { c.handleTimer(h, msg) })
	c.main = jc
	go c.pollLag()
	return &TimerConsumer{c: c}, nil
}

func (c *Consumer) handleTimer(h TimerHandler, msg jetstream.Msg) {
	key := TimerKey(msg.Subject())
	md, err := msg.Metadata()
	if err != nil {
		c.log.Error("fired timer without JetStream metadata dropped", "timerKey", key, "err", err)
		_ = msg.Term()
		return
	}
	attempt := int(md.NumDelivered)
	m := c.bus.metrics
	m.Consumed.WithLabelValues(timerSubjectLabel, c.opts.Name).Inc()
	ctx := context.WithValue(c.baseCtx, progressKey{}, msg)
	ctx = WithAttempt(ctx, attempt, c.opts.MaxDeliver)
	log := c.log.With("timerKey", key, "attempt", attempt, "streamSeq", md.Sequence.Stream)
	log.Debug("handling fired timer")
	start := time.Now()
	err = h(ctx, key, msg.Data())
	elapsed := time.Since(start)
	m.Duration.WithLabelValues(timerSubjectLabel, c.opts.Name).Observe(elapsed.Seconds())
	switch {
	case err == nil:
		if aerr := msg.Ack(); aerr != nil {
			// The effect is done; a redelivery must find it already applied.
			log.Warn("ack failed; the timer will be redelivered", "err", aerr)
		}
		m.Acked.WithLabelValues(timerSubjectLabel, c.opts.Name).Inc()
		log.Debug("handled fired timer", "duration", elapsed)
	case IsPermanent(err):
		log.Error("timer handler failed permanently; timer dropped (timers have no DLQ)", "duration", elapsed, "err", err)
		c.termTimer(log, msg)
	case attempt >= c.opts.MaxDeliver:
		log.Error("timer handler failed on the last delivery; timer dropped (timers have no DLQ)", "duration", elapsed, "err", err)
		c.termTimer(log, msg)
	default:
		delay := c.backoff(attempt)
		log.Warn("timer handler failed; will retry", "duration", elapsed, "retryIn", delay, "err", err)
		m.Nacked.WithLabelValues(timerSubjectLabel, c.opts.Name).Inc()
		if nerr := msg.NakWithDelay(delay); nerr != nil {
			log.Warn("nak failed; the timer will be redelivered after AckWait", "err", nerr)
		}
	}
}

func (c *Consumer) termTimer(log *slog.Logger, msg jetstream.Msg) {
	if err := msg.Term(); err != nil {
		// Left un-terminated, the server redelivers it until MaxDeliver.
		log.Warn("term failed; the timer may be delivered again", "err", err)
	}
}

// Stop stops fetching, waits for the handlers already running and for the
// timers already fetched to be handled, and returns. A timer not yet
// acknowledged (failed and awaiting its retry, or never fetched) stays with
// the durable and is delivered again when a consumer of that name runs.
// Stop waits without a limit, so a handler that never returns keeps it from
// returning: handlers should honour their own deadlines.
func (t *TimerConsumer) Stop() { _ = t.c.Stop(context.Background()) }
