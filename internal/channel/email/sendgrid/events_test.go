package sendgrid

import (
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestParseEvents(t *testing.T) {
	t.Parallel()
	unix := func(s int64) time.Time { return time.Unix(s, 0).UTC() }
	const (
		smtpID = "14c5d75ce93.dfd.64b469@ismtpd-555"
		sgMsg  = "14c5d75ce93.dfd.64b469.filter0001.16648.5515E0B88.0"
		ua     = "Mozilla/4.0 (compatible; MSIE 6.1; Windows XP; .NET CLR 1.1.4322; .NET CLR 2.0.50727)"
		tenant = "0192f1a0-0000-7000-8000-00000000a1b2"
	)
	cats := []string{"cat facts"}
	args := func(kv ...string) map[string]string {
		m := map[string]string{}
		for i := 0; i < len(kv); i += 2 {
			m[kv[i]] = kv[i+1]
		}
		return m
	}
	cases := []struct {
		file string
		want []Event
	}{
		// One event of each type, as SendGrid's Event Webhook reference
		// shows them (the blocked bounce adapted to carry a block's reason).
		{"events_reference.json", []Event{
			{Type: EventProcessed, Email: "example@test.com", Timestamp: unix(1513299569), SGEventID: "rbtnWrG1DVDGGGFHFyun0A==",
				SGMessageID: "14c5d75ce93.dfd.64b469.filter0001.16648.5515E0B88.000000000000000000000", SMTPID: smtpID, Categories: cats},
			{Type: EventDropped, Email: "example@test.com", Timestamp: unix(1513299569), SGEventID: "zmzJhfJgAfUSOW80yEbPyw==",
				SGMessageID: sgMsg, SMTPID: smtpID, Reason: "Bounced Address", Status: "5.0.0", Categories: cats},
			{Type: EventDelivered, Email: "example@test.com", Timestamp: unix(1513299569), SGEventID: "rWVYmVk90MjZJ9iohOBa3w==",
				SGMessageID: sgMsg, SMTPID: smtpID, Response: "250 OK", IP: "168.1.1.1", Categories: cats},
			{Type: EventDeferred, Email: "example@example.com", Timestamp: unix(1513299569), SGEventID: "t7LEShmowp86DTdUW8M-GQ==",
				SGMessageID: sgMsg, SMTPID: smtpID, Response: "400 try again later", Attempt: 5, Categories: cats},
			{Type: EventBounce, Email: "example@test.com", Timestamp: unix(1513299569), SGEventID: "6g4ZI7SA-xmRDv57GoPIPw==",
				SGMessageID: sgMsg, SMTPID: smtpID, Reason: "500 unknown recipient", Status: "5.0.0",
				BounceType: BounceTypeBounce, BounceClassification: "Invalid Address", Categories: cats},
			{Type: EventBounce, Email: "example@test.com", Timestamp: unix(1513299569), SGEventID: "8Kb3pUo2S-y4Pgt8Xx4Fbw==",
				SGMessageID: sgMsg, SMTPID: smtpID, Reason: "550 5.7.1 Service unavailable; client host blocked using Spamhaus",
				Status: "5.7.1", BounceType: BounceTypeBlocked, BounceClassification: "Reputation", Categories: cats},
			{Type: EventOpen, Email: "example@test.com", Timestamp: unix(1513299569), SGEventID: "FOTFFO0ecsBE-zxFXfs6WA==",
				SGMessageID: sgMsg, UserAgent: ua, IP: "255.255.255.255", Categories: cats},
			{Type: EventClick, Email: "email@example.com", Timestamp: unix(1249948800), SGEventID: "sendgrid_internal_event_id",
				SGMessageID: "sendgrid_internal_message_id", URL: "http://yourdomain.com/blog/news.html", IP: "255.255.255.255",
				UserAgent:  "Mozilla/5.0 (iPhone; CPU iPhone OS 7_1_2 like Mac OS X) AppleWebKit/537.51.2 (KHTML, like Gecko) Version/7.0 Mobile/11D257 Safari/9537.53",
				Categories: []string{"category1", "category2"}, ASMGroupID: 1, CustomArgs: args("unique_arg_key", "unique_arg_value")},
			{Type: EventSpamReport, Email: "example@test.com", Timestamp: unix(1513299569), SGEventID: "37nvH5QBz858KGVYCM4uOA==",
				SGMessageID: sgMsg, SMTPID: smtpID},
			{Type: EventUnsubscribe, Email: "example@test.com", Timestamp: unix(1513299569), SGEventID: "zz_BjPgU_5pS-J8vlfB1sg==",
				SGMessageID: sgMsg, Categories: cats},
			{Type: EventGroupUnsubscribe, Email: "example@test.com", Timestamp: unix(1513299569), SGEventID: "ahSCB7xYcXFb-hEaawsPRw==",
				SGMessageID: sgMsg, SMTPID: smtpID, UserAgent: ua, IP: "255.255.255.255", URL: "http://www.sendgrid.com/",
				ASMGroupID: 10, Categories: cats},
			{Type: EventGroupResubscribe, Email: "example@test.com", Timestamp: unix(1513299569), SGEventID: "w_u0vJhLT-OFfprar5N93g==",
				SGMessageID: sgMsg, SMTPID: smtpID, UserAgent: ua, IP: "255.255.255.255", URL: "http://www.sendgrid.com/",
				ASMGroupID: 10, Categories: cats},
			{Type: EventAccountStatusChange, Timestamp: unix(1709142428), SGEventID: "MjEzNTg5OTcyOC10ZXJtaW5hdGUtMTcwNzg1MTUzMQ",
				AccountStatus: "compliance_suspend"},
		}},
		// What the pipeline's own mail produces: our Message-ID as smtp-id,
		// message_id and tenant_id as custom arguments.
		{"events_pipeline.json", []Event{
			{Type: EventDelivered, Email: "dana.okafor@alumni.example.edu", Timestamp: unix(1764237003),
				SGEventID: "ZGVsaXZlcmVkLTE4MzQ5LTAxOTM2OTRl", SGMessageID: "Kq9vZ3tLQ0eP4cS1r2Jm8w.recvd-7c5b8d9f4-x2lq7-1-674F3A1B-12.0",
				SMTPID:     "0193694e-5a2b-7c41-9d0e-6f1a2b3c4d5e@mail.alum.example.org",
				Response:   "250 2.0.0 OK  1764237003 d2e1a72fcca58-7258a1b2c3dsi1234567b3a.189 - gsmtp",
				IP:         "149.72.123.45",
				Categories: []string{"campaign", "reunion-2026"},
				CustomArgs: args("message_id", "0193694e-5a2b-7c41-9d0e-6f1a2b3c4d5e", "tenant_id", tenant, "cohort", "1998")},
			{Type: EventOpen, Email: "dana.okafor@alumni.example.edu", Timestamp: unix(1764240612),
				SGEventID: "b3Blbi1tYWNoaW5lLTE4MzQ5LTAxOTM2OTRl", SGMessageID: "Kq9vZ3tLQ0eP4cS1r2Jm8w.recvd-7c5b8d9f4-x2lq7-1-674F3A1B-12.0",
				UserAgent: "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko)", IP: "17.58.100.1",
				MachineOpen: true, CustomArgs: args("message_id", "0193694e-5a2b-7c41-9d0e-6f1a2b3c4d5e", "tenant_id", tenant)},
			{Type: EventBounce, Email: "m.haddad@example.net", Timestamp: unix(1764237010),
				SGEventID: "Ym91bmNlLTE4MzUwLTAxOTM2OTRlNWEyYw", SGMessageID: "Lr0wA4uMR1fQ5dT2s3Kn9x.recvd-7c5b8d9f4-x2lq7-1-674F3A1C-3.0",
				SMTPID: "0193694e-5a2c-7d11-8e2f-0a1b2c3d4e5f@mail.alum.example.org",
				Reason: "550 5.1.1 The email account that you tried to reach does not exist.", Status: "5.1.1",
				BounceType: BounceTypeBounce, BounceClassification: "Invalid Address",
				CustomArgs: args("message_id", "0193694e-5a2c-7d11-8e2f-0a1b2c3d4e5f", "tenant_id", tenant)},
			{Type: EventDropped, Email: "not an email address", Timestamp: unix(1764237011),
				SGEventID: "ZHJvcHBlZC0xODM1MS0wMTkzNjk0ZTVhMmQ", SMTPID: "0193694e-5a2d-7e22-9f30-1b2c3d4e5f60@mail.alum.example.org",
				Reason: "Invalid", CustomArgs: args("message_id", "0193694e-5a2d-7e22-9f30-1b2c3d4e5f60", "tenant_id", tenant)},
			{Type: EventGroupUnsubscribe, Email: "li.wei@example.com", Timestamp: unix(1764241200),
				SGEventID: "Z3JvdXAtdW5zdWItMTgzNTItMDE5MzY5NGU", SGMessageID: "Ms1xB5vNS2gR6eU3t4Lo0y.recvd-7c5b8d9f4-x2lq7-1-674F3A1D-7.0",
				URL: "https://u1234567.ct.sendgrid.net/asm/unsubscribe/?user_id=1234567&data=abc", ASMGroupID: 4821,
				CustomArgs: args("message_id", "0193694e-5a2e-7f33-8041-2c3d4e5f6071", "tenant_id", tenant)},
			{Type: EventGroupResubscribe, Email: "li.wei@example.com", Timestamp: unix(1764241260),
				SGEventID: "Z3JvdXAtcmVzdWItMTgzNTMtMDE5MzY5NGU", SGMessageID: "Ms1xB5vNS2gR6eU3t4Lo0y.recvd-7c5b8d9f4-x2lq7-1-674F3A1D-7.0",
				ASMGroupID: 4821},
			{Type: "amp_interaction", Email: "li.wei@example.com", Timestamp: unix(1764241300),
				SGEventID: "YW1wLTE4MzU0LTAxOTM2OTRl", SGMessageID: "Ms1xB5vNS2gR6eU3t4Lo0y.recvd-7c5b8d9f4-x2lq7-1-674F3A1D-7.0",
				CustomArgs: args("message_id", "0193694e-5a2e-7f33-8041-2c3d4e5f6071")},
		}},
		// Marketing Campaigns events: SendGrid's own fields are not custom
		// arguments, whatever their type; a millisecond timestamp.
		{"events_single_send.json", []Event{
			{Type: EventOpen, Email: "email@example.com", Timestamp: time.UnixMilli(1591726752372).UTC(),
				SGEventID: "sendgrid_internal_event_id", SGMessageID: "sendgrid_internal_message_id", IP: "127.0.0.1", UserAgent: ua},
			{Type: EventProcessed, Email: "tadpole_0010@stbase-018.sjc1.sendgrid.net", Timestamp: unix(1442349848),
				SGEventID: "qNOzbkTuTNCdxa1eXEpnXg", SGMessageID: "5lFl7Fr1Rjme_EyzNNB_5A.stfilter-015.5185.55F883172.0"},
		}},
	}
	for _, c := range cases {
		t.Run(c.file, func(t *testing.T) {
			t.Parallel()
			got, err := ParseEvents(readFixture(t, c.file))
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(c.want) {
				t.Fatalf("got %d events, want %d", len(got), len(c.want))
			}
			for i := range got {
				if !reflect.DeepEqual(got[i], c.want[i]) {
					t.Errorf("event %d:\n got %+v\nwant %+v", i, got[i], c.want[i])
				}
			}
		})
	}
}

func TestEventTypeKnown(t *testing.T) {
	t.Parallel()
	for _, typ := range []EventType{EventProcessed, EventDropped, EventDelivered, EventDeferred, EventBounce, EventOpen,
		EventClick, EventSpamReport, EventUnsubscribe, EventGroupUnsubscribe, EventGroupResubscribe, EventAccountStatusChange} {
		if !typ.Known() {
			t.Errorf("%q is not known", typ)
		}
	}
	for _, typ := range []EventType{"", "amp_interaction", "Processed", "spam_report", "bounced"} {
		if typ.Known() {
			t.Errorf("%q is known", typ)
		}
	}
}

func TestParseEventsErrors(t *testing.T) {
	t.Parallel()
	const ok = `{"event":"delivered","email":"a@example.org","timestamp":1764237003,"sg_event_id":"ev1"}`
	cases := []struct {
		name string
		body string
		want string // part of the error message
	}{
		{"empty body", "", "body is empty"},
		{"blank body", " \n\t", "body is empty"},
		{"object, not array", ok, "body is a JSON object, not an array of events"},
		{"null", "null", "body is a JSON null"},
		{"string", `"[]"`, "body is a JSON string"},
		{"not JSON", "event=delivered", `body is not JSON (it starts with "event=deli")`},
		{"unterminated array", "[" + ok, "malformed JSON"},
		{"trailing garbage", "[" + ok + "] x", "malformed JSON"},
		{"number in array", "[" + ok + ",1]", "events[1]: is a JSON number, not an event object"},
		{"null in array", "[null]", "events[0]: is a JSON null, not an event object"},
		{"nested array", "[[" + ok + "]]", "events[0]: is a JSON array"},
		{"no event", `[` + ok + `,{"email":"a@example.org","timestamp":1,"sg_event_id":"e"}]`, "events[1]: event is missing"},
		{"empty event", `[{"event":" ","email":"a@example.org","timestamp":1,"sg_event_id":"e"}]`, "events[0]: event is missing"},
		{"event not a string", `[{"event":7,"email":"a@example.org","timestamp":1,"sg_event_id":"e"}]`, "events[0]: event is a JSON number, not a string"},
		{"no email", `[` + ok + `,` + ok + `,{"event":"open","timestamp":1,"sg_event_id":"e"}]`, `events[2]: email is missing (event "open")`},
		{"null email", `[{"event":"open","email":null,"timestamp":1,"sg_event_id":"e"}]`, "events[0]: email is missing"},
		{"unknown type without email", `[{"event":"new_thing","timestamp":1,"sg_event_id":"e"}]`, "events[0]: email is missing"},
		{"email not a string", `[{"event":"open","email":["a@example.org"],"timestamp":1,"sg_event_id":"e"}]`, "events[0]: email is a JSON array, not a string"},
		{"no timestamp", `[{"event":"open","email":"a@example.org","sg_event_id":"e"}]`, "events[0]: timestamp is missing"},
		{"timestamp not a number", `[{"event":"open","email":"a@example.org","timestamp":"yesterday","sg_event_id":"e"}]`, `timestamp "yesterday" is not a Unix time`},
		{"timestamp boolean", `[{"event":"open","email":"a@example.org","timestamp":true,"sg_event_id":"e"}]`, "timestamp is a JSON boolean, not a number"},
		{"timestamp zero", `[{"event":"open","email":"a@example.org","timestamp":0,"sg_event_id":"e"}]`, "is not a Unix time"},
		{"timestamp negative", `[{"event":"open","email":"a@example.org","timestamp":-5,"sg_event_id":"e"}]`, "is not a Unix time"},
		{"timestamp fraction", `[{"event":"open","email":"a@example.org","timestamp":1764237003.5,"sg_event_id":"e"}]`, "is not a Unix time"},
		{"timestamp huge", `[{"event":"open","email":"a@example.org","timestamp":1e400,"sg_event_id":"e"}]`, "is not a Unix time"},
		{"timestamp 12 digits", `[{"event":"open","email":"a@example.org","timestamp":176423700300,"sg_event_id":"e"}]`, "is not a Unix time"},
		{"no sg_event_id", `[{"event":"open","email":"a@example.org","timestamp":1}]`, "events[0]: sg_event_id is missing"},
		{"sg_event_id with a space", `[{"event":"open","email":"a@example.org","timestamp":1,"sg_event_id":"a b"}]`, "is not an event ID"},
		{"sg_event_id too long", `[{"event":"open","email":"a@example.org","timestamp":1,"sg_event_id":"` + strings.Repeat("x", 256) + `"}]`, "is not an event ID"},
		{"sg_event_id a number", `[{"event":"open","email":"a@example.org","timestamp":1,"sg_event_id":42}]`, "sg_event_id is a JSON number, not a string"},
		{"url an object", `[{"event":"click","email":"a@example.org","timestamp":1,"sg_event_id":"e","url":{}}]`, "url is a JSON object, not a string"},
		{"attempt not a count", `[{"event":"deferred","email":"a@example.org","timestamp":1,"sg_event_id":"e","attempt":"five"}]`, `attempt "five" is not a count`},
		{"asm_group_id negative", `[{"event":"group_unsubscribe","email":"a@example.org","timestamp":1,"sg_event_id":"e","asm_group_id":-1}]`, "asm_group_id"},
		{"sg_machine_open a number", `[{"event":"open","email":"a@example.org","timestamp":1,"sg_event_id":"e","sg_machine_open":1}]`, "sg_machine_open is a JSON number, not a boolean"},
		{"category a number", `[{"event":"open","email":"a@example.org","timestamp":1,"sg_event_id":"e","category":5}]`, "category is a JSON number"},
		{"category array of numbers", `[{"event":"open","email":"a@example.org","timestamp":1,"sg_event_id":"e","category":[5]}]`, "category is not an array of strings"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			events, err := ParseEvents([]byte(c.body))
			if err == nil {
				t.Fatalf("ParseEvents accepted %s as %+v", c.body, events)
			}
			if !errors.Is(err, ErrInvalidWebhook) || events != nil {
				t.Fatalf("error %v (events %v) is not a clean ErrInvalidWebhook", err, events)
			}
			if !strings.Contains(err.Error(), c.want) {
				t.Errorf("error %q does not say %q", err, c.want)
			}
		})
	}
}

