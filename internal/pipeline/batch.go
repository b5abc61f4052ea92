package pipeline

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/alumoutreach/alumoutreach/internal/channel"
	"github.com/alumoutreach/alumoutreach/internal/event"
	"github.com/alumoutreach/alumoutreach/internal/platform/bus"
	"github.com/alumoutreach/alumoutreach/internal/platform/outbox"
	"github.com/alumoutreach/alumoutreach/internal/platform/store"
)

// A queued message goes through three batched steps, each one transaction
// for all the messages that arrived together:
//   - claim: make or find the row by its send key; a message that may not
//     be sent is recorded blocked (with its failed event), one held for
//     quiet hours is recorded held (with its held event), one that may be
//     sent is moved to sending;
//   - the provider call, per message (the sandbox batches its own writes);
//   - record: sent with its event, failed, or back to queued for a retry.
// With one database writer, committing once per batch instead of four
// times per message is what makes thousands of messages a second possible.

// next says what a handler does after the claim.
type next int

const (
	nextDone    next = iota // sent, failed or blocked already, or blocked now
	nextSend                // claimed: call the provider
	nextResolve             // left in sending by a process that died
	nextSingle              // the send key belongs to another message id: take the one-by-one path
)

// job is one queued message on its way through the batches.
type job struct {
	ctx    context.Context
	tenant string
	m      *Message
	row    *Message
	block  *blockReason
	hold   *time.Time // quiet hours: send then
	// Read in bulk by readBatch before prepare, when it could.
	preRead     bool
	recipient   *Recipient // nil when the contact is gone
	suppression string     // the reason, "" when not suppressed
	msg         channel.Message
	next        next
	receipt     channel.Receipt
	sendErr     error
	last        bool // the bus will not deliver it again
}

type blockReason struct{ status, code, reason string }

// prepare does the reads a message needs before it may be sent, outside
// any transaction: recipient, consent, suppression, rendering. It returns
// an error only for a failure worth retrying.
func (s *Service) prepare(ctx context.Context, j *job) error {
	m := j.m
	var r Recipient
	var err error
	if j.preRead {
		if j.recipient == nil {
			err = ErrRecipientNotFound
		} else {
			r = *j.recipient
		}
	} else {
		r, err = s.Contacts.Recipient(ctx, j.tenant, m.ContactID)
	}
	switch {
	case errors.Is(err, ErrRecipientNotFound):
		j.block = &blockReason{StatusBlocked, "contact_gone", "the contact was deleted or erased"}
		return nil
	case err != nil:
		return fmt.Errorf("read recipient: %w", err)
	}
	addr := r.Address(m.Channel)
	if m.handWritten() && m.Recipient != "" {
		addr = m.Recipient // a reply goes where the contact wrote from
	}
	switch {
	case addr == "":
		j.block = &blockReason{StatusBlocked, "no_address", "the contact has no address on this channel"}
		return nil
	case !r.Consent[m.Channel] && !m.handWritten():
		// A reply answers a message the contact sent us: it is not
		// marketing, and needs no consent to it (the suppression list
		// still applies).
		j.block = &blockReason{StatusBlocked, "no_consent", "the contact has not agreed to be reached on " + m.Channel}
		return nil
	}
	m.Recipient = addr
	reason, ok := j.suppression, j.suppression != ""
	if !j.preRead || m.handWritten() { // a reply's address may not be the one read ahead
		if reason, ok, err = suppressed(ctx, s.DB.Reader(), j.tenant, m.Channel, addr); err != nil {
			return err
		}
	}
	if ok {
		j.block = &blockReason{StatusBlocked, "suppressed", "the address is suppressed (" + reason + ")"}
		return nil
	}
	if m.handWritten() {
		return s.prepareWritten(j)
	}
	if capped, err := s.capped(ctx, j.tenant, m); err != nil {
		return err
	} else if capped {
		j.block = &blockReason{StatusBlocked, "frequency_cap", fmt.Sprintf("the contact had %d messages in the last %s", s.Rules.FrequencyCap, s.Rules.FrequencyWindow)}
		return nil
	}
	if until, quiet := s.holdUntil(r, m.Channel, s.clock()); quiet {
		j.hold = &until
		return nil
	}
	unsub := ""
	if s.Links != nil {
		unsub = s.Links.Unsubscribe(j.tenant, m.ID)
	}
	content, err := s.Renderer.Render(ctx, j.tenant, m.TemplateID, m.TemplateVersion, m.Channel, RenderRequest{
		Recipient: r, MessageID: m.ID, SourceID: m.SourceID, SourceName: m.sourceName, UnsubscribeURL: unsub})
	switch {
	case errors.Is(err, ErrTemplate):
		j.block = &blockReason{StatusFailed, "template_error", err.Error()}
		return nil
	case err != nil:
		return fmt.Errorf("render: %w", err)
	}
	if !s.providerFor(j) {
		return nil
	}
	m.TemplateVersion, m.Subject = content.Version, content.Subject
	j.msg = s.outgoing(j.tenant, m, s.withTracking(j.tenant, m, content, unsub), unsub)
	return nil
}

