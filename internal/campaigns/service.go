package campaigns

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/mail"
	"slices"
	"strings"
	"time"

	"github.com/alumoutreach/alumoutreach/internal/event"
	"github.com/alumoutreach/alumoutreach/internal/platform/fault"
	"github.com/alumoutreach/alumoutreach/internal/platform/outbox"
	"github.com/alumoutreach/alumoutreach/internal/platform/store"
)

// Audience reads segments for campaigns; the app wires it to the segments
// module.
type Audience interface {
	// SegmentExists reports whether the tenant has the segment.
	SegmentExists(ctx context.Context, tenant, id string) (bool, error)
	// Members returns up to limit members of a segment with contact ids
	// after after, in contact id order, with their time zones.
	Members(ctx context.Context, tenant, segmentID, after string, limit int) ([]Member, error)
}

// Member is one recipient as the audience snapshot needs it.
type Member struct {
	ContactID string
	// TimeZone is the contact's IANA zone, "" when unknown.
	TimeZone string
}

// Templates reads templates; the app wires it to the templates module.
type Templates interface {
	// Template returns a template's channel, lifecycle status and current
	// version, or ErrTemplateNotFound.
	Template(ctx context.Context, tenant, id string) (TemplateInfo, error)
}

// TemplateInfo is what campaigns need to know of a template.
type TemplateInfo struct {
	Channel string
	// Active reports whether the template may be sent.
	Active  bool
	Version int64
}

// ErrTemplateNotFound is what Templates returns for a missing template.
var ErrTemplateNotFound = errors.New("template not found")

// Tester sends one test rendering; the app wires it to the pipeline.
type Tester interface {
	SendTest(ctx context.Context, tenant string, t TestRequest) (TestResult, error)
}

// TestRequest is a test send of a campaign's template.
type TestRequest struct {
	TemplateID      string `json:"-"`
	TemplateVersion int64  `json:"-"`
	Channel         string `json:"-"`
	// To is the caller's own address (email, or an E.164 number).
	To string `json:"to"`
	// ContactID, when set, fills the placeholders with that contact.
	ContactID string `json:"contactId"`
	// The campaign's sender, id and name, as its messages carry them.
	Sender       Sender `json:"-"`
	CampaignID   string `json:"-"`
	CampaignName string `json:"-"`
}

// TestResult is the provider's acceptance of a test send.
type TestResult struct {
	Provider   string `json:"provider"`
	ExternalID string `json:"externalId"`
	Subject    string `json:"subject,omitempty"`
}

// Timers schedules the durable start of scheduled campaigns (the bus's
// ALUM_TIMERS).
type Timers interface {
	ScheduleTimer(ctx context.Context, key string, at time.Time, data []byte) error
	CancelTimer(ctx context.Context, key string) error
}

// Service owns campaigns: their definitions, lifecycle and counters.
type Service struct {
	db        *store.DB
	ob        *outbox.Outbox
	log       *slog.Logger
	audience  Audience
	templates Templates
	tester    Tester
	timers    Timers
	now       func() time.Time
	// wake nudges the runner after a start or resume, so sending begins at
	// once rather than at its next poll.
	wake chan struct{}
}

// NewService returns the campaigns service.
func NewService(db *store.DB, ob *outbox.Outbox, log *slog.Logger, audience Audience, templates Templates, tester Tester, timers Timers) *Service {
	return &Service{db: db, ob: ob, log: log, audience: audience, templates: templates, tester: tester, timers: timers,
		now: time.Now, wake: make(chan struct{}, 1)}
}

func (s *Service) clock() time.Time { return s.now().UTC().Truncate(time.Millisecond) }

func (s *Service) nudge() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

const (
	maxNameLen  = 200
	maxSegments = 20
	maxRate     = 100_000
)

func notFound(id string) error {
	e := fault.New(fault.NotFound, "campaign_not_found", "no campaign %q in this tenant", id)
	e.Details = map[string]any{"campaignId": id}
	return e
}

func invalid(field, format string, args ...any) error {
	e := fault.New(fault.Invalid, "invalid_field", format, args...)
	e.Details = map[string]any{"field": field}
	return e
}