func TestParseEventsEdges(t *testing.T) {
	t.Parallel()
	t.Run("empty array is no events", func(t *testing.T) {
		t.Parallel()
		events, err := ParseEvents([]byte(" [ ] "))
		if err != nil || len(events) != 0 {
			t.Fatalf("ParseEvents([]) = %v, %v", events, err)
		}
	})
	t.Run("custom arguments", func(t *testing.T) {
		t.Parallel()
		// SendGrid flattens custom arguments into the event. Strings that
		// are not SendGrid's fields are kept; SendGrid's own fields, sg_*
		// fields and values of other types are not.
		events, err := ParseEvents([]byte(`[{
			"event": "processed", "email": "a@example.org", "timestamp": "1764237003", "sg_event_id": "e1",
			"message_id": "m-1", "tenant_id": "t-1", "New Argument 1": "New Value 1", "empty": "",
			"sg_user_id": 939115, "sg_template_id": "d-123", "template_id": "d-123", "marketing_campaign_name": "x",
			"count": 3, "flag": true, "nested": {"a": "b"}, "list": ["a"], "nothing": null,
			"unique_args": {"message_id": "m-2"}
		}]`))
		if err != nil {
			t.Fatal(err)
		}
		want := map[string]string{"message_id": "m-1", "tenant_id": "t-1", "New Argument 1": "New Value 1", "empty": ""}
		if !reflect.DeepEqual(events[0].CustomArgs, want) {
			t.Errorf("CustomArgs = %v, want %v", events[0].CustomArgs, want)
		}
		if got := events[0].Timestamp; !got.Equal(time.Unix(1764237003, 0)) {
			t.Errorf("string timestamp read as %v", got)
		}
	})
	t.Run("event names are lower-cased", func(t *testing.T) {
		t.Parallel()
		// SendGrid's reserved-keys example shows "Processed".
		events, err := ParseEvents([]byte(`[{"event":"Processed","email":"john.doe@sendgrid.com","timestamp":"123456789","sg_event_id":"e"}]`))
		if err != nil {
			t.Fatal(err)
		}
		if events[0].Type != EventProcessed || !events[0].Type.Known() {
			t.Errorf("Type = %q", events[0].Type)
		}
	})
	t.Run("smtp-id forms", func(t *testing.T) {
		t.Parallel()
		for in, want := range map[string]string{
			`"<abc@x>"`: "abc@x", `" <abc@x> "`: "abc@x", `"abc@x"`: "abc@x", `""`: "", `null`: "", `"<>"`: "",
		} {
			events, err := ParseEvents([]byte(`[{"event":"open","email":"a@example.org","timestamp":1,"sg_event_id":"e","smtp-id":` + in + `}]`))
			if err != nil {
				t.Fatal(err)
			}
			if events[0].SMTPID != want {
				t.Errorf("smtp-id %s read as %q, want %q", in, events[0].SMTPID, want)
			}
		}
	})
	t.Run("type belongs to bounces and account events only", func(t *testing.T) {
		t.Parallel()
		events, err := ParseEvents([]byte(`[{"event":"open","email":"a@example.org","timestamp":1,"sg_event_id":"e","type":"blocked"}]`))
		if err != nil {
			t.Fatal(err)
		}
		if events[0].BounceType != "" || events[0].AccountStatus != "" || events[0].CustomArgs != nil {
			t.Errorf("type of an open event kept: %+v", events[0])
		}
	})
	t.Run("error names the first bad event", func(t *testing.T) {
		t.Parallel()
		body := `[` + strings.Repeat(`{"event":"open","email":"a@example.org","timestamp":1,"sg_event_id":"e"},`, 41) +
			`{"event":"open","email":"a@example.org","timestamp":1}]`
		_, err := ParseEvents([]byte(body))
		if err == nil || !strings.Contains(err.Error(), "events[41]: sg_event_id is missing") {
			t.Errorf("error = %v", err)
		}
	})
}
