package event_test

import (
	"context"
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/alumoutreach/alumoutreach/internal/event"
)

var t0 = event.Time{Time: time.Date(2026, 1, 27, 10, 0, 0, 0, time.UTC)}

func decodeAs[T any]() func(event.Envelope) (any, error) {
	return func(e event.Envelope) (any, error) { return event.DecodeData[T](e) }
}

func TestRoundTripPerDomain(t *testing.T) {
	t.Parallel()
	msg := event.MessageData{
		MessageID: "m1", Channel: event.ChannelEmail, ContactID: "c1", RecipientAddress: "john@example.com",
		SourceType: event.MessageSourceCampaign, SourceID: "camp1", TemplateID: "t1", ExternalID: "prov-1",
	}
	enrollment := event.SequenceEnrollmentData{SequenceID: "q1", EnrollmentID: "e1", ContactID: "c1"}
	for _, tc := range []struct {
		subject, source string
		data            any
		decode          func(event.Envelope) (any, error)
	}{
		{event.ContactUpdated, event.SourceContacts, event.ContactUpdatedData{
			ContactID: "c1", Version: 4,
			Changes: map[string]event.FieldChange{
				"email":              {Old: json.RawMessage(`"old@example.com"`), New: json.RawMessage(`"new@example.com"`)},
				"attributes.company": {New: json.RawMessage(`{"name":"Acme","size":12}`)},
			},
		}, decodeAs[event.ContactUpdatedData]()},
		{event.SegmentMemberAdded, event.SourceSegments, event.SegmentMemberAddedData{
			SegmentID: "s1", ContactID: "c1", ContactVersion: 4,
		}, decodeAs[event.SegmentMemberAddedData]()},
		{event.TemplateHSMRejected, event.SourceTemplates, event.TemplateHSMRejectedData{TemplateHSMData: event.TemplateHSMData{
			TemplateID: "t1", ProviderTemplateName: "welcome_v2", Language: "en_US", Category: "MARKETING", Reason: "INVALID_FORMAT",
		}}, decodeAs[event.TemplateHSMRejectedData]()},
		{event.CampaignMessageClicked, event.SourceCampaigns, event.CampaignMessageClickedData{
			MessageData: func() event.MessageData { m := msg; m.URL = "https://example.com/x"; m.OccurredAt = t0; return m }(),
			CampaignID:  "camp1",
		}, decodeAs[event.CampaignMessageClickedData]()},
		{event.PipelineMessageBounced, event.SourcePipeline, func() event.PipelineMessageBouncedData {
			m := msg
			m.BounceType, m.Reason, m.ErrorCode = event.BounceHard, "mailbox does not exist", "550"
			return m
		}(), decodeAs[event.PipelineMessageBouncedData]()},
		{event.PipelineMessageHeld, event.SourcePipeline, func() event.PipelineMessageHeldData {
			m := msg
			m.SendAfter = event.Time{Time: t0.Add(9 * time.Hour)}
			return m
		}(), decodeAs[event.PipelineMessageHeldData]()},
		{event.WorkflowNodeExecuted, event.SourceWorkflows, event.WorkflowNodeExecutedData{
			WorkflowRunData: event.WorkflowRunData{WorkflowID: "w1", WorkflowName: "Onboarding", Version: 3, RunID: "r1", ContactID: "c1"},
			NodeID:          "n2", NodeType: "condition", Branch: "yes",
		}, decodeAs[event.WorkflowNodeExecutedData]()},
		{event.SequenceStepPendingManual, event.SourceSequences, event.SequenceStepPendingManualData{
			SequenceStepData: event.SequenceStepData{SequenceEnrollmentData: enrollment, StepID: "st3", StepNumber: 3, StepType: "call"},
			AssigneeID:       "u1", DueAt: event.Time{Time: t0.Add(24 * time.Hour)},
		}, decodeAs[event.SequenceStepPendingManualData]()},
		{event.InboxSLABreach, event.SourceInbox, event.InboxSLABreachData{
			ThreadID: "th1", ContactID: "c1", AssigneeID: "u1", Kind: event.SLAFirstResponse, DueAt: t0,
		}, decodeAs[event.InboxSLABreachData]()},
		{event.WebhookEmailInbound, event.SourceWebhooks, event.WebhookEmailInboundData{
			Provider: "smtp", Channel: event.ChannelEmail, ExternalID: "<abc@mail.example.com>",
			From: "john@example.com", To: "alumni@ourschool.edu", Subject: "Re: Reunion", Text: "Count me in!",
			InReplyTo: "prov-1", ReceivedAt: t0,
		}, decodeAs[event.WebhookEmailInboundData]()},
	} {
		t.Run(tc.subject, func(t *testing.T) {
			t.Parallel()
			env, err := event.New(context.Background(), tc.subject, tc.source, "tenant-123", tc.data)
			if err != nil {
				t.Fatal(err)
			}
			b, err := event.Encode(env, 0)
			if err != nil {
				t.Fatalf("Encode: %v", err)
			}
			got, err := event.Decode(b)
			if err != nil {
				t.Fatalf("Decode: %v\n%s", err, b)
			}
			if got.ID != env.ID || got.Type != tc.subject || got.Source != tc.source || got.TenantID != "tenant-123" ||
				got.Version != event.CurrentVersion || !got.Timestamp.Equal(env.Timestamp.Time) {
				t.Errorf("envelope changed in transit:\n got %+v\nwant %+v", got, env)
			}
			data, err := tc.decode(got)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(data, tc.data) {
				t.Errorf("payload changed in transit:\n got %+v\nwant %+v", data, tc.data)
			}
		})
	}
}

