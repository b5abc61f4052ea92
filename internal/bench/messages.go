package bench

import (
	"context"
	"database/sql"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/alumoutreach/alumoutreach/internal/event"
	"github.com/alumoutreach/alumoutreach/internal/platform/bus"
	"github.com/alumoutreach/alumoutreach/internal/platform/groupcommit"
	"github.com/alumoutreach/alumoutreach/internal/platform/outbox"
	"github.com/alumoutreach/alumoutreach/internal/platform/store"
)

// The message-events scenario answers one question: how fast can this
// machine carry the events a message must cause, before any of the work
// they describe? A sandbox campaign message is five events
// (pipeline.message.queued, .sent and .delivered, campaign.message.sent and
// .delivered: the spec's flow 2 and issue 5's tracking) and eight
// deliveries (analytics stores all five; the send consumer takes queued;
// tracking takes sent and delivered). Without a delivery report (SMTP) or
// outside a campaign (no tracking) there are fewer. Each event goes through
// the real outbox, relay, JetStream and ANALYTICS_INGEST_CONSUMER, and two
// stand-in consumers do only what exactly-once handling requires of the
// real ones: in one transaction per batch, an idempotency record per event
// and the next events. No contact read, rendering, provider, message row or
// counter. Whatever this measures is a floor under a real send.

// campaignMessagesPerTx is how many messages the producer queues per
// transaction, as the campaign runner does (campaigns.batch).
const campaignMessagesPerTx = 500

// stage is a stand-in consumer: for each event it records the idempotency
// row and emits next(event), group-committed as the real consumers are.
type stage struct {
	name    string
	ob      *outbox.Outbox
	next    func(ctx context.Context, in event.Envelope, d event.MessageData) ([]event.Envelope, error)
	batcher *groupcommit.Batcher[stageItem]
	handled atomic.Int64
}

type stageItem struct {
	ctx context.Context
	env event.Envelope
}

func newStage(name string, ob *outbox.Outbox, gather bool, next func(context.Context, event.Envelope, event.MessageData) ([]event.Envelope, error)) *stage {
	s := &stage{name: name, ob: ob, next: next}
	s.batcher = groupcommit.New(512, s.commit)
	if gather {
		s.batcher.WithGather()
	}
	return s
}

func (s *stage) handle(ctx context.Context, env event.Envelope) error {
	if err := s.batcher.Do(ctx, stageItem{ctx: ctx, env: env}); err != nil {
		return err
	}
	s.handled.Add(1)
	return nil
}

func (s *stage) commit(ctx context.Context, items []stageItem) []error {
	errs := make([]error, len(items))
	err := s.ob.InTx(ctx, func(tx *sql.Tx, emit outbox.Emit) error {
		var out []event.Envelope
		for _, it := range items {
			first, err := store.MarkProcessed(ctx, tx, s.name, it.env.ID)
			if err != nil {
				return err
			}
			if !first {
				continue
			}
			d, err := event.DecodeData[event.MessageData](it.env)
			if err != nil {
				return err
			}
			next, err := s.next(it.ctx, it.env, d)
			if err != nil {
				return err
			}
			out = append(out, next...)
		}
		return emit(out...)
	})
	if err != nil {
		for i := range errs {
			errs[i] = err
		}
	}
	return errs
}

