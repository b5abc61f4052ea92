package event

// SourceInbox is the envelope source of events the inbox module publishes.
const SourceInbox = "inbox-service"

// Inbox subjects: the shared inbox's threads, messages and SLA deadlines.
const (
	// InboxThreadCreated announces a new conversation with a contact.
	InboxThreadCreated = "inbox.thread.created"
	// InboxThreadUpdated announces a thread's status change (open, pending, snoozed, closed).
	InboxThreadUpdated = "inbox.thread.updated"
	// InboxThreadAssigned announces a thread handed to an agent, or unassigned.
	InboxThreadAssigned = "inbox.thread.assigned"
	// InboxMessageReceived announces an inbound message in a thread; sequences detect replies by it.
	InboxMessageReceived = "inbox.message.received"
	// InboxMessageSent announces an agent's reply in a thread.
	InboxMessageSent = "inbox.message.sent"
	// InboxSLAWarning announces a thread close to missing an SLA deadline.
	InboxSLAWarning = "inbox.sla.warning"
	// InboxSLABreach announces a thread that missed an SLA deadline.
	InboxSLABreach = "inbox.sla.breach"
)

// Thread statuses, carried in InboxThreadData.Status.
const (
	// ThreadOpen threads wait for an agent.
	ThreadOpen = "open"
	// ThreadPending threads wait for the contact.
	ThreadPending = "pending"
	// ThreadSnoozed threads are hidden until a time or a new message.
	ThreadSnoozed = "snoozed"
	// ThreadClosed threads are resolved; a new inbound message reopens them.
	ThreadClosed = "closed"
)

// SLA kinds, carried in InboxSLAData.Kind.
const (
	// SLAFirstResponse is the deadline for the first agent reply to a thread.
	SLAFirstResponse = "first_response"
	// SLANextResponse is the deadline for answering the contact's latest message.
	SLANextResponse = "next_response"
	// SLAResolution is the deadline for closing the thread.
	SLAResolution = "resolution"
)

func init() {
	register(InboxThreadCreated, func() Payload { return &InboxThreadCreatedData{} })
	register(InboxThreadUpdated, func() Payload { return &InboxThreadUpdatedData{} })
	register(InboxThreadAssigned, func() Payload { return &InboxThreadAssignedData{} })
	register(InboxMessageReceived, func() Payload { return &InboxMessageReceivedData{} })
	register(InboxMessageSent, func() Payload { return &InboxMessageSentData{} })
	register(InboxSLAWarning, func() Payload { return &InboxSLAWarningData{} })
	register(InboxSLABreach, func() Payload { return &InboxSLABreachData{} })
}

// InboxThreadData is a thread's state after a change.
type InboxThreadData struct {
	// ThreadID identifies the thread in every event about it.
	ThreadID string `json:"threadId"`
	// Channel is the channel the conversation happens on.
	Channel string `json:"channel"`
	// ContactID is the contact talked to; empty when the sender matched no contact.
	ContactID string `json:"contactId,omitempty"`
	// Subject is the email subject or a short summary, for lists and reports.
	Subject string `json:"subject,omitempty"`
	// Status is one of the Thread constants.
	Status string `json:"status"`
	// AssigneeID is the agent handling the thread; empty when unassigned.
	AssigneeID string `json:"assigneeId,omitempty"`
}

// Validate requires threadId, a valid channel and status.
func (d InboxThreadData) Validate() error {
	var c checker
	c.str("threadId", d.ThreadID)
	c.channel("channel", d.Channel)
	c.str("status", d.Status)
	return c.err()
}

// InboxThreadCreatedData is the payload of inbox.thread.created.
type InboxThreadCreatedData = InboxThreadData

// InboxThreadUpdatedData is the payload of inbox.thread.updated.
type InboxThreadUpdatedData = InboxThreadData

// InboxThreadAssignedData is a change of a thread's agent, for workload and
// response-time reports.
type InboxThreadAssignedData struct {
	// ThreadID is the thread reassigned.
	ThreadID string `json:"threadId"`
	// ContactID is the thread's contact, if known.
	ContactID string `json:"contactId,omitempty"`
	// AssigneeID is the new agent; empty means the thread was unassigned.
	AssigneeID string `json:"assigneeId,omitempty"`
	// PreviousAssigneeID is the agent before, if any.
	PreviousAssigneeID string `json:"previousAssigneeId,omitempty"`
	// AssignedBy is the user, or "rule:<id>", that made the change.
	AssignedBy string `json:"assignedBy,omitempty"`
}

// Validate requires threadId.
func (d InboxThreadAssignedData) Validate() error {
	var c checker
	c.str("threadId", d.ThreadID)
	return c.err()
}

// InboxMessageData is one message of a thread, in or out. It carries a
// preview, not the body, to keep events small; the body is read by id.
type InboxMessageData struct {
	// ThreadID is the thread the message belongs to.
	ThreadID string `json:"threadId"`
	// MessageID is the inbox's id for the message.
	MessageID string `json:"messageId"`
	// Channel is the channel the message travelled on.
	Channel string `json:"channel"`
	// ContactID is the contact on the other side; empty when unknown.
	ContactID string `json:"contactId,omitempty"`
	// From is the sender's address or number.
	From string `json:"from,omitempty"`
	// To is the recipient's address or number.
	To string `json:"to,omitempty"`
	// Subject is the email subject, if any.
	Subject string `json:"subject,omitempty"`
	// Preview is the start of the plain-text body (at most a few hundred characters).
	Preview string `json:"preview,omitempty"`
	// InReplyTo is the id of our outbound pipeline message this one answers,
	// when the provider's threading identified it; sequences and campaigns
	// attribute replies by it.
	InReplyTo string `json:"inReplyTo,omitempty"`
	// AuthorID is the agent who wrote an outbound message.
	AuthorID string `json:"authorId,omitempty"`
}

// Validate requires threadId, messageId and a valid channel.
func (d InboxMessageData) Validate() error {
	var c checker
	c.str("threadId", d.ThreadID)
	c.str("messageId", d.MessageID)
	c.channel("channel", d.Channel)
	return c.err()
}

// InboxMessageReceivedData is the payload of inbox.message.received.
type InboxMessageReceivedData = InboxMessageData

// InboxMessageSentData is the payload of inbox.message.sent.
type InboxMessageSentData = InboxMessageData

// InboxSLAData is an SLA deadline about to be missed, or missed.
type InboxSLAData struct {
	// ThreadID is the thread the deadline belongs to.
	ThreadID string `json:"threadId"`
	// ContactID is the thread's contact, if known.
	ContactID string `json:"contactId,omitempty"`
	// AssigneeID is the agent to alert; empty to alert the team.
	AssigneeID string `json:"assigneeId,omitempty"`
	// Kind is which deadline, one of the SLA constants.
	Kind string `json:"kind"`
	// DueAt is the deadline.
	DueAt Time `json:"dueAt"`
}

// Validate requires threadId, kind and dueAt.
func (d InboxSLAData) Validate() error {
	var c checker
	c.str("threadId", d.ThreadID)
	c.str("kind", d.Kind)
	c.timestamp("dueAt", d.DueAt)
	return c.err()
}

// InboxSLAWarningData is the payload of inbox.sla.warning.
type InboxSLAWarningData = InboxSLAData

// InboxSLABreachData is the payload of inbox.sla.breach.
type InboxSLABreachData = InboxSLAData
