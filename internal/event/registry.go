package event

import (
	"encoding/json"
	"fmt"
	"sort"
)

// Payload is implemented by every subject's payload type. Validate reports
// what a producer forgot; it runs on publish and on consume.
type Payload interface {
	Validate() error
}

// registry maps each subject of the specification to a constructor of its
// payload type. Filled by the subject files' init functions.
var registry = map[string]func() Payload{}

func register(subject string, newPayload func() Payload) {
	if _, dup := registry[subject]; dup {
		panic("event: subject registered twice: " + subject)
	}
	registry[subject] = newPayload
}

// Known reports whether subject is part of the event contract.
func Known(subject string) bool {
	_, ok := registry[subject]
	return ok
}

// Subjects returns every subject of the contract, sorted.
func Subjects() []string {
	out := make([]string, 0, len(registry))
	for s := range registry {
		out = append(out, s)
	}
	sort.Strings(out)
	return out
}

// NewPayload returns a zero payload of subject's type, or false when the
// subject is unknown.
func NewPayload(subject string) (Payload, bool) {
	f, ok := registry[subject]
	if !ok {
		return nil, false
	}
	return f(), true
}

func validatePayload(subject string, data json.RawMessage) error {
	p, ok := NewPayload(subject)
	if !ok {
		return fmt.Errorf("%w: unknown subject %q", ErrInvalid, subject)
	}
	if err := json.Unmarshal(data, p); err != nil {
		return fmt.Errorf("%w: %s payload does not decode: %v", ErrInvalid, subject, err)
	}
	if err := p.Validate(); err != nil {
		return fmt.Errorf("%w: %s payload: %v", ErrInvalid, subject, err)
	}
	return nil
}
