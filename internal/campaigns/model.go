package campaigns

import (
	"time"
)

// Lifecycle statuses. created -> scheduled -> started <-> paused ->
// completed, and cancelled from any status before completed.
const (
	StatusCreated   = "created"
	StatusScheduled = "scheduled"
	StatusStarted   = "started"
	StatusPaused    = "paused"
	StatusCompleted = "completed"
	StatusCancelled = "cancelled"
)

// Campaign is a bulk send of one template to the members of segments.
type Campaign struct {
	ID         string   `json:"id"`
	Name       string   `json:"name"`
	Channel    string   `json:"channel"`
	TemplateID string   `json:"templateId"`
	SegmentIDs []string `json:"segmentIds"`
	// ExcludeSegmentIDs are segments whose members get nothing, even when
	// also in SegmentIDs.
	ExcludeSegmentIDs []string `json:"excludeSegmentIds"`
	Sender            Sender   `json:"sender"`
	// Rate caps messages per second (0: as fast as the providers allow).
	Rate     float64   `json:"rate"`
	Status   string    `json:"status"`
	Schedule *Schedule `json:"schedule,omitempty"`
	// StartAt is when a scheduled campaign starts (the earliest time zone's
	// moment for a local-time schedule).
	StartAt *time.Time `json:"startAt,omitempty"`
	// TemplateVersion is the template version frozen at start.
	TemplateVersion int64 `json:"templateVersion,omitempty"`
	// Recipients is the audience frozen at start; Queued how many of them
	// were handed to the pipeline so far.
	Recipients  int64      `json:"recipients"`
	Queued      int64      `json:"queued"`
	Version     int64      `json:"version"`
	CreatedAt   time.Time  `json:"createdAt"`
	UpdatedAt   time.Time  `json:"updatedAt"`
	StartedAt   *time.Time `json:"startedAt,omitempty"`
	CompletedAt *time.Time `json:"completedAt,omitempty"`

	audienceReady bool
	cursor        cursor
}

// Sender overrides the template's sender for email: address, display name
// and reply-to. Empty fields keep the template's.
type Sender struct {
	From     string `json:"from,omitempty"`
	FromName string `json:"fromName,omitempty"`
	ReplyTo  string `json:"replyTo,omitempty"`
}

// Schedule says when a campaign starts: at one moment (At, read in
// TimeZone when it has no offset), or at LocalTime on Date in each
// recipient's own time zone (TimeZone for recipients without one).
type Schedule struct {
	At        string `json:"at,omitempty"`
	LocalTime string `json:"localTime,omitempty"`
	Date      string `json:"date,omitempty"`
	TimeZone  string `json:"timeZone,omitempty"`
}

// PerRecipient reports whether the schedule sends at each recipient's
// local time.
func (s *Schedule) PerRecipient() bool { return s != nil && s.LocalTime != "" }

// cursor is the last recipient queued, in (send_at, contact_id) order.
type cursor struct {
	SendAt    int64
	ContactID string
}

// Input is a campaign as a caller sends it; nil fields are left alone by
// an update.
type Input struct {
	Name              *string   `json:"name"`
	Channel           *string   `json:"channel"`
	TemplateID        *string   `json:"templateId"`
	SegmentIDs        *[]string `json:"segmentIds"`
	ExcludeSegmentIDs *[]string `json:"excludeSegmentIds"`
	Sender            *Sender   `json:"sender"`
	Rate              *float64  `json:"rate"`
}

// Stats are a campaign's live counters.
type Stats struct {
	CampaignID string `json:"campaignId"`
	Status     string `json:"status"`
	Recipients int64  `json:"recipients"`
	Queued     int64  `json:"queued"`
	// Pending is queued but not yet sent, failed or skipped.
	Pending       int64 `json:"pending"`
	Sent          int64 `json:"sent"`
	Delivered     int64 `json:"delivered"`
	Opened        int64 `json:"opened"`
	UniqueOpened  int64 `json:"uniqueOpened"`
	Clicked       int64 `json:"clicked"`
	UniqueClicked int64 `json:"uniqueClicked"`
	Bounced       int64 `json:"bounced"`
	Complained    int64 `json:"complained"`
	Unsubscribed  int64 `json:"unsubscribed"`
	Failed        int64 `json:"failed"`
	// Skipped recipients got no message: no consent, no address,
	// suppressed, over the frequency cap, or deleted.
	Skipped int64 `json:"skipped"`
	// Held messages wait for the end of their recipient's quiet hours.
	Held int64 `json:"held"`

	settled, final int64
}

// Report is the stats with rates and a timeline.
type Report struct {
	Stats
	Rates    Rates           `json:"rates"`
	Interval string          `json:"interval"`
	Timeline []TimelinePoint `json:"timeline"`
}

// Rates are fractions (0..1) of the messages sent or delivered.
type Rates struct {
	// Delivery is delivered / sent.
	Delivery float64 `json:"delivery"`
	// Open and Click are unique opens and clicks / delivered.
	Open  float64 `json:"open"`
	Click float64 `json:"click"`
	// ClickToOpen is unique clicks / unique opens.
	ClickToOpen float64 `json:"clickToOpen"`
	// Bounce, Complaint and Unsubscribe are / sent.
	Bounce      float64 `json:"bounce"`
	Complaint   float64 `json:"complaint"`
	Unsubscribe float64 `json:"unsubscribe"`
}

// TimelinePoint is the counts of one interval of a report's timeline.
type TimelinePoint struct {
	At     time.Time        `json:"at"`
	Counts map[string]int64 `json:"counts"`
}
