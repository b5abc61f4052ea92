package event

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
)

// CurrentVersion is the schema version producers write. Schemas evolve by
// adding fields (minor versions); a major version is a breaking change.
const CurrentVersion = "1.0"

// DefaultMaxSize is the largest encoded event, envelope included, that may be
// published. The specification asks for payloads under 1 MB.
const DefaultMaxSize = 1 << 20

// TimestampLayout is RFC 3339 in UTC with milliseconds, as the spec's examples.
const TimestampLayout = "2006-01-02T15:04:05.000Z07:00"

var (
	// ErrInvalid marks an envelope or payload that can never be processed:
	// retrying cannot fix it, so consumers dead-letter it at once.
	ErrInvalid = errors.New("invalid event")
	// ErrUnsupportedVersion marks an event whose schema major version this
	// build cannot read.
	ErrUnsupportedVersion = errors.New("unsupported event version")
	// ErrTooLarge is returned when an encoded event exceeds the size limit.
	ErrTooLarge = errors.New("event too large")
)

// Envelope is the JSON document published on the bus: the specification's
// BaseEvent plus id, type and causationId.
type Envelope struct {
	// ID is a UUIDv7, unique per event. It is the Nats-Msg-Id and the
	// idempotency key of every consumer.
	ID string `json:"id"`
	// Type is the subject the event is published on.
	Type string `json:"type"`
	// CausationID is the id of the event whose handling produced this one.
	CausationID   string          `json:"causationId,omitempty"`
	Version       string          `json:"version"`
	Source        string          `json:"source"`
	Timestamp     Time            `json:"timestamp"`
	TenantID      string          `json:"tenantId"`
	CorrelationID string          `json:"correlationId"`
	Data          json.RawMessage `json:"data"`
}

// Time is a time.Time that encodes as RFC 3339 UTC with milliseconds.
type Time struct{ time.Time }

// MarshalJSON implements json.Marshaler. Like time.Time, it refuses years
// outside 0-9999, which RFC 3339 cannot express and UnmarshalJSON would refuse.
func (t Time) MarshalJSON() ([]byte, error) {
	u := t.UTC()
	if y := u.Year(); y < 0 || y > 9999 {
		return nil, fmt.Errorf("timestamp year %d is outside the range 0-9999 RFC 3339 can express", y)
	}
	return []byte(`"` + u.Format(TimestampLayout) + `"`), nil
}

// UnmarshalJSON accepts any RFC 3339 timestamp. JSON null leaves t
// unchanged (zero), as encoding/json does for time.Time, so an optional
// timestamp sent as null reads as absent and a required one is reported missing.
func (t *Time) UnmarshalJSON(b []byte) error {
	if string(b) == "null" {
		return nil
	}
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("timestamp must be a JSON string: %w", err)
	}
	parsed, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return fmt.Errorf("timestamp %q is not RFC 3339: %w", s, err)
	}
	t.Time = parsed.UTC()
	return nil
}

// NewID returns a new time-ordered UUIDv7 string.
func NewID() string {
	return uuid.Must(uuid.NewV7()).String()
}

// New builds an envelope for subject with data as its payload, refusing a
// subject outside the contract and a payload that fails its checks: this is
// where payloads are validated on the way out (Encode checks the envelope).
// Correlation and causation ids come from ctx (see WithCorrelationID and
// WithCause); when ctx carries no correlation id the event starts a new
// correlation.
func New(ctx context.Context, subject, source, tenantID string, data any) (Envelope, error) {
	if !Known(subject) {
		return Envelope{}, fmt.Errorf("%w: unknown subject %q", ErrInvalid, subject)
	}
	raw, err := json.Marshal(data)
	if err != nil {
		return Envelope{}, fmt.Errorf("encode %s payload: %w", subject, err)
	}
	// A typed payload checks itself; anything else (a map, raw JSON) is
	// decoded into the subject's type and checked there.
	if p, ok := data.(Payload); ok {
		if err := p.Validate(); err != nil {
			return Envelope{}, fmt.Errorf("%w: %s payload: %v", ErrInvalid, subject, err)
		}
	} else if err := validatePayload(subject, raw); err != nil {
		return Envelope{}, err
	}
	id := NewID()
	correlation := CorrelationID(ctx)
	if correlation == "" {
		correlation = id
	}
	return Envelope{
		ID:            id,
		Type:          subject,
		CausationID:   CausationID(ctx),
		Version:       CurrentVersion,
		Source:        source,
		Timestamp:     Time{time.Now().UTC().Truncate(time.Millisecond)},
		TenantID:      tenantID,
		CorrelationID: correlation,
		Data:          raw,
	}, nil
}

