package event_test

import (
	"encoding/json"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/alumoutreach/alumoutreach/internal/event"
)

// specSubjects is every subject listed in spec/event-flow-architecture.md,
// in its order, next to the constant that names it.
var specSubjects = []struct{ constant, literal string }{
	// 1. Contact
	{event.ContactCreated, "contact.created"},
	{event.ContactUpdated, "contact.updated"},
	{event.ContactDeleted, "contact.deleted"},
	{event.ContactTagged, "contact.tagged"},
	{event.ContactUntagged, "contact.untagged"},
	{event.ContactConsentGranted, "contact.consent.granted"},
	{event.ContactConsentRevoked, "contact.consent.revoked"},
	// 2. Segment
	{event.SegmentCreated, "segment.created"},
	{event.SegmentUpdated, "segment.updated"},
	{event.SegmentDeleted, "segment.deleted"},
	{event.SegmentEvaluated, "segment.evaluated"},
	{event.SegmentMemberAdded, "segment.member.added"},
	{event.SegmentMemberRemoved, "segment.member.removed"},
	// 3. Template
	{event.TemplateCreated, "template.created"},
	{event.TemplateUpdated, "template.updated"},
	{event.TemplateActivated, "template.activated"},
	{event.TemplateArchived, "template.archived"},
	{event.TemplateDeleted, "template.deleted"},
	{event.TemplateHSMSubmitted, "template.hsm.submitted"},
	{event.TemplateHSMApproved, "template.hsm.approved"},
	{event.TemplateHSMRejected, "template.hsm.rejected"},
	// 4. Campaign
	{event.CampaignCreated, "campaign.created"},
	{event.CampaignScheduled, "campaign.scheduled"},
	{event.CampaignStarted, "campaign.started"},
	{event.CampaignPaused, "campaign.paused"},
	{event.CampaignResumed, "campaign.resumed"},
	{event.CampaignCompleted, "campaign.completed"},
	{event.CampaignCancelled, "campaign.cancelled"},
	{event.CampaignMessageSent, "campaign.message.sent"},
	{event.CampaignMessageDelivered, "campaign.message.delivered"},
	{event.CampaignMessageOpened, "campaign.message.opened"},
	{event.CampaignMessageClicked, "campaign.message.clicked"},
	{event.CampaignMessageBounced, "campaign.message.bounced"},
	// 5. Pipeline
	{event.PipelineMessageQueued, "pipeline.message.queued"},
	{event.PipelineMessageSent, "pipeline.message.sent"},
	{event.PipelineMessageDelivered, "pipeline.message.delivered"},
	{event.PipelineMessageOpened, "pipeline.message.opened"},
	{event.PipelineMessageClicked, "pipeline.message.clicked"},
	{event.PipelineMessageBounced, "pipeline.message.bounced"},
	{event.PipelineMessageFailed, "pipeline.message.failed"},
	{event.PipelineMessageComplained, "pipeline.message.complained"},
	// 6. Workflow
	{event.WorkflowCreated, "workflow.created"},
	{event.WorkflowActivated, "workflow.activated"},
	{event.WorkflowPaused, "workflow.paused"},
	{event.WorkflowRunStarted, "workflow.run.started"},
	{event.WorkflowRunCompleted, "workflow.run.completed"},
	{event.WorkflowRunFailed, "workflow.run.failed"},
	{event.WorkflowRunGoalReached, "workflow.run.goal_reached"},
	{event.WorkflowNodeExecuted, "workflow.node.executed"},
	// 7. Sequence
	{event.SequenceCreated, "sequence.created"},
	{event.SequenceActivated, "sequence.activated"},
	{event.SequencePaused, "sequence.paused"},
	{event.SequenceEnrollmentCreated, "sequence.enrollment.created"},
	{event.SequenceEnrollmentCompleted, "sequence.enrollment.completed"},
	{event.SequenceEnrollmentReplied, "sequence.enrollment.replied"},
	{event.SequenceEnrollmentExited, "sequence.enrollment.exited"},
	{event.SequenceStepExecuted, "sequence.step.executed"},
	{event.SequenceStepPendingManual, "sequence.step.pending_manual"},
	// 8. Inbox
	{event.InboxThreadCreated, "inbox.thread.created"},
	{event.InboxThreadUpdated, "inbox.thread.updated"},
	{event.InboxThreadAssigned, "inbox.thread.assigned"},
	{event.InboxMessageReceived, "inbox.message.received"},
	{event.InboxMessageSent, "inbox.message.sent"},
	{event.InboxSLAWarning, "inbox.sla.warning"},
	{event.InboxSLABreach, "inbox.sla.breach"},
	// 9. Webhook
	{event.WebhookEmailInbound, "webhook.email.inbound"},
	{event.WebhookEmailDelivered, "webhook.email.delivered"},
	{event.WebhookEmailOpened, "webhook.email.opened"},
	{event.WebhookEmailClicked, "webhook.email.clicked"},
	{event.WebhookEmailBounced, "webhook.email.bounced"},
	{event.WebhookEmailComplained, "webhook.email.complained"},
	{event.WebhookSMSInbound, "webhook.sms.inbound"},
	{event.WebhookSMSDelivered, "webhook.sms.delivered"},
	{event.WebhookWhatsAppInbound, "webhook.whatsapp.inbound"},
	{event.WebhookWhatsAppDelivered, "webhook.whatsapp.delivered"},
	{event.WebhookWhatsAppRead, "webhook.whatsapp.read"},
}