// validEnvelope returns a complete, valid contact.tagged envelope.
func validEnvelope() event.Envelope {
	return event.Envelope{
		ID: "0190c6f8-0000-7000-8000-000000000001", Type: event.ContactTagged, Version: "1.0",
		Source: event.SourceContacts, Timestamp: t0, TenantID: "tenant-123", CorrelationID: "corr-1",
		Data: json.RawMessage(`{"contactId":"c1","tag":"vip","version":2}`),
	}
}

func TestEnvelopeValidation(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name   string
		mutate func(*event.Envelope)
		want   error
		detail string
		// payload marks problems inside the payload: New refuses them on the
		// way out and DecodeData on the way in, while Encode and Decode only
		// check the envelope.
		payload bool
	}{
		{"valid", func(*event.Envelope) {}, nil, "", false},
		{"missing id", func(e *event.Envelope) { e.ID = "" }, event.ErrInvalid, "envelope lacks id", false},
		{"missing type", func(e *event.Envelope) { e.Type = "" }, event.ErrInvalid, "envelope lacks type", false},
		{"missing version", func(e *event.Envelope) { e.Version = " " }, event.ErrInvalid, "envelope lacks version", false},
		{"missing source", func(e *event.Envelope) { e.Source = "" }, event.ErrInvalid, "envelope lacks source", false},
		{"missing tenantId", func(e *event.Envelope) { e.TenantID = "" }, event.ErrInvalid, "envelope lacks tenantId", false},
		{"missing correlationId", func(e *event.Envelope) { e.CorrelationID = "" }, event.ErrInvalid, "envelope lacks correlationId", false},
		{"missing timestamp", func(e *event.Envelope) { e.Timestamp = event.Time{} }, event.ErrInvalid, "envelope lacks timestamp", false},
		{"missing data", func(e *event.Envelope) { e.Data = nil }, event.ErrInvalid, "envelope lacks data", false},
		{"several missing", func(e *event.Envelope) { e.ID, e.TenantID = "", "" }, event.ErrInvalid, "envelope lacks id, tenantId", false},
		{"unknown subject", func(e *event.Envelope) { e.Type = "contact.exploded" }, event.ErrInvalid, `unknown subject "contact.exploded"`, false},
		{"payload misses a field", func(e *event.Envelope) { e.Data = json.RawMessage(`{"contactId":"c1","version":2}`) }, event.ErrInvalid, "contact.tagged payload: tag is required", true},
		{"payload of the wrong shape", func(e *event.Envelope) { e.Data = json.RawMessage(`{"contactId":7}`) }, event.ErrInvalid, "contact.tagged payload does not decode", true},
		{"payload null", func(e *event.Envelope) { e.Data = json.RawMessage(`null`) }, event.ErrInvalid, "envelope lacks data", false},
		{"future major version", func(e *event.Envelope) { e.Version = "2.0" }, event.ErrUnsupportedVersion, `version "2.0"`, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			env := validEnvelope()
			tc.mutate(&env)
			err := env.Validate()
			if !errors.Is(err, tc.want) || (tc.want == nil) != (err == nil) {
				t.Fatalf("Validate() = %v, want %v", err, tc.want)
			}
			if err != nil && !strings.Contains(err.Error(), tc.detail) {
				t.Errorf("error %q does not say %q", err, tc.detail)
			}
			if tc.want == nil {
				return
			}
			if tc.payload {
				b, err := event.Encode(env, 0)
				if err != nil {
					t.Fatalf("Encode checks the envelope only: %v", err)
				}
				got, err := event.Decode(b)
				if err != nil {
					t.Fatalf("Decode checks the envelope only: %v", err)
				}
				if _, err := event.DecodeData[event.ContactTagData](got); !errors.Is(err, tc.want) || !strings.Contains(err.Error(), strings.TrimPrefix(tc.detail, "contact.tagged payload")) {
					t.Fatalf("DecodeData: %v, want %v saying %q", err, tc.want, tc.detail)
				}
				return
			}
			// Encode refuses what Validate refuses, and so does Decode.
			if _, err := event.Encode(env, 0); !errors.Is(err, tc.want) {
				t.Errorf("Encode: %v, want %v", err, tc.want)
			}
			b, _ := json.Marshal(env)
			if _, err := event.Decode(b); !errors.Is(err, tc.want) {
				t.Errorf("Decode: %v, want %v", err, tc.want)
			}
		})
	}
}

