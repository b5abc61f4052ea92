package analytics

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"

	"github.com/alumoutreach/alumoutreach/internal/event"
)

// ConsumerName is the durable JetStream consumer, unfiltered, whose
// messages Ingest.Handle stores.
const ConsumerName = "ANALYTICS_INGEST_CONSUMER"

// DefaultMaxBatch is the largest number of events written in one
// transaction when IngestOptions.MaxBatch is not set.
const DefaultMaxBatch = 1000

// ErrNotRunning is returned by Handle when Ingest is not started or is
// stopping. It is transient: the runner redelivers the event later.
var ErrNotRunning = errors.New("analytics ingest is not running")

// fallbackGiveUp is how many single-event retries in a row may fail before
// a failed batch is treated as a database problem rather than one bad event.
const fallbackGiveUp = 3

// IngestOptions tunes Ingest.
type IngestOptions struct {
	// MaxBatch caps the events written in one transaction (default 1000).
	MaxBatch int
}

// Ingest stores every event the bus delivers, committing them in groups: a
// handler enqueues its event and waits for the transaction that contains
// it. One writer goroutine takes whatever is queued (up to MaxBatch), writes
// it in one transaction and wakes the waiters, then takes what queued
// meanwhile. There is no timer: at a low rate each event costs one
// transaction of its own, at a high rate the batches grow by themselves, and
// the per-transaction cost is paid once per batch instead of once per event.
type Ingest struct {
	st       Store
	log      *slog.Logger
	maxBatch int

	wake chan struct{} // buffered 1: "the queue is not empty"

	mu      sync.Mutex
	queue   []*waiter
	running bool
	stop    chan struct{}
	done    chan struct{}
}

type waiter struct {
	ev   Event
	done chan error // buffered 1, so the writer never blocks on a gone handler
}

// NewIngest returns an Ingest writing to st. Call Start before the bus
// delivers to Handle.
func NewIngest(st Store, logger *slog.Logger, opts IngestOptions) *Ingest {
	if logger == nil {
		logger = slog.Default()
	}
	if opts.MaxBatch <= 0 {
		opts.MaxBatch = DefaultMaxBatch
	}
	return &Ingest{
		st:       st,
		log:      logger.With("module", ModuleName, "consumer", ConsumerName),
		maxBatch: opts.MaxBatch,
		wake:     make(chan struct{}, 1),
	}
}

// Start runs the writer until Stop is called or ctx ends. Writes use ctx,
// so cancelling it abandons the batch in flight (its handlers get the
// error and their events are redelivered).
func (i *Ingest) Start(ctx context.Context) error {
	i.mu.Lock()
	defer i.mu.Unlock()
	if i.running {
		return errors.New("analytics ingest already started")
	}
	i.running = true
	i.stop = make(chan struct{})
	i.done = make(chan struct{})
	go i.run(ctx, i.stop, i.done)
	return nil
}

// Stop refuses new events, commits the ones already queued, and returns
// when the writer has exited. Call it after the consumer has stopped
// delivering, so no handler is left waiting.
func (i *Ingest) Stop() {
	i.mu.Lock()
	done := i.done
	if i.running {
		i.running = false
		close(i.stop)
	}
	i.mu.Unlock()
	if done != nil {
		<-done
	}
}

// Handle is the ANALYTICS_INGEST_CONSUMER handler. It returns once the
// event is committed (or was already stored), with the batch's error, or
// with ctx's error when the caller gives up first. Safe for concurrent use;
// concurrency is what fills the batches.
func (i *Ingest) Handle(ctx context.Context, env event.Envelope) error {
	if env.ID == "" || env.TenantID == "" || env.Type == "" || env.Timestamp.IsZero() {
		return fmt.Errorf("%w: analytics needs the event's id, tenantId, type and timestamp", event.ErrInvalid)
	}
	w := &waiter{ev: FromEnvelope(env), done: make(chan error, 1)}
	i.mu.Lock()
	if !i.running {
		i.mu.Unlock()
		return ErrNotRunning
	}
	i.queue = append(i.queue, w)
	i.mu.Unlock()
	select {
	case i.wake <- struct{}{}:
	default: // the writer is already due to look at the queue
	}
	select {
	case err := <-w.done:
		if err == nil && env.Type == event.ContactDeleted {
			err = i.erase(ctx, env)
		}
		return err
	case <-ctx.Done():
		// The event may still commit; a redelivery is then a no-op.
		return ctx.Err()
	}
}

func (i *Ingest) run(ctx context.Context, stop, done chan struct{}) {
	defer close(done)
	for {
		if ctx.Err() == nil {
			if batch := i.take(); len(batch) > 0 {
				i.commit(ctx, batch)
				continue
			}
		}
		select {
		case <-i.wake:
		case <-stop:
			// running is false, so the queue can only shrink: drain it.
			for batch := i.take(); len(batch) > 0; batch = i.take() {
				i.commit(ctx, batch)
			}
			return
		case <-ctx.Done():
			i.mu.Lock()
			i.running = false
			queued := i.queue
			i.queue = nil
			i.mu.Unlock()
			for _, w := range queued {
				w.done <- ErrNotRunning
			}
			return
		}
	}
}

// take removes up to maxBatch waiters from the head of the queue.
func (i *Ingest) take() []*waiter {
	i.mu.Lock()
	defer i.mu.Unlock()
	n := min(len(i.queue), i.maxBatch)
	if n == 0 {
		return nil
	}
	batch := i.queue[:n:n]
	if n == len(i.queue) {
		i.queue = nil
	} else {
		i.queue = i.queue[n:]
	}
	return batch
}

// commit writes batch in one transaction and tells each waiter the outcome.
// When the transaction fails, the events are retried one by one so that a
// single event the database refuses (say, JSON text PostgreSQL's jsonb
// rejects) fails alone instead of taking every event batched with it to the
// dead-letter queue.
func (i *Ingest) commit(ctx context.Context, batch []*waiter) {
	events := make([]Event, len(batch))
	for k, w := range batch {
		events[k] = w.ev
	}
	_, err := i.st.Insert(ctx, events)
	if err == nil || len(batch) == 1 || ctx.Err() != nil {
		for _, w := range batch {
			w.done <- err
		}
		return
	}
	i.log.WarnContext(ctx, "analytics batch failed; retrying its events one by one", "events", len(batch), "err", err)
	failedInRow := 0
	for k, w := range batch {
		if failedInRow >= fallbackGiveUp || ctx.Err() != nil {
			// Every event fails: the database, not an event, is the problem.
			for _, rest := range batch[k:] {
				rest.done <- err
			}
			return
		}
		_, e := i.st.Insert(ctx, events[k:k+1])
		if e != nil {
			failedInRow++
			i.log.WarnContext(ctx, "analytics event not stored", "eventId", w.ev.ID, "subject", w.ev.Subject, "err", e)
		} else {
			failedInRow = 0
		}
		w.done <- e
	}
}

// erase scrubs the stored events of a contact erased on request
// (contact.deleted with erased true), as the event asks every consumer to.
func (i *Ingest) erase(ctx context.Context, env event.Envelope) error {
	d, err := event.DecodeData[event.ContactDeletedData](env)
	if err != nil || !d.Erased {
		return nil // a plain deletion keeps history; a bad payload was stored as it came
	}
	n, err := i.st.Erase(ctx, env.TenantID, d.ContactID)
	if err != nil {
		return err
	}
	i.log.InfoContext(ctx, "erased contact's data from analytics", "tenant", env.TenantID, "contact", d.ContactID, "events", n)
	return nil
}
