package outbox

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/alumoutreach/alumoutreach/internal/platform/bus"
	"github.com/alumoutreach/alumoutreach/internal/platform/store"
)

// Publisher publishes a batch in order and says how many leading messages
// the bus acknowledged.
type Publisher interface {
	PublishBatchPrefix(ctx context.Context, msgs []bus.Message) (int, error)
}

// RelayOptions tune the relay.
type RelayOptions struct {
	// BatchSize is the most rows read and published at once.
	BatchSize int
	// Retention is how long published rows are kept. Keep it longer than the
	// bus's fsync interval: they are what an unclean shutdown republishes.
	Retention time.Duration
	// SafetyPoll is how often the relay looks without being woken; commits
	// wake it directly, so this only bounds the delay of a missed wake-up.
	SafetyPoll time.Duration
	// RepublishWindow, when set, makes Start republish the rows published
	// within that window first: the previous run ended uncleanly and the bus
	// may have lost writes it had acknowledged but not yet synced.
	RepublishWindow time.Duration
}

// publishTimeout bounds one batch's wait for acknowledgements, so a bus
// outage turns into a retried failure instead of a stuck relay.
const publishTimeout = 5 * time.Second

// Relay moves outbox rows to the bus.
type Relay struct {
	ob   *Outbox
	pub  Publisher
	opts RelayOptions
	log  *slog.Logger

	pending   prometheus.Gauge
	published prometheus.Counter
	failures  prometheus.Counter

	track    tracker
	leader   leaderGate
	cancel   context.CancelFunc
	done     chan struct{}
	stopOnce sync.Once
}

// NewRelay returns a relay for ob publishing through pub. reg may be nil.
func NewRelay(ob *Outbox, pub Publisher, opts RelayOptions, log *slog.Logger, reg prometheus.Registerer) *Relay {
	if opts.BatchSize <= 0 {
		opts.BatchSize = 500
	}
	if opts.Retention <= 0 {
		opts.Retention = 10 * time.Minute
	}
	if opts.SafetyPoll <= 0 {
		opts.SafetyPoll = time.Second
	}
	r := &Relay{
		ob: ob, pub: pub, opts: opts, log: log.With("component", "outbox-relay"), track: newTracker(ob.db),
		pending: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "outbox_pending_events", Help: "Committed events not yet published to the bus.",
		}),
		published: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "outbox_relayed_events_total", Help: "Events the relay published and marked sent.",
		}),
		failures: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "outbox_relay_failures_total", Help: "Relay batches that failed (bus or database unavailable); they are retried.",
		}),
	}
	if reg != nil {
		reg.MustRegister(r.pending, r.published, r.failures)
	}
	return r
}

// Start begins relaying in the background.
func (r *Relay) Start(ctx context.Context) error {
	if r.opts.RepublishWindow > 0 {
		n, err := r.track.requeue(ctx, r.opts.RepublishWindow)
		if err != nil {
			return err
		}
		if n > 0 {
			r.log.Warn("previous run ended uncleanly; republishing recent events (the stream drops those it kept)", "events", n)
		}
	}
	ctx, r.cancel = context.WithCancel(context.WithoutCancel(ctx))
	r.done = make(chan struct{})
	if r.ob.db.Kind() == store.Postgres {
		r.leader = newPGLeader(r.ob, r.log)
	} else {
		r.leader = alwaysLeader{}
	}
	go r.leader.run(ctx)
	go r.loop(ctx)
	return nil
}

// Stop stops the loop and publishes what is still pending, until ctx ends.
func (r *Relay) Stop(ctx context.Context) error {
	var err error
	r.stopOnce.Do(func() {
		if r.cancel == nil {
			return
		}
		r.cancel()
		<-r.done
		if !r.leader.isLeader() {
			return
		}
		for {
			n, ferr := r.flush(ctx)
			if ferr != nil {
				err = fmt.Errorf("flush outbox at shutdown: %w", ferr)
				return
			}
			if n < r.opts.BatchSize {
				return
			}
		}
	})
	return err
}