// MessageEvents queues o.Messages campaign messages, at most o.InFlight
// between queued and finished (tracked, or sent when o.Tracked is off) as
// the campaign runner keeps them, and measures until analytics has stored
// every one's events: queued and sent, delivered with o.Delivered, and a
// campaign.message.* for each status with o.Tracked.
func MessageEvents(ctx context.Context, dir string, o Options) (Result, error) {
	n := o.Messages
	statuses := 1 // sent
	if o.Delivered {
		statuses++
	}
	perMessage := 1 + statuses // queued and the statuses
	if o.Tracked {
		perMessage += statuses
	}
	var stored atomic.Int64
	allStored := make(chan struct{})
	a, err := pathApp(ctx, dir, o, func(event.Envelope) {
		if stored.Add(1) == int64(perMessage*n) {
			close(allStored)
		}
	})
	if err != nil {
		return Result{}, err
	}
	defer shutdown(a)

	send := newStage("BENCH_SEND", a.Outbox(), false, func(ctx context.Context, in event.Envelope, d event.MessageData) ([]event.Envelope, error) {
		d.RecipientAddress, d.ExternalID = "jane.doe@example.edu", event.NewID()
		sent, err := event.New(ctx, event.PipelineMessageSent, event.SourcePipeline, in.TenantID, d)
		if err != nil || !o.Delivered {
			return []event.Envelope{sent}, err
		}
		delivered, err := event.New(ctx, event.PipelineMessageDelivered, event.SourcePipeline, in.TenantID, d)
		return []event.Envelope{sent, delivered}, err
	})
	tracking := newStage("BENCH_TRACKING", a.Outbox(), true, func(ctx context.Context, in event.Envelope, d event.MessageData) ([]event.Envelope, error) {
		subject := event.CampaignMessageSent
		if in.Type == event.PipelineMessageDelivered {
			subject = event.CampaignMessageDelivered
		}
		env, err := event.New(ctx, subject, event.SourceCampaigns, in.TenantID, event.CampaignMessageData{MessageData: d, CampaignID: d.SourceID})
		return []event.Envelope{env}, err
	})
	type consumer struct {
		st          *stage
		filters     []string
		concurrency int
	}
	// The concurrency of the real send and tracking consumers.
	consumers := []consumer{{send, []string{event.PipelineMessageQueued}, 2048}}
	finished := func() int { return int(send.handled.Load()) }
	if o.Tracked {
		consumers = append(consumers, consumer{tracking, []string{event.PipelineMessageSent, event.PipelineMessageDelivered}, 1024})
		finished = func() int { return int(tracking.handled.Load()) / statuses }
	}
	for _, c := range consumers {
		if err := c.st.batcher.Start(ctx); err != nil {
			return Result{}, err
		}
		defer c.st.batcher.Stop()
		bc, err := a.Bus().StartConsumer(ctx, bus.ConsumerOptions{Name: c.st.name, Filters: c.filters, Concurrency: c.concurrency, Handler: c.st.handle})
		if err != nil {
			return Result{}, err
		}
		defer stopConsumer(bc)
	}

	campaign, template := event.NewID(), event.NewID()
	start, cpu := time.Now(), processCPU()
	progress := time.NewTicker(500 * time.Millisecond)
	defer progress.Stop()
	for queued := 0; queued < n; {
		if queued-finished()+campaignMessagesPerTx > o.InFlight {
			select {
			case <-ctx.Done():
				return Result{}, ctx.Err()
			case <-time.After(time.Millisecond):
			}
			continue
		}
		batch := min(campaignMessagesPerTx, n-queued)
		err := a.Outbox().InTx(ctx, func(_ *sql.Tx, emit outbox.Emit) error {
			envs := make([]event.Envelope, batch)
			for i := range envs {
				var err error
				envs[i], err = event.New(ctx, event.PipelineMessageQueued, event.SourceCampaigns, "bench", event.MessageData{
					MessageID: event.NewID(), Channel: "email", ContactID: event.NewID(),
					SourceType: event.MessageSourceCampaign, SourceID: campaign, TemplateID: template, TemplateVersion: 1, SourceName: "Bench",
				})
				if err != nil {
					return err
				}
			}
			return emit(envs...)
		})
		if err != nil {
			return Result{}, err
		}
		queued += batch
	}
	for {
		select {
		case <-allStored:
			r := finish("message-events", n, time.Since(start))
			r.Unit, r.CPUPerItem = "messages", (processCPU()-cpu)/time.Duration(n)
			return r, nil
		case <-progress.C:
			fmt.Fprintf(o.Out, "  ... %d of %d messages sent, %d finished, %d of %d events stored\n",
				send.handled.Load(), n, finished(), stored.Load(), perMessage*n)
		case <-ctx.Done():
			return Result{}, ctx.Err()
		}
	}
}

func stopConsumer(c *bus.Consumer) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_ = c.Stop(ctx)
}
