package workflows

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"strings"

	"github.com/alumoutreach/alumoutreach/internal/event"
	"github.com/alumoutreach/alumoutreach/internal/platform/bus"
	"github.com/alumoutreach/alumoutreach/internal/rule"
)

// Durable consumers of the workflows module.
const (
	// TriggerConsumerName starts runs on contact, segment membership and
	// custom events, and checks goals and rule waits on contact changes.
	TriggerConsumerName = "WORKFLOWS_TRIGGER_CONSUMER"
	// MessageConsumerName records the reports of the messages runs sent
	// and wakes the runs waiting for them.
	MessageConsumerName = "WORKFLOWS_MESSAGE_CONSUMER"
	// TimerConsumerName wakes runs whose delay or timeout has come.
	TimerConsumerName = "WORKFLOWS_TIMER_CONSUMER"
)

// TriggerSubjects are the trigger consumer's filters.
var TriggerSubjects = []string{"contact.>", "segment.member.>", event.WorkflowEventReceived}

// MessageSubjects are the message consumer's filters.
var MessageSubjects = []string{event.PipelineMessageDelivered, event.PipelineMessageOpened, event.PipelineMessageClicked}

// triggerRef is what the trigger consumer reads of its events.
type triggerRef struct {
	ContactID string `json:"contactId"`
	SegmentID string `json:"segmentId"`
	Tag       string `json:"tag"`
	Name      string `json:"name"`
}

// HandleTrigger is the WORKFLOWS_TRIGGER_CONSUMER handler.
func (s *Service) HandleTrigger(ctx context.Context, env event.Envelope) error {
	var ref triggerRef
	if err := json.Unmarshal(env.Data, &ref); err != nil || ref.ContactID == "" {
		return bus.Permanent(fmt.Errorf("%w: %s without a contactId", event.ErrInvalid, env.Type))
	}
	tenant := env.TenantID
	switch env.Type {
	case event.ContactDeleted:
		return s.contactGone(ctx, tenant, ref.ContactID)
	case event.ContactCreated:
		return s.startAll(ctx, env, TriggerContactCreated, "", ref.ContactID)
	case event.ContactUpdated:
		if err := s.contactChanged(ctx, tenant, ref.ContactID); err != nil {
			return err
		}
		return s.startAll(ctx, env, TriggerContactUpdated, "", ref.ContactID)
	case event.ContactTagged:
		if err := s.contactChanged(ctx, tenant, ref.ContactID); err != nil {
			return err
		}
		return s.startAll(ctx, env, TriggerContactTagged, strings.ToLower(strings.TrimSpace(ref.Tag)), ref.ContactID)
	case event.ContactUntagged, event.ContactConsentGranted, event.ContactConsentRevoked:
		return s.contactChanged(ctx, tenant, ref.ContactID)
	case event.SegmentMemberAdded:
		return s.startAll(ctx, env, TriggerSegmentAdded, ref.SegmentID, ref.ContactID)
	case event.SegmentMemberRemoved:
		return s.startAll(ctx, env, TriggerSegmentRemoved, ref.SegmentID, ref.ContactID)
	case event.WorkflowEventReceived:
		return s.startAll(ctx, env, TriggerCustom, ref.Name, ref.ContactID)
	}
	return nil
}

// startAll starts a run of every active workflow that env triggers.
func (s *Service) startAll(ctx context.Context, env event.Envelope, trigger, key, contactID string) error {
	rows, err := s.db.Reader().QueryContext(ctx, `SELECT id FROM workflows
		WHERE tenant_id = $1 AND trigger_event = $2 AND status = $3 AND trigger_key = $4`, env.TenantID, trigger, StatusActive, key)
	if err != nil {
		return fmt.Errorf("find triggered workflows: %w", err)
	}
	var ids []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			rows.Close()
			return err
		}
		ids = append(ids, id)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	var errs []error
	for _, id := range ids {
		wf, err := s.Get(ctx, env.TenantID, id, 0)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if wf.Trigger.rule != nil {
			ok, err := s.updateMatches(ctx, env, wf.Trigger.rule, contactID)
			if errors.Is(err, ErrContactNotFound) {
				return nil
			}
			if err != nil {
				errs = append(errs, err)
				continue
			}
			if !ok {
				continue
			}
		}
		// Each workflow's run is keyed by the trigger's id, so a retry of
		// this event after a partial failure starts only the missing ones.
		if err := s.StartRun(ctx, env.TenantID, wf, contactID, env.Type, env.ID); err != nil {
			errs = append(errs, fmt.Errorf("start workflow %s: %w", id, err))
		}
	}
	return errors.Join(errs...)
}

// inProgress returns the contact's runs that wait or are held.
func (s *Service) inProgress(ctx context.Context, tenant, contactID string) ([]*Run, error) {
	return s.queryRuns(ctx, `WHERE tenant_id = $1 AND contact_id = $2 AND status IN ('waiting', 'held')`, tenant, contactID)
}