// Create stores a campaign draft and publishes campaign.created.
func (s *Service) Create(ctx context.Context, tenant string, in Input) (*Campaign, error) {
	now := s.clock()
	c := &Campaign{ID: event.NewID(), Status: StatusCreated, Version: 1, CreatedAt: now, UpdatedAt: now, ExcludeSegmentIDs: []string{}}
	if in.Name == nil || in.Channel == nil || in.TemplateID == nil || in.SegmentIDs == nil {
		return nil, fault.New(fault.Invalid, "invalid_field", "name, channel, templateId and segmentIds are required")
	}
	if err := s.apply(ctx, tenant, c, in); err != nil {
		return nil, err
	}
	ctx = event.EnsureCorrelation(ctx)
	err := s.ob.InTx(ctx, func(tx *sql.Tx, emit outbox.Emit) error {
		if err := insertCampaign(ctx, tx, tenant, c); err != nil {
			return err
		}
		env, err := event.New(ctx, event.CampaignCreated, event.SourceCampaigns, tenant, event.CampaignCreatedData{
			CampaignID: c.ID, Name: c.Name, Channel: c.Channel, TemplateID: c.TemplateID, SegmentIDs: c.SegmentIDs})
		if err != nil {
			return err
		}
		return emit(env)
	})
	if err != nil {
		return nil, err
	}
	return c, nil
}

// apply validates in and sets it on c.
func (s *Service) apply(ctx context.Context, tenant string, c *Campaign, in Input) error {
	if in.Name != nil {
		n := strings.TrimSpace(*in.Name)
		if n == "" || len([]rune(n)) > maxNameLen {
			return invalid("name", "name must be 1 to %d characters", maxNameLen)
		}
		c.Name = n
	}
	if in.Channel != nil {
		if !event.ValidChannel(*in.Channel) {
			return invalid("channel", "channel must be email, sms or whatsapp (got %q)", *in.Channel)
		}
		c.Channel = *in.Channel
	}
	if in.TemplateID != nil {
		c.TemplateID = strings.TrimSpace(*in.TemplateID)
	}
	if in.TemplateID != nil || in.Channel != nil {
		if err := s.checkTemplate(ctx, tenant, c); err != nil {
			return err
		}
	}
	if in.SegmentIDs != nil {
		ids, err := s.checkSegments(ctx, tenant, "segmentIds", *in.SegmentIDs, 1)
		if err != nil {
			return err
		}
		c.SegmentIDs = ids
	}
	if in.ExcludeSegmentIDs != nil {
		ids, err := s.checkSegments(ctx, tenant, "excludeSegmentIds", *in.ExcludeSegmentIDs, 0)
		if err != nil {
			return err
		}
		c.ExcludeSegmentIDs = ids
	}
	if in.Sender != nil {
		c.Sender = *in.Sender
	}
	if c.Sender != (Sender{}) {
		if err := checkSender(c.Channel, c.Sender); err != nil {
			return err
		}
	}
	if in.Rate != nil {
		if *in.Rate < 0 || *in.Rate > maxRate {
			return invalid("rate", "rate is messages per second, 0 (no cap) to %d", maxRate)
		}
		c.Rate = *in.Rate
	}
	return nil
}

func (s *Service) checkTemplate(ctx context.Context, tenant string, c *Campaign) error {
	if c.TemplateID == "" {
		return invalid("templateId", "templateId is required")
	}
	t, err := s.templates.Template(ctx, tenant, c.TemplateID)
	if errors.Is(err, ErrTemplateNotFound) {
		return invalid("templateId", "no template %q in this tenant", c.TemplateID)
	}
	if err != nil {
		return fmt.Errorf("read template %s: %w", c.TemplateID, err)
	}
	if t.Channel != c.Channel {
		return invalid("templateId", "template %s is for %s, the campaign sends %s", c.TemplateID, t.Channel, c.Channel)
	}
	return nil
}

func (s *Service) checkSegments(ctx context.Context, tenant, field string, ids []string, minCount int) ([]string, error) {
	out := make([]string, 0, len(ids))
	for _, id := range ids {
		id = strings.TrimSpace(id)
		if id == "" {
			return nil, invalid(field, "%s has an empty segment id", field)
		}
		if !slices.Contains(out, id) {
			out = append(out, id)
		}
	}
	if len(out) < minCount || len(out) > maxSegments {
		return nil, invalid(field, "%s takes %d to %d segment ids", field, minCount, maxSegments)
	}
	for _, id := range out {
		ok, err := s.audience.SegmentExists(ctx, tenant, id)
		if err != nil {
			return nil, fmt.Errorf("read segment %s: %w", id, err)
		}
		if !ok {
			return nil, invalid(field, "no segment %q in this tenant", id)
		}
	}
	return out, nil
}

