package event

import "encoding/json"

// SourceWorkflows is the envelope source of events the workflows module publishes.
const SourceWorkflows = "workflows-service"

// Workflow subjects: definitions, and each contact's run through one.
const (
	// WorkflowCreated announces a new workflow draft.
	WorkflowCreated = "workflow.created"
	// WorkflowActivated announces that a workflow starts runs on its trigger.
	WorkflowActivated = "workflow.activated"
	// WorkflowPaused announces that a workflow starts no new runs.
	WorkflowPaused = "workflow.paused"
	// WorkflowRunStarted announces a contact entering a workflow.
	WorkflowRunStarted = "workflow.run.started"
	// WorkflowRunCompleted announces a run that reached an end node.
	WorkflowRunCompleted = "workflow.run.completed"
	// WorkflowRunFailed announces a run stopped by an error.
	WorkflowRunFailed = "workflow.run.failed"
	// WorkflowRunGoalReached announces a run whose contact met a goal; the run ends there.
	WorkflowRunGoalReached = "workflow.run.goal_reached"
	// WorkflowNodeExecuted announces one node of a run done, for funnel reports.
	WorkflowNodeExecuted = "workflow.node.executed"
	// WorkflowEventReceived is a named custom event about a contact, posted
	// to the API, that workflows with a custom trigger start runs on. Added
	// to the specification's subjects (additive).
	WorkflowEventReceived = "workflow.event.received"
)

func init() {
	register(WorkflowCreated, func() Payload { return &WorkflowCreatedData{} })
	register(WorkflowActivated, func() Payload { return &WorkflowActivatedData{} })
	register(WorkflowPaused, func() Payload { return &WorkflowPausedData{} })
	register(WorkflowRunStarted, func() Payload { return &WorkflowRunStartedData{} })
	register(WorkflowRunCompleted, func() Payload { return &WorkflowRunCompletedData{} })
	register(WorkflowRunFailed, func() Payload { return &WorkflowRunFailedData{} })
	register(WorkflowRunGoalReached, func() Payload { return &WorkflowRunGoalReachedData{} })
	register(WorkflowNodeExecuted, func() Payload { return &WorkflowNodeExecutedData{} })
	register(WorkflowEventReceived, func() Payload { return &WorkflowEventReceivedData{} })
}

// WorkflowData describes a workflow definition at one version.
type WorkflowData struct {
	// WorkflowID identifies the workflow in runs and every later event.
	WorkflowID string `json:"workflowId"`
	// Name is the display name, for reports.
	Name string `json:"name"`
	// Version is the definition's version; runs record the one they follow.
	Version int64 `json:"version"`
	// Trigger is the subject that starts runs, e.g. "segment.member.added", if set.
	Trigger string `json:"trigger,omitempty"`
}

// Validate requires workflowId, name and a positive version.
func (d WorkflowData) Validate() error {
	var c checker
	c.str("workflowId", d.WorkflowID)
	c.str("name", d.Name)
	c.positive("version", d.Version)
	return c.err()
}

// WorkflowCreatedData is the payload of workflow.created.
type WorkflowCreatedData = WorkflowData

// WorkflowActivatedData is the payload of workflow.activated.
type WorkflowActivatedData = WorkflowData

// WorkflowPausedData is the payload of workflow.paused.
type WorkflowPausedData = WorkflowData

// WorkflowRunData identifies one contact's run through one workflow. Field
// names follow the specification's workflow.run.goal_reached example.
type WorkflowRunData struct {
	// WorkflowID is the workflow run.
	WorkflowID string `json:"workflowId"`
	// WorkflowName is the display name, for reports.
	WorkflowName string `json:"workflowName,omitempty"`
	// Version is the definition version the run follows, when known.
	Version int64 `json:"version,omitempty"`
	// RunID identifies the run in every event about it.
	RunID string `json:"runId"`
	// ContactID is the contact going through the workflow.
	ContactID string `json:"contactId"`
}

// Validate requires workflowId, runId and contactId.
func (d WorkflowRunData) Validate() error {
	var c checker
	d.check(&c)
	return c.err()
}

func (d WorkflowRunData) check(c *checker) {
	c.str("workflowId", d.WorkflowID)
	c.nonNegative("version", d.Version)
	c.str("runId", d.RunID)
	c.str("contactId", d.ContactID)
}

// WorkflowRunStartedData is a run's start and what triggered it; the
// triggering event itself is the envelope's causationId.
type WorkflowRunStartedData struct {
	WorkflowRunData
	// Trigger is the subject that started the run, or "manual".
	Trigger string `json:"trigger,omitempty"`
}

// WorkflowRunCompletedData is the payload of workflow.run.completed.
type WorkflowRunCompletedData = WorkflowRunData

// WorkflowRunFailedData is a run stopped by an error, with where and why.
type WorkflowRunFailedData struct {
	WorkflowRunData
	// NodeID is the node that failed, when the failure was in one.
	NodeID string `json:"nodeId,omitempty"`
	// Reason is a human-readable cause.
	Reason string `json:"reason"`
	// ErrorCode is a machine-readable cause, if any.
	ErrorCode string `json:"errorCode,omitempty"`
}

// Validate requires what WorkflowRunData does, and reason.
func (d WorkflowRunFailedData) Validate() error {
	var c checker
	d.check(&c)
	c.str("reason", d.Reason)
	return c.err()
}

// WorkflowRunGoalReachedData is a run whose contact met one of the
// workflow's goals, exactly the specification's example.
type WorkflowRunGoalReachedData struct {
	WorkflowRunData
	// GoalID identifies the goal within the workflow.
	GoalID string `json:"goalId"`
	// GoalName is the goal's display name, for reports.
	GoalName string `json:"goalName,omitempty"`
}

// Validate requires what WorkflowRunData does, and goalId.
func (d WorkflowRunGoalReachedData) Validate() error {
	var c checker
	d.check(&c)
	c.str("goalId", d.GoalID)
	return c.err()
}

// WorkflowNodeExecutedData is one node of a run done.
type WorkflowNodeExecutedData struct {
	WorkflowRunData
	// NodeID identifies the node within the workflow version.
	NodeID string `json:"nodeId"`
	// NodeType is the node's kind, e.g. "send_message", "wait", "condition", "split".
	NodeType string `json:"nodeType"`
	// Branch is the branch taken out of a condition or split node, e.g. "yes", "b".
	Branch string `json:"branch,omitempty"`
	// MessageID is the message a send node queued.
	MessageID string `json:"messageId,omitempty"`
}

// Validate requires what WorkflowRunData does, nodeId and nodeType.
func (d WorkflowNodeExecutedData) Validate() error {
	var c checker
	d.check(&c)
	c.str("nodeId", d.NodeID)
	c.str("nodeType", d.NodeType)
	return c.err()
}

// WorkflowEventReceivedData is a custom event: something that happened to a
// contact outside AlumOutreach (a gift, an event registration).
type WorkflowEventReceivedData struct {
	// Name is the event's name, which custom triggers match, e.g. "gift_received".
	Name string `json:"name"`
	// ContactID is the contact the event is about.
	ContactID string `json:"contactId"`
	// Properties are the caller's own data about the event, kept as sent.
	Properties json.RawMessage `json:"properties,omitempty"`
}

// Validate requires name and contactId.
func (d WorkflowEventReceivedData) Validate() error {
	var c checker
	c.str("name", d.Name)
	c.str("contactId", d.ContactID)
	return c.err()
}