// addedSubjects are the subjects this project adds to the spec (additive:
// consumers ignore subjects they do not know), each documented as an
// addition in docs/events.md.
var addedSubjects = []struct{ constant, literal string }{
	{event.PipelineMessageHeld, "pipeline.message.held"},
	{event.PipelineMessageUnsubscribed, "pipeline.message.unsubscribed"},
	{event.WorkflowEventReceived, "workflow.event.received"},
}

func TestEverySpecSubjectIsRegistered(t *testing.T) {
	t.Parallel()
	// The spec lists 7+6+8+12+8+8+9+7+11 subjects.
	if len(specSubjects) != 76 {
		t.Fatalf("test table has %d subjects, the spec lists 76", len(specSubjects))
	}
	want := make([]string, 0, len(specSubjects)+len(addedSubjects))
	for _, s := range slices.Concat(specSubjects, addedSubjects) {
		if s.constant != s.literal {
			t.Errorf("constant for %q is %q", s.literal, s.constant)
		}
		if !event.Known(s.literal) {
			t.Errorf("%s is not registered", s.literal)
		}
		want = append(want, s.literal)
	}
	slices.Sort(want)
	if got := event.Subjects(); !slices.Equal(got, want) {
		t.Errorf("Subjects() differs from the spec and its additions\n got: %v\nwant: %v", got, want)
	}
	if event.Known("contact.exploded") {
		t.Error("an unknown subject is reported known")
	}
}

func TestDomainsCoverEverySubject(t *testing.T) {
	t.Parallel()
	want := []string{"contact", "segment", "template", "campaign", "pipeline", "workflow", "sequence", "inbox", "webhook"}
	if !slices.Equal(event.Domains, want) {
		t.Fatalf("Domains = %v, want %v", event.Domains, want)
	}
	used := map[string]bool{}
	for _, s := range event.Subjects() {
		domain, _, _ := strings.Cut(s, ".")
		if !slices.Contains(event.Domains, domain) {
			t.Errorf("subject %s is outside Domains, so no stream would hold it", s)
		}
		used[domain] = true
	}
	for _, d := range event.Domains {
		if !used[d] {
			t.Errorf("domain %s has no subject", d)
		}
	}
}

func TestSources(t *testing.T) {
	t.Parallel()
	got := []string{
		event.SourceContacts, event.SourceSegments, event.SourceTemplates, event.SourceCampaigns,
		event.SourcePipeline, event.SourceWorkflows, event.SourceSequences, event.SourceInbox, event.SourceWebhooks,
	}
	want := []string{
		"contacts-service", "segments-service", "templates-service", "campaigns-service",
		"pipeline-service", "workflows-service", "sequences-service", "inbox-service", "webhooks-service",
	}
	if !slices.Equal(got, want) {
		t.Errorf("sources = %v, want %v", got, want)
	}
}

func TestValidChannel(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		in   string
		want bool
	}{
		{event.ChannelEmail, true}, {event.ChannelSMS, true}, {event.ChannelWhatsApp, true},
		{"", false}, {"Email", false}, {"fax", false}, {"push", false},
	} {
		if got := event.ValidChannel(tc.in); got != tc.want {
			t.Errorf("ValidChannel(%q) = %v, want %v", tc.in, got, tc.want)
		}
	}
}

var (
	timeType = reflect.TypeFor[event.Time]()
	rawType  = reflect.TypeFor[json.RawMessage]()
)