func (r *Relay) loop(ctx context.Context) {
	defer close(r.done)
	poll := time.NewTicker(r.opts.SafetyPoll)
	defer poll.Stop()
	prune := time.NewTicker(max(r.opts.Retention/4, time.Second))
	defer prune.Stop()
	var failDelay time.Duration
	for {
		n := 0
		if r.leader.isLeader() {
			var err error
			n, err = r.flush(ctx)
			if err != nil && ctx.Err() == nil {
				r.failures.Inc()
				failDelay = min(max(2*failDelay, 50*time.Millisecond), 5*time.Second)
				r.log.Warn("relay batch failed; retrying", "retryIn", failDelay, "err", err)
				select {
				case <-ctx.Done():
					return
				case <-time.After(failDelay):
				}
				continue
			}
			failDelay = 0
		}
		if n == r.opts.BatchSize {
			// More rows are waiting. The housekeeping still runs on its
			// schedule: under a sustained burst the relay never idles, and
			// every row it published would stay (a table, WAL and database
			// file growing for as long as the burst lasts) with the pending
			// gauge frozen at its last value.
			select {
			case <-poll.C:
				r.refreshPending(ctx)
			case <-prune.C:
				r.prune(ctx)
			default:
			}
			continue
		}
		select {
		case <-ctx.Done():
			return
		case <-r.ob.wake:
		case <-poll.C:
			r.refreshPending(ctx)
		case <-prune.C:
			r.prune(ctx)
		}
	}
}

// flush publishes one batch of unpublished rows in seq order and marks the
// acknowledged ones. It returns how many rows it read.
func (r *Relay) flush(ctx context.Context) (int, error) {
	// Statements run without cancellation (the SQLite driver would start a
	// goroutine per statement to watch for it); each is short.
	dbctx := context.WithoutCancel(ctx)
	seqs, msgs, err := r.track.next(dbctx, r.opts.BatchSize)
	if err != nil || len(msgs) == 0 {
		return 0, err
	}
	pctx, cancel := context.WithTimeout(ctx, publishTimeout)
	acked, pubErr := r.pub.PublishBatchPrefix(pctx, msgs)
	cancel()
	if acked > 0 {
		if err := r.track.markPublished(dbctx, seqs[:acked]); err != nil {
			return 0, errors.Join(pubErr, err)
		}
		r.published.Add(float64(acked))
	}
	if pubErr != nil {
		return acked, pubErr
	}
	return len(msgs), nil
}

// Pending counts committed events not yet published.
func (r *Relay) Pending(ctx context.Context) (int64, error) { return r.track.pending(ctx) }

func (r *Relay) refreshPending(ctx context.Context) {
	if n, err := r.track.pending(ctx); err == nil {
		r.pending.Set(float64(n))
	}
}

func (r *Relay) prune(ctx context.Context) {
	if err := r.track.prune(ctx, r.opts.Retention); err != nil && ctx.Err() == nil {
		r.log.Warn("prune outbox", "err", err)
	}
}

// leaderGate decides whether this process relays.
type leaderGate interface {
	run(ctx context.Context)
	isLeader() bool
}

type alwaysLeader struct{}

func (alwaysLeader) run(context.Context) {}
func (alwaysLeader) isLeader() bool      { return true }

// pgLeader holds a session advisory lock on a dedicated connection, so one
// relay per database publishes (in order), and LISTENs for commits of other
// instances to wake its relay.
type pgLeader struct {
	ob  *Outbox
	log *slog.Logger
	mu  sync.Mutex
	on  bool
}

const relayLockKey = 7165002

func newPGLeader(ob *Outbox, log *slog.Logger) *pgLeader { return &pgLeader{ob: ob, log: log} }

func (l *pgLeader) isLeader() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.on
}

func (l *pgLeader) set(on bool) {
	l.mu.Lock()
	l.on = on
	l.mu.Unlock()
}

func (l *pgLeader) run(ctx context.Context) {
	for ctx.Err() == nil {
		if err := l.session(ctx); err != nil && ctx.Err() == nil {
			l.log.Warn("relay leadership session ended; retrying", "err", err)
		}
		l.set(false)
		select {
		case <-ctx.Done():
		case <-time.After(2 * time.Second):
		}
	}
}

func (l *pgLeader) session(ctx context.Context) error {
	conn, err := pgx.Connect(ctx, l.ob.db.URL())
	if err != nil {
		return err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	for {
		var got bool
		// Advisory locks are per database; the schema in the key keeps
		// installations that share a database in separate schemas (and
		// the tests, which do) from waiting on each other's relay.
		if err := conn.QueryRow(ctx, `SELECT pg_try_advisory_lock($1, hashtext(current_schema()))`, relayLockKey).Scan(&got); err != nil {
			return err
		}
		if got {
			break
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(2 * time.Second):
		}
	}
	var channel string
	if err := conn.QueryRow(ctx, `SELECT `+notifyChannelSQL).Scan(&channel); err != nil {
		return err
	}
	if _, err := conn.Exec(ctx, `LISTEN `+pgx.Identifier{channel}.Sanitize()); err != nil {
		return err
	}
	l.set(true)
	l.ob.Notify()
	for {
		if _, err := conn.WaitForNotification(ctx); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
		l.ob.Notify()
	}
}
