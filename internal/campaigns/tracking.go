package campaigns

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/alumoutreach/alumoutreach/internal/event"
	"github.com/alumoutreach/alumoutreach/internal/platform/bus"
	"github.com/alumoutreach/alumoutreach/internal/platform/groupcommit"
	"github.com/alumoutreach/alumoutreach/internal/platform/outbox"
	"github.com/alumoutreach/alumoutreach/internal/platform/store"
)

// TrackingConsumerName is the durable consumer of pipeline.message.> that
// keeps the campaign counters.
const TrackingConsumerName = "CAMPAIGNS_TRACKING_CONSUMER"

// Status bits of campaign_messages.flags.
const (
	flagSent int64 = 1 << iota
	flagDelivered
	flagOpened
	flagClicked
	flagBounced
	flagComplained
	flagUnsubscribed
	flagFailed
	flagSkipped
	flagHeld
)

// finalMask is every status after which the message will not be sent (or
// was sent); settledMask adds held, which left the queue but waits.
const (
	finalMask   = flagSent | flagDelivered | flagOpened | flagClicked | flagBounced | flagComplained | flagUnsubscribed | flagFailed | flagSkipped
	settledMask = finalMask | flagHeld
)

var subjectFlags = map[string]int64{
	event.PipelineMessageSent:         flagSent,
	event.PipelineMessageDelivered:    flagDelivered,
	event.PipelineMessageOpened:       flagOpened,
	event.PipelineMessageClicked:      flagClicked,
	event.PipelineMessageBounced:      flagBounced,
	event.PipelineMessageComplained:   flagComplained,
	event.PipelineMessageUnsubscribed: flagUnsubscribed,
	event.PipelineMessageFailed:       flagFailed,
	event.PipelineMessageHeld:         flagHeld,
}

// TrackingSubjects are the consumer's filter: the statuses of
// subjectFlags, every pipeline.message.* but queued, which the runner
// counts as it queues. Filtering on the server spares a delivery per
// message against the spec's pipeline.message.*.
var TrackingSubjects = []string{event.PipelineMessageSent, event.PipelineMessageDelivered, event.PipelineMessageOpened,
	event.PipelineMessageClicked, event.PipelineMessageBounced, event.PipelineMessageComplained,
	event.PipelineMessageUnsubscribed, event.PipelineMessageFailed, event.PipelineMessageHeld}

// skipCodes are the pipeline's reasons for not sending to a recipient at
// all: those count as skipped, not failed.
var skipCodes = []string{"no_consent", "suppressed", "no_address", "contact_gone", "frequency_cap"}

// republished are the statuses re-published per campaign.
var republished = map[int64]string{
	flagSent:      event.CampaignMessageSent,
	flagDelivered: event.CampaignMessageDelivered,
	flagOpened:    event.CampaignMessageOpened,
	flagClicked:   event.CampaignMessageClicked,
	flagBounced:   event.CampaignMessageBounced,
}

// Tracking is CAMPAIGNS_TRACKING_CONSUMER: it counts each campaign
// message's statuses exactly once, however often an event is delivered,
// and re-publishes them as campaign.message.*. Events of a batch commit in
// one transaction.
type Tracking struct {
	svc     *Service
	batcher *groupcommit.Batcher[*tracked]
}

type tracked struct {
	ctx  context.Context
	env  event.Envelope
	data event.MessageData
	flag int64
}

// NewTracking returns the consumer's handler; Start it before the bus
// delivers.
func NewTracking(svc *Service) *Tracking {
	t := &Tracking{svc: svc}
	t.batcher = groupcommit.New(512, t.commit).WithGather()
	return t
}

// Start runs the batcher until Stop.
func (t *Tracking) Start(ctx context.Context) error { return t.batcher.Start(ctx) }

// Stop commits what is queued; call it after the consumer stopped.
func (t *Tracking) Stop() { t.batcher.Stop() }

// Handle is the consumer's handler.
func (t *Tracking) Handle(ctx context.Context, env event.Envelope) error {
	flag, ok := subjectFlags[env.Type]
	if !ok {
		return nil // not in TrackingSubjects: a replayed stray
	}
	d, err := event.DecodeData[event.MessageData](env)
	if err != nil {
		return bus.Permanent(err)
	}
	if d.SourceType != event.MessageSourceCampaign {
		return nil
	}
	if flag == flagFailed && slices.Contains(skipCodes, d.ErrorCode) {
		flag = flagSkipped
	}
	return t.batcher.Do(ctx, &tracked{ctx: ctx, env: env, data: d, flag: flag})
}

// counts are one batch's increments to one campaign's counters.
type counts struct {
	tenant, campaign string
	by               map[string]int64
}

type timelineKey struct {
	tenant, campaign string
	minute           int64
	metric           string
}

