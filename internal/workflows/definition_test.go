package workflows

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/alumoutreach/alumoutreach/internal/event"
	"github.com/alumoutreach/alumoutreach/internal/rule"
)

func TestParseDuration(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		in   string
		want time.Duration
		bad  bool
	}{
		{in: "90m", want: 90 * time.Minute},
		{in: "36h", want: 36 * time.Hour},
		{in: "7d", want: 7 * 24 * time.Hour},
		{in: "1d12h", want: 36 * time.Hour},
		{in: "2s", want: 2 * time.Second},
		{in: "soon", bad: true},
		{in: "xd", bad: true},
		{in: "-1d", bad: true},
	} {
		got, err := ParseDuration(tc.in)
		if (err != nil) != tc.bad || got != tc.want {
			t.Errorf("ParseDuration(%q) = %v, %v", tc.in, got, err)
		}
	}
}

// TestDelayUntilTimeOfDay: "until 09:00" is the next 09:00 in the
// contact's own zone, today if it is still ahead, across a DST change.
func TestDelayUntilTimeOfDay(t *testing.T) {
	t.Parallel()
	ny, _ := time.LoadLocation("America/New_York")
	tokyo, _ := time.LoadLocation("Asia/Tokyo")
	n := &Node{untilMin: 9 * 60}
	for _, tc := range []struct {
		now  time.Time
		loc  *time.Location
		want time.Time
	}{
		// 06:00 in New York: 09:00 the same day.
		{time.Date(2026, 3, 2, 11, 0, 0, 0, time.UTC), ny, time.Date(2026, 3, 2, 9, 0, 0, 0, ny)},
		// 10:00 in New York: 09:00 the next day.
		{time.Date(2026, 3, 2, 15, 0, 0, 0, time.UTC), ny, time.Date(2026, 3, 3, 9, 0, 0, 0, ny)},
		// Exactly 09:00: the next day, never now.
		{time.Date(2026, 3, 2, 0, 0, 0, 0, time.UTC), tokyo, time.Date(2026, 3, 3, 9, 0, 0, 0, tokyo)},
		// The night clocks move forward in New York (8 March 2026).
		{time.Date(2026, 3, 8, 5, 0, 0, 0, time.UTC), ny, time.Date(2026, 3, 8, 9, 0, 0, 0, ny)},
	} {
		if got := n.delayUntil(tc.now, tc.loc); !got.Equal(tc.want) {
			t.Errorf("from %v in %v: %v, want %v", tc.now, tc.loc, got, tc.want)
		}
	}
	d := &Node{duration: 48 * time.Hour}
	now := time.Date(2026, 3, 2, 11, 0, 0, 0, time.UTC)
	if got := d.delayUntil(now, ny); !got.Equal(now.Add(48 * time.Hour)) {
		t.Errorf("48h delay: %v", got)
	}
}

func TestSendStepRoundTrip(t *testing.T) {
	t.Parallel()
	id := "0194b1d2-7c3e-7a10-8f00-123456789abc"
	run, step, ok := parseSendStep(sendStep(id, 12))
	if !ok || run != id || step != 12 {
		t.Fatalf("parse: %q %d %v", run, step, ok)
	}
	for _, bad := range []string{"", "no-step", ":3", id + ":x"} {
		if _, _, ok := parseSendStep(bad); ok {
			t.Errorf("%q parsed", bad)
		}
	}
}