// contactChanged checks the goals of the contact's runs in progress, and
// wakes the runs waiting for a rule that now matches.
func (s *Service) contactChanged(ctx context.Context, tenant, contactID string) error {
	runs, err := s.inProgress(ctx, tenant, contactID)
	if err != nil || len(runs) == 0 {
		return err
	}
	c, err := s.contacts.Contact(ctx, tenant, contactID)
	if errors.Is(err, ErrContactNotFound) {
		return nil // contact.deleted ends its runs
	}
	if err != nil {
		return err
	}
	now := s.clock()
	var errs []error
	for _, r := range runs {
		wf, err := s.head(ctx, s.db.Reader(), tenant, r.WorkflowID)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		def, err := s.definition(ctx, s.db.Reader(), tenant, r.WorkflowID, r.Version)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		reached := -1
		for i, g := range def.goalRules {
			if g.Match(&c, now) {
				reached = i
				break
			}
		}
		switch {
		case reached >= 0:
			err = s.endByGoal(ctx, r, wf, def, reached)
		case r.Status == RunWaiting && r.WaitKind == waitRule && def.node(r.NodeID).rule.Match(&c, now):
			err = s.Wake(ctx, tenant, r.ID, r.Step, wakeMet)
		}
		if err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// contactGone fails the runs of a deleted contact.
func (s *Service) contactGone(ctx context.Context, tenant, contactID string) error {
	runs, err := s.inProgress(ctx, tenant, contactID)
	if err != nil {
		return err
	}
	var errs []error
	for _, r := range runs {
		wf, err := s.head(ctx, s.db.Reader(), tenant, r.WorkflowID)
		if err == nil {
			var def *Definition
			if def, err = s.definition(ctx, s.db.Reader(), tenant, r.WorkflowID, r.Version); err == nil {
				err = s.endForGoneContact(ctx, r, wf, def)
			}
		}
		if err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// HandleMessage is the WORKFLOWS_MESSAGE_CONSUMER handler: it records a
// report on the step that sent the message, and wakes the run if it waits
// for that report. An open counts as a delivery, and a click as both.
func (s *Service) HandleMessage(ctx context.Context, env event.Envelope) error {
	d, err := event.DecodeData[event.MessageData](env)
	if err != nil {
		return bus.Permanent(err)
	}
	if d.SourceType != event.MessageSourceWorkflow {
		return nil
	}
	runID, step, ok := parseSendStep(d.Step)
	if !ok {
		return nil
	}
	var flags int64
	switch env.Type {
	case event.PipelineMessageDelivered:
		flags = flagDelivered
	case event.PipelineMessageOpened:
		flags = flagDelivered | flagOpened
	case event.PipelineMessageClicked:
		flags = flagDelivered | flagOpened | flagClicked
	default:
		return nil
	}
	if _, err := s.db.Writer().ExecContext(ctx, `UPDATE workflow_run_steps SET message_flags = message_flags | $5
		WHERE tenant_id = $1 AND run_id = $2 AND step = $3 AND message_id = $4`, env.TenantID, runID, step, d.MessageID, flags); err != nil {
		return fmt.Errorf("record message report: %w", err)
	}
	r, err := s.loadRun(ctx, s.db.Reader(), env.TenantID, runID)
	if err != nil || r == nil {
		return err
	}
	if r.Status == RunWaiting && r.waitMessageID == d.MessageID && flags&waitFlag(r.WaitKind) != 0 {
		return s.Wake(ctx, env.TenantID, r.ID, r.Step, wakeMet)
	}
	return nil
}

// HandleTimer is the WORKFLOWS_TIMER_CONSUMER handler.
func (s *Service) HandleTimer(ctx context.Context, _ string, data []byte) error {
	var t timerData
	if err := json.Unmarshal(data, &t); err != nil || t.Tenant == "" || t.RunID == "" {
		return bus.Permanent(fmt.Errorf("workflow timer %q does not decode", data))
	}
	return s.Wake(ctx, t.Tenant, t.RunID, t.Step, wakeTime)
}

// updateMatches decides a contact.updated trigger with a rule: the update
// must change a field the rule reads, and the rule must match the new
// values. The contact is read now, with the event's new values laid over
// the fields it changed: when later changes have landed before this event
// is handled, the rule still sees what this update set (the other fields
// are the current ones, the closest the event lets us get to the contact
// as this update left it).
func (s *Service) updateMatches(ctx context.Context, env event.Envelope, r *rule.Rule, contactID string) (bool, error) {
	d, err := event.DecodeData[event.ContactUpdatedData](env)
	if err != nil {
		return false, bus.Permanent(err)
	}
	touched := false
	for _, f := range r.Fields() {
		for changed := range d.Changes {
			if f == changed || strings.HasPrefix(f, changed+".") {
				touched = true
			}
		}
	}
	if !touched {
		return false, nil
	}
	c, err := s.contacts.Contact(ctx, env.TenantID, contactID)
	if err != nil {
		return false, err
	}
	if err := overlay(&c, d.Changes); err != nil {
		return false, bus.Permanent(fmt.Errorf("contact.updated %s: %w", env.ID, err))
	}
	return r.Match(&c, s.clock()), nil
}

// overlay sets the new values of changes on c.
func overlay(c *rule.Contact, changes map[string]event.FieldChange) error {
	profile := map[string]*string{"email": &c.Email, "phone": &c.Phone, "firstName": &c.FirstName, "lastName": &c.LastName,
		"locale": &c.Locale, "timeZone": &c.TimeZone}
	attrs := maps.Clone(c.Attributes)
	for field, ch := range changes {
		var v any
		if len(ch.New) > 0 {
			if err := json.Unmarshal(ch.New, &v); err != nil {
				return fmt.Errorf("new value of %s: %w", field, err)
			}
		}
		if p, ok := profile[field]; ok {
			str, _ := v.(string)
			*p = str
			continue
		}
		if name, ok := strings.CutPrefix(field, "attributes."); ok {
			if attrs == nil {
				attrs = map[string]any{}
			}
			if v == nil {
				delete(attrs, name)
			} else {
				attrs[name] = v
			}
		}
	}
	c.Attributes = attrs
	return nil
}
