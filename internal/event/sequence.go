package event

// SourceSequences is the envelope source of events the sequences module publishes.
const SourceSequences = "sequences-service"

// Sequence subjects: 1:1 multi-step outreach, its enrollments and its steps,
// including the manual ones a person must do.
const (
	// SequenceCreated announces a new sequence draft.
	SequenceCreated = "sequence.created"
	// SequenceActivated announces that a sequence accepts enrollments and runs steps.
	SequenceActivated = "sequence.activated"
	// SequencePaused announces that a sequence runs no steps until activated again.
	SequencePaused = "sequence.paused"
	// SequenceEnrollmentCreated announces a contact enrolled in a sequence.
	SequenceEnrollmentCreated = "sequence.enrollment.created"
	// SequenceEnrollmentCompleted announces an enrollment that ran its last step.
	SequenceEnrollmentCompleted = "sequence.enrollment.completed"
	// SequenceEnrollmentReplied announces a reply from an enrolled contact.
	SequenceEnrollmentReplied = "sequence.enrollment.replied"
	// SequenceEnrollmentExited announces an enrollment stopped early, with why.
	SequenceEnrollmentExited = "sequence.enrollment.exited"
	// SequenceStepExecuted announces a step done for one enrollment.
	SequenceStepExecuted = "sequence.step.executed"
	// SequenceStepPendingManual announces a manual step (call, task) waiting for a person.
	SequenceStepPendingManual = "sequence.step.pending_manual"
)

// Exit reasons, carried in SequenceEnrollmentExitedData.Reason. Others may
// appear; consumers treat unknown ones as manual.
const (
	// SequenceExitReplied: the contact replied, so automated steps stop.
	SequenceExitReplied = "replied"
	// SequenceExitBounced: a message to the contact hard-bounced.
	SequenceExitBounced = "bounced"
	// SequenceExitUnsubscribed: the contact revoked consent on the sequence's channel.
	SequenceExitUnsubscribed = "unsubscribed"
	// SequenceExitManual: a user removed the contact.
	SequenceExitManual = "manual"
)

func init() {
	register(SequenceCreated, func() Payload { return &SequenceCreatedData{} })
	register(SequenceActivated, func() Payload { return &SequenceActivatedData{} })
	register(SequencePaused, func() Payload { return &SequencePausedData{} })
	register(SequenceEnrollmentCreated, func() Payload { return &SequenceEnrollmentCreatedData{} })
	register(SequenceEnrollmentCompleted, func() Payload { return &SequenceEnrollmentCompletedData{} })
	register(SequenceEnrollmentReplied, func() Payload { return &SequenceEnrollmentRepliedData{} })
	register(SequenceEnrollmentExited, func() Payload { return &SequenceEnrollmentExitedData{} })
	register(SequenceStepExecuted, func() Payload { return &SequenceStepExecutedData{} })
	register(SequenceStepPendingManual, func() Payload { return &SequenceStepPendingManualData{} })
}

// SequenceData describes a sequence definition, for reports.
type SequenceData struct {
	// SequenceID identifies the sequence in enrollments and every later event.
	SequenceID string `json:"sequenceId"`
	// Name is the display name, for reports.
	Name string `json:"name"`
	// OwnerID is the user the sequence sends as and whose manual tasks it creates.
	OwnerID string `json:"ownerId,omitempty"`
}

// Validate requires sequenceId and name.
func (d SequenceData) Validate() error {
	var c checker
	c.str("sequenceId", d.SequenceID)
	c.str("name", d.Name)
	return c.err()
}

// SequenceCreatedData is the payload of sequence.created.
type SequenceCreatedData = SequenceData

// SequenceActivatedData is the payload of sequence.activated.
type SequenceActivatedData = SequenceData

// SequencePausedData is the payload of sequence.paused.
type SequencePausedData = SequenceData