// fill sets every field of v, recursively, to a valid non-zero value, so
// that any registered payload can be made complete without knowing its type.
func fill(t *testing.T, v reflect.Value, jsonName string) {
	t.Helper()
	switch {
	case v.Type() == timeType:
		v.Set(reflect.ValueOf(event.Time{Time: time.Date(2026, 1, 27, 10, 0, 0, 0, time.UTC)}))
		return
	case v.Type() == rawType:
		v.Set(reflect.ValueOf(json.RawMessage(`"x"`)))
		return
	}
	switch v.Kind() {
	case reflect.String:
		switch jsonName {
		case "channel":
			v.SetString(event.ChannelEmail)
		default:
			v.SetString("x-" + jsonName)
		}
	case reflect.Int, reflect.Int64:
		v.SetInt(1)
	case reflect.Bool:
		v.SetBool(true)
	case reflect.Slice:
		s := reflect.MakeSlice(v.Type(), 1, 1)
		fill(t, s.Index(0), jsonName)
		v.Set(s)
	case reflect.Map:
		m := reflect.MakeMap(v.Type())
		elem := reflect.New(v.Type().Elem()).Elem()
		fill(t, elem, jsonName)
		m.SetMapIndex(reflect.ValueOf("email"), elem)
		v.Set(m)
	case reflect.Struct:
		for i := range v.NumField() {
			f := v.Type().Field(i)
			name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
			fill(t, v.Field(i), name)
		}
	default:
		t.Fatalf("fill: no rule for %s (%s)", v.Type(), jsonName)
	}
}

// filledPayload returns subject's payload with every field set.
func filledPayload(t *testing.T, subject string) event.Payload {
	t.Helper()
	p, ok := event.NewPayload(subject)
	if !ok {
		t.Fatalf("no payload for %s", subject)
	}
	fill(t, reflect.ValueOf(p).Elem(), "")
	return p
}

// TestRequiredFieldsAreNamed removes each field of a complete payload in
// turn: when the payload becomes invalid, the error must name that field.
func TestRequiredFieldsAreNamed(t *testing.T) {
	t.Parallel()
	for _, subject := range event.Subjects() {
		t.Run(subject, func(t *testing.T) {
			t.Parallel()
			full := filledPayload(t, subject)
			if err := full.Validate(); err != nil {
				t.Fatalf("complete payload refused: %v", err)
			}
			zero, _ := event.NewPayload(subject)
			if zero.Validate() == nil {
				t.Fatal("empty payload accepted: every payload needs at least one required field")
			}
			b, err := json.Marshal(full)
			if err != nil {
				t.Fatal(err)
			}
			var fields map[string]json.RawMessage
			if err := json.Unmarshal(b, &fields); err != nil {
				t.Fatal(err)
			}
			required := 0
			for name := range fields {
				without := map[string]json.RawMessage{}
				for k, v := range fields {
					if k != name {
						without[k] = v
					}
				}
				b, _ := json.Marshal(without)
				p, _ := event.NewPayload(subject)
				if err := json.Unmarshal(b, p); err != nil {
					t.Fatal(err)
				}
				if err := p.Validate(); err != nil {
					required++
					if got, want := err.Error(), name+" is required"; got != want {
						t.Errorf("without %s: error %q, want %q", name, got, want)
					}
				}
			}
			if required == 0 {
				t.Error("no field is required")
			}
		})
	}
}