func TestVersionRule(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		version string
		ok      bool
	}{
		{"1.0", true}, {"1.7", true}, {"1.12", true},
		{"0.9", true}, // the previous major is still read
		{"2.0", false}, {"x", false}, {"1", false}, {"", false}, {"1.x", false}, {"-1.0", false}, {"1.-1", false},
	} {
		t.Run(tc.version, func(t *testing.T) {
			t.Parallel()
			err := event.CheckVersion(tc.version)
			if tc.ok {
				if err != nil {
					t.Errorf("refused: %v", err)
				}
			} else if !errors.Is(err, event.ErrUnsupportedVersion) {
				t.Errorf("CheckVersion(%q) = %v, want ErrUnsupportedVersion", tc.version, err)
			}
			if tc.version == "" {
				return // an empty version is reported missing by the envelope
			}
			env := validEnvelope()
			env.Version = tc.version
			b, _ := json.Marshal(env)
			_, err = event.Decode(b)
			if tc.ok != (err == nil) {
				t.Errorf("Decode with version %q: %v", tc.version, err)
			}
			if !tc.ok && !errors.Is(err, event.ErrUnsupportedVersion) {
				t.Errorf("Decode with version %q: %v, want ErrUnsupportedVersion", tc.version, err)
			}
		})
	}
}