func (t *Tracking) commit(ctx context.Context, items []*tracked) []error {
	errs := make([]error, len(items))
	err := t.svc.ob.InTx(ctx, func(tx *sql.Tx, emit outbox.Emit) error {
		st := store.NewStmtCache(tx)
		defer st.Close()
		deltas := map[string]*counts{}
		timeline := map[timelineKey]int64{}
		var envs []event.Envelope
		for _, it := range items {
			campaign, old, fresh, err := t.apply(it, tx, st)
			if err != nil {
				return err
			}
			if campaign == "" {
				continue // not a message a campaign queued, or a repeated event
			}
			key := it.env.TenantID + "/" + campaign
			c := deltas[key]
			if c == nil {
				c = &counts{tenant: it.env.TenantID, campaign: campaign, by: map[string]int64{}}
				deltas[key] = c
			}
			metric := metricOf(it.flag)
			switch {
			case it.flag == flagOpened || it.flag == flagClicked:
				c.by[metric]++ // every open and click, once per event
				if fresh {
					c.by["unique_"+metric]++
				}
			case fresh:
				c.by[metric]++
			default:
				continue // a status already counted
			}
			if fresh && old&settledMask == 0 && it.flag&settledMask != 0 {
				c.by["settled"]++
			}
			if fresh && old&finalMask == 0 && it.flag&finalMask != 0 {
				c.by["final"]++
				if old&flagHeld != 0 {
					c.by["held"]-- // no longer waiting
				}
			}
			at := it.data.OccurredAt.Time
			if at.IsZero() {
				at = it.env.Timestamp.Time
			}
			timeline[timelineKey{it.env.TenantID, campaign, at.UnixMilli() / minuteMs * minuteMs, metric}]++
			if subject, ok := republished[it.flag]; ok {
				env, err := event.New(it.ctx, subject, event.SourceCampaigns, it.env.TenantID,
					event.CampaignMessageData{MessageData: it.data, CampaignID: campaign})
				if err != nil {
					return err
				}
				envs = append(envs, env)
			}
		}
		for _, c := range deltas {
			if err := addCounts(ctx, tx, c); err != nil {
				return err
			}
		}
		for k, n := range timeline {
			if _, err := st.ExecContext(ctx, `INSERT INTO campaign_timeline (tenant_id, campaign_id, minute, metric, count)
				VALUES ($1, $2, $3, $4, $5) ON CONFLICT (tenant_id, campaign_id, minute, metric)
				DO UPDATE SET count = campaign_timeline.count + excluded.count`, k.tenant, k.campaign, k.minute, k.metric, n); err != nil {
				return fmt.Errorf("campaign timeline: %w", err)
			}
		}
		return emit(envs...)
	})
	if err != nil {
		for i := range errs {
			errs[i] = err
		}
	}
	return errs
}

const minuteMs = int64(time.Minute / time.Millisecond)

// apply records it's status on its message. It returns the campaign ("" to
// count nothing), the flags before, and whether the status is new for the
// message.
func (t *Tracking) apply(it *tracked, tx *sql.Tx, st *store.StmtCache) (campaign string, old int64, fresh bool, err error) {
	ctx, tenant := it.ctx, it.env.TenantID
	if it.flag == flagOpened || it.flag == flagClicked {
		// Opens and clicks repeat, and each counts: only the event id
		// tells a second open from a redelivery of the first.
		first, err := store.MarkProcessed(ctx, tx, TrackingConsumerName, it.env.ID)
		if err != nil || !first {
			return "", 0, false, err
		}
	}
	var flags int64
	err = st.QueryRowContext(ctx, `UPDATE campaign_messages SET flags = flags | $3
		WHERE tenant_id = $1 AND message_id = $2 AND (flags & $3) = 0 RETURNING campaign_id, flags`,
		tenant, it.data.MessageID, it.flag).Scan(&campaign, &flags)
	if err == nil {
		return campaign, flags &^ it.flag, true, nil
	}
	if !errors.Is(err, sql.ErrNoRows) {
		return "", 0, false, fmt.Errorf("record status of message %s: %w", it.data.MessageID, err)
	}
	// The status was already recorded, or the message is not a campaign's.
	if it.flag != flagOpened && it.flag != flagClicked {
		return "", 0, false, nil
	}
	err = st.QueryRowContext(ctx, `SELECT campaign_id, flags FROM campaign_messages WHERE tenant_id = $1 AND message_id = $2`,
		tenant, it.data.MessageID).Scan(&campaign, &flags)
	if errors.Is(err, sql.ErrNoRows) {
		return "", 0, false, nil
	}
	return campaign, flags, false, err
}

func metricOf(flag int64) string {
	switch flag {
	case flagSent:
		return "sent"
	case flagDelivered:
		return "delivered"
	case flagOpened:
		return "opened"
	case flagClicked:
		return "clicked"
	case flagBounced:
		return "bounced"
	case flagComplained:
		return "complained"
	case flagUnsubscribed:
		return "unsubscribed"
	case flagFailed:
		return "failed"
	case flagSkipped:
		return "skipped"
	default:
		return "held"
	}
}

// counterColumns are campaign_stats' counters, in a fixed order.
var counterColumns = []string{"sent", "delivered", "opened", "unique_opened", "clicked", "unique_clicked", "bounced",
	"complained", "unsubscribed", "failed", "skipped", "held", "settled", "final"}

func addCounts(ctx context.Context, tx *sql.Tx, c *counts) error {
	sets := make([]string, 0, len(c.by))
	args := []any{c.tenant, c.campaign}
	for _, col := range counterColumns {
		if n := c.by[col]; n != 0 {
			args = append(args, n)
			sets = append(sets, fmt.Sprintf("%s = %s + $%d", col, col, len(args)))
		}
	}
	if len(sets) == 0 {
		return nil
	}
	if _, err := tx.ExecContext(ctx, `UPDATE campaign_stats SET `+strings.Join(sets, ", ")+` WHERE tenant_id = $1 AND campaign_id = $2`, args...); err != nil {
		return fmt.Errorf("update counters of campaign %s: %w", c.campaign, err)
	}
	return nil
}
