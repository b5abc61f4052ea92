package event

// SourceCampaigns is the envelope source of events the campaigns module publishes.
const SourceCampaigns = "campaigns-service"

// Campaign subjects: a campaign's lifecycle, and its messages' statuses
// re-published per campaign so campaign reports need not read pipeline events.
const (
	// CampaignCreated announces a new campaign draft.
	CampaignCreated = "campaign.created"
	// CampaignScheduled announces the time a campaign will start.
	CampaignScheduled = "campaign.scheduled"
	// CampaignStarted announces that a campaign began queueing messages to its audience.
	CampaignStarted = "campaign.started"
	// CampaignPaused announces that a campaign stopped queueing until resumed.
	CampaignPaused = "campaign.paused"
	// CampaignResumed announces that a paused campaign queues again, skipping recipients already sent to.
	CampaignResumed = "campaign.resumed"
	// CampaignCompleted announces that every recipient was queued or skipped.
	CampaignCompleted = "campaign.completed"
	// CampaignCancelled announces that a campaign stopped for good.
	CampaignCancelled = "campaign.cancelled"
	// CampaignMessageSent announces a campaign message handed to its provider.
	CampaignMessageSent = "campaign.message.sent"
	// CampaignMessageDelivered announces a campaign message delivered.
	CampaignMessageDelivered = "campaign.message.delivered"
	// CampaignMessageOpened announces a campaign message opened.
	CampaignMessageOpened = "campaign.message.opened"
	// CampaignMessageClicked announces a link clicked in a campaign message.
	CampaignMessageClicked = "campaign.message.clicked"
	// CampaignMessageBounced announces a campaign message bounced.
	CampaignMessageBounced = "campaign.message.bounced"
)

func init() {
	register(CampaignCreated, func() Payload { return &CampaignCreatedData{} })
	register(CampaignScheduled, func() Payload { return &CampaignScheduledData{} })
	register(CampaignStarted, func() Payload { return &CampaignStartedData{} })
	register(CampaignPaused, func() Payload { return &CampaignPausedData{} })
	register(CampaignResumed, func() Payload { return &CampaignResumedData{} })
	register(CampaignCompleted, func() Payload { return &CampaignCompletedData{} })
	register(CampaignCancelled, func() Payload { return &CampaignCancelledData{} })
	register(CampaignMessageSent, func() Payload { return &CampaignMessageSentData{} })
	register(CampaignMessageDelivered, func() Payload { return &CampaignMessageDeliveredData{} })
	register(CampaignMessageOpened, func() Payload { return &CampaignMessageOpenedData{} })
	register(CampaignMessageClicked, func() Payload { return &CampaignMessageClickedData{} })
	register(CampaignMessageBounced, func() Payload { return &CampaignMessageBouncedData{} })
}

// CampaignCreatedData describes a new campaign for reports.
type CampaignCreatedData struct {
	// CampaignID identifies the campaign in every later event and message.
	CampaignID string `json:"campaignId"`
	// Name is the display name, for reports.
	Name string `json:"name"`
	// Channel is the channel the campaign sends on.
	Channel string `json:"channel"`
	// TemplateID is the template chosen, if already chosen.
	TemplateID string `json:"templateId,omitempty"`
	// SegmentIDs are the audience segments chosen, if already chosen.
	SegmentIDs []string `json:"segmentIds,omitempty"`
}

// Validate requires campaignId, name and a valid channel.
func (d CampaignCreatedData) Validate() error {
	var c checker
	c.str("campaignId", d.CampaignID)
	c.str("name", d.Name)
	c.channel("channel", d.Channel)
	return c.err()
}

// CampaignScheduledData sets or moves a campaign's start time.
type CampaignScheduledData struct {
	// CampaignID is the campaign scheduled.
	CampaignID string `json:"campaignId"`
	// Name is the display name, for reports.
	Name string `json:"name,omitempty"`
	// ScheduledAt is when the campaign will start; a later event for the same
	// campaign replaces it.
	ScheduledAt Time `json:"scheduledAt"`
}