func TestEncodeSizeLimit(t *testing.T) {
	t.Parallel()
	big := event.ContactCreatedData{
		ContactID:  "c1",
		Attributes: map[string]json.RawMessage{"notes": json.RawMessage(`"` + strings.Repeat("a", event.DefaultMaxSize) + `"`)},
	}
	env, err := event.New(context.Background(), event.ContactCreated, event.SourceContacts, "tenant-123", big)
	if err != nil {
		t.Fatal(err)
	}
	_, err = event.Encode(env, 0)
	if !errors.Is(err, event.ErrTooLarge) {
		t.Fatalf("Encode of a %d-byte payload = %v, want ErrTooLarge", len(env.Data), err)
	}
	for _, want := range []string{event.ContactCreated, env.ID, "the limit is 1048576", "reference large data by id"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %q", err, want)
		}
	}

	// The limit is inclusive and configurable.
	small := validEnvelope()
	b, err := event.Encode(small, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := event.Encode(small, len(b)); err != nil {
		t.Errorf("Encode at exactly the limit: %v", err)
	}
	if _, err := event.Encode(small, len(b)-1); !errors.Is(err, event.ErrTooLarge) {
		t.Errorf("Encode one byte over the limit: %v, want ErrTooLarge", err)
	}
}

func TestCorrelationAndCausation(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	data := event.ContactTaggedData{ContactID: "c1", Tag: "vip", Version: 2}

	// Without a correlation in ctx, an event starts its own.
	root, err := event.New(ctx, event.ContactTagged, event.SourceContacts, "tenant-123", data)
	if err != nil {
		t.Fatal(err)
	}
	if root.CorrelationID != root.ID || root.CausationID != "" {
		t.Errorf("root event: correlationId %q causationId %q, want its own id and none", root.CorrelationID, root.CausationID)
	}
	b, _ := event.Encode(root, 0)
	if strings.Contains(string(b), "causationId") {
		t.Errorf("an event without a cause encodes causationId: %s", b)
	}

	// An HTTP request's correlation id is carried.
	reqCtx := event.WithCorrelationID(ctx, "req-42")
	fromRequest, _ := event.New(reqCtx, event.ContactTagged, event.SourceContacts, "tenant-123", data)
	if fromRequest.CorrelationID != "req-42" || fromRequest.CausationID != "" {
		t.Errorf("request event: correlationId %q causationId %q", fromRequest.CorrelationID, fromRequest.CausationID)
	}

	// An event published while handling another keeps its correlation and names it as cause.
	handling := event.WithCause(ctx, fromRequest)
	if event.CorrelationID(handling) != "req-42" || event.CausationID(handling) != fromRequest.ID {
		t.Errorf("context: correlation %q causation %q", event.CorrelationID(handling), event.CausationID(handling))
	}
	child, _ := event.New(handling, event.SegmentMemberAdded, event.SourceSegments, "tenant-123",
		event.SegmentMemberAddedData{SegmentID: "s1", ContactID: "c1", ContactVersion: 2})
	b, err = event.Encode(child, 0)
	if err != nil {
		t.Fatal(err)
	}
	decoded, err := event.Decode(b)
	if err != nil {
		t.Fatal(err)
	}
	if decoded.CorrelationID != "req-42" || decoded.CausationID != fromRequest.ID {
		t.Errorf("child event: correlationId %q causationId %q, want req-42 and %s", decoded.CorrelationID, decoded.CausationID, fromRequest.ID)
	}
	if child.ID == fromRequest.ID {
		t.Error("child reuses its cause's id")
	}
}