func TestValidateMessages(t *testing.T) {
	t.Parallel()
	at := event.Time{Time: time.Date(2026, 1, 27, 10, 0, 0, 0, time.UTC)}
	msg := event.MessageData{
		MessageID: "m1", Channel: "email", ContactID: "c1", RecipientAddress: "a@example.com",
		SourceType: event.MessageSourceCampaign, SourceID: "camp1",
	}
	for _, tc := range []struct {
		name    string
		payload event.Payload
		want    string // "" means valid
	}{
		{"contact created without id", event.ContactCreatedData{Email: "a@example.com"}, "contactId is required"},
		{"contact created as in spec, no version", event.ContactCreatedData{ContactID: "c1"}, ""},
		{"contact created negative version", event.ContactCreatedData{ContactID: "c1", Version: -1}, "version must not be negative, got -1"},
		{"tag all missing", event.ContactTaggedData{}, "contactId, tag and version are required"},
		{"updated without changes", event.ContactUpdatedData{ContactID: "c1", Version: 2}, "changes is required"},
		{"updated negative version", event.ContactUpdatedData{ContactID: "c1", Version: -3, Changes: map[string]event.FieldChange{"email": {}}}, "version must be positive, got -3"},
		{"consent bad channel", event.ContactConsentRevokedData{ContactID: "c1", Channel: "fax", Source: "api", At: at, Version: 2}, `channel "fax" is not one of email, sms, whatsapp`},
		{"consent missing channel and at", event.ContactConsentGrantedData{ContactID: "c1", Source: "api", Version: 2}, "channel and at are required"},
		{"segment member", event.SegmentMemberAddedData{ContactID: "c1"}, "segmentId is required"},
		{"segment evaluated negative", event.SegmentEvaluatedData{SegmentID: "s1", Removed: -1}, "removed must not be negative, got -1"},
		{"hsm approved without reason", event.TemplateHSMApprovedData{TemplateID: "t1", ProviderTemplateName: "welcome", Language: "en"}, ""},
		{"hsm rejected without reason", event.TemplateHSMRejectedData{TemplateHSMData: event.TemplateHSMData{TemplateID: "t1", ProviderTemplateName: "welcome", Language: "en"}}, "reason is required"},
		{"campaign scheduled", event.CampaignScheduledData{CampaignID: "camp1"}, "scheduledAt is required"},
		{"campaign message without campaign", event.CampaignMessageSentData{MessageData: msg}, "campaignId is required"},
		{"campaign message missing both", event.CampaignMessageSentData{}, "messageId, channel, contactId, sourceType, sourceId and campaignId are required"},
		{"pipeline valid", msg, ""},
		// A campaign queues by contact; the pipeline finds the address.
		{"pipeline queued without recipient", event.PipelineMessageQueuedData{MessageID: "m1", Channel: "sms", ContactID: "c1", SourceType: "campaign", SourceID: "k1"}, ""},
		{"pipeline missing source", event.PipelineMessageSentData{MessageID: "m1", Channel: "sms", ContactID: "c1", RecipientAddress: "+15005550006", SourceType: "workflow"}, "sourceId is required"},
		{"goal without goal", event.WorkflowRunGoalReachedData{WorkflowRunData: event.WorkflowRunData{WorkflowID: "w1", RunID: "r1", ContactID: "c1"}}, "goalId is required"},
		{"run failed without run", event.WorkflowRunFailedData{Reason: "boom"}, "workflowId, runId and contactId are required"},
		{"step executed", event.SequenceStepExecutedData{SequenceStepData: event.SequenceStepData{SequenceEnrollmentData: event.SequenceEnrollmentData{SequenceID: "q1", EnrollmentID: "e1", ContactID: "c1"}, StepID: "s1"}}, "stepType is required"},
		{"enrollment exited", event.SequenceEnrollmentExitedData{SequenceEnrollmentData: event.SequenceEnrollmentData{SequenceID: "q1", EnrollmentID: "e1", ContactID: "c1"}}, "reason is required"},
		{"inbox sla", event.InboxSLABreachData{ThreadID: "th1", Kind: event.SLAFirstResponse}, "dueAt is required"},
		{"inbox message", event.InboxMessageReceivedData{MessageID: "im1", Channel: "whatsapp"}, "threadId is required"},
		{"provider event", event.WebhookEmailBouncedData{Provider: "smtp", Channel: "email", OccurredAt: at}, "externalId is required"},
		{"inbound", event.WebhookSMSInboundData{Provider: "twilio", Channel: "sms", ExternalID: "SM1", From: "+1555", ReceivedAt: at}, "to is required"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			err := tc.payload.Validate()
			switch {
			case tc.want == "" && err != nil:
				t.Errorf("refused: %v", err)
			case tc.want != "" && err == nil:
				t.Errorf("accepted, want %q", tc.want)
			case tc.want != "" && err.Error() != tc.want:
				t.Errorf("error %q, want %q", err, tc.want)
			}
		})
	}
}

// TestSendAfterIsOmittedWhenZero: sendAfter is written on held only, in
// the envelope's timestamp format, and absent from every other status.
func TestSendAfterIsOmittedWhenZero(t *testing.T) {
	t.Parallel()
	msg := event.MessageData{
		MessageID: "m1", Channel: "sms", ContactID: "c1", RecipientAddress: "+447700900111",
		SourceType: event.MessageSourceCampaign, SourceID: "camp1",
	}
	b, err := json.Marshal(msg)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(b), "sendAfter") || strings.Contains(string(b), "occurredAt") {
		t.Fatalf("zero times written: %s", b)
	}
	london, _ := time.LoadLocation("Europe/London")
	msg.SendAfter = event.Time{Time: time.Date(2026, 6, 28, 8, 0, 0, 0, london)}
	if b, err = json.Marshal(msg); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), `"sendAfter":"2026-06-28T07:00:00.000Z"`) {
		t.Fatalf("sendAfter not in UTC with milliseconds: %s", b)
	}
}