func checkSender(channel string, snd Sender) error {
	if channel != event.ChannelEmail {
		return invalid("sender", "sender applies to email campaigns; %s sends from the provider's number", channel)
	}
	for _, a := range []struct{ field, v string }{{"sender.from", snd.From}, {"sender.replyTo", snd.ReplyTo}} {
		if a.v == "" {
			continue
		}
		if addr, err := mail.ParseAddress(a.v); err != nil || addr.Address != a.v {
			return invalid(a.field, "%s %q is not an email address such as alumni@example.edu", a.field, a.v)
		}
	}
	if len([]rune(snd.FromName)) > maxNameLen || strings.ContainsAny(snd.FromName, "\r\n") {
		return invalid("sender.fromName", "sender.fromName must be one line of at most %d characters", maxNameLen)
	}
	return nil
}

// Get returns one campaign.
func (s *Service) Get(ctx context.Context, tenant, id string) (*Campaign, error) {
	return getCampaign(ctx, s.db.Reader(), tenant, id)
}

// List returns the tenant's campaigns, newest first, before the cursor;
// status filters when not empty.
func (s *Service) List(ctx context.Context, tenant, status string, before *listCursor, limit int) ([]*Campaign, error) {
	return listCampaigns(ctx, s.db.Reader(), tenant, status, before, limit)
}

// Update edits a campaign that has not started; ifVersion, when not 0,
// must be its current version.
func (s *Service) Update(ctx context.Context, tenant, id string, in Input, ifVersion int64) (*Campaign, error) {
	var out *Campaign
	err := s.db.InTx(ctx, func(tx *sql.Tx) error {
		c, err := getCampaign(ctx, tx, tenant, id)
		if err != nil {
			return err
		}
		if ifVersion != 0 && ifVersion != c.Version {
			return fault.New(fault.Conflict, "version_mismatch", "campaign %s is at version %d, not %d; read it again", id, c.Version, ifVersion)
		}
		if c.Status != StatusCreated && c.Status != StatusScheduled {
			return illegal(c, "edit", StatusCreated, StatusScheduled)
		}
		if err := s.apply(ctx, tenant, c, in); err != nil {
			return err
		}
		c.Version++
		c.UpdatedAt = s.clock()
		out = c
		return updateDefinition(ctx, tx, tenant, c)
	})
	return out, err
}

// illegal is the 409 of a transition the campaign's status does not allow.
func illegal(c *Campaign, action string, from ...string) error {
	e := fault.New(fault.Conflict, "illegal_transition", "cannot %s campaign %s: it is %s, and %s needs it %s",
		action, c.ID, c.Status, action, strings.Join(from, " or "))
	e.Details = map[string]any{"status": c.Status, "allowedFrom": from}
	return e
}

// transition moves a campaign from one of from to to, with the event
// change returns, in one transaction.
func (s *Service) transition(ctx context.Context, tenant, id, action, to string, from []string,
	change func(tx *sql.Tx, c *Campaign) (*event.Envelope, error)) (*Campaign, error) {
	var out *Campaign
	ctx = event.EnsureCorrelation(ctx)
	err := s.ob.InTx(ctx, func(tx *sql.Tx, emit outbox.Emit) error {
		c, err := getCampaign(ctx, tx, tenant, id)
		if err != nil {
			return err
		}
		if !slices.Contains(from, c.Status) {
			return illegal(c, action, from...)
		}
		prev := c.Status
		c.Status, c.UpdatedAt = to, s.clock()
		c.Version++
		env, err := change(tx, c)
		if err != nil {
			return err
		}
		if err := updateState(ctx, tx, tenant, c, prev); err != nil {
			return err
		}
		out = c
		if env == nil {
			return nil
		}
		return emit(*env)
	})
	return out, err
}

func stateEvent(ctx context.Context, subject, tenant string, c *Campaign, reason string) (*event.Envelope, error) {
	env, err := event.New(ctx, subject, event.SourceCampaigns, tenant, event.CampaignStateData{CampaignID: c.ID, Name: c.Name, Reason: reason})
	return &env, err
}

// Schedule sets (or moves) the start of a campaign not yet started and
// arms its durable timer.
func (s *Service) Schedule(ctx context.Context, tenant, id string, sch Schedule) (*Campaign, error) {
	var startAt time.Time
	c, err := s.transition(ctx, tenant, id, "schedule", StatusScheduled, []string{StatusCreated, StatusScheduled},
		func(tx *sql.Tx, c *Campaign) (*event.Envelope, error) {
			var err error
			if startAt, err = sch.startAt(s.clock()); err != nil {
				return nil, err
			}
			c.Schedule, c.StartAt = &sch, &startAt
			env, err := event.New(ctx, event.CampaignScheduled, event.SourceCampaigns, tenant, event.CampaignScheduledData{
				CampaignID: c.ID, Name: c.Name, ScheduledAt: event.Time{Time: startAt}})
			return &env, err
		})
	if err != nil {
		return nil, err
	}
	// After the commit: a timer that fires finds the campaign scheduled. A
	// failure here leaves the runner's sweep to start it on time.
	if err := s.timers.ScheduleTimer(ctx, timerKey(tenant, id), startAt, timerData(tenant, id, startAt)); err != nil {
		s.log.WarnContext(ctx, "campaign start timer not armed; the runner's sweep will start it", "tenant", tenant, "campaign", id, "err", err)
	}
	return c, nil
}

