package event

// SourcePipeline is the envelope source of events the pipeline module publishes.
const SourcePipeline = "pipeline-service"

// Pipeline subjects: the life of one outbound message, from queued to its
// last provider status. All share the payload MessageData. The first eight
// are the specification's; PipelineMessageHeld and
// PipelineMessageUnsubscribed are additions to it (additive: consumers of
// pipeline.message.> that do not know them ignore them).
const (
	// PipelineMessageQueued announces a message accepted for sending; the pipeline's own sender consumes it.
	PipelineMessageQueued = "pipeline.message.queued"
	// PipelineMessageSent announces a message handed to its provider.
	PipelineMessageSent = "pipeline.message.sent"
	// PipelineMessageDelivered announces the provider's delivery confirmation.
	PipelineMessageDelivered = "pipeline.message.delivered"
	// PipelineMessageOpened announces an open (email pixel, WhatsApp read receipt).
	PipelineMessageOpened = "pipeline.message.opened"
	// PipelineMessageClicked announces a tracked link click, with its URL.
	PipelineMessageClicked = "pipeline.message.clicked"
	// PipelineMessageBounced announces that the recipient's server refused the message.
	PipelineMessageBounced = "pipeline.message.bounced"
	// PipelineMessageFailed announces a message that will not be sent: provider error, no consent, retries exhausted.
	PipelineMessageFailed = "pipeline.message.failed"
	// PipelineMessageComplained announces a spam complaint; the address must not be mailed again.
	PipelineMessageComplained = "pipeline.message.complained"
	// PipelineMessageHeld announces a message held for the recipient's quiet
	// hours (status held); SendAfter is when it goes out. Published once per
	// hold, in the transaction that records it. Added to the specification.
	PipelineMessageHeld = "pipeline.message.held"
	// PipelineMessageUnsubscribed announces that the recipient unsubscribed
	// through the message's unsubscribe link or its one-click POST (the
	// address is suppressed on email). Published once per message, however
	// often the link is used. Added to the specification.
	PipelineMessageUnsubscribed = "pipeline.message.unsubscribed"
)

// Message source types, carried in MessageData.SourceType: which module asked
// for the message, so that module's tracking consumer can keep only its own.
const (
	// MessageSourceCampaign messages belong to a campaign; SourceID is the campaign id.
	MessageSourceCampaign = "campaign"
	// MessageSourceWorkflow messages were sent by a workflow node; SourceID is the workflow id.
	MessageSourceWorkflow = "workflow"
	// MessageSourceSequence messages were sent by a sequence step; SourceID is the sequence id.
	MessageSourceSequence = "sequence"
	// MessageSourceInbox messages are agents' replies; SourceID is the thread id.
	MessageSourceInbox = "inbox"
)

// Bounce types, carried in BounceType fields.
const (
	// BounceHard is permanent (unknown address): the address must be suppressed.
	BounceHard = "hard"
	// BounceSoft is temporary (mailbox full): the address may be retried later.
	BounceSoft = "soft"
)

func init() {
	register(PipelineMessageQueued, func() Payload { return &PipelineMessageQueuedData{} })
	register(PipelineMessageSent, func() Payload { return &PipelineMessageSentData{} })
	register(PipelineMessageDelivered, func() Payload { return &PipelineMessageDeliveredData{} })
	register(PipelineMessageOpened, func() Payload { return &PipelineMessageOpenedData{} })
	register(PipelineMessageClicked, func() Payload { return &PipelineMessageClickedData{} })
	register(PipelineMessageBounced, func() Payload { return &PipelineMessageBouncedData{} })
	register(PipelineMessageFailed, func() Payload { return &PipelineMessageFailedData{} })
	register(PipelineMessageComplained, func() Payload { return &PipelineMessageComplainedData{} })
	register(PipelineMessageHeld, func() Payload { return &PipelineMessageHeldData{} })
	register(PipelineMessageUnsubscribed, func() Payload { return &PipelineMessageUnsubscribedData{} })
}