// Encode checks env's envelope and returns its JSON encoding, refusing
// encodings larger than maxSize bytes (DefaultMaxSize when maxSize <= 0).
// The payload was checked by New; an envelope assembled by hand should be
// checked with Validate first.
func Encode(env Envelope, maxSize int) ([]byte, error) {
	if err := env.validateEnvelope(); err != nil {
		return nil, err
	}
	b, ok := appendEnvelope(make([]byte, 0, 512+len(env.Data)), &env)
	if !ok {
		// json.Marshal says what cannot be encoded.
		var err error
		if b, err = json.Marshal(env); err != nil {
			return nil, fmt.Errorf("encode event %s: %w", env.Type, err)
		}
	}
	if maxSize <= 0 {
		maxSize = DefaultMaxSize
	}
	if len(b) > maxSize {
		return nil, fmt.Errorf("%w: %s event %s is %d bytes, the limit is %d; keep payloads small and reference large data by id",
			ErrTooLarge, env.Type, env.ID, len(b), maxSize)
	}
	return b, nil
}

// Decode parses an encoded envelope and checks its fields, version and
// subject. The payload is checked when a consumer reads it (DecodeData), so
// a consumer that only stores or forwards events does not pay for decoding
// payloads it never looks at. Errors wrap ErrInvalid or
// ErrUnsupportedVersion, both of which are permanent.
func Decode(b []byte) (Envelope, error) {
	var env Envelope
	if err := decodeEnvelope(b, &env); err != nil {
		return Envelope{}, fmt.Errorf("%w: not a JSON envelope: %v", ErrInvalid, err)
	}
	if err := env.validateEnvelope(); err != nil {
		return Envelope{}, err
	}
	return env, nil
}

// Validate checks the envelope's required fields, its version, and that its
// payload decodes into the subject's payload type and passes its checks.
func (e Envelope) Validate() error {
	if err := e.validateEnvelope(); err != nil {
		return err
	}
	return validatePayload(e.Type, e.Data)
}

// validateEnvelope checks everything but the payload's content.
func (e Envelope) validateEnvelope() error {
	var missing []string
	for _, f := range []struct{ name, value string }{
		{"id", e.ID}, {"type", e.Type}, {"version", e.Version}, {"source", e.Source},
		{"tenantId", e.TenantID}, {"correlationId", e.CorrelationID},
	} {
		if strings.TrimSpace(f.value) == "" {
			missing = append(missing, f.name)
		}
	}
	if e.Timestamp.IsZero() {
		missing = append(missing, "timestamp")
	}
	if len(e.Data) == 0 || string(e.Data) == "null" {
		missing = append(missing, "data")
	}
	if len(missing) > 0 {
		return fmt.Errorf("%w: envelope lacks %s", ErrInvalid, strings.Join(missing, ", "))
	}
	if err := CheckVersion(e.Version); err != nil {
		return err
	}
	if !Known(e.Type) {
		return fmt.Errorf("%w: unknown subject %q", ErrInvalid, e.Type)
	}
	return nil
}

// CheckVersion applies the version rule: an event is readable when its major
// version is the current one or the one before it. Minor versions only add
// fields, which readers ignore, so any minor is accepted.
func CheckVersion(v string) error {
	cur, _, _ := parseVersion(CurrentVersion)
	major, _, ok := parseVersion(v)
	if !ok {
		return fmt.Errorf("%w: version %q is not MAJOR.MINOR", ErrUnsupportedVersion, v)
	}
	if major != cur && major != cur-1 {
		return fmt.Errorf("%w: version %q; this build reads major versions %d and %d", ErrUnsupportedVersion, v, cur-1, cur)
	}
	return nil
}

func parseVersion(v string) (major, minor int, ok bool) {
	a, b, found := strings.Cut(v, ".")
	if !found {
		return 0, 0, false
	}
	major, err1 := strconv.Atoi(a)
	minor, err2 := strconv.Atoi(b)
	if err1 != nil || err2 != nil || major < 0 || minor < 0 {
		return 0, 0, false
	}
	return major, minor, true
}

// DecodeData unmarshals the envelope's payload into T and, when T is a
// payload type, runs its checks. Errors wrap ErrInvalid: permanent.
func DecodeData[T any](e Envelope) (T, error) {
	var v T
	if md, ok := any(&v).(*MessageData); !ok || !decodeMessageData(e.Data, md) {
		// A value of its own for encoding/json, which keeps the pointer
		// it is given (v would move to the heap on the fast path too),
		// and which starts from nothing the fast path filled in.
		slow := new(T)
		if err := json.Unmarshal(e.Data, slow); err != nil {
			return *slow, fmt.Errorf("%w: %s payload does not decode: %v", ErrInvalid, e.Type, err)
		}
		v = *slow
	}
	if p, ok := any(v).(Payload); ok {
		if err := p.Validate(); err != nil {
			return v, fmt.Errorf("%w: %s payload: %v", ErrInvalid, e.Type, err)
		}
	} else if p, ok := any(&v).(Payload); ok {
		if err := p.Validate(); err != nil {
			return v, fmt.Errorf("%w: %s payload: %v", ErrInvalid, e.Type, err)
		}
	}
	return v, nil
}