// prepareWritten finishes preparing a message written by hand: a person
// answering a person, so neither the frequency cap nor quiet hours hold it
// back, and it goes as written, without tracking links or an unsubscribe
// header.
func (s *Service) prepareWritten(j *job) error {
	m := j.m
	if !s.providerFor(j) {
		return nil
	}
	j.msg = s.outgoing(j.tenant, m, Content{Subject: m.Subject, Text: m.body, Body: m.body}, "")
	if m.Channel == event.ChannelEmail && m.inReplyTo != "" {
		ref := "<" + m.inReplyTo + ">"
		j.msg.Headers = map[string]string{"In-Reply-To": ref, "References": ref}
	}
	return nil
}

// providerFor reports whether a provider serves j's channel, failing j
// (no_provider) when none does.
func (s *Service) providerFor(j *job) bool {
	if _, ok := s.Providers[j.m.Channel]; !ok {
		j.block = &blockReason{StatusFailed, "no_provider", "no provider is configured for " + j.m.Channel}
		return false
	}
	return true
}

// claimBatch is the first transaction of a batch. A message seen for the
// first time is inserted claimed (one statement); only a redelivered one,
// whose row exists, is read and moved from queued.
func (s *Service) claimBatch(ctx context.Context, jobs []*job) []error {
	err := s.Outbox.InTx(ctx, func(tx *sql.Tx, emit outbox.Emit) error {
		st := store.NewStmtCache(tx)
		defer st.Close()
		var envs []event.Envelope
		claimed := map[string]bool{}
		for _, j := range jobs {
			fresh := *j.m
			fresh.Status, fresh.Attempts = StatusQueued, 0
			nxt, due := s.claim(j, &fresh)
			inserted, err := insertMessage(j.ctx, st, j.tenant, &fresh)
			if err != nil {
				return err
			}
			row := &fresh
			if !inserted {
				if row, err = byKey(j.ctx, s.DB.Kind(), st, j.tenant, j.m, false); err != nil {
					return err
				}
				nxt, due = nextDone, ""
				switch {
				case claimed[j.tenant+"/"+row.ID]:
					// the same message twice in one batch: the first one sends it
				case row.Status == StatusSending:
					nxt = nextResolve
				case row.Status != StatusQueued:
				case row.ID != j.m.ID:
					nxt = nextSingle
				default:
					nxt, due = s.claim(j, row)
					if moved, err := setStatus(j.ctx, st, j.tenant, row, StatusQueued); err != nil {
						return err
					} else if !moved {
						nxt, due = nextDone, "" // another delivery took it
					}
				}
			}
			claimed[j.tenant+"/"+row.ID] = true
			j.row, j.next = row, nxt
			if due != "" {
				env, err := event.New(j.ctx, due, event.SourcePipeline, j.tenant, statusData(row))
				if err != nil {
					return err
				}
				envs = append(envs, env)
			}
		}
		return emit(envs...)
	})
	return all(len(jobs), err)
}

