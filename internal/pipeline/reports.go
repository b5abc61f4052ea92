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
	return s.reports.Do(ctx, &reportJob{ctx: ctx, env: env, tenant: tenant, m: m, subject: subject, status: status,
		suppress: suppress, reason: d.Reason, out: out})
}

// reportJob is one provider report on its way into a batch.
type reportJob struct {
	ctx                               context.Context
	env                               event.Envelope
	tenant                            string
	m                                 *Message
	subject, status, suppress, reason string
	out                               event.MessageData
}

// applyReports records a batch of reports in one transaction: each once
// (by event id), with its status, suppression and event.
func (s *Service) applyReports(ctx context.Context, jobs []*reportJob) []error {
	err := s.Outbox.InTx(ctx, func(tx *sql.Tx, emit outbox.Emit) error {
		st := store.NewStmtCache(tx)
		defer st.Close()
		var envs []event.Envelope
		for _, j := range jobs {
			res, err := st.ExecContext(j.ctx, `INSERT INTO processed_events (consumer, event_id, processed_at) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING`,
				WebhookConsumerName, j.env.ID, s.clock().UnixMilli())
			if err != nil {
				return fmt.Errorf("record report: %w", err)
			}
			if n, _ := res.RowsAffected(); n == 0 {
				continue // a redelivery, or the same report twice in the batch
			}
			if j.status != "" {
				if _, err := st.ExecContext(j.ctx, `UPDATE messages SET status = $3, error = $4, updated_at = $5
					WHERE tenant_id = $1 AND id = $2 AND status IN ('sent', 'delivered')`, j.tenant, j.m.ID, j.status,
					truncate(j.reason, 1000), s.clock().UnixMilli()); err != nil {
					return fmt.Errorf("record message status: %w", err)
				}
			}
			if j.suppress != "" {
				if _, err := st.ExecContext(j.ctx, `INSERT INTO suppressions (tenant_id, channel, address, reason, created_at)
					VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING`, j.tenant, j.m.Channel, j.m.Recipient, j.suppress, s.clock().UnixMilli()); err != nil {
					return fmt.Errorf("suppress: %w", err)
				}
			}
			e, err := event.New(j.ctx, j.subject, event.SourcePipeline, j.tenant, j.out)
			if err != nil {
				return err
			}
			envs = append(envs, e)
		}
		return emit(envs...)
	})
	return all(len(jobs), err)
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

// byExternalID selects the tenant's message the provider knows as $2. An
// empty $2 names no message (not every message no provider has taken
// yet), and the index of external ids holds only messages that have one:
// both planners use a partial index only for a condition they can see in
// the query, so it is written out.
const byExternalID = ` WHERE tenant_id = $1 AND external_id = $2 AND external_id <> ''`

// reportedMessage finds the message of a report, nil when there is none.
func (s *Service) reportedMessage(ctx context.Context, tenant string, d event.ProviderEventData) (*Message, error) {
	if d.MessageID != "" {
		m, err := s.readByID(ctx, tenant, d.MessageID)
		if err == nil {
			return m, nil
		}
		if fe, ok := fault.As(err); !ok || fe.Kind != fault.NotFound {
			return nil, err
		}
	}
	m, err := scanMessage(s.DB.Reader().QueryRowContext(ctx, `SELECT `+messageColumns+` FROM messages`+byExternalID, tenant, d.ExternalID))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("find reported message: %w", err)
	}
	return m, nil
}

// MessageIDByExternalID returns the id of the tenant's message the provider
// knows as externalID ("" when there is none): what an inbound reply's
// threading header points at.
func (s *Service) MessageIDByExternalID(ctx context.Context, tenant, externalID string) (string, error) {
	var id string
	err := s.DB.Reader().QueryRowContext(ctx, `SELECT id FROM messages`+byExternalID, tenant, externalID).Scan(&id)
	if errors.Is(err, sql.ErrNoRows) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("find message by external id: %w", err)
	}
	return id, nil
}
