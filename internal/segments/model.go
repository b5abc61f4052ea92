package segments

import (
	"context"
	"encoding/json"
	"errors"
	"time"

	"github.com/alumoutreach/alumoutreach/internal/rule"
)

// Consumer names.
const (
	ContactConsumerName    = "SEGMENTS_CONTACT_CONSUMER"
	DefinitionConsumerName = "SEGMENTS_DEFINITION_CONSUMER"
)

// ErrContactNotFound is what a ContactSource returns for a contact that
// no longer exists.
var ErrContactNotFound = errors.New("contact not found")

// Snapshot is a contact as segments see it.
type Snapshot struct {
	ID      string
	Version int64
	// Deleted is true for a deleted or erased contact: member of nothing.
	Deleted bool
	Contact rule.Contact
}

// ContactSource reads a contact's current state; the app wires it to the
// contacts module.
type ContactSource interface {
	ContactSnapshot(ctx context.Context, tenant, id string) (Snapshot, error)
}

// Segment is a segment definition with its membership count.
type Segment struct {
	ID          string          `json:"id"`
	Name        string          `json:"name"`
	Description string          `json:"description,omitempty"`
	Rules       json.RawMessage `json:"rules"`
	Version     int64           `json:"version"`
	// Members is the number of contacts in the segment.
	Members     int64      `json:"members"`
	EvaluatedAt *time.Time `json:"evaluatedAt,omitempty"`
	CreatedAt   time.Time  `json:"createdAt"`
	UpdatedAt   time.Time  `json:"updatedAt"`
}

// Evaluation is the outcome of one full evaluation.
type Evaluation struct {
	SegmentID  string `json:"segmentId"`
	Members    int64  `json:"members"`
	Added      int64  `json:"added"`
	Removed    int64  `json:"removed"`
	DurationMs int64  `json:"durationMs"`
}

// Member is one contact in a segment.
type Member struct {
	ContactID      string    `json:"contactId"`
	ContactVersion int64     `json:"contactVersion"`
	Since          time.Time `json:"since"`
}

// Preview is what a rule would select now, without saving anything.
type Preview struct {
	Count  int64           `json:"count"`
	Sample []SampleContact `json:"sample"`
}

// SampleContact is one contact of a preview's sample.
type SampleContact struct {
	ContactID string `json:"contactId"`
	Email     string `json:"email,omitempty"`
	Phone     string `json:"phone,omitempty"`
	FirstName string `json:"firstName,omitempty"`
	LastName  string `json:"lastName,omitempty"`
}
