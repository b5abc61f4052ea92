package httpapi

import (
	"fmt"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/alumoutreach/alumoutreach/internal/platform/fault"
)

// ParseTime reads an RFC 3339 query parameter, or returns def when absent.
func ParseTime(s, param string, def time.Time) (time.Time, error) {
	if s == "" {
		return def.UTC(), nil
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		msg := fmt.Sprintf("%s %q is not an RFC 3339 timestamp; use a form like 2026-01-02T15:04:05Z", param, s)
		if strings.Contains(s, " ") {
			// A "+01:00" offset sent unencoded arrives as a space.
			msg += " (encode a + in the offset as %2B)"
		}
		return time.Time{}, &fault.Error{Kind: fault.Invalid, Code: "invalid_timestamp", Message: msg,
			Details: map[string]any{"parameter": param}}
	}
	return t.UTC(), nil
}

// CheckParams refuses query parameters outside known, and parameters given
// twice: a misspelt filter silently ignored would return the wrong rows.
func CheckParams(v url.Values, known ...string) error {
	for name, vals := range v {
		if !slices.Contains(known, name) {
			return fault.New(fault.Invalid, "unknown_parameter", "unknown query parameter %q; this endpoint takes %s", name, strings.Join(known, ", "))
		}
		if len(vals) > 1 {
			return fault.New(fault.Invalid, "repeated_parameter", "query parameter %q is given %d times; give it once", name, len(vals))
		}
	}
	return nil
}