// claim moves row, queued, to where prepare's checks send j: held for
// quiet hours, blocked, or sending. It changes the row in memory only, and
// returns the subject of the event due once the change is stored:
// pipeline.message.held, pipeline.message.failed (blocked), or "" for none
// (sending: the outcome's event comes after the provider call).
func (s *Service) claim(j *job, row *Message) (nxt next, due string) {
	row.UpdatedAt = s.clock()
	switch {
	case j.hold != nil:
		row.Status, row.SendAfter = StatusHeld, j.hold
		row.Recipient = orDefault(j.m.Recipient, row.Recipient)
		return nextDone, event.PipelineMessageHeld
	case j.block != nil:
		row.Status, row.ErrorCode, row.Error = j.block.status, j.block.code, truncate(j.block.reason, 1000)
		row.Recipient = orDefault(j.m.Recipient, row.Recipient)
		return nextDone, event.PipelineMessageFailed
	default:
		row.Recipient, row.TemplateVersion, row.Subject = j.m.Recipient, j.m.TemplateVersion, j.m.Subject
		row.Status, row.Attempts = StatusSending, row.Attempts+1
		return nextSend, ""
	}
}

// recordBatch is the last transaction of a batch: each message's outcome
// at the provider.
func (s *Service) recordBatch(ctx context.Context, jobs []*job) []error {
	errs := make([]error, len(jobs))
	err := s.Outbox.InTx(ctx, func(tx *sql.Tx, emit outbox.Emit) error {
		st := store.NewStmtCache(tx)
		defer st.Close()
		var envs []event.Envelope
		for i, j := range jobs {
			m, now := j.row, s.clock()
			errs[i] = nil
			subject := event.PipelineMessageSent
			switch {
			case j.sendErr == nil:
				s.accepted(m, j.receipt, now)
			case errors.Is(j.sendErr, channel.ErrUnknownOutcome):
				// Never again: the provider may have it already.
				m.Status, m.ErrorCode, m.Error, m.UpdatedAt = StatusFailed, "outcome_unknown", truncate(j.sendErr.Error(), 1000), now
				subject = event.PipelineMessageFailed
			case channel.IsPermanent(j.sendErr) || (j.last && !errors.Is(j.sendErr, channel.ErrConfiguration)):
				// A configuration error stays queued even on the last
				// attempt: its dead letter is replayed once it is fixed.
				m.Status, m.ErrorCode, m.Error, m.UpdatedAt = StatusFailed, providerCode(j.sendErr), truncate(j.sendErr.Error(), 1000), now
				subject = event.PipelineMessageFailed
			default:
				// Transient: back to queued, so the bus's retry sends it.
				m.Status, m.ErrorCode, m.Error, m.UpdatedAt = StatusQueued, providerCode(j.sendErr), truncate(j.sendErr.Error(), 1000), now
				subject = ""
				errs[i] = j.sendErr
			}
			ok, err := setStatus(j.ctx, st, j.tenant, m, StatusSending)
			if err != nil {
				return err
			}
			if !ok || subject == "" {
				continue
			}
			if envs, err = appendOutcome(j.ctx, envs, subject, j.tenant, m); err != nil {
				return err
			}
		}
		return emit(envs...)
	})
	if err != nil {
		return all(len(jobs), err)
	}
	return errs
}

// all is n copies of err.
func all(n int, err error) []error {
	errs := make([]error, n)
	for i := range errs {
		errs[i] = err
	}
	return errs
}

func orDefault(v, def string) string {
	if v == "" {
		return def
	}
	return v
}

// sendQueued takes one queued message through the batches.
func (s *Service) sendQueued(ctx context.Context, tenant string, m *Message) error {
	j := &job{ctx: ctx, tenant: tenant, m: m}
	if err := s.reads.Do(ctx, j); err != nil {
		return err
	}
	if j.block == nil && j.hold == nil {
		if err := s.throttle(ctx, tenant, m.Channel); err != nil {
			return err
		}
	}
	if err := s.claims.Do(ctx, j); err != nil {
		return err
	}
	switch j.next {
	case nextResolve:
		return s.resolve(ctx, tenant, j.row)
	case nextSingle:
		return s.send(ctx, tenant, j.row)
	case nextDone:
		return nil
	}
	j.receipt, j.sendErr = s.call(ctx, s.Providers[j.row.Channel], j.msg)
	attempt, maxAttempts := bus.Attempt(ctx)
	j.last = attempt >= maxAttempts
	return s.records.Do(ctx, j)
}

// BatchContactSource is a ContactSource that reads many recipients at once;
// the pipeline uses it when the source offers it.
type BatchContactSource interface {
	Recipients(ctx context.Context, tenant string, ids []string) (map[string]Recipient, error)
}

