package inbox

import (
	"time"

	"github.com/alumoutreach/alumoutreach/internal/event"
)

// Thread is a conversation with one address on one channel.
type Thread struct {
	ID      string `json:"id"`
	Channel string `json:"channel"`
	// Address is the other side's email address or phone number.
	Address string `json:"address"`
	// ContactID is the contact with that address; empty when none matched.
	ContactID string `json:"contactId,omitempty"`
	// Subject is the subject of the message that started the thread.
	Subject    string `json:"subject,omitempty"`
	Status     string `json:"status"`
	AssigneeID string `json:"assigneeId,omitempty"`
	// Messages counts the thread's messages.
	Messages      int64     `json:"messages"`
	LastMessageAt time.Time `json:"lastMessageAt"`
	// ResponseDueAt is when the contact's oldest unanswered message must
	// be answered by; absent when nothing waits or no deadline applies.
	ResponseDueAt *time.Time `json:"responseDueAt,omitempty"`
	// SLA is where that deadline stands: due, warning (close to it) or
	// breached (missed).
	SLA       string    `json:"sla,omitempty"`
	CreatedAt time.Time `json:"createdAt"`
	UpdatedAt time.Time `json:"updatedAt"`
	// Conversation is the thread's messages, oldest first, when asked for.
	Conversation []Message `json:"conversation,omitempty"`

	replies      int64
	responseKind string
	slaState     int
	warnAt       *time.Time
}

// SLA states, in the order a deadline reaches them.
const (
	slaDue = iota
	slaWarned
	slaBreached
)

var slaNames = map[int]string{slaDue: "due", slaWarned: "warning", slaBreached: "breached"}

// SLA sets the response deadlines; a zero duration sets none.
type SLA struct {
	// FirstResponse applies to a thread no one has replied to yet.
	FirstResponse time.Duration
	// NextResponse applies to a contact's message after a reply.
	NextResponse time.Duration
	// WarningBefore is how long before a deadline to warn; 0: never.
	WarningBefore time.Duration
}

// Message directions.
const (
	Inbound  = "in"
	Outbound = "out"
)

// Message is one message of a thread.
type Message struct {
	ID         string `json:"id"`
	ThreadID   string `json:"threadId"`
	Direction  string `json:"direction"`
	Channel    string `json:"channel"`
	Provider   string `json:"provider"`
	ExternalID string `json:"externalId"`
	From       string `json:"from"`
	To         string `json:"to"`
	Subject    string `json:"subject,omitempty"`
	Text       string `json:"text,omitempty"`
	HTML       string `json:"html,omitempty"`
	// InReplyTo is the id of our pipeline message this one answers.
	InReplyTo string `json:"inReplyTo,omitempty"`
	// AuthorID is the agent who wrote a reply.
	AuthorID string `json:"authorId,omitempty"`
	// ReceivedAt is when an inbound message reached the provider, or when
	// a reply was written.
	ReceivedAt time.Time `json:"receivedAt"`
}

// Statuses a thread can be set to, in the order a team works them.
var Statuses = []string{event.ThreadOpen, event.ThreadPending, event.ThreadSnoozed, event.ThreadClosed}

// Filter selects threads to list; empty fields select all.
type Filter struct {
	Status     string
	AssigneeID string
	ContactID  string
	Channel    string
	// SLA selects the threads whose response deadline stands there: due,
	// warning or breached.
	SLA string
}

// Cursor is where a page of threads ends: the last thread's activity time
// and id.
type Cursor struct {
	LastMessageAt int64  `json:"t"`
	ID            string `json:"i"`
}