// Validate requires campaignId and scheduledAt.
func (d CampaignScheduledData) Validate() error {
	var c checker
	c.str("campaignId", d.CampaignID)
	c.timestamp("scheduledAt", d.ScheduledAt)
	return c.err()
}

// CampaignStartedData marks the start of sending and the audience it froze.
type CampaignStartedData struct {
	// CampaignID is the campaign started.
	CampaignID string `json:"campaignId"`
	// Name is the display name, for reports.
	Name string `json:"name,omitempty"`
	// Channel is the channel the campaign sends on.
	Channel string `json:"channel"`
	// TemplateID is the template sent.
	TemplateID string `json:"templateId,omitempty"`
	// Recipients is the size of the audience snapshot taken at start.
	Recipients int64 `json:"recipients"`
}

// Validate requires campaignId and a valid channel.
func (d CampaignStartedData) Validate() error {
	var c checker
	c.str("campaignId", d.CampaignID)
	c.channel("channel", d.Channel)
	c.nonNegative("recipients", d.Recipients)
	return c.err()
}

// CampaignStateData is a change of a running campaign's state: paused,
// resumed or cancelled.
type CampaignStateData struct {
	// CampaignID is the campaign whose state changed.
	CampaignID string `json:"campaignId"`
	// Name is the display name, for reports.
	Name string `json:"name,omitempty"`
	// Reason says why, e.g. "manual" or "provider_rate_limited".
	Reason string `json:"reason,omitempty"`
}

// Validate requires campaignId.
func (d CampaignStateData) Validate() error {
	var c checker
	c.str("campaignId", d.CampaignID)
	return c.err()
}

// CampaignPausedData is the payload of campaign.paused.
type CampaignPausedData = CampaignStateData

// CampaignResumedData is the payload of campaign.resumed.
type CampaignResumedData = CampaignStateData

// CampaignCancelledData is the payload of campaign.cancelled.
type CampaignCancelledData = CampaignStateData

// CampaignCompletedData closes a campaign's sending with its final counts;
// delivery statuses keep arriving as campaign.message.* afterwards.
type CampaignCompletedData struct {
	// CampaignID is the campaign completed.
	CampaignID string `json:"campaignId"`
	// Name is the display name, for reports.
	Name string `json:"name,omitempty"`
	// Recipients is the size of the audience snapshot.
	Recipients int64 `json:"recipients"`
	// Queued is how many messages were handed to the pipeline.
	Queued int64 `json:"queued"`
	// Skipped is how many recipients got no message: no consent, no address, suppressed.
	Skipped int64 `json:"skipped"`
}

// Validate requires campaignId and refuses negative counts.
func (d CampaignCompletedData) Validate() error {
	var c checker
	c.str("campaignId", d.CampaignID)
	c.nonNegative("recipients", d.Recipients)
	c.nonNegative("queued", d.Queued)
	c.nonNegative("skipped", d.Skipped)
	return c.err()
}

// CampaignMessageData is a pipeline message status of a campaign message:
// every MessageData field, plus the campaign.
type CampaignMessageData struct {
	MessageData
	// CampaignID is the campaign the message belongs to.
	CampaignID string `json:"campaignId"`
}

// Validate requires what MessageData does, and campaignId.
func (d CampaignMessageData) Validate() error {
	var c checker
	d.check(&c)
	c.str("campaignId", d.CampaignID)
	return c.err()
}

// CampaignMessageSentData is the payload of campaign.message.sent.
type CampaignMessageSentData = CampaignMessageData

// CampaignMessageDeliveredData is the payload of campaign.message.delivered.
type CampaignMessageDeliveredData = CampaignMessageData

// CampaignMessageOpenedData is the payload of campaign.message.opened.
type CampaignMessageOpenedData = CampaignMessageData

// CampaignMessageClickedData is the payload of campaign.message.clicked; URL is set.
type CampaignMessageClickedData = CampaignMessageData

// CampaignMessageBouncedData is the payload of campaign.message.bounced; BounceType and Reason are set.
type CampaignMessageBouncedData = CampaignMessageData
