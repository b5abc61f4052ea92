package analytics

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/alumoutreach/alumoutreach/internal/event"
	"github.com/alumoutreach/alumoutreach/internal/platform/groupcommit"
)

// ConsumerName is the durable JetStream consumer, unfiltered, whose
// messages Ingest.Handle stores.
const ConsumerName = "ANALYTICS_INGEST_CONSUMER"

// DefaultMaxBatch is the largest number of events written in one
// transaction when IngestOptions.MaxBatch is not set.
const DefaultMaxBatch = 1000

// ErrNotRunning is returned by Handle when Ingest is not started or is
// stopping. It is transient: the runner redelivers the event later.
var ErrNotRunning = groupcommit.ErrStopped

// fallbackGiveUp is how many single-event retries in a row may fail before
// a failed batch is treated as a database problem rather than one bad event.
const fallbackGiveUp = 3

// IngestOptions tunes Ingest.
type IngestOptions struct {
	// MaxBatch caps the events written in one transaction (default 1000).
	MaxBatch int
}

// Ingest stores every event the bus delivers, committing them in groups
// (internal/platform/groupcommit): a handler enqueues its event and waits
// for the transaction that contains it. There is no timer: at a low rate
// each event costs one transaction of its own, at a high rate the batches
// grow by themselves, and the per-transaction cost is paid once per batch
// instead of once per event.
type Ingest struct {
	st      Store
	log     *slog.Logger
	batcher *groupcommit.Batcher[Event]
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
	i := &Ingest{st: st, log: logger.With("module", ModuleName, "consumer", ConsumerName)}
	i.batcher = groupcommit.New(opts.MaxBatch, i.commit).WithGather()
	return i
}

// Start runs the writer until Stop is called or ctx ends. Writes use ctx,
// so cancelling it abandons the batch in flight (its handlers get the
// error and their events are redelivered).
func (i *Ingest) Start(ctx context.Context) error {
	if err := i.batcher.Start(ctx); err != nil {
		return fmt.Errorf("analytics ingest: %w", err)
	}
	return nil
}

// Stop refuses new events, commits the ones already queued, and returns
// when the writer has exited. Call it after the consumer has stopped
// delivering, so no handler is left waiting.
func (i *Ingest) Stop() { i.batcher.Stop() }

// Handle is the ANALYTICS_INGEST_CONSUMER handler. It returns once the
// event is committed (or was already stored), with the batch's error, or
// with ctx's error when the caller gives up first. Safe for concurrent use;
// concurrency is what fills the batches.
func (i *Ingest) Handle(ctx context.Context, env event.Envelope) error {
	if env.ID == "" || env.TenantID == "" || env.Type == "" || env.Timestamp.IsZero() {
		return fmt.Errorf("%w: analytics needs the event's id, tenantId, type and timestamp", event.ErrInvalid)
	}
	// The event may still commit after ctx ends; a redelivery is then a no-op.
	err := i.batcher.Do(ctx, FromEnvelope(env))
	if err == nil && env.Type == event.ContactDeleted {
		err = i.erase(ctx, env)
	}
	return err
}

// commit writes events in one transaction. When the transaction fails, the
// events are retried one by one so that a single event the database refuses
// (say, JSON text PostgreSQL's jsonb rejects) fails alone instead of taking
// every event batched with it to the dead-letter queue.
func (i *Ingest) commit(ctx context.Context, events []Event) []error {
	errs := make([]error, len(events))
	_, err := i.st.Insert(ctx, events)
	if err == nil || len(events) == 1 || ctx.Err() != nil {
		for k := range errs {
			errs[k] = err
		}
		return errs
	}
	i.log.WarnContext(ctx, "analytics batch failed; retrying its events one by one", "events", len(events), "err", err)
	failedInRow := 0
	for k := range events {
		if failedInRow >= fallbackGiveUp || ctx.Err() != nil {
			// Every event fails: the database, not an event, is the problem.
			for rest := k; rest < len(events); rest++ {
				errs[rest] = err
			}
			break
		}
		_, errs[k] = i.st.Insert(ctx, events[k:k+1])
		if errs[k] != nil {
			failedInRow++
			i.log.WarnContext(ctx, "analytics event not stored", "eventId", events[k].ID, "subject", events[k].Subject, "err", errs[k])
		} else {
			failedInRow = 0
		}
	}
	return errs
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