// MessageData is one outbound message at one step of its life. The first
// eight fields are the specification's pipeline.message.sent example; the
// rest are set only where they apply.
type MessageData struct {
	// MessageID is our id for the message, stable from queued to the last status.
	MessageID string `json:"messageId"`
	// Channel is the channel the message travels on.
	Channel string `json:"channel"`
	// ContactID is the recipient contact.
	ContactID string `json:"contactId"`
	// RecipientAddress is the email address or E.164 number sent to. The
	// pipeline sets it on every status once it knows it; it is empty on a
	// queued message whose requester knows only the contact (a campaign's
	// fan-out: the pipeline reads the address when it sends), and on a
	// failure because the contact has no address or no longer exists.
	RecipientAddress string `json:"recipientAddress"`
	// SourceType is the requesting module, one of the MessageSource constants.
	SourceType string `json:"sourceType"`
	// SourceID is the campaign, workflow, sequence or thread the message belongs to.
	SourceID string `json:"sourceId"`
	// TemplateID is the template rendered, when one was (agents' replies have none).
	TemplateID string `json:"templateId,omitempty"`
	// TemplateVersion pins the template version to render, so a campaign
	// sends the version it started with; 0 means the current one. Added to
	// the specification's payload (additive).
	TemplateVersion int64 `json:"templateVersion,omitempty"`
	// SourceName is the campaign's (or workflow's) name, for the
	// {{campaign.name}} placeholder. Added to the specification's payload.
	SourceName string `json:"sourceName,omitempty"`
	// ExternalID is the provider's id for the message, known from sent on;
	// provider webhooks are matched to messages by it.
	ExternalID string `json:"externalId,omitempty"`
	// RunID is the workflow run or sequence enrollment that sent the message, if any.
	RunID string `json:"runId,omitempty"`
	// Step is the workflow node or sequence step that sent the message: a
	// source sends one message per contact, channel and step. Added to the
	// specification's payload (additive).
	Step string `json:"step,omitempty"`
	// Subject is the email subject line, so the inbox can thread replies.
	Subject string `json:"subject,omitempty"`
	// From, FromName and ReplyTo override the template's email sender for
	// this message (a campaign's own sender), on queued. Added to the
	// specification's payload.
	From     string `json:"from,omitempty"`
	FromName string `json:"fromName,omitempty"`
	ReplyTo  string `json:"replyTo,omitempty"`
	// OccurredAt is when the provider says the status happened (an open, a
	// delivery); zero when it is the envelope's timestamp.
	OccurredAt Time `json:"occurredAt,omitzero"`
	// Reason is a human-readable cause, on bounced, failed and complained.
	Reason string `json:"reason,omitempty"`
	// ErrorCode is the provider's or our machine-readable error code, on bounced and failed.
	ErrorCode string `json:"errorCode,omitempty"`
	// URL is the link clicked, on clicked.
	URL string `json:"url,omitempty"`
	// BounceType is BounceHard or BounceSoft, on bounced.
	BounceType string `json:"bounceType,omitempty"`
	// Text is the body of a message written by hand (an agent's reply from
	// the inbox), sent as is instead of a template, on queued; Subject is
	// then its email subject. Added to the specification's payload.
	Text string `json:"text,omitempty"`
	// ReplyToMessageID is the Message-ID (without angle brackets) of the
	// contact's email a hand-written email answers: it goes out as
	// In-Reply-To and References, so the contact's mail client threads it.
	// On queued, with Text.
	ReplyToMessageID string `json:"replyToMessageId,omitempty"`
	// SendAfter is when a held message goes out (the end of the
	// recipient's quiet hours), on held. Added to the specification's
	// payload (additive).
	SendAfter Time `json:"sendAfter,omitzero"`
}

// Validate requires messageId, a valid channel, contactId, sourceType and
// sourceId.
func (d MessageData) Validate() error {
	var c checker
	d.check(&c)
	return c.err()
}

func (d MessageData) check(c *checker) {
	c.str("messageId", d.MessageID)
	c.channel("channel", d.Channel)
	c.str("contactId", d.ContactID)
	c.str("sourceType", d.SourceType)
	c.str("sourceId", d.SourceID)
}

// PipelineMessageQueuedData is the payload of pipeline.message.queued.
type PipelineMessageQueuedData = MessageData

// PipelineMessageSentData is the payload of pipeline.message.sent.
type PipelineMessageSentData = MessageData

// PipelineMessageDeliveredData is the payload of pipeline.message.delivered.
type PipelineMessageDeliveredData = MessageData

// PipelineMessageOpenedData is the payload of pipeline.message.opened.
type PipelineMessageOpenedData = MessageData

// PipelineMessageClickedData is the payload of pipeline.message.clicked; URL is set.
type PipelineMessageClickedData = MessageData

// PipelineMessageBouncedData is the payload of pipeline.message.bounced; BounceType and Reason are set.
type PipelineMessageBouncedData = MessageData

// PipelineMessageFailedData is the payload of pipeline.message.failed; Reason and ErrorCode are set.
type PipelineMessageFailedData = MessageData

// PipelineMessageComplainedData is the payload of pipeline.message.complained.
type PipelineMessageComplainedData = MessageData

// PipelineMessageHeldData is the payload of pipeline.message.held; SendAfter is set.
type PipelineMessageHeldData = MessageData

// PipelineMessageUnsubscribedData is the payload of pipeline.message.unsubscribed; OccurredAt is set.
type PipelineMessageUnsubscribedData = MessageData
