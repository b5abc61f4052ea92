package bus

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/alumoutreach/alumoutreach/internal/event"
)

// Error codes of dead-letter entries.
const (
	// codeProcessing: a transient error persisted through the last attempt.
	codeProcessing = "PROCESSING_ERROR"
	// codePermanent: the handler said no retry can fix it.
	codePermanent = "PERMANENT_ERROR"
	// codeInvalidEvent: the message is not an event this build can read.
	codeInvalidEvent = "INVALID_EVENT"
	// codeMaxDeliveries: the last attempt was never acknowledged (the
	// handler crashed, hung, or the process died); found via the advisory.
	codeMaxDeliveries = "MAX_DELIVERIES_EXCEEDED"

	// HeaderConsumer names the failing consumer on a DLQ message.
	HeaderConsumer = "Alum-Consumer"
	// HeaderSubject carries the original subject on a DLQ message.
	HeaderSubject = "Alum-Subject"

	advisoryWorker = "DLQ_ADVISORY_WORKER"
)

// DeadLetter is a DLQ entry: the specification's error event
// ({originalEvent, error}) plus where it came from and which consumer failed.
type DeadLetter struct {
	// Seq is the entry's sequence in ALUM_EVENTS_DLQ: its id for show,
	// replay and purge. Filled when read; not stored.
	Seq uint64 `json:"seq,omitempty"`
	// OriginalEvent is the event as it was published (a JSON string when
	// the original was not JSON at all).
	OriginalEvent json.RawMessage `json:"originalEvent"`
	Error         DeadLetterError `json:"error"`
	Consumer      string          `json:"consumer"`
	Subject       string          `json:"subject"`
	Stream        string          `json:"stream"`
	StreamSeq     uint64          `json:"streamSeq"`
	// TenantID is the original event's tenant, when it could be read.
	TenantID string `json:"tenantId,omitempty"`
	// DeadLetteredAt is when the entry was written. Filled when read.
	DeadLetteredAt *event.Time `json:"deadLetteredAt,omitempty"`
}

// DeadLetterError is the spec's error object.
type DeadLetterError struct {
	Message     string     `json:"message"`
	Code        string     `json:"code"`
	Attempts    int        `json:"attempts"`
	LastAttempt event.Time `json:"lastAttempt"`
}

func originalJSON(data []byte) json.RawMessage {
	if json.Valid(data) {
		return append(json.RawMessage(nil), data...)
	}
	s, _ := json.Marshal(string(data))
	return s
}

func tenantOf(original json.RawMessage) string {
	var probe struct {
		TenantID string `json:"tenantId"`
	}
	_ = json.Unmarshal(original, &probe)
	return probe.TenantID
}

// writeDeadLetter publishes entry on dlq.{subject}, deduplicated per
// (consumer, stream, sequence) so the runner's own write and the advisory
// worker's never both land.
func (b *Bus) writeDeadLetter(ctx context.Context, entry DeadLetter) error {
	entry.TenantID = tenantOf(entry.OriginalEvent)
	entry.Seq, entry.DeadLetteredAt = 0, nil
	data, err := json.Marshal(entry)
	if err != nil {
		return fmt.Errorf("encode dead letter: %w", err)
	}
	msg := &nats.Msg{Subject: dlqPrefix + entry.Subject, Data: data, Header: nats.Header{}}
	msg.Header.Set(jetstream.MsgIDHeader, "dlq:"+entry.Consumer+":"+entry.Stream+":"+strconv.FormatUint(entry.StreamSeq, 10))
	msg.Header.Set(HeaderConsumer, entry.Consumer)
	msg.Header.Set(HeaderSubject, entry.Subject)
	ack, err := b.js.PublishMsg(ctx, msg)
	if err != nil {
		return fmt.Errorf("publish dead letter for %s: %w", entry.Subject, err)
	}
	if !ack.Duplicate {
		b.metrics.DLQ.WithLabelValues(entry.Subject, entry.Consumer).Inc()
	}
	return nil
}

// StartDLQWorker starts the worker that turns captured MAX_DELIVERIES
// advisories into DLQ entries. Processes that run it share its durable; Stop
// it like any consumer.
func (b *Bus) StartDLQWorker(ctx context.Context) (*Consumer, error) {
	cons, err := b.js.CreateOrUpdateConsumer(ctx, AdvisoriesStream, jetstream.ConsumerConfig{
		Durable:       advisoryWorker,
		AckPolicy:     jetstream.AckExplicitPolicy,
		DeliverPolicy: jetstream.DeliverAllPolicy,
		AckWait:       30 * time.Second,
		MaxAckPending: maxAckPending(1),
		Replicas:      b.cfg.Replicas,
	})
	if err != nil {
		return nil, fmt.Errorf("create consumer %s: %w", advisoryWorker, err)
	}
	o := ConsumerOptions{Name: advisoryWorker, Concurrency: 1}
	return b.run(ctx, o, []jetstream.Consumer{cons}, func(c *Consumer, msg jetstream.Msg) {
		if err := b.handleAdvisory(c.baseCtx, msg.Data()); err != nil {
			c.log.Error("advisory not turned into a dead letter yet; retrying", "err", err)
			_ = msg.NakWithDelay(time.Second)
			return
		}
		_ = msg.Ack()
	}), nil
}