func TestTimestampFormat(t *testing.T) {
	t.Parallel()
	paris := time.FixedZone("CET", 3600)
	for _, tc := range []struct {
		in   time.Time
		want string
	}{
		{time.Date(2026, 1, 27, 10, 0, 0, 0, time.UTC), `"2026-01-27T10:00:00.000Z"`},
		{time.Date(2026, 1, 27, 11, 0, 0, 0, paris), `"2026-01-27T10:00:00.000Z"`},
		{time.Date(2026, 1, 27, 10, 0, 0, 123456789, time.UTC), `"2026-01-27T10:00:00.123Z"`},
	} {
		b, err := json.Marshal(event.Time{Time: tc.in})
		if err != nil {
			t.Fatal(err)
		}
		if string(b) != tc.want {
			t.Errorf("%v encodes as %s, want %s", tc.in, b, tc.want)
		}
	}

	env := validEnvelope()
	b, err := event.Encode(env, 0)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), `"timestamp":"2026-01-27T10:00:00.000Z"`) {
		t.Errorf("envelope timestamp not RFC 3339 UTC with milliseconds: %s", b)
	}

	now, _ := event.New(context.Background(), event.ContactTagged, event.SourceContacts, "t", event.ContactTaggedData{})
	if now.Timestamp.Location() != time.UTC || now.Timestamp.Nanosecond()%int(time.Millisecond) != 0 {
		t.Errorf("New timestamp %v is not UTC at millisecond precision", now.Timestamp)
	}

	// Any RFC 3339 input is read; null reads as absent; other shapes are refused.
	var got event.Time
	if err := json.Unmarshal([]byte(`"2026-01-27T11:00:00.5+01:00"`), &got); err != nil || !got.Equal(time.Date(2026, 1, 27, 10, 0, 0, 5e8, time.UTC)) {
		t.Errorf("offset input: %v, %v", got, err)
	}
	got = event.Time{}
	if err := json.Unmarshal([]byte(`null`), &got); err != nil || !got.IsZero() {
		t.Errorf("null: %v, %v", got, err)
	}
	for _, bad := range []string{`"27/01/2026"`, `1769508000`, `""`} {
		if err := json.Unmarshal([]byte(bad), &got); err == nil {
			t.Errorf("%s accepted as a timestamp", bad)
		}
	}
	if _, err := json.Marshal(event.Time{Time: time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)}); err == nil {
		t.Error("year 10000 encoded, but no RFC 3339 reader could read it back")
	}
}

// The specification's example events, with the id and type the envelope adds.
var specExamples = map[string]string{
	event.ContactCreated: `{
  "id": "0190c6f8-7b1a-7000-8000-000000000001",
  "type": "contact.created",
  "version": "1.0",
  "source": "contacts-service",
  "timestamp": "2026-01-27T10:00:00.000Z",
  "tenantId": "tenant-123",
  "correlationId": "550e8400-e29b-41d4-a716-446655440000",
  "data": {
    "contactId": "550e8400-e29b-41d4-a716-446655440001",
    "email": "john@example.com",
    "phone": "+1234567890",
    "source": "website_signup",
    "attributes": {
      "company": "Acme Corp"
    }
  }
}`,
	event.PipelineMessageSent: `{
  "id": "0190c6f8-7b1a-7000-8000-000000000002",
  "type": "pipeline.message.sent",
  "version": "1.0",
  "source": "pipeline-service",
  "timestamp": "2026-01-27T10:00:00.000Z",
  "tenantId": "tenant-123",
  "correlationId": "550e8400-e29b-41d4-a716-446655440000",
  "data": {
    "messageId": "550e8400-e29b-41d4-a716-446655440002",
    "channel": "email",
    "contactId": "550e8400-e29b-41d4-a716-446655440001",
    "recipientAddress": "john@example.com",
    "sourceType": "campaign",
    "sourceId": "550e8400-e29b-41d4-a716-446655440003",
    "templateId": "550e8400-e29b-41d4-a716-446655440004",
    "externalId": "provider-msg-12345"
  }
}`,
	event.WorkflowRunGoalReached: `{
  "id": "0190c6f8-7b1a-7000-8000-000000000003",
  "type": "workflow.run.goal_reached",
  "version": "1.0",
  "source": "workflows-service",
  "timestamp": "2026-01-27T10:00:00.000Z",
  "tenantId": "tenant-123",
  "correlationId": "550e8400-e29b-41d4-a716-446655440000",
  "data": {
    "workflowId": "550e8400-e29b-41d4-a716-446655440005",
    "workflowName": "New User Onboarding",
    "runId": "550e8400-e29b-41d4-a716-446655440006",
    "contactId": "550e8400-e29b-41d4-a716-446655440001",
    "goalId": "goal-purchase",
    "goalName": "Made Purchase"
  }
}`,
}

