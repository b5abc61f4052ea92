package bus

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/alumoutreach/alumoutreach/internal/event"
)

// Message is an encoded event ready to publish: the outbox stores these.
type Message struct {
	ID      string // event id, sent as Nats-Msg-Id
	Subject string
	Data    []byte
}

// Publish encodes env, refusing it when over the size limit, and publishes
// it, waiting for the stream's acknowledgement. Modules publish through the
// outbox; this is for the platform's own events and for tests.
func (b *Bus) Publish(ctx context.Context, env event.Envelope) error {
	data, err := event.Encode(env, b.cfg.MaxEventSize)
	if err != nil {
		return err
	}
	return b.PublishBatch(ctx, []Message{{ID: env.ID, Subject: env.Type, Data: data}})
}

// PublishBatch publishes msgs asynchronously, in order, and waits until the
// stream acknowledged every one.
func (b *Bus) PublishBatch(ctx context.Context, msgs []Message) error {
	_, err := b.PublishBatchPrefix(ctx, msgs)
	return err
}

// PublishBatchPrefix is PublishBatch that also returns how many leading
// messages the stream acknowledged before the first failure, so the outbox
// relay can mark exactly those as sent.
func (b *Bus) PublishBatchPrefix(ctx context.Context, msgs []Message) (int, error) {
	futures := make([]jetstream.PubAckFuture, 0, len(msgs))
	var pubErr error
	for _, m := range msgs {
		if b.cfg.MaxEventSize > 0 && len(m.Data) > b.cfg.MaxEventSize {
			pubErr = fmt.Errorf("%w: %s event %s is %d bytes, the limit is %d", event.ErrTooLarge, m.Subject, m.ID, len(m.Data), b.cfg.MaxEventSize)
			break
		}
		msg := &nats.Msg{Subject: m.Subject, Data: m.Data, Header: nats.Header{}}
		msg.Header.Set(jetstream.MsgIDHeader, m.ID)
		f, err := publishAsync(ctx, b.js, msg)
		if err != nil {
			pubErr = fmt.Errorf("publish %s %s: %w", m.Subject, m.ID, err)
			break
		}
		futures = append(futures, f)
	}
	acked := 0
	for i, f := range futures {
		select {
		case ack := <-f.Ok():
			if acked == i {
				acked++
			}
			if !ack.Duplicate {
				b.metrics.Published.WithLabelValues(msgs[i].Subject).Inc()
			}
		case err := <-f.Err():
			if pubErr == nil {
				pubErr = fmt.Errorf("publish %s %s: %w", msgs[i].Subject, msgs[i].ID, err)
			}
		case <-ctx.Done():
			return acked, errors.Join(pubErr, ctx.Err())
		}
	}
	return acked, pubErr
}

// publishAsync publishes msg asynchronously. When the client's window of
// unacknowledged publishes is full (slow fsync, many concurrent batches) it
// waits for the window to drain instead of failing.
func publishAsync(ctx context.Context, js jetstream.JetStream, msg *nats.Msg) (jetstream.PubAckFuture, error) {
	for {
		f, err := js.PublishMsgAsync(msg)
		if !errors.Is(err, jetstream.ErrTooManyStalledMsgs) {
			return f, err
		}
		select {
		case <-js.PublishAsyncComplete():
		case <-time.After(10 * time.Millisecond):
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

// PublishAsyncRetry is publishAsync for callers that track acknowledgements
// through the JetStream context themselves (the benchmarks' ceiling).
func PublishAsyncRetry(ctx context.Context, js jetstream.JetStream, msg *nats.Msg) error {
	_, err := publishAsync(ctx, js, msg)
	return err
}