// Unschedule returns a scheduled campaign to created.
func (s *Service) Unschedule(ctx context.Context, tenant, id string) (*Campaign, error) {
	c, err := s.transition(ctx, tenant, id, "unschedule", StatusCreated, []string{StatusScheduled},
		func(tx *sql.Tx, c *Campaign) (*event.Envelope, error) {
			c.Schedule, c.StartAt = nil, nil
			return nil, nil
		})
	if err == nil {
		s.cancelTimer(ctx, tenant, id)
	}
	return c, err
}

func (s *Service) cancelTimer(ctx context.Context, tenant, id string) {
	// A timer left behind is harmless: it finds the campaign no longer scheduled.
	if err := s.timers.CancelTimer(ctx, timerKey(tenant, id)); err != nil {
		s.log.WarnContext(ctx, "campaign start timer not cancelled", "tenant", tenant, "campaign", id, "err", err)
	}
}

// Start starts a campaign now: it freezes the template version, and the
// runner freezes the audience and sends.
func (s *Service) Start(ctx context.Context, tenant, id string) (*Campaign, error) {
	c, err := s.start(ctx, tenant, id, nil)
	if err == nil {
		s.cancelTimer(ctx, tenant, id)
	}
	return c, err
}

// start moves a campaign to started; startAt, when set, must match the
// scheduled start (a stale timer starts nothing).
func (s *Service) start(ctx context.Context, tenant, id string, startAt *time.Time) (*Campaign, error) {
	c, err := s.transition(ctx, tenant, id, "start", StatusStarted, []string{StatusCreated, StatusScheduled},
		func(tx *sql.Tx, c *Campaign) (*event.Envelope, error) {
			if startAt != nil && (c.StartAt == nil || !c.StartAt.Equal(*startAt)) {
				return nil, errStaleTimer
			}
			t, err := s.templates.Template(ctx, tenant, c.TemplateID)
			if errors.Is(err, ErrTemplateNotFound) {
				return nil, fault.New(fault.Conflict, "template_gone", "template %s no longer exists; choose another", c.TemplateID)
			}
			if err != nil {
				return nil, fmt.Errorf("read template %s: %w", c.TemplateID, err)
			}
			if !t.Active {
				return nil, fault.New(fault.Conflict, "template_not_active", "template %s is not active; activate it before starting the campaign", c.TemplateID)
			}
			for _, seg := range slices.Concat(c.SegmentIDs, c.ExcludeSegmentIDs) {
				ok, err := s.audience.SegmentExists(ctx, tenant, seg)
				if err != nil {
					return nil, fmt.Errorf("read segment %s: %w", seg, err)
				}
				if !ok {
					return nil, fault.New(fault.Conflict, "segment_gone", "segment %s no longer exists; edit the campaign's segments", seg)
				}
			}
			now := s.clock()
			c.TemplateVersion, c.StartedAt = t.Version, &now
			if startAt == nil {
				// Started by hand: now, and everyone now, whatever the schedule said.
				c.Schedule, c.StartAt = nil, nil
			}
			return nil, nil // campaign.started goes out with the audience count
		})
	if err == nil {
		s.nudge()
	}
	return c, err
}

var errStaleTimer = errors.New("the campaign's start moved since the timer was set")

// Pause stops queueing; resume continues where it stopped.
func (s *Service) Pause(ctx context.Context, tenant, id string) (*Campaign, error) {
	return s.transition(ctx, tenant, id, "pause", StatusPaused, []string{StatusStarted},
		func(tx *sql.Tx, c *Campaign) (*event.Envelope, error) {
			return stateEvent(ctx, event.CampaignPaused, tenant, c, "manual")
		})
}

// Resume continues a paused campaign.
func (s *Service) Resume(ctx context.Context, tenant, id string) (*Campaign, error) {
	c, err := s.transition(ctx, tenant, id, "resume", StatusStarted, []string{StatusPaused},
		func(tx *sql.Tx, c *Campaign) (*event.Envelope, error) {
			return stateEvent(ctx, event.CampaignResumed, tenant, c, "manual")
		})
	if err == nil {
		s.nudge()
	}
	return c, err
}

