package sequences

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/alumoutreach/alumoutreach/internal/event"
	"github.com/alumoutreach/alumoutreach/internal/platform/fault"
)

// Sequence statuses.
const (
	StatusCreated = "created"
	StatusActive  = "active"
	StatusPaused  = "paused"
)

// Enrollment statuses.
const (
	EnrollmentActive    = "active"
	EnrollmentWaiting   = "waiting"
	EnrollmentCompleted = "completed"
	EnrollmentExited    = "exited"
)

// Step types: a message on a channel, or a manual step for a person.
const (
	StepCall = "call"
	StepTask = "task"
)

// Sequence is a definition and its status.
type Sequence struct {
	ID          string    `json:"id"`
	Name        string    `json:"name"`
	OwnerID     string    `json:"ownerId,omitempty"`
	ExitOnReply bool      `json:"exitOnReply"`
	Steps       []Step    `json:"steps"`
	Status      string    `json:"status"`
	CreatedAt   time.Time `json:"createdAt"`
	UpdatedAt   time.Time `json:"updatedAt"`
}

// Step is one step of a sequence.
type Step struct {
	// ID names the step within the sequence ("step-<n>" when not given).
	ID string `json:"id"`
	// Type is email, sms or whatsapp (a message from TemplateID), or call
	// or task (a manual step described by Task).
	Type       string `json:"type"`
	TemplateID string `json:"templateId,omitempty"`
	Task       string `json:"task,omitempty"`
	// Delay is how long after the previous step (after enrolling, for the
	// first) this one runs: a Go duration or whole days such as "3d".
	Delay string `json:"delay,omitempty"`

	delay time.Duration
}

func (s Step) manual() bool { return s.Type == StepCall || s.Type == StepTask }

// Input creates a sequence.
type Input struct {
	Name        string `json:"name"`
	OwnerID     string `json:"ownerId"`
	ExitOnReply *bool  `json:"exitOnReply"`
	Steps       []Step `json:"steps"`
}

// Enrollment is one contact's way through one sequence.
type Enrollment struct {
	ID         string `json:"id"`
	SequenceID string `json:"sequenceId"`
	ContactID  string `json:"contactId"`
	Status     string `json:"status"`
	// Step is the index (from 0) of the current step; after the last it
	// equals the number of steps.
	Step       int        `json:"step"`
	DueAt      *time.Time `json:"dueAt,omitempty"`
	EnrolledBy string     `json:"enrolledBy,omitempty"`
	ExitReason string     `json:"exitReason,omitempty"`
	CreatedAt  time.Time  `json:"createdAt"`
	UpdatedAt  time.Time  `json:"updatedAt"`
	EndedAt    *time.Time `json:"endedAt,omitempty"`
}

// Templates tells a template's channel and whether it is active, or
// ErrTemplateNotFound; the app wires it to the templates module.
type Templates interface {
	Template(ctx context.Context, tenant, id string) (channel string, active bool, err error)
}

// Contacts tells whether a contact exists (and is not erased).
type Contacts interface {
	Exists(ctx context.Context, tenant, id string) (bool, error)
}

// Timers arms durable timers.
type Timers interface {
	ScheduleTimer(ctx context.Context, key string, at time.Time, data []byte) error
}

// ErrTemplateNotFound is what Templates returns for an unknown template.
var ErrTemplateNotFound = errors.New("template not found")

const (
	maxNameLen  = 200
	maxSteps    = 50
	maxTaskLen  = 1000
	maxIDLen    = 200
	maxDelay    = 366 * 24 * time.Hour
	stepIDChars = "letters, digits, '-' and '_'"
)

func invalid(path, format string, args ...any) error {
	e := fault.New(fault.Invalid, "invalid_sequence", path+": "+format, args...)
	e.Details = map[string]any{"path": path}
	return e
}

// ParseDelay reads a step's delay: a Go duration ("36h", "90m") or whole
// days ("3d"); empty is none.
func ParseDelay(s string) (time.Duration, error) {
	if s == "" {
		return 0, nil
	}
	if days, ok := strings.CutSuffix(s, "d"); ok {
		n, err := strconv.Atoi(days)
		if err != nil || n < 0 {
			return 0, fmt.Errorf("%q is not a whole number of days", s)
		}
		return time.Duration(n) * 24 * time.Hour, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d < 0 {
		return 0, fmt.Errorf("%q is not a duration such as 36h or 3d", s)
	}
	return d, nil
}

// checkID refuses ids (owner, agent) no directory would hold.
func checkID(path, v string) error {
	if len(v) > maxIDLen || strings.IndexFunc(v, unicode.IsControl) >= 0 || v != strings.TrimSpace(v) {
		return invalid(path, "must be at most %d characters, without control characters or surrounding spaces", maxIDLen)
	}
	return nil
}

// validate checks the definition, naming the path at fault, and fills in
// step ids and parsed delays.
func (in *Input) validate(ctx context.Context, tenant string, templates Templates) error {
	in.Name = strings.TrimSpace(in.Name)
	if in.Name == "" || len(in.Name) > maxNameLen {
		return invalid("name", "is required, at most %d characters", maxNameLen)
	}
	if err := checkID("ownerId", in.OwnerID); err != nil {
		return err
	}
	if len(in.Steps) == 0 || len(in.Steps) > maxSteps {
		return invalid("steps", "a sequence has 1 to %d steps (got %d)", maxSteps, len(in.Steps))
	}
	seen := map[string]bool{}
	for i := range in.Steps {
		st := &in.Steps[i]
		path := fmt.Sprintf("steps[%d]", i)
		if st.ID == "" {
			st.ID = fmt.Sprintf("step-%d", i+1)
		}
		if len(st.ID) > 64 || strings.IndexFunc(st.ID, func(r rune) bool {
			return !(r == '-' || r == '_' || r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z')
		}) >= 0 {
			return invalid(path+".id", "%q must be up to 64 %s", st.ID, stepIDChars)
		}
		if seen[st.ID] {
			return invalid(path+".id", "%q names two steps", st.ID)
		}
		seen[st.ID] = true
		d, err := ParseDelay(st.Delay)
		if err != nil || d > maxDelay {
			return invalid(path+".delay", "%q must be a duration such as 36h or 3d, at most a year", st.Delay)
		}
		st.delay = d
		switch {
		case st.manual():
			st.Task = strings.TrimSpace(st.Task)
			if st.Task == "" || len(st.Task) > maxTaskLen || st.TemplateID != "" {
				return invalid(path+".task", "a %s step says what to do in task (at most %d characters) and has no templateId", st.Type, maxTaskLen)
			}
		case event.ValidChannel(st.Type):
			if st.TemplateID == "" || st.Task != "" {
				return invalid(path+".templateId", "a %s step sends a template: give templateId, and no task", st.Type)
			}
			ch, _, err := templates.Template(ctx, tenant, st.TemplateID)
			if errors.Is(err, ErrTemplateNotFound) {
				return invalid(path+".templateId", "no template %q in this tenant", st.TemplateID)
			}
			if err != nil {
				return err
			}
			if ch != st.Type {
				return invalid(path+".templateId", "template %q is a %s template, not %s", st.TemplateID, ch, st.Type)
			}
		default:
			return invalid(path+".type", "%q must be one of email, sms, whatsapp, call, task", st.Type)
		}
	}
	return nil
}
