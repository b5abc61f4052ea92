package event

import "context"

type ctxKey int

const (
	correlationKey ctxKey = iota
	causationKey
)

// WithCorrelationID returns ctx carrying the correlation id that events
// published under it will bear.
func WithCorrelationID(ctx context.Context, id string) context.Context {
	return context.WithValue(ctx, correlationKey, id)
}

// CorrelationID returns the correlation id carried by ctx, or "".
func CorrelationID(ctx context.Context) string {
	s, _ := ctx.Value(correlationKey).(string)
	return s
}

// CausationID returns the id of the event being handled under ctx, or "".
func CausationID(ctx context.Context) string {
	s, _ := ctx.Value(causationKey).(string)
	return s
}

// WithCause returns ctx for handling cause: events published under it keep
// cause's correlation id and name cause as their causation.
func WithCause(ctx context.Context, cause Envelope) context.Context {
	ctx = context.WithValue(ctx, correlationKey, cause.CorrelationID)
	return context.WithValue(ctx, causationKey, cause.ID)
}

// EnsureCorrelation returns ctx with a correlation id, starting a new one
// when ctx has none, so that every event of one change shares it even
// outside an HTTP request (imports, tools, tests).
func EnsureCorrelation(ctx context.Context) context.Context {
	if CorrelationID(ctx) != "" {
		return ctx
	}
	return WithCorrelationID(ctx, NewID())
}
