package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"

	"github.com/alumoutreach/alumoutreach/internal/event"
	"github.com/alumoutreach/alumoutreach/internal/platform/fault"
	"github.com/alumoutreach/alumoutreach/internal/platform/store"
)

// DefaultMaxBody is the largest JSON request body accepted by DecodeJSON.
const DefaultMaxBody = 1 << 20

type ctxKey int

const tenantKey ctxKey = iota

// WithTenant returns ctx acting for tenantID; the auth middleware sets it.
func WithTenant(ctx context.Context, tenantID string) context.Context {
	return context.WithValue(ctx, tenantKey, tenantID)
}

// TenantID returns the tenant the request authenticated as. Handlers behind
// the auth middleware always get a non-empty id.
func TenantID(ctx context.Context) string {
	s, _ := ctx.Value(tenantKey).(string)
	return s
}

// WriteJSON writes {"data": v} with status.
func WriteJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]any{"data": v})
}

// WriteCreated answers 201 with v, the resource created at location.
func WriteCreated(w http.ResponseWriter, location string, v any) {
	w.Header().Set("Location", location)
	WriteJSON(w, http.StatusCreated, v)
}

// Create is the handler of a POST that creates a resource: the body (at
// most maxBytes) decoded into an In, create called with the caller's
// tenant, and the result answered 201 at location(result).
func Create[In, Out any](maxBytes int64, create func(ctx context.Context, tenant string, in In) (Out, error), location func(Out) string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		var in In
		if err := DecodeJSON(w, r, &in, maxBytes); err != nil {
			WriteError(w, r, err)
			return
		}
		out, err := create(r.Context(), TenantID(r.Context()), in)
		if err != nil {
			WriteError(w, r, err)
			return
		}
		WriteCreated(w, location(out), out)
	}
}

// ErrorBody is the JSON shape of every error response.
type ErrorBody struct {
	Error ErrorDetail `json:"error"`
}

// ErrorDetail is the error object: a stable code and a message saying what to fix.
type ErrorDetail struct {
	Code          string         `json:"code"`
	Message       string         `json:"message"`
	Details       map[string]any `json:"details,omitempty"`
	CorrelationID string         `json:"correlationId,omitempty"`
}

// WriteError maps err to a status and writes the error body. This is the
// one place where errors become HTTP.
func WriteError(w http.ResponseWriter, r *http.Request, err error) {
	status, detail := classify(err)
	detail.CorrelationID = event.CorrelationID(r.Context())
	if status >= 500 {
		slog.ErrorContext(r.Context(), "request failed", "method", r.Method, "path", r.URL.Path,
			"err", err, "correlationId", detail.CorrelationID)
	}
	w.Header().Set("Content-Type", "application/json")
	if status == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", `Bearer realm="alumoutreach"`)
	}
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(ErrorBody{Error: detail})
}

func classify(err error) (int, ErrorDetail) {
	if fe, ok := fault.As(err); ok {
		return statusOf(fe.Kind), ErrorDetail{Code: fe.Code, Message: fe.Message, Details: fe.Details}
	}
	var maxErr *http.MaxBytesError
	switch {
	case errors.As(err, &maxErr):
		return http.StatusRequestEntityTooLarge, ErrorDetail{Code: "payload_too_large",
			Message: fmt.Sprintf("request body is larger than %d bytes", maxErr.Limit)}
	case errors.Is(err, event.ErrTooLarge):
		return http.StatusRequestEntityTooLarge, ErrorDetail{Code: "event_too_large", Message: err.Error()}
	case errors.Is(err, store.ErrNotFound):
		return http.StatusNotFound, ErrorDetail{Code: "not_found", Message: err.Error()}
	case errors.Is(err, context.Canceled):
		return 499, ErrorDetail{Code: "canceled", Message: "the request was canceled"}
	case errors.Is(err, context.DeadlineExceeded):
		return http.StatusServiceUnavailable, ErrorDetail{Code: "timeout", Message: "the request timed out; retry later"}
	}
	return http.StatusInternalServerError, ErrorDetail{Code: "internal", Message: "internal error; the logs carry the details under this correlationId"}
}

func statusOf(k fault.Kind) int {
	switch k {
	case fault.Invalid:
		return http.StatusBadRequest
	case fault.NotFound:
		return http.StatusNotFound
	case fault.Conflict:
		return http.StatusConflict
	case fault.Unauthorized:
		return http.StatusUnauthorized
	case fault.Forbidden:
		return http.StatusForbidden
	case fault.TooLarge:
		return http.StatusRequestEntityTooLarge
	case fault.Unavailable:
		return http.StatusServiceUnavailable
	}
	return http.StatusInternalServerError
}

// DecodeJSON reads one JSON object from r's body into v, refusing bodies
// over maxBytes (DefaultMaxBody when 0), unknown fields and trailing data,
// with errors that say what to fix.
func DecodeJSON(w http.ResponseWriter, r *http.Request, v any, maxBytes int64) error {
	if maxBytes <= 0 {
		maxBytes = DefaultMaxBody
	}
	if ct := r.Header.Get("Content-Type"); ct != "" && !strings.HasPrefix(ct, "application/json") {
		return fault.New(fault.Invalid, "unsupported_media_type", "send the body as application/json (got %q)", ct)
	}
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxBytes))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		var maxErr *http.MaxBytesError
		var syn *json.SyntaxError
		var typ *json.UnmarshalTypeError
		switch {
		case errors.As(err, &maxErr):
			return err
		case errors.Is(err, io.EOF):
			return fault.New(fault.Invalid, "invalid_json", "the request body is empty; send a JSON object")
		case errors.As(err, &syn):
			return fault.New(fault.Invalid, "invalid_json", "the body is not valid JSON at byte %d: %v", syn.Offset, err)
		case errors.As(err, &typ):
			return fault.New(fault.Invalid, "invalid_json", "field %q must be a JSON %s", typ.Field, typ.Type.Kind())
		case strings.HasPrefix(err.Error(), "json: unknown field"):
			return fault.New(fault.Invalid, "unknown_field", "%s; remove it or check its spelling", strings.TrimPrefix(err.Error(), "json: "))
		}
		return fault.Wrap(err, fault.Invalid, "invalid_json", "the body could not be read as JSON")
	}
	if dec.More() {
		return fault.New(fault.Invalid, "invalid_json", "the body holds more than one JSON value; send exactly one object")
	}
	return nil
}

// Respond writes v as a 200, or err through WriteError.
func Respond(w http.ResponseWriter, r *http.Request, v any, err error) {
	if err != nil {
		WriteError(w, r, err)
		return
	}
	WriteJSON(w, http.StatusOK, v)
}

// IfMatchVersion reads the If-Match header as the version an edit was made
// from ("3", or the ETag form "\"3\""): 0 when absent, a fault.Invalid
// (invalid_if_match) naming what (e.g. "campaign") when it is not a
// positive whole number.
func IfMatchVersion(r *http.Request, what string) (int64, error) {
	m := strings.Trim(r.Header.Get("If-Match"), `"`)
	if m == "" {
		return 0, nil
	}
	v, err := strconv.ParseInt(m, 10, 64)
	if err != nil || v < 1 {
		return 0, fault.New(fault.Invalid, "invalid_if_match", "If-Match must carry the %s's version, a positive whole number (got %q)", what, m)
	}
	return v, nil
}