type maxDeliveriesAdvisory struct {
	Stream     string    `json:"stream"`
	Consumer   string    `json:"consumer"`
	StreamSeq  uint64    `json:"stream_seq"`
	Deliveries uint64    `json:"deliveries"`
	Time       time.Time `json:"timestamp"`
}

func (b *Bus) handleAdvisory(ctx context.Context, data []byte) error {
	var adv maxDeliveriesAdvisory
	if err := json.Unmarshal(data, &adv); err != nil {
		return nil // not an advisory we can use; nothing to retry
	}
	consumer := adv.Consumer
	if adv.Stream == DLQStream {
		consumer = strings.TrimSuffix(consumer, replaySuffix)
	}
	last := adv.Time
	if last.IsZero() {
		last = time.Now()
	}
	entry := DeadLetter{
		Error: DeadLetterError{
			Message:     fmt.Sprintf("no acknowledgement after %d deliveries: the handler crashed, hung past AckWait, or its process died", adv.Deliveries),
			Code:        codeMaxDeliveries,
			Attempts:    int(adv.Deliveries),
			LastAttempt: event.Time{Time: last.UTC().Truncate(time.Millisecond)},
		},
		Consumer:  consumer,
		Stream:    adv.Stream,
		StreamSeq: adv.StreamSeq,
	}
	raw, err := b.js.Stream(ctx, adv.Stream)
	if err != nil {
		return fmt.Errorf("stream %s: %w", adv.Stream, err)
	}
	orig, err := raw.GetMsg(ctx, adv.StreamSeq)
	switch {
	case errors.Is(err, jetstream.ErrMsgNotFound):
		entry.OriginalEvent = json.RawMessage("null")
		entry.Subject = "unknown"
		entry.Error.Message += "; the original message is no longer in the stream"
	case err != nil:
		return fmt.Errorf("read %s seq %d: %w", adv.Stream, adv.StreamSeq, err)
	default:
		entry.OriginalEvent = originalJSON(orig.Data)
		entry.Subject = strings.TrimPrefix(orig.Subject, replaySubjectPrefix(consumer))
	}
	return b.writeDeadLetter(ctx, entry)
}

// replayTTL is how long a replay message stays in ALUM_EVENTS_DLQ: the
// replay consumer takes it at once; the rest is room for an outage.
const replayTTL = "168h"

// DLQFilter selects dead letters.
type DLQFilter struct {
	Consumer string
	// Subject is the original subject (exact).
	Subject  string
	TenantID string
	// After lists entries with a sequence greater than After (a cursor).
	After uint64
	Limit int
}

func (f DLQFilter) match(d DeadLetter) bool {
	return (f.Consumer == "" || d.Consumer == f.Consumer) &&
		(f.TenantID == "" || d.TenantID == f.TenantID)
}

// ErrDeadLetterNotFound is returned for a sequence that holds no DLQ entry.
var ErrDeadLetterNotFound = errors.New("dead letter not found")

// ListDLQ returns up to f.Limit entries after f.After, oldest first, and
// the cursor for the next page (0 when there is none).
func (b *Bus) ListDLQ(ctx context.Context, f DLQFilter) ([]DeadLetter, uint64, error) {
	if f.Limit <= 0 {
		f.Limit = 50
	}
	stream, err := b.js.Stream(ctx, DLQStream)
	if err != nil {
		return nil, 0, fmt.Errorf("stream %s: %w", DLQStream, err)
	}
	subj := dlqPrefix + ">"
	if f.Subject != "" {
		subj = dlqPrefix + f.Subject
	}
	var out []DeadLetter
	seq := f.After + 1
	for {
		raw, err := stream.GetMsg(ctx, seq, jetstream.WithGetMsgSubject(subj))
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			return out, 0, nil
		}
		if err != nil {
			return nil, 0, fmt.Errorf("read DLQ: %w", err)
		}
		seq = raw.Sequence + 1
		d, err := decodeDeadLetter(raw)
		if err != nil {
			continue
		}
		if !f.match(d) {
			continue
		}
		if len(out) == f.Limit {
			return out, out[len(out)-1].Seq, nil
		}
		out = append(out, d)
	}
}