// Cancel stops a campaign for good; messages already queued still go.
func (s *Service) Cancel(ctx context.Context, tenant, id string) (*Campaign, error) {
	c, err := s.transition(ctx, tenant, id, "cancel", StatusCancelled, []string{StatusCreated, StatusScheduled, StatusStarted, StatusPaused},
		func(tx *sql.Tx, c *Campaign) (*event.Envelope, error) {
			return stateEvent(ctx, event.CampaignCancelled, tenant, c, "manual")
		})
	if err == nil {
		s.cancelTimer(ctx, tenant, id)
	}
	return c, err
}

// TestSend sends the campaign's template (its current version, or the
// frozen one once started) to the caller's own address.
func (s *Service) TestSend(ctx context.Context, tenant, id string, req TestRequest) (TestResult, error) {
	c, err := s.Get(ctx, tenant, id)
	if err != nil {
		return TestResult{}, err
	}
	req.TemplateID, req.TemplateVersion, req.Channel = c.TemplateID, c.TemplateVersion, c.Channel
	req.Sender, req.CampaignID, req.CampaignName = c.Sender, c.ID, c.Name
	return s.tester.SendTest(ctx, tenant, req)
}

// Stats returns the live counters.
func (s *Service) Stats(ctx context.Context, tenant, id string) (*Stats, error) {
	c, err := s.Get(ctx, tenant, id)
	if err != nil {
		return nil, err
	}
	return readStats(ctx, s.db.Reader(), tenant, c)
}

func timerKey(tenant, id string) string { return "campaign.start." + tenant + "." + id }

type timerPayload struct {
	Tenant     string `json:"tenant"`
	CampaignID string `json:"campaignId"`
	StartAt    int64  `json:"startAt"`
}

func timerData(tenant, id string, at time.Time) []byte {
	b, _ := json.Marshal(timerPayload{Tenant: tenant, CampaignID: id, StartAt: at.UnixMilli()})
	return b
}

// TimerConsumerName is the durable consumer of fired campaign start timers.
const TimerConsumerName = "CAMPAIGNS_TIMER_CONSUMER"

// TimerKeyPrefix is the key prefix of campaign start timers.
const TimerKeyPrefix = "campaign.start."

// HandleTimer starts the campaign whose start timer fired, if it is still
// scheduled for that moment. Several instances may receive the same timer
// over time (redelivery); the status guard starts it once.
func (s *Service) HandleTimer(ctx context.Context, key string, data []byte) error {
	var p timerPayload
	if err := json.Unmarshal(data, &p); err != nil || p.Tenant == "" || p.CampaignID == "" {
		return fmt.Errorf("campaign timer %s carries %q, not a campaign: %w", key, data, errors.Join(err, event.ErrInvalid))
	}
	at := time.UnixMilli(p.StartAt).UTC()
	_, err := s.start(ctx, p.Tenant, p.CampaignID, &at)
	var fe *fault.Error
	switch {
	case err == nil:
		s.log.InfoContext(ctx, "scheduled campaign started", "tenant", p.Tenant, "campaign", p.CampaignID, "startAt", at)
		return nil
	case errors.Is(err, errStaleTimer), errors.As(err, &fe) && (fe.Code == "illegal_transition" || fe.Code == "campaign_not_found"):
		return nil // moved, started by hand, or cancelled since the timer was set
	case errors.As(err, &fe) && fe.Kind == fault.Conflict:
		return s.cannotStart(ctx, p.Tenant, p.CampaignID, fe)
	default:
		return err
	}
}

// cannotStart cancels a scheduled campaign that cannot start at its time
// (its template archived or deleted, a segment deleted): waiting would not
// change that, and a campaign left scheduled in the past helps nobody.
// campaign.cancelled carries the reason.
func (s *Service) cannotStart(ctx context.Context, tenant, id string, why *fault.Error) error {
	s.log.ErrorContext(ctx, "scheduled campaign cannot start; cancelling it", "tenant", tenant, "campaign", id, "reason", why.Message)
	_, err := s.transition(ctx, tenant, id, "cancel", StatusCancelled, []string{StatusScheduled},
		func(tx *sql.Tx, c *Campaign) (*event.Envelope, error) {
			return stateEvent(ctx, event.CampaignCancelled, tenant, c, why.Code+": "+why.Message)
		})
	if fe, ok := fault.As(err); ok && fe.Code == "illegal_transition" {
		return nil // no longer scheduled
	}
	return err
}
