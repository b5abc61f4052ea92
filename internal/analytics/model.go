package analytics

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/alumoutreach/alumoutreach/internal/event"
	"github.com/alumoutreach/alumoutreach/internal/platform/fault"
)

// Event is one ingested event, as the analytics store keeps it.
type Event struct {
	ID            string
	TenantID      string
	Subject       string
	OccurredAt    time.Time
	CorrelationID string
	Source        string
	Data          json.RawMessage
}

// FromEnvelope converts a bus envelope into the stored form. The event's own
// timestamp, not the time of ingestion, decides its bucket, so a backlog
// replayed hours later still counts in the hour it happened.
func FromEnvelope(env event.Envelope) Event {
	return Event{
		ID:            env.ID,
		TenantID:      env.TenantID,
		Subject:       env.Type,
		OccurredAt:    env.Timestamp.Time,
		CorrelationID: env.CorrelationID,
		Source:        env.Source,
		Data:          env.Data,
	}
}

// Interval is the width of a count bucket.
type Interval string

const (
	Hour Interval = "hour"
	Day  Interval = "day"
)

// ms is the interval's width in Unix milliseconds.
func (i Interval) ms() (int64, error) {
	switch i {
	case Hour:
		return hourMs, nil
	case Day:
		return dayMs, nil
	}
	return 0, fault.New(fault.Invalid, "invalid_interval", "interval %q is unknown; use hour or day", string(i))
}

const (
	hourMs = int64(time.Hour / time.Millisecond)
	dayMs  = int64(24 * time.Hour / time.Millisecond)
)

// CountQuery selects counts of one tenant's events.
type CountQuery struct {
	// From and To bound the buckets by their start: a bucket is returned when
	// From <= start < To after From is truncated to the interval. To is not
	// truncated down, so the bucket holding To (the current, partial hour
	// when To is now) is included.
	From, To time.Time
	Interval Interval
	// Subject is an exact subject ("contact.created"), a prefix pattern
	// ending in ".>" ("contact.>": every subject below contact), or empty
	// (or ">") for all subjects.
	Subject string
}

// Bucket is the number of events of one subject whose time falls in
// [Start, Start + interval).
type Bucket struct {
	Subject string    `json:"subject"`
	Start   time.Time `json:"start"`
	Count   int64     `json:"count"`
}

// Store keeps ingested events and answers count queries. The embedded
// implementation is SQLStore; a ClickHouse one can sit behind the same
// interface.
type Store interface {
	// Insert stores each event once by id and counts the ones it stored.
	// Events already stored (redeliveries, replays) are skipped and not
	// counted again.
	Insert(ctx context.Context, events []Event) (inserted int, err error)
	// Counts returns tenantID's counts per subject and bucket, ordered by
	// bucket start then subject. Buckets without events are absent.
	Counts(ctx context.Context, tenantID string, q CountQuery) ([]Bucket, error)
	// Erase blanks the payload of every stored event about a contact whose
	// personal data was erased; the events stay counted.
	Erase(ctx context.Context, tenantID, contactID string) (int64, error)
}

// subjectFilter is a parsed CountQuery.Subject.
type subjectFilter struct {
	exact  string // match this subject only
	prefix string // match subjects starting with this (ends in ".")
}

// parseSubject checks a subject pattern. Tokens follow NATS rules: non-empty,
// no whitespace; wildcards other than a trailing ">" are refused because the
// rollup is keyed by the literal subject.
func parseSubject(p string) (subjectFilter, error) {
	if p == "" || p == ">" {
		return subjectFilter{}, nil
	}
	base, isPrefix := strings.CutSuffix(p, ".>")
	for tok := range strings.SplitSeq(base, ".") {
		if tok == "" || strings.ContainsAny(tok, "*> \t\r\n") {
			return subjectFilter{}, fault.New(fault.Invalid, "invalid_subject",
				"subject %q is not a valid pattern; use an exact subject such as contact.created, a prefix ending in .> such as contact.>, or leave it empty for all subjects", p)
		}
	}
	if isPrefix {
		return subjectFilter{prefix: base + "."}, nil
	}
	return subjectFilter{exact: base}, nil
}

// bucketRange turns q's bounds into the half-open range of bucket starts to
// read, in Unix ms: from truncated down, to rounded up to the interval.
func bucketRange(q CountQuery, width int64) (from, to int64) {
	from = floorTo(q.From.UnixMilli(), width)
	to = floorTo(q.To.UnixMilli(), width)
	if to < q.To.UnixMilli() {
		to += width
	}
	return from, to
}

// floorTo rounds ms down to a multiple of width, also before 1970 (Go's %
// keeps the dividend's sign).
func floorTo(ms, width int64) int64 {
	r := ms % width
	if r < 0 {
		r += width
	}
	return ms - r
}

func (q CountQuery) String() string {
	return fmt.Sprintf("%s counts of %q from %s to %s", q.Interval, q.Subject, q.From.UTC().Format(time.RFC3339), q.To.UTC().Format(time.RFC3339))
}
