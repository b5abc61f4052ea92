package event

// SourceSegments is the envelope source of events the segments module publishes.
const SourceSegments = "segments-service"

// Segment subjects. Membership events are what workflows trigger on and what
// campaigns read audiences from; definition events let them label and
// invalidate what they cached.
const (
	// SegmentCreated announces a new segment definition.
	SegmentCreated = "segment.created"
	// SegmentUpdated announces a changed name or rule set; a rule change is followed by an evaluation.
	SegmentUpdated = "segment.updated"
	// SegmentDeleted tells consumers the segment and its membership are gone.
	SegmentDeleted = "segment.deleted"
	// SegmentEvaluated summarises one full evaluation of a segment's rules.
	SegmentEvaluated = "segment.evaluated"
	// SegmentMemberAdded reports a contact entering a segment.
	SegmentMemberAdded = "segment.member.added"
	// SegmentMemberRemoved reports a contact leaving a segment.
	SegmentMemberRemoved = "segment.member.removed"
)

// Segment kinds, carried in the "kind" field of segment definition events.
const (
	// SegmentKindDynamic segments are rule-based: membership follows contact changes.
	SegmentKindDynamic = "dynamic"
	// SegmentKindStatic segments are hand-kept lists: membership changes only by edit or import.
	SegmentKindStatic = "static"
)

func init() {
	register(SegmentCreated, func() Payload { return &SegmentCreatedData{} })
	register(SegmentUpdated, func() Payload { return &SegmentUpdatedData{} })
	register(SegmentDeleted, func() Payload { return &SegmentDeletedData{} })
	register(SegmentEvaluated, func() Payload { return &SegmentEvaluatedData{} })
	register(SegmentMemberAdded, func() Payload { return &SegmentMemberAddedData{} })
	register(SegmentMemberRemoved, func() Payload { return &SegmentMemberRemovedData{} })
}

// SegmentCreatedData describes a new segment for pickers and reports.
type SegmentCreatedData struct {
	// SegmentID identifies the segment in every later event.
	SegmentID string `json:"segmentId"`
	// Name is the display name, for campaign and analytics labels.
	Name string `json:"name"`
	// Kind is SegmentKindDynamic or SegmentKindStatic.
	Kind string `json:"kind"`
	// Version is the definition's version, 1 on creation.
	Version int64 `json:"version"`
}

// Validate requires segmentId, name, kind and a positive version.
func (d SegmentCreatedData) Validate() error {
	var c checker
	c.str("segmentId", d.SegmentID)
	c.str("name", d.Name)
	c.str("kind", d.Kind)
	c.positive("version", d.Version)
	return c.err()
}

// SegmentUpdatedData describes a changed segment definition.
type SegmentUpdatedData struct {
	// SegmentID is the segment that changed.
	SegmentID string `json:"segmentId"`
	// Name is the display name after the change.
	Name string `json:"name"`
	// Kind is SegmentKindDynamic or SegmentKindStatic.
	Kind string `json:"kind"`
	// Version is the definition's version after the change.
	Version int64 `json:"version"`
	// RulesChanged is true when membership may change: a segment.evaluated
	// and member events follow. False for a rename.
	RulesChanged bool `json:"rulesChanged"`
}

// Validate requires segmentId, name, kind and a positive version.
func (d SegmentUpdatedData) Validate() error {
	var c checker
	c.str("segmentId", d.SegmentID)
	c.str("name", d.Name)
	c.str("kind", d.Kind)
	c.positive("version", d.Version)
	return c.err()
}

// SegmentDeletedData removes a segment. No member.removed events follow for
// its members: consumers drop the whole membership.
type SegmentDeletedData struct {
	// SegmentID is the segment removed.
	SegmentID string `json:"segmentId"`
	// Name is the last display name, for audit trails.
	Name string `json:"name,omitempty"`
}

// Validate requires segmentId.
func (d SegmentDeletedData) Validate() error {
	var c checker
	c.str("segmentId", d.SegmentID)
	return c.err()
}

// SegmentEvaluatedData summarises a full evaluation; the member events it
// caused are published alongside it.
type SegmentEvaluatedData struct {
	// SegmentID is the segment evaluated.
	SegmentID string `json:"segmentId"`
	// Members is the member count after the evaluation.
	Members int64 `json:"members"`
	// Added is how many contacts entered the segment.
	Added int64 `json:"added"`
	// Removed is how many contacts left the segment.
	Removed int64 `json:"removed"`
	// DurationMs is how long the evaluation took, in milliseconds.
	DurationMs int64 `json:"durationMs"`
}

// Validate requires segmentId and refuses negative counts.
func (d SegmentEvaluatedData) Validate() error {
	var c checker
	c.str("segmentId", d.SegmentID)
	c.nonNegative("members", d.Members)
	c.nonNegative("added", d.Added)
	c.nonNegative("removed", d.Removed)
	c.nonNegative("durationMs", d.DurationMs)
	return c.err()
}

// SegmentMemberData is one contact entering or leaving one segment.
type SegmentMemberData struct {
	// SegmentID is the segment whose membership changed.
	SegmentID string `json:"segmentId"`
	// ContactID is the contact that entered or left.
	ContactID string `json:"contactId"`
	// ContactVersion is the contact version the decision was made on;
	// consumers ignore a membership event older than one they applied. Zero
	// when the change did not come from a contact change (a static list edit).
	ContactVersion int64 `json:"contactVersion,omitempty"`
}

// Validate requires segmentId and contactId.
func (d SegmentMemberData) Validate() error {
	var c checker
	c.str("segmentId", d.SegmentID)
	c.str("contactId", d.ContactID)
	c.nonNegative("contactVersion", d.ContactVersion)
	return c.err()
}

// SegmentMemberAddedData is the payload of segment.member.added.
type SegmentMemberAddedData = SegmentMemberData

// SegmentMemberRemovedData is the payload of segment.member.removed.
type SegmentMemberRemovedData = SegmentMemberData
