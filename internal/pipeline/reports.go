package pipeline

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/alumoutreach/alumoutreach/internal/event"
	"github.com/alumoutreach/alumoutreach/internal/platform/bus"
	"github.com/alumoutreach/alumoutreach/internal/platform/fault"
	"github.com/alumoutreach/alumoutreach/internal/platform/outbox"
	"github.com/alumoutreach/alumoutreach/internal/platform/store"
)

// WebhookConsumerName is the durable consumer that turns provider reports
// into message statuses.
const WebhookConsumerName = "PIPELINE_WEBHOOK_CONSUMER"

// WebhookFilters are the provider reports PIPELINE_WEBHOOK_CONSUMER reads:
// every channel's statuses, not inbound messages (the inbox's).
var WebhookFilters = []string{"webhook.*.delivered", "webhook.*.opened", "webhook.*.clicked",
	"webhook.*.bounced", "webhook.*.complained", "webhook.*.read"}

// Further message statuses, from provider reports.
const (
	StatusDelivered  = "delivered"
	StatusBounced    = "bounced"
	StatusComplained = "complained"
)

// HandleReport is the PIPELINE_WEBHOOK_CONSUMER handler: it finds the
// message a provider report is about (by our id when the provider echoed
// it, else by the provider's id), publishes the matching
// pipeline.message.* event, records the status, and suppresses the
// address after a hard bounce or a complaint. A report that arrives before
// the send is recorded is retried; one still about no message of ours on
// its last delivery is logged and counted, not dead-lettered.
func (s *Service) HandleReport(ctx context.Context, env event.Envelope) error {
	d, err := event.DecodeData[event.ProviderEventData](env)
	if err != nil {
		return bus.Permanent(err)
	}
	tenant := env.TenantID
	m, err := s.reportedMessage(ctx, tenant, d)
	// The sandbox, and a fast provider, can report before the send's
	// record commits: wait a moment for it rather than spend an attempt.
	for wait := 0; err == nil && wait < 40 && m != nil && (m.Status == StatusQueued || m.Status == StatusSending); wait++ {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
		m, err = s.reportedMessage(ctx, tenant, d)
	}
	if err != nil {
		return err
	}
	attempt, maxAttempts := bus.Attempt(ctx)
	switch {
	case m == nil && attempt < maxAttempts:
		// A fast provider can report before our record of the send
		// commits: look again after the retry delay.
		return fmt.Errorf("no message with external id %q yet", d.ExternalID)
	case m == nil:
		s.Log.WarnContext(ctx, "provider report about no message of ours", "provider", d.Provider, "externalId", d.ExternalID, "subject", env.Type)
		if s.Unmatched != nil {
			s.Unmatched.Inc()
		}
		return nil
	case m.Status == StatusQueued || m.Status == StatusSending:
		// Reported before the send was recorded (the sandbox reports in
		// the same breath): applying it now would leave the status behind.
		return fmt.Errorf("message %s is still %s; the report waits for the send to be recorded", m.ID, m.Status)
	}
	subject, status, suppress := reportOutcome(env.Type, d)
	if subject == "" {
		return nil
	}
	out := messageData(m)
	out.OccurredAt, out.URL, out.BounceType, out.Reason, out.ErrorCode = d.OccurredAt, d.URL, d.BounceType, d.Reason, ""
	return s.Outbox.InTx(ctx, func(tx *sql.Tx, emit outbox.Emit) error {
		if first, err := store.MarkProcessed(ctx, tx, WebhookConsumerName, env.ID); err != nil || !first {
			return err
		}
		if status != "" {
			if _, err := tx.ExecContext(ctx, `UPDATE messages SET status = $3, error = $4, updated_at = $5
				WHERE tenant_id = $1 AND id = $2 AND status IN ('sent', 'delivered')`, tenant, m.ID, status, truncate(d.Reason, 1000), s.clock().UnixMilli()); err != nil {
				return fmt.Errorf("record message status: %w", err)
			}
		}
		if suppress != "" {
			if _, err := tx.ExecContext(ctx, `INSERT INTO suppressions (tenant_id, channel, address, reason, created_at)
				VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING`, tenant, m.Channel, m.Recipient, suppress, s.clock().UnixMilli()); err != nil {
				return fmt.Errorf("suppress: %w", err)
			}
		}
		e, err := event.New(ctx, subject, event.SourcePipeline, tenant, out)
		if err != nil {
			return err
		}
		return emit(e)
	})
}

// reportOutcome maps a report to the event to publish, the status to
// record ("" to keep it) and the suppression reason ("" for none).
func reportOutcome(subject string, d event.ProviderEventData) (string, string, string) {
	switch subject {
	case event.WebhookEmailOpened, event.WebhookWhatsAppRead:
		return event.PipelineMessageOpened, "", ""
	case event.WebhookEmailClicked:
		return event.PipelineMessageClicked, "", ""
	case event.WebhookEmailBounced:
		if d.BounceType == event.BounceHard {
			return event.PipelineMessageBounced, StatusBounced, SuppressHardBounce
		}
		return event.PipelineMessageBounced, StatusBounced, ""
	case event.WebhookEmailComplained:
		return event.PipelineMessageComplained, StatusComplained, SuppressComplaint
	case event.WebhookEmailDelivered, event.WebhookSMSDelivered, event.WebhookWhatsAppDelivered:
		switch d.Status {
		case "undelivered", "failed":
			return event.PipelineMessageFailed, StatusFailed, ""
		}
		return event.PipelineMessageDelivered, StatusDelivered, ""
	}
	return "", "", ""
}

// reportedMessage finds the message of a report, nil when there is none.
func (s *Service) reportedMessage(ctx context.Context, tenant string, d event.ProviderEventData) (*Message, error) {
	if d.MessageID != "" {
		m, err := byID(ctx, s.DB.Reader(), tenant, d.MessageID)
		if err == nil {
			return m, nil
		}
		if fe, ok := fault.As(err); !ok || fe.Kind != fault.NotFound {
			return nil, err
		}
	}
	m, err := scanMessage(s.DB.Reader().QueryRowContext(ctx, `SELECT `+messageColumns+` FROM messages
		WHERE tenant_id = $1 AND external_id = $2`, tenant, d.ExternalID))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("find reported message: %w", err)
	}
	return m, nil
}