func decodeDeadLetter(raw *jetstream.RawStreamMsg) (DeadLetter, error) {
	var d DeadLetter
	if err := json.Unmarshal(raw.Data, &d); err != nil {
		return d, err
	}
	d.Seq = raw.Sequence
	d.DeadLetteredAt = &event.Time{Time: raw.Time.UTC()}
	return d, nil
}

// GetDLQ returns the entry at seq.
func (b *Bus) GetDLQ(ctx context.Context, seq uint64) (DeadLetter, error) {
	stream, err := b.js.Stream(ctx, DLQStream)
	if err != nil {
		return DeadLetter{}, fmt.Errorf("stream %s: %w", DLQStream, err)
	}
	raw, err := stream.GetMsg(ctx, seq)
	if errors.Is(err, jetstream.ErrMsgNotFound) || (err == nil && !strings.HasPrefix(raw.Subject, dlqPrefix)) {
		return DeadLetter{}, fmt.Errorf("%w: no entry with seq %d", ErrDeadLetterNotFound, seq)
	}
	if err != nil {
		return DeadLetter{}, fmt.Errorf("read DLQ entry %d: %w", seq, err)
	}
	return decodeDeadLetter(raw)
}

// ReplayDLQ re-delivers the entry at seq to the consumer that failed, and
// only to it, then removes the entry. If the event fails again it returns
// to the DLQ as a new entry.
func (b *Bus) ReplayDLQ(ctx context.Context, seq uint64) (DeadLetter, error) {
	d, err := b.GetDLQ(ctx, seq)
	if err != nil {
		return d, err
	}
	if d.Subject == "unknown" || string(d.OriginalEvent) == "null" {
		return d, fmt.Errorf("dead letter %d has no original event to replay; purge it instead", seq)
	}
	msg := &nats.Msg{Subject: replaySubjectPrefix(d.Consumer) + d.Subject, Data: originalBytes(d.OriginalEvent), Header: nats.Header{}}
	msg.Header.Set(jetstream.MsgIDHeader, "replay:"+strconv.FormatUint(seq, 10))
	msg.Header.Set(jetstream.MsgTTLHeader, replayTTL)
	if _, err := b.js.PublishMsg(ctx, msg); err != nil {
		return d, fmt.Errorf("replay dead letter %d: %w", seq, err)
	}
	if err := b.deleteDLQ(ctx, seq); err != nil {
		return d, err
	}
	return d, nil
}

// originalBytes turns the stored originalEvent back into the published
// bytes (a JSON string entry held non-JSON bytes).
func originalBytes(orig json.RawMessage) []byte {
	var s string
	if len(orig) > 0 && orig[0] == '"' && json.Unmarshal(orig, &s) == nil {
		return []byte(s)
	}
	return orig
}

// PurgeDLQ deletes the entry at seq.
func (b *Bus) PurgeDLQ(ctx context.Context, seq uint64) error {
	if _, err := b.GetDLQ(ctx, seq); err != nil {
		return err
	}
	return b.deleteDLQ(ctx, seq)
}

func (b *Bus) deleteDLQ(ctx context.Context, seq uint64) error {
	stream, err := b.js.Stream(ctx, DLQStream)
	if err != nil {
		return fmt.Errorf("stream %s: %w", DLQStream, err)
	}
	if err := stream.DeleteMsg(ctx, seq); err != nil && !errors.Is(err, jetstream.ErrMsgNotFound) {
		return fmt.Errorf("delete DLQ entry %d: %w", seq, err)
	}
	return nil
}

// EachDLQ applies fn to every entry matching f (f.Limit ignored) that
// existed when it started, and returns how many it applied to; replay-all
// and purge-all use it. Entries written meanwhile (a replayed event failing
// again) are left for the next run, so a bulk replay always ends.
func (b *Bus) EachDLQ(ctx context.Context, f DLQFilter, fn func(DeadLetter) error) (int, error) {
	stream, err := b.js.Stream(ctx, DLQStream)
	if err != nil {
		return 0, fmt.Errorf("stream %s: %w", DLQStream, err)
	}
	info, err := stream.Info(ctx)
	if err != nil {
		return 0, fmt.Errorf("stream %s: %w", DLQStream, err)
	}
	last := info.State.LastSeq
	n := 0
	f.Limit = 200
	for {
		page, next, err := b.ListDLQ(ctx, f)
		if err != nil {
			return n, err
		}
		for _, d := range page {
			if d.Seq > last {
				return n, nil
			}
			if err := fn(d); err != nil {
				return n, err
			}
			n++
		}
		if next == 0 {
			return n, nil
		}
		f.After = next
	}
}