func TestSpecExamplesDecode(t *testing.T) {
	t.Parallel()
	decode := func(t *testing.T, subject string) event.Envelope {
		t.Helper()
		env, err := event.Decode([]byte(specExamples[subject]))
		if err != nil {
			t.Fatalf("spec example of %s refused: %v", subject, err)
		}
		if env.Type != subject || env.TenantID != "tenant-123" || env.CorrelationID != "550e8400-e29b-41d4-a716-446655440000" ||
			!env.Timestamp.Equal(t0.Time) || env.CausationID != "" {
			t.Errorf("envelope: %+v", env)
		}
		return env
	}

	t.Run(event.ContactCreated, func(t *testing.T) {
		t.Parallel()
		env := decode(t, event.ContactCreated)
		if env.Source != event.SourceContacts {
			t.Errorf("source %q", env.Source)
		}
		d, err := event.DecodeData[event.ContactCreatedData](env)
		if err != nil {
			t.Fatal(err)
		}
		want := event.ContactCreatedData{
			ContactID: "550e8400-e29b-41d4-a716-446655440001", Email: "john@example.com", Phone: "+1234567890",
			Source: "website_signup", Attributes: map[string]json.RawMessage{"company": json.RawMessage(`"Acme Corp"`)},
		}
		if !reflect.DeepEqual(d, want) {
			t.Errorf("data = %+v, want %+v", d, want)
		}
		// Re-encoding keeps the example's fields and adds none (no version was given).
		var back, orig map[string]any
		b, _ := json.Marshal(d)
		_ = json.Unmarshal(b, &back)
		_ = json.Unmarshal(env.Data, &orig)
		if !reflect.DeepEqual(back, orig) {
			t.Errorf("re-encoded data %s differs from the example %s", b, env.Data)
		}
	})
	t.Run(event.PipelineMessageSent, func(t *testing.T) {
		t.Parallel()
		d, err := event.DecodeData[event.PipelineMessageSentData](decode(t, event.PipelineMessageSent))
		if err != nil {
			t.Fatal(err)
		}
		if d.MessageID != "550e8400-e29b-41d4-a716-446655440002" || d.Channel != event.ChannelEmail ||
			d.SourceType != event.MessageSourceCampaign || d.ExternalID != "provider-msg-12345" || d.TemplateID == "" {
			t.Errorf("data = %+v", d)
		}
	})
	t.Run(event.WorkflowRunGoalReached, func(t *testing.T) {
		t.Parallel()
		d, err := event.DecodeData[event.WorkflowRunGoalReachedData](decode(t, event.WorkflowRunGoalReached))
		if err != nil {
			t.Fatal(err)
		}
		if d.WorkflowName != "New User Onboarding" || d.RunID != "550e8400-e29b-41d4-a716-446655440006" ||
			d.GoalID != "goal-purchase" || d.GoalName != "Made Purchase" {
			t.Errorf("data = %+v", d)
		}
	})
	t.Run("without id and type", func(t *testing.T) {
		t.Parallel()
		// The spec's BaseEvent lacks id and type; our envelope requires them.
		var m map[string]any
		_ = json.Unmarshal([]byte(specExamples[event.ContactCreated]), &m)
		delete(m, "id")
		delete(m, "type")
		b, _ := json.Marshal(m)
		_, err := event.Decode(b)
		if !errors.Is(err, event.ErrInvalid) || !strings.Contains(err.Error(), "id, type") {
			t.Errorf("Decode = %v, want ErrInvalid naming id and type", err)
		}
	})
}
