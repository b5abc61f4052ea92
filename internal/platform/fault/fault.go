// Package fault gives domain code a way to say what went wrong in terms a
// caller can act on (invalid input, not found, conflict, ...) without knowing
// about HTTP. The HTTP layer maps a Kind to a status in one place.
package fault

import (
	"errors"
	"fmt"
)

// Kind classifies an error by who must act on it.
type Kind int

const (
	// Internal is our fault; the caller can only retry later.
	Internal Kind = iota
	Invalid
	NotFound
	Conflict
	Unauthorized
	Forbidden
	TooLarge
	Unavailable
)

// Error is a classified error with a stable machine-readable code and a
// message that tells the caller what to fix.
type Error struct {
	Kind    Kind
	Code    string
	Message string
	// Details carries structured context, such as the path of a bad field.
	Details map[string]any
	Err     error
}

func (e *Error) Error() string {
	if e.Err != nil {
		return e.Message + ": " + e.Err.Error()
	}
	return e.Message
}

func (e *Error) Unwrap() error { return e.Err }

// New returns a classified error.
func New(kind Kind, code, format string, args ...any) *Error {
	return &Error{Kind: kind, Code: code, Message: fmt.Sprintf(format, args...)}
}

// Wrap classifies err, keeping it in the chain for errors.Is.
func Wrap(err error, kind Kind, code, format string, args ...any) *Error {
	return &Error{Kind: kind, Code: code, Message: fmt.Sprintf(format, args...), Err: err}
}

// As returns the classified error in err's chain, if any.
func As(err error) (*Error, bool) {
	var fe *Error
	ok := errors.As(err, &fe)
	return fe, ok
}