// readBatch prepares a batch of messages: their recipients and their
// suppressions read in a few queries per tenant instead of a few per
// message, then each message checked and rendered.
func (s *Service) readBatch(ctx context.Context, jobs []*job) []error {
	errs := make([]error, len(jobs))
	if bs, ok := s.Contacts.(BatchContactSource); ok {
		byTenant := map[string][]*job{}
		for _, j := range jobs {
			byTenant[j.tenant] = append(byTenant[j.tenant], j)
		}
		for tenant, tj := range byTenant {
			if err := s.readTenant(ctx, bs, tenant, tj); err != nil {
				for _, j := range tj {
					j.preRead = false // read them one by one below instead
				}
				s.Log.WarnContext(ctx, "bulk recipient read failed; reading one by one", "err", err)
			}
		}
	}
	for i, j := range jobs {
		errs[i] = s.prepare(j.ctx, j)
	}
	return errs
}

func (s *Service) readTenant(ctx context.Context, bs BatchContactSource, tenant string, jobs []*job) error {
	ids := make([]string, 0, len(jobs))
	for _, j := range jobs {
		ids = append(ids, j.m.ContactID)
	}
	rs, err := bs.Recipients(ctx, tenant, ids)
	if err != nil {
		return err
	}
	var addrs []any
	for _, j := range jobs {
		if r, ok := rs[j.m.ContactID]; ok {
			j.recipient = &r
			if a := r.Address(j.m.Channel); a != "" {
				addrs = append(addrs, a)
			}
		}
		j.preRead = true
	}
	if len(addrs) == 0 {
		return nil
	}
	marks := make([]string, len(addrs))
	for i := range addrs {
		marks[i] = fmt.Sprintf("$%d", i+2)
	}
	rows, err := s.DB.Reader().QueryContext(ctx, `SELECT channel, address, reason FROM suppressions WHERE tenant_id = $1 AND address IN (`+
		strings.Join(marks, ",")+`)`, append([]any{tenant}, addrs...)...)
	if err != nil {
		return fmt.Errorf("read suppressions: %w", err)
	}
	defer rows.Close()
	reasons := map[string]string{}
	for rows.Next() {
		var ch, addr, reason string
		if err := rows.Scan(&ch, &addr, &reason); err != nil {
			return fmt.Errorf("read suppressions: %w", err)
		}
		reasons[ch+" "+addr] = reason
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("read suppressions: %w", err)
	}
	for _, j := range jobs {
		if j.recipient != nil {
			j.suppression = reasons[j.m.Channel+" "+j.recipient.Address(j.m.Channel)]
		}
	}
	return nil
}

// accepted records the provider's acceptance of m. A sandbox that reports
// deliveries delivers at once: the message is recorded as delivered in the
// same transaction, and its pipeline.message.delivered follows the sent
// event, instead of a report travelling as a webhook event through
// PIPELINE_WEBHOOK_CONSUMER as a real provider's must (an event, a
// consumer pass and a transaction fewer per message).
func (s *Service) accepted(m *Message, receipt channel.Receipt, now time.Time) {
	m.Status, m.Provider, m.ExternalID, m.Error, m.ErrorCode, m.UpdatedAt, m.SentAt = StatusSent, receipt.Provider, receipt.ExternalID, "", "", now, &now
	if sb, ok := s.Providers[m.Channel].(*Sandbox); ok && sb.delivers && receipt.Provider == "sandbox" {
		m.Status = StatusDelivered
	}
}

// appendOutcome appends to envs the events of m's outcome, published under
// subject: pipeline.message.sent is followed by pipeline.message.delivered
// when the provider delivered at once (accepted).
func appendOutcome(ctx context.Context, envs []event.Envelope, subject, tenant string, m *Message) ([]event.Envelope, error) {
	env, err := event.New(ctx, subject, event.SourcePipeline, tenant, messageData(m))
	if err != nil {
		return envs, err
	}
	envs = append(envs, env)
	if subject != event.PipelineMessageSent || m.Status != StatusDelivered {
		return envs, nil
	}
	d := messageData(m)
	d.OccurredAt = event.Time{Time: m.SentAt.UTC().Truncate(time.Millisecond)}
	env, err = event.New(ctx, event.PipelineMessageDelivered, event.SourcePipeline, tenant, d)
	return append(envs, env), err
}