// SequenceEnrollmentData identifies one contact's enrollment in one sequence.
type SequenceEnrollmentData struct {
	// SequenceID is the sequence enrolled in.
	SequenceID string `json:"sequenceId"`
	// EnrollmentID identifies the enrollment in every event about it.
	EnrollmentID string `json:"enrollmentId"`
	// ContactID is the enrolled contact.
	ContactID string `json:"contactId"`
}

// Validate requires sequenceId, enrollmentId and contactId.
func (d SequenceEnrollmentData) Validate() error {
	var c checker
	d.check(&c)
	return c.err()
}

func (d SequenceEnrollmentData) check(c *checker) {
	c.str("sequenceId", d.SequenceID)
	c.str("enrollmentId", d.EnrollmentID)
	c.str("contactId", d.ContactID)
}

// SequenceEnrollmentCreatedData is a new enrollment and who made it.
type SequenceEnrollmentCreatedData struct {
	SequenceEnrollmentData
	// EnrolledBy is the user, or "workflow:<id>", that enrolled the contact.
	EnrolledBy string `json:"enrolledBy,omitempty"`
}

// SequenceEnrollmentCompletedData is the payload of sequence.enrollment.completed.
type SequenceEnrollmentCompletedData = SequenceEnrollmentData

// SequenceEnrollmentRepliedData is a reply from an enrolled contact, pointing
// at the inbox message so reports can link to it.
type SequenceEnrollmentRepliedData struct {
	SequenceEnrollmentData
	// ThreadID is the inbox thread of the reply.
	ThreadID string `json:"threadId,omitempty"`
	// MessageID is the inbox message that is the reply.
	MessageID string `json:"messageId"`
	// Channel is the channel the reply came on.
	Channel string `json:"channel"`
}

// Validate requires what SequenceEnrollmentData does, messageId and a valid channel.
func (d SequenceEnrollmentRepliedData) Validate() error {
	var c checker
	d.check(&c)
	c.str("messageId", d.MessageID)
	c.channel("channel", d.Channel)
	return c.err()
}

// SequenceEnrollmentExitedData is an enrollment stopped before its last step.
type SequenceEnrollmentExitedData struct {
	SequenceEnrollmentData
	// Reason is why, one of the SequenceExit constants.
	Reason string `json:"reason"`
}

// Validate requires what SequenceEnrollmentData does, and reason.
func (d SequenceEnrollmentExitedData) Validate() error {
	var c checker
	d.check(&c)
	c.str("reason", d.Reason)
	return c.err()
}

// SequenceStepData identifies one step of one enrollment.
type SequenceStepData struct {
	SequenceEnrollmentData
	// StepID identifies the step within the sequence.
	StepID string `json:"stepId"`
	// StepNumber is the step's 1-based position, for funnel reports.
	StepNumber int64 `json:"stepNumber,omitempty"`
	// StepType is the step's kind, e.g. "email", "sms", "whatsapp", "call", "task".
	StepType string `json:"stepType"`
}

func (d SequenceStepData) check(c *checker) {
	d.SequenceEnrollmentData.check(c)
	c.str("stepId", d.StepID)
	c.nonNegative("stepNumber", d.StepNumber)
	c.str("stepType", d.StepType)
}

// Validate requires what SequenceEnrollmentData does, stepId and stepType.
func (d SequenceStepData) Validate() error {
	var c checker
	d.check(&c)
	return c.err()
}

// SequenceStepExecutedData is a step done, automatically or by a person.
type SequenceStepExecutedData struct {
	SequenceStepData
	// MessageID is the message the step queued, for message steps.
	MessageID string `json:"messageId,omitempty"`
	// CompletedBy is the user who did a manual step.
	CompletedBy string `json:"completedBy,omitempty"`
}

// SequenceStepPendingManualData is a manual step waiting for a person, which
// becomes a task in their queue.
type SequenceStepPendingManualData struct {
	SequenceStepData
	// AssigneeID is the user who must do the step, usually the sequence owner.
	AssigneeID string `json:"assigneeId,omitempty"`
	// DueAt is when the step should be done by, if it has a deadline.
	DueAt Time `json:"dueAt,omitzero"`
}