// TestGraphChecks: the structural checks that need no other module. A
// cycle through a delay is a legal loop; one without is refused, as is a
// node nothing reaches.
func TestGraphChecks(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, nodes, want string
	}{
		{"loop through a delay", `[{"id": "a", "type": "update_contact", "addTags": ["x"], "next": "d"},
			{"id": "d", "type": "delay", "duration": "7d", "next": "c"},
			{"id": "c", "type": "condition", "rule": {"op": "has_tag", "value": "stop"}, "yes": "", "no": "a"}]`, ""},
		{"loop without a delay", `[{"id": "a", "type": "update_contact", "addTags": ["x"], "next": "c"},
			{"id": "c", "type": "condition", "rule": {"op": "has_tag", "value": "stop"}, "no": "a"}]`, "cycle without a delay"},
		{"self loop", `[{"id": "a", "type": "split", "branches": [{"name": "x", "percent": 50, "next": "a"}, {"name": "y", "percent": 50}]}]`, "cycle without a delay"},
		{"unreachable", `[{"id": "a", "type": "exit"}, {"id": "b", "type": "exit"}]`, `nodes[1] ("b"): no run can reach`},
		{"duplicate id", `[{"id": "a", "type": "delay", "duration": "1h", "next": "a"}, {"id": "a", "type": "exit"}]`, `another node has id "a"`},
		{"exit with next", `[{"id": "a", "type": "exit", "next": "a"}]`, "no next node"},
		{"delay both", `[{"id": "a", "type": "delay", "duration": "1h", "until": "09:00"}]`, "not both"},
		{"until bad", `[{"id": "a", "type": "delay", "until": "25:00"}]`, `nodes[0] ("a").until`},
		{"wait on a non-send", `[{"id": "a", "type": "delay", "duration": "1h", "next": "w"},
			{"id": "w", "type": "wait_until", "event": "opened", "nodeId": "a", "timeout": "1h"}]`, "must name the send node"},
		{"empty update", `[{"id": "a", "type": "update_contact"}]`, "sets attributes, adds tags or removes tags"},
		{"object attribute", `[{"id": "a", "type": "update_contact", "setAttributes": {"x": {"y": 1}}}]`, "setAttributes.x"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var d Definition
			if err := json.Unmarshal([]byte(`{"trigger": {"event": "contact.created"}, "nodes": `+tc.nodes+`}`), &d); err != nil {
				t.Fatal(err)
			}
			err := d.validate(context.Background(), "t1", nil)
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("refused: %v", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Fatalf("got %v, want an error mentioning %q", err, tc.want)
			}
		})
	}
}

func TestTriggerFieldsMustFitTheEvent(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ trigger, want string }{
		{`{"event": "contact.created", "tag": "x"}`, "trigger.tag: does not apply"},
		{`{"event": "contact.tagged"}`, "trigger.tag"},
		{`{"event": "custom", "name": "has space"}`, "trigger.name"},
		{`{"event": "contact.updated", "rule": {"field": "nope", "op": "eq", "value": 1}}`, "trigger.rule"},
		{`{"event": "segment.member.added"}`, "trigger.segmentId"},
	} {
		var d Definition
		if err := json.Unmarshal([]byte(`{"trigger": `+tc.trigger+`, "nodes": [{"id": "a", "type": "exit"}]}`), &d); err != nil {
			t.Fatal(err)
		}
		if err := d.validate(context.Background(), "t1", nil); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want %q", tc.trigger, err, tc.want)
		}
	}
}

// TestOverlayShowsTheUpdatesNewValues: a contact.updated trigger sees the
// values the update set, even when the contact has changed again since.
func TestOverlayShowsTheUpdatesNewValues(t *testing.T) {
	t.Parallel()
	c := rule.Contact{FirstName: "Ada", Attributes: map[string]any{"stage": "student", "year": 3.0}}
	err := overlay(&c, map[string]event.FieldChange{
		"attributes.stage": {Old: json.RawMessage(`"student"`), New: json.RawMessage(`"alumni"`)},
		"attributes.year":  {Old: json.RawMessage(`3`)},
		"firstName":        {Old: json.RawMessage(`"Ada"`), New: json.RawMessage(`"Augusta"`)},
	})
	if err != nil {
		t.Fatal(err)
	}
	if c.FirstName != "Augusta" || c.Attributes["stage"] != "alumni" || len(c.Attributes) != 1 {
		t.Fatalf("overlaid contact: %+v", c)
	}
	r, err := rule.Parse([]byte(`{"field": "attributes.stage", "op": "eq", "value": "alumni"}`))
	if err != nil || !r.Match(&c, time.Now()) {
		t.Fatalf("rule on the new values: %v", err)
	}
}
